"""Event rules: milestones and risks per lifecycle stage, evaluated over arrays of accounts.

A rule is configuration (part of the scoring config, under ``"rules"``). Each rule has a kind
(milestone or risk), a severity, the stages it applies to (none listed: every stage) and one of
seven types, each a condition on arrays the scoring run already has or fetches in one query:

``threshold``    a raw measure value, the score or a fact crosses ``at`` (``op`` above/below),
                 with hysteresis: it re-arms only once the value is back past ``clear_at``.
``change``       a daily-usage column summed over the last ``window_days`` against the window
                 before changed by ``change_pct`` percent or more (negative: a fall), and by at
                 least ``min_change`` in absolute terms (so 2 logins against 3 is no fall).
``signal``       a named product signal occurred at least ``min_count`` times on at least
                 ``min_days`` days within ``window_days`` (or, with ``absent``, did not).
``overdue``      ``after_days`` or more since the contract start without a milestone: a product
                 signal, any activity, or another (milestone) rule having fired.
``score_drop``   the score fell by ``points`` or more against ``days`` days before.
``band_change``  the account is now in ``band`` (the event is entering it).
``contacts``     at least ``min_count`` contacts with one of ``roles`` were added (or removed)
                 within ``window_days``.

Every rule is a level condition with an on-state per account. An event fires when the condition
turns on while it was off, so a condition that stays true never fires again, and re-running a
day (whose state already includes that day) fires nothing new; the condition must clear (or the
account leave the rule's stages) before it can fire again. The state of all rules of an account
is one int64 bit mask, bit ``i`` for the ``i``-th rule of the config, stored with its latest
score; ``remap_state`` carries it across config versions by rule id.

An account's first evaluation (no stored state yet: the first day it is scored) records which
conditions already hold without firing them, so installing the service does not announce every
condition that was true before it: ``evaluate_rules(..., first=...)``. A rule with
``fire_on_first_day`` opts out of that ("already poor at install" is worth a call).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, fields
from enum import StrEnum
from importlib import resources
from typing import Any

import numpy as np

from scoring.bands import BANDS, NO_BAND, Band
from scoring.stage import STAGE_CODE, STAGES, LifecycleStage

#: Bits of the int64 state mask available to rules (the sign bit stays clear for the database).
MAX_RULES = 62
RULE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
USAGE_COLUMNS = ("active_users", "logins", "key_feature_uses")
#: Values a threshold rule may read besides the catalog measures.
FACTS = {
    "score": "The health score (0-100).",
    "login_days_30d": "Days with at least one login in the last 30 days.",
    "days_to_renewal": "Days until the renewal date (negative once passed).",
}
MAX_WINDOW_DAYS = 366
#: The largest ``min_change`` of a change rule (a usage column summed over up to a year).
MAX_MIN_CHANGE = 1e9


class ContactRole(StrEnum):
    """A contact's role at the account (what contact-change rules watch; the contacts table's too)."""

    ADMIN = "admin"
    CHAMPION = "champion"
    USER = "user"


CONTACT_ROLES = tuple(role.value for role in ContactRole)


class RuleKind(StrEnum):
    MILESTONE = "milestone"
    RISK = "risk"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class RuleType(StrEnum):
    THRESHOLD = "threshold"
    CHANGE = "change"
    SIGNAL = "signal"
    OVERDUE = "overdue"
    SCORE_DROP = "score_drop"
    BAND_CHANGE = "band_change"
    CONTACTS = "contacts"


class RuleError(ValueError):
    """Rules that break an invariant; ``errors`` maps dotted field paths (``rules.3.at``) to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("invalid rules: " + json.dumps(errors, sort_keys=True))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Rule:
    """One event rule. Only the parameters of its ``type`` are meaningful (see the module doc)."""

    id: str
    name: str
    kind: RuleKind
    severity: Severity
    type: RuleType
    stages: tuple[LifecycleStage, ...] = ()  # empty: every stage
    description: str = ""
    #: Fire on an account's first scored day too (by default that day only records the state).
    fire_on_first_day: bool = False
    # threshold
    value: str = ""
    op: str = "above"
    at: float = 0.0
    clear_at: float | None = None
    # change (``value`` names the usage column), signal, contacts
    window_days: int = 1
    change_pct: float = 0.0
    clear_pct: float | None = None
    min_change: float = 0.0  # change: the least absolute change (in the column's units) that counts
    # signal
    signal: str = ""
    min_count: int = 1
    min_days: int = 1
    absent: bool = False
    # overdue
    after_days: int = 0
    without: str = ""  # "signal:<name>", "milestone:<rule id>" or "activity"
    # score_drop
    points: float = 0.0
    days: int = 7
    # band_change
    band: Band | None = None
    # contacts
    change: str = "added"
    roles: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the common fields and only this type's parameters."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "type": self.type.value,
            "stages": [s.value for s in self.stages],
        }
        if self.description:
            out["description"] = self.description
        if self.fire_on_first_day:
            out["fire_on_first_day"] = True
        for key in TYPE_PARAMS[self.type]:
            value = getattr(self, key)
            if value is None or (key not in REQUIRED[self.type] and value == _DEFAULTS[key]):
                continue
            out[key] = value.value if isinstance(value, Band) else list(value) if isinstance(value, tuple) else value
        return out


