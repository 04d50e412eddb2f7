"""Success plays: what to do when an event (or a band, in a stage) occurs, and matching them.

A play has a trigger (any of a list of event rules fired, or the account is in a band), the
stages it applies to, an ordered list of task templates, whether it puts the account on the
watchlist, how to alert, and a cooldown. ``match_plays`` decides, over arrays of accounts, which
accounts start a run of which play in one scoring run: one open run per account and play, and
no new run within the cooldown of the last one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

import numpy as np

from scoring.bands import BANDS, Band
from scoring.stage import STAGE_CODE, LifecycleStage

PLAY_ID = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
MAX_TASKS = 20


class PlayError(ValueError):
    """A play that breaks a rule; ``errors`` maps dotted field paths to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid play: " + json.dumps(errors, sort_keys=True))
        self.errors = errors


class TaskType(StrEnum):
    CALL = "call"
    EMAIL = "email"
    MEETING = "meeting"
    TRAINING = "training"
    ESCALATION = "escalation"


class OwnerRole(StrEnum):
    CSM = "csm"
    MANAGER = "manager"
    SUPPORT = "support"


class AlertMode(StrEnum):
    """How a play's runs are announced: at once, in the daily digest, or not at all."""

    IMMEDIATE = "immediate"
    DIGEST = "digest"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class TaskTemplate:
    type: TaskType
    title: str
    due_days: int
    owner_role: OwnerRole = OwnerRole.CSM
    description: str = ""


@dataclass(frozen=True, slots=True)
class Play:
    """``rules``: the play starts when any of these rules fires; ``band``: while the account is in
    this band (exactly one of the two). ``stages``: where it applies (empty: every stage)."""

    id: str
    name: str
    tasks: tuple[TaskTemplate, ...]
    rules: tuple[str, ...] = ()
    band: Band | None = None
    stages: tuple[LifecycleStage, ...] = ()
    description: str = ""
    watchlist: bool = False
    alert: AlertMode = AlertMode.IMMEDIATE
    cooldown_days: int = 30
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        trigger: dict[str, Any] = {"stages": [s.value for s in self.stages]}
        if self.rules:
            trigger["rules"] = list(self.rules)
        if self.band is not None:
            trigger["band"] = self.band.value
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "trigger": trigger,
            "tasks": [
                {
                    "type": t.type.value,
                    "title": t.title,
                    "due_days": t.due_days,
                    "owner_role": t.owner_role.value,
                    "description": t.description,
                }
                for t in self.tasks
            ],
            "watchlist": self.watchlist,
            "alert": self.alert.value,
            "cooldown_days": self.cooldown_days,
            "enabled": self.enabled,
        }


def load_play(data: dict[str, Any], rule_ids: frozenset[str] | None = None) -> Play:
    """A checked play from its JSON form: the one reader of a play, for the API (after its schema
    checked the shape), the shipped library and stored plays. Raises ``PlayError`` with the
    collected ``check_play`` errors, or one ``_schema`` error for a document of the wrong shape."""
    try:
        play = play_from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise PlayError({"_schema": [f"Not a play: {exc!r}."]}) from exc
    errors = check_play(play, rule_ids)
    if errors:
        raise PlayError(errors)
    return play


def play_from_dict(data: dict[str, Any]) -> Play:
    """A play from its JSON form, unchecked (see ``load_play``)."""
    trigger = data.get("trigger", {})
    return Play(
        id=data["id"],
        name=data["name"],
        description=data.get("description", ""),
        rules=tuple(trigger.get("rules", ())),
        band=Band(trigger["band"]) if trigger.get("band") else None,
        stages=tuple(LifecycleStage(s) for s in trigger.get("stages", ())),
        tasks=tuple(
            TaskTemplate(
                type=TaskType(t["type"]),
                title=t["title"],
                due_days=int(t["due_days"]),
                owner_role=OwnerRole(t.get("owner_role", OwnerRole.CSM.value)),
                description=t.get("description", ""),
            )
            for t in data["tasks"]
        ),
        watchlist=bool(data.get("watchlist", False)),
        alert=AlertMode(data.get("alert", AlertMode.IMMEDIATE.value)),
        cooldown_days=int(data.get("cooldown_days", 30)),
        enabled=bool(data.get("enabled", True)),
    )