#: The parameters each type reads, required ones first (see ``REQUIRED``).
TYPE_PARAMS: dict[RuleType, tuple[str, ...]] = {
    RuleType.THRESHOLD: ("value", "op", "at", "clear_at"),
    RuleType.CHANGE: ("value", "window_days", "change_pct", "clear_pct", "min_change"),
    RuleType.SIGNAL: ("signal", "window_days", "min_count", "min_days", "absent"),
    RuleType.OVERDUE: ("after_days", "without"),
    RuleType.SCORE_DROP: ("points", "days"),
    RuleType.BAND_CHANGE: ("band",),
    RuleType.CONTACTS: ("change", "roles", "window_days", "min_count"),
}
REQUIRED: dict[RuleType, tuple[str, ...]] = {
    RuleType.THRESHOLD: ("value", "op", "at"),
    RuleType.CHANGE: ("value", "window_days", "change_pct"),
    RuleType.SIGNAL: ("signal",),
    RuleType.OVERDUE: ("after_days", "without"),
    RuleType.SCORE_DROP: ("points", "days"),
    RuleType.BAND_CHANGE: ("band",),
    RuleType.CONTACTS: ("change", "roles", "window_days"),
}
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Rule)}
COMMON_FIELDS = ("id", "name", "kind", "severity", "type", "stages", "description", "fire_on_first_day")


#: Problems with one rule, each as (the field it is about, what is wrong).
_Problems = Iterator[tuple[str, str]]


def check_rules(rules: tuple[Rule, ...], measure_names: Collection[str] | None = None) -> dict[str, list[str]]:
    """Meaning errors of a rule list keyed by dotted path (``rules.<index>.<field>``); empty when valid.

    ``measure_names``: the config's measures, which threshold rules may read besides the ``FACTS``
    (None: not checked here, as when the rules are read without their config)."""
    errors: dict[str, list[str]] = {}
    if len(rules) > MAX_RULES:
        errors["rules"] = [f"At most {MAX_RULES} rules are supported."]
    ids = [r.id for r in rules]
    milestones = frozenset(r.id for r in rules if r.kind is RuleKind.MILESTONE)
    for i, rule in enumerate(rules):
        problems = [
            *_common_problems(rule, ids),
            *_TYPE_PROBLEMS[rule.type](rule, milestones),
            *_window_problems(rule),
            *_value_problems(rule, measure_names),
        ]
        for key, message in problems:
            errors.setdefault(f"rules.{i}.{key}", []).append(message)
    return errors


def _common_problems(rule: Rule, ids: list[str]) -> _Problems:
    """The fields every rule has: a well-formed unique id, a name, stages listed once."""
    if not RULE_ID.match(rule.id):
        yield "id", "Use 1-64 lower-case letters, digits and underscores, starting with a letter."
    if ids.count(rule.id) > 1:
        yield "id", f"Rule id {rule.id!r} is used more than once."
    if not rule.name.strip():
        yield "name", "A name is needed."
    if len(set(rule.stages)) != len(rule.stages):
        yield "stages", "A stage is listed twice."


def _value_problems(rule: Rule, measure_names: Collection[str] | None) -> _Problems:
    """A threshold rule reads a measure of the config or a fact."""
    if rule.type is not RuleType.THRESHOLD or measure_names is None:
        return
    if rule.value not in measure_names and rule.value not in FACTS:
        known = ", ".join(sorted([*measure_names, *FACTS]))
        yield "value", f"Unknown value {rule.value!r}; known: {known}."


def _threshold_problems(rule: Rule, milestones: frozenset[str]) -> _Problems:
    if not rule.value:
        yield "value", "A threshold rule names a measure or a fact."
    if rule.op not in ("above", "below"):
        yield "op", "Must be 'above' or 'below'."
    if not math.isfinite(rule.at):
        yield "at", "Must be a finite number."
    if rule.clear_at is not None:
        if not math.isfinite(rule.clear_at):
            yield "clear_at", "Must be a finite number."
        elif rule.op == "above" and rule.clear_at > rule.at:
            yield "clear_at", "For 'above', the clearing value must not exceed 'at'."
        elif rule.op == "below" and rule.clear_at < rule.at:
            yield "clear_at", "For 'below', the clearing value must not be under 'at'."


def _change_problems(rule: Rule, milestones: frozenset[str]) -> _Problems:
    if rule.value not in USAGE_COLUMNS:
        yield "value", f"Must be one of {', '.join(USAGE_COLUMNS)}."
    if not math.isfinite(rule.change_pct) or rule.change_pct == 0 or rule.change_pct < -100:
        yield "change_pct", "Must be a non-zero percentage, -100 or more (negative: a fall)."
    elif rule.clear_pct is not None:
        if rule.change_pct < 0 and not rule.clear_pct >= rule.change_pct:
            yield "clear_pct", "For a fall, the clearing change must not be below 'change_pct'."
        if rule.change_pct > 0 and not rule.clear_pct <= rule.change_pct:
            yield "clear_pct", "For a rise, the clearing change must not exceed 'change_pct'."
    if not math.isfinite(rule.min_change) or not (0 <= rule.min_change <= MAX_MIN_CHANGE):
        yield "min_change", f"Must be between 0 and {MAX_MIN_CHANGE:g}."


def _signal_problems(rule: Rule, milestones: frozenset[str]) -> _Problems:
    if not rule.signal.strip():
        yield "signal", "A signal name is needed."
    if rule.min_count < 1:
        yield "min_count", "Must be at least 1."
    if rule.min_days < 1 or rule.min_days > rule.window_days:
        yield "min_days", "Must be at least 1 and at most window_days."


def _overdue_problems(rule: Rule, milestones: frozenset[str]) -> _Problems:
    """Also: what it waits for is activity, a named signal or a milestone rule of this config."""
    if rule.after_days < 1:
        yield "after_days", "Must be at least 1."
    kind, _, name = rule.without.partition(":")
    if rule.without == "activity" or (kind == "signal" and name.strip()):
        return
    if kind != "milestone":
        yield "without", "Use 'activity', 'signal:<name>' or 'milestone:<rule id>'."
    elif name not in milestones:
        yield "without", f"{name!r} is not a milestone rule of this config."
    elif name == rule.id:
        yield "without", "A rule cannot wait for itself."


def _score_drop_problems(rule: Rule, milestones: frozenset[str]) -> _Problems:
    if not (0 < rule.points <= 100):
        yield "points", "Must be more than 0 and at most 100."
    if not (1 <= rule.days <= MAX_WINDOW_DAYS):
        yield "days", f"Must be between 1 and {MAX_WINDOW_DAYS}."


def _band_change_problems(rule: Rule, milestones: frozenset[str]) -> _Problems:
    if rule.band is None:
        yield "band", "A band is needed."