def check_play(play: Play, rule_ids: frozenset[str] | None = None) -> dict[str, list[str]]:
    """Meaning errors keyed by dotted path; ``rule_ids``: the rules the trigger may name (the
    active config's), or None to skip that check."""
    errors: dict[str, list[str]] = {}

    def add(path: str, message: str) -> None:
        errors.setdefault(path, []).append(message)

    if not PLAY_ID.match(play.id):
        add("id", "Use 1-64 lower-case letters, digits, '-' and '_', starting with a letter.")
    if not play.name.strip():
        add("name", "A name is needed.")
    if bool(play.rules) == (play.band is not None):
        add("trigger", "Give exactly one of 'rules' (event rule ids) or 'band'.")
    if rule_ids is not None:
        for i, rule_id in enumerate(play.rules):
            if rule_id not in rule_ids:
                add(f"trigger.rules.{i}", f"No rule {rule_id!r} in the active scoring config.")
    if len(set(play.stages)) != len(play.stages):
        add("trigger.stages", "A stage is listed twice.")
    if not play.tasks:
        add("tasks", "At least one task is needed.")
    if len(play.tasks) > MAX_TASKS:
        add("tasks", f"At most {MAX_TASKS} tasks.")
    for i, task in enumerate(play.tasks):
        if not task.title.strip():
            add(f"tasks.{i}.title", "A title is needed.")
        if not (0 <= task.due_days <= 365):
            add(f"tasks.{i}.due_days", "Must be between 0 and 365.")
    if not (0 <= play.cooldown_days <= 3650):
        add("cooldown_days", "Must be between 0 and 3650.")
    return errors


def default_plays_list() -> list[dict[str, Any]]:
    """The shipped default library (``playbooks/default_plays.json``) as JSON data."""
    text = resources.files("playbooks").joinpath("default_plays.json").read_text(encoding="utf-8")
    data: list[dict[str, Any]] = json.loads(text)["plays"]
    return data


@dataclass(frozen=True, slots=True)
class PlayHistory:
    """Per play id, over the run's accounts: ``open`` (n,) bool, an open run exists;
    ``days_since_last`` (n,) float, days since the last run started (NaN: never)."""

    open: dict[str, np.ndarray]
    days_since_last: dict[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class PlayMatch:
    """Accounts (positions in the run's arrays) that start a run of ``play``; ``trigger_rule``:
    for each, the index (into the config's rules) of the rule that triggered it, -1 for a band."""

    play: Play
    positions: np.ndarray
    trigger_rule: np.ndarray


def match_plays(
    plays: tuple[Play, ...],
    rule_ids: tuple[str, ...],
    *,
    fired: np.ndarray,
    band: np.ndarray,
    stage: np.ndarray,
    history: PlayHistory,
    eligible: np.ndarray,
    first: np.ndarray | None = None,
    previous_band: np.ndarray | None = None,
) -> list[PlayMatch]:
    """The play runs to start: one array expression per play, no loop over accounts.

    ``fired``: (r, n) bool events of this run in ``rule_ids`` order; ``band``/``stage``: (n,)
    codes; ``eligible``: (n,) accounts this run may act on (those whose events it evaluated);
    ``first``: (n,) accounts on their first scored day, for which a band play does not start
    (that day records, it does not act; a rule play starts only from a rule that fires then).
    ``previous_band``: (n,) band codes of each account's previous scored day: a band play starts
    where the account *entered* its band (the band is a level; entering it is the event, as for
    the rules), or where the play ran for it before and the cooldown has passed (still in the band
    after a run ended: the play repeats). An account already in the band when first scored, and
    still there, starts none: its state was recorded, not acted on.
    A play matches where its trigger holds in one of its stages, there is no open run of it for
    the account and its last run started at least ``cooldown_days`` ago.
    """
    n = band.shape[0]
    index = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    matches: list[PlayMatch] = []
    for play in plays:
        if not play.enabled:
            continue
        if play.band is not None:
            code = BANDS.index(play.band)
            trigger = band == code
            if first is not None:
                trigger &= ~first
            if previous_band is not None:
                since_last = history.days_since_last.get(play.id)
                ran_before = ~np.isnan(since_last) if since_last is not None else np.zeros(n, dtype=bool)
                trigger &= (previous_band != code) | ran_before
            first_rule = np.full(n, -1, dtype=np.int64)
        else:
            rows = [index[r] for r in play.rules if r in index]
            if not rows:
                continue
            sub = fired[rows]
            trigger = sub.any(axis=0)
            first_rule = np.asarray(rows, dtype=np.int64)[sub.argmax(axis=0)]
        if play.stages:
            trigger &= np.isin(stage, [STAGE_CODE[s] for s in play.stages])
        trigger &= eligible
        open_run = history.open.get(play.id)
        if open_run is not None:
            trigger &= ~open_run
        since = history.days_since_last.get(play.id)
        if since is not None:
            with np.errstate(invalid="ignore"):
                # NaN (never ran) passes; a run started today blocks another today even without a cooldown.
                trigger &= ~(since < max(play.cooldown_days, 1))
        positions = np.flatnonzero(trigger)
        if positions.size:
            matches.append(PlayMatch(play, positions, first_rule[positions]))
    return matches