def _contacts_problems(rule: Rule, milestones: frozenset[str]) -> _Problems:
    if rule.change not in ("added", "removed"):
        yield "change", "Must be 'added' or 'removed'."
    if not rule.roles or any(r not in CONTACT_ROLES for r in rule.roles):
        yield "roles", f"List one or more of {', '.join(CONTACT_ROLES)}."
    if rule.min_count < 1:
        yield "min_count", "Must be at least 1."


#: Each type's parameter checks (given the config's milestone rule ids, which overdue rules wait for).
_TYPE_PROBLEMS: dict[RuleType, Callable[[Rule, frozenset[str]], _Problems]] = {
    RuleType.THRESHOLD: _threshold_problems,
    RuleType.CHANGE: _change_problems,
    RuleType.SIGNAL: _signal_problems,
    RuleType.OVERDUE: _overdue_problems,
    RuleType.SCORE_DROP: _score_drop_problems,
    RuleType.BAND_CHANGE: _band_change_problems,
    RuleType.CONTACTS: _contacts_problems,
}


def _window_problems(rule: Rule) -> _Problems:
    if rule.type in (RuleType.CHANGE, RuleType.SIGNAL, RuleType.CONTACTS) and not (
        1 <= rule.window_days <= MAX_WINDOW_DAYS
    ):
        yield "window_days", f"Must be between 1 and {MAX_WINDOW_DAYS}."


def rule_from_dict(data: dict[str, Any]) -> Rule:
    """One rule from its JSON form (shape already checked by the API schema)."""
    params: dict[str, Any] = {k: data[k] for k in TYPE_PARAMS[RuleType(data["type"])] if k in data}
    if "band" in params:
        params["band"] = Band(params["band"])
    if "roles" in params:
        params["roles"] = tuple(params["roles"])
    for key in ("at", "clear_at", "change_pct", "clear_pct", "points", "min_change"):
        if params.get(key) is not None:
            params[key] = float(params[key])
    return Rule(
        id=data["id"],
        name=data["name"],
        kind=RuleKind(data["kind"]),
        severity=Severity(data["severity"]),
        type=RuleType(data["type"]),
        stages=tuple(LifecycleStage(s) for s in data.get("stages", ())),
        description=data.get("description", ""),
        fire_on_first_day=bool(data.get("fire_on_first_day", False)),
        **params,
    )


def rules_from_list(items: list[dict[str, Any]], measure_names: Collection[str] | None = None) -> tuple[Rule, ...]:
    """Rules from their JSON form; raises ``RuleError`` for meaning errors (``measure_names``: as
    for ``check_rules``)."""
    rules = tuple(rule_from_dict(item) for item in items)
    errors = check_rules(rules, measure_names)
    if errors:
        raise RuleError(errors)
    return rules


def default_rules_list() -> list[dict[str, Any]]:
    """The shipped default catalog (``scoring/default_rules.json``) as JSON data."""
    text = resources.files("scoring").joinpath("default_rules.json").read_text(encoding="utf-8")
    data: list[dict[str, Any]] = json.loads(text)["rules"]
    return data


# --- what the scoring run must fetch ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RuleNeeds:
    """The inputs a rule set reads beyond the measures, so the scoring run fetches only those."""

    usage_windows: frozenset[tuple[str, int]] = frozenset()  # (column, days)
    signal_windows: frozenset[tuple[str, int]] = frozenset()  # (signal, days)
    signals_ever: frozenset[str] = frozenset()
    activity_ever: bool = False
    milestones_ever: frozenset[str] = frozenset()  # rule ids
    contact_windows: frozenset[tuple[str, tuple[str, ...], int]] = frozenset()  # (change, roles, days)
    score_days_ago: frozenset[int] = frozenset()


def rule_needs(rules: tuple[Rule, ...]) -> RuleNeeds:
    usage, signals, ever, milestones, contacts, days = set(), set(), set(), set(), set(), set()
    activity = False
    for rule in rules:
        if rule.type is RuleType.CHANGE:
            usage.add((rule.value, rule.window_days))
        elif rule.type is RuleType.SIGNAL:
            signals.add((rule.signal, rule.window_days))
        elif rule.type is RuleType.OVERDUE:
            kind, _, name = rule.without.partition(":")
            if rule.without == "activity":
                activity = True
            elif kind == "signal":
                ever.add(name)
            else:
                milestones.add(name)
        elif rule.type is RuleType.CONTACTS:
            contacts.add((rule.change, tuple(sorted(rule.roles)), rule.window_days))
        elif rule.type is RuleType.SCORE_DROP:
            days.add(rule.days)
    return RuleNeeds(
        frozenset(usage),
        frozenset(signals),
        frozenset(ever),
        activity,
        frozenset(milestones),
        frozenset(contacts),
        frozenset(days),
    )


@dataclass(slots=True)
class RuleInputs:
    """Per-account arrays (length ``n``, account order of the run) the rules read.

    ``values``: threshold inputs by name (raw measures, ``score``, the ``FACTS``), NaN for no data.
    ``usage``: ``(column, days) -> (current, previous)`` sums over the window and the one before.
    ``signals``: ``(signal, days) -> (count, days_with_signal)`` within the window.
    ``signals_ever``/``milestones_ever``: booleans; ``activity_ever``: any usage so far.
    ``contacts``: ``(change, roles, days) -> count``; ``score_ago``: ``days -> score`` (NaN: none).
    """

    stage: np.ndarray
    band: np.ndarray
    days_since_start: np.ndarray
    values: dict[str, np.ndarray]
    usage: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    signals: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    signals_ever: dict[str, np.ndarray] = field(default_factory=dict)
    activity_ever: np.ndarray | None = None
    milestones_ever: dict[str, np.ndarray] = field(default_factory=dict)
    contacts: dict[tuple[str, tuple[str, ...], int], np.ndarray] = field(default_factory=dict)
    score_ago: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.stage.shape[0])


@dataclass(frozen=True, slots=True)
class RuleEvaluation:
    """``fired``: (r, n) bool, the events of this evaluation; ``state``: (n,) int64 new on-state mask;
    ``active``: (r, n) bool, which conditions are on now."""

    fired: np.ndarray
    active: np.ndarray
    state: np.ndarray


Condition = tuple[np.ndarray, np.ndarray]


def _threshold(rule: Rule, x: RuleInputs) -> Condition:
    v = x.values[rule.value]
    clear = rule.at if rule.clear_at is None else rule.clear_at
    with np.errstate(invalid="ignore"):
        if rule.op == "above":
            return v >= rule.at, v < clear
        return v <= rule.at, v > clear


def _change(rule: Rule, x: RuleInputs) -> Condition:
    current, previous = x.usage[(rule.value, rule.window_days)]
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(previous > 0, (current - previous) / previous * 100.0, np.nan)
        clear = rule.change_pct if rule.clear_pct is None else rule.clear_pct
        # Too small a change in absolute terms neither fires nor clears (the state stands).
        big = np.abs(current - previous) >= rule.min_change
        if rule.change_pct < 0:
            return (pct <= rule.change_pct) & big, pct > clear
        return (pct >= rule.change_pct) & big, pct < clear


def _signal(rule: Rule, x: RuleInputs) -> Condition:
    count, days = x.signals[(rule.signal, rule.window_days)]
    hit = (count >= rule.min_count) & (days >= rule.min_days)
    on = ~hit if rule.absent else hit
    return on, ~on


def _overdue(rule: Rule, x: RuleInputs) -> Condition:
    kind, _, name = rule.without.partition(":")
    if rule.without == "activity":
        done = x.activity_ever if x.activity_ever is not None else np.zeros(x.n, dtype=bool)
    elif kind == "signal":
        done = x.signals_ever[name]
    else:
        done = x.milestones_ever[name]
    with np.errstate(invalid="ignore"):
        on = (x.days_since_start >= rule.after_days) & ~done
    return on, ~on


def _score_drop(rule: Rule, x: RuleInputs) -> Condition:
    drop = x.score_ago[rule.days] - x.values["score"]
    with np.errstate(invalid="ignore"):
        return drop >= rule.points, drop < rule.points


def _band_change(rule: Rule, x: RuleInputs) -> Condition:
    assert rule.band is not None
    inside = x.band == BANDS.index(rule.band)
    return inside, ~inside & (x.band != NO_BAND)


def _contacts(rule: Rule, x: RuleInputs) -> Condition:
    on = x.contacts[(rule.change, tuple(sorted(rule.roles)), rule.window_days)] >= rule.min_count
    return on, ~on


#: Each type's condition: (on, off) boolean arrays, where it holds and where it has cleared.
#: Where neither (no data, or inside a hysteresis band) the previous state stands.
_CONDITIONS = {
    RuleType.THRESHOLD: _threshold,
    RuleType.CHANGE: _change,
    RuleType.SIGNAL: _signal,
    RuleType.OVERDUE: _overdue,
    RuleType.SCORE_DROP: _score_drop,
    RuleType.BAND_CHANGE: _band_change,
    RuleType.CONTACTS: _contacts,
}


def stage_mask(rule: Rule, stage: np.ndarray) -> np.ndarray:
    if not rule.stages:
        return np.ones(stage.shape, dtype=bool)
    return np.isin(stage, [STAGE_CODE[s] for s in rule.stages])


def evaluate_rules(
    rules: tuple[Rule, ...], inputs: RuleInputs, previous: np.ndarray, first: np.ndarray | None = None
) -> RuleEvaluation:
    """Evaluate every rule for every account: one array expression per rule, no loop over accounts.

    ``previous`` is the (n,) int64 state mask before this evaluation (0: nothing on). A rule is
    on where its condition holds in one of its stages; it stays on, inside a hysteresis band or
    without data, until its clearing condition holds or the account leaves its stages. It fires
    where it turns on, except on an account's first evaluation (``first``, (n,) bool: no state
    stored yet), which records the state without firing unless the rule has ``fire_on_first_day``.
    """
    n = inputs.n
    r = len(rules)
    if previous.shape != (n,):
        raise ValueError("previous state must have one entry per account")
    if first is None:
        first = np.zeros(n, dtype=bool)
    elif first.shape != (n,):
        raise ValueError("first must have one entry per account")
    fired = np.zeros((r, n), dtype=bool)
    active = np.zeros((r, n), dtype=bool)
    state = np.zeros(n, dtype=np.int64)
    for i, rule in enumerate(rules):
        was = (previous >> np.int64(i)) & 1 == 1
        on, off = _CONDITIONS[rule.type](rule, inputs)
        now = ((was & ~off) | on) & stage_mask(rule, inputs.stage)
        fired[i] = now & ~was if rule.fire_on_first_day else now & ~was & ~first
        active[i] = now
        state |= now.astype(np.int64) << np.int64(i)
    return RuleEvaluation(fired, active, state)


def remap_state(state: np.ndarray, old_ids: tuple[str, ...], new_ids: tuple[str, ...]) -> np.ndarray:
    """A state mask written under rule order ``old_ids`` re-expressed in ``new_ids`` order; bits
    of rules that no longer exist are dropped (a new rule starts off)."""
    if old_ids == new_ids:
        return state
    out = np.zeros_like(state)
    position = {rule_id: i for i, rule_id in enumerate(new_ids)}
    for old, rule_id in enumerate(old_ids):
        new = position.get(rule_id)
        if new is not None:
            out |= ((state >> np.int64(old)) & 1) << np.int64(new)
    return out


def _num(value: Any) -> float | None:
    v = float(value)
    return round(v, 4) if math.isfinite(v) else None


def trigger_values(rule: Rule, x: RuleInputs, positions: np.ndarray) -> list[dict[str, Any]]:
    """What made ``rule`` fire for the accounts at ``positions``: one small dict per event.

    Called for fired events only, so the loop is over events, never over the portfolio.
    """
    t = rule.type
    columns: dict[str, Any]
    if t is RuleType.THRESHOLD:
        columns = {"value": x.values[rule.value][positions]}
        fixed: dict[str, Any] = {"measure": rule.value, "op": rule.op, "threshold": rule.at}
    elif t is RuleType.CHANGE:
        current, previous = x.usage[(rule.value, rule.window_days)]
        cur, prev = current[positions], previous[positions]
        with np.errstate(invalid="ignore", divide="ignore"):
            pct = (cur - prev) / prev * 100.0
        columns = {"current": cur, "previous": prev, "change_pct": pct}
        fixed = {"column": rule.value, "window_days": rule.window_days, "threshold_pct": rule.change_pct}
        if rule.min_change:
            fixed["min_change"] = rule.min_change
    elif t is RuleType.SIGNAL:
        count, days = x.signals[(rule.signal, rule.window_days)]
        columns = {"count": count[positions], "days": days[positions]}
        fixed = {"signal": rule.signal, "window_days": rule.window_days, "absent": rule.absent}
    elif t is RuleType.OVERDUE:
        columns = {"days_since_start": x.days_since_start[positions]}
        fixed = {"after_days": rule.after_days, "without": rule.without}
    elif t is RuleType.SCORE_DROP:
        before, now = x.score_ago[rule.days][positions], x.values["score"][positions]
        columns = {"score": now, "score_before": before, "change": now - before}
        fixed = {"days": rule.days, "points": rule.points}
    elif t is RuleType.BAND_CHANGE:
        columns = {"score": x.values["score"][positions]}
        fixed = {"band": rule.band.value if rule.band else None}
    else:
        columns = {"count": x.contacts[(rule.change, tuple(sorted(rule.roles)), rule.window_days)][positions]}
        fixed = {"change": rule.change, "roles": list(rule.roles), "window_days": rule.window_days}
    names = list(columns)
    rows = zip(*(np.asarray(columns[k], dtype=np.float64).tolist() for k in names), strict=True)
    return [{**{k: _num(v) for k, v in zip(names, row, strict=True)}, **fixed} for row in rows]


def describe(rule: Rule) -> str:
    """A one-line human description of the condition (for the API and messages)."""
    where = f" ({', '.join(s.value for s in rule.stages)})" if rule.stages else ""
    t = rule.type
    if t is RuleType.THRESHOLD:
        text = f"{rule.value} {'>=' if rule.op == 'above' else '<='} {rule.at:g}"
        if rule.clear_at is not None and rule.clear_at != rule.at:
            text += f" (re-arms past {rule.clear_at:g})"
    elif t is RuleType.CHANGE:
        text = f"{rule.value} over {rule.window_days} days {rule.change_pct:+g}% or more against the window before"
        if rule.min_change:
            text += f" (by {rule.min_change:g} or more)"
    elif t is RuleType.SIGNAL:
        what = f"'{rule.signal}' at least {rule.min_count}x on {rule.min_days}+ days within {rule.window_days} days"
        text = f"no {what}" if rule.absent else what
    elif t is RuleType.OVERDUE:
        text = f"{rule.after_days}+ days since contract start without {rule.without}"
    elif t is RuleType.SCORE_DROP:
        text = f"score down {rule.points:g}+ points in {rule.days} days"
    elif t is RuleType.BAND_CHANGE:
        text = f"moved into the {rule.band.value if rule.band else '?'} band"
    else:
        text = f"{rule.min_count}+ {'/'.join(rule.roles)} contacts {rule.change} within {rule.window_days} days"
    return text + where


__all__ = [
    "FACTS",
    "MAX_MIN_CHANGE",
    "MAX_RULES",
    "STAGES",
    "Rule",
    "RuleError",
    "RuleEvaluation",
    "RuleInputs",
    "RuleKind",
    "RuleNeeds",
    "RuleType",
    "Severity",
    "check_rules",
    "default_rules_list",
    "describe",
    "evaluate_rules",
    "remap_state",
    "rule_needs",
    "rules_from_list",
    "trigger_values",
]
