"""Event rules inside the scoring run: fetch what the rules read, evaluate, store the events.

A fixed number of queries whatever the portfolio size (one per kind of input the active rules
need: signal windows, signals ever seen, contacts, milestones ever reached, an older score);
the evaluation itself is ``scoring.rules.evaluate_rules``, one array expression per rule.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.bulk import bulk_insert
from app.models import Contact, Event, LatestScore, UsageSignal
from app.pipeline.arrays import align, fetch_rows, float_columns, scatter
from app.pipeline.measures import PortfolioMeasures
from app.services.scoring_config.active import load_models
from scoring.bands import BANDS, NO_BAND
from scoring.model import ScoringModel
from scoring.rules import RuleEvaluation, RuleInputs, remap_state, rule_needs, trigger_values
from scoring.stage import STAGES

#: The columns of an event row as ``store_events`` writes (and returns) it.
EVENT_COLUMNS = (
    "account_id", "rule_id", "rule_name", "kind", "severity", "stage", "day", "config_version", "score",
    "trigger_values", "created_at",
)  # fmt: skip
_json_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


@dataclass(frozen=True, slots=True)
class PreviousLatest:
    """The latest-score rows before this run, aligned with the run's accounts."""

    day: np.ndarray  # datetime64[D], NaT where the account had no latest score
    state: np.ndarray  # int64 rule-state mask, re-expressed in the active config's rule order
    band: np.ndarray  # int8 band codes of that score (NO_BAND where none)


def previous_latest(session: Session, ids: np.ndarray, model: ScoringModel) -> PreviousLatest:
    """Read every latest-score row once: its day (which accounts this run may refresh) and its
    rule state (remapped by rule id when it was written under another config version)."""
    rows = fetch_rows(
        session.connection(),
        sa.select(
            LatestScore.account_id,
            LatestScore.config_version,
            LatestScore.rule_state,
            LatestScore.day,
            sa.case({b: code for code, b in enumerate(BANDS)}, value=LatestScore.band, else_=NO_BAND),
        ),
    )
    n = ids.size
    day = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    state = np.zeros(n, dtype=np.int64)
    band = np.full(n, NO_BAND, dtype=np.int8)
    if not rows:
        return PreviousLatest(day, state, band)
    account = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    version = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    mask = np.fromiter((r[2] for r in rows), dtype=np.int64, count=len(rows))
    days = np.array([r[3] for r in rows], dtype="datetime64[D]")
    bands = np.fromiter((r[4] for r in rows), dtype=np.int8, count=len(rows))
    pos, ok = align(ids, account)
    day[pos[ok]] = days[ok]
    band[pos[ok]] = bands[ok]
    models = load_models(session, {int(v) for v in np.unique(version)})
    for v, old in models.items():
        sel = ok & (version == v)
        state[pos[sel]] = remap_state(mask[sel], old.rule_ids, model.rule_ids)
    return PreviousLatest(day, state, band)


def first_scored_day(previous_day: np.ndarray, as_of: dt.date, score_on: Callable[[dt.date], np.ndarray]) -> np.ndarray:
    """Which accounts are on their first scored day: no latest score yet (``previous_day`` NaT),
    or, when the day is scored again, a latest score of this very day and none the day before
    (a re-run of an account's first day is still its first day; one query, only then)."""
    first = np.isnat(previous_day)
    again = previous_day == np.datetime64(as_of, "D")
    if again.any():
        first |= again & np.isnan(score_on(as_of - dt.timedelta(days=1)))
    return first


def gather_inputs(
    session: Session,
    *,
    as_of: dt.date,
    model: ScoringModel,
    portfolio: PortfolioMeasures,
    stage: np.ndarray,
    band: np.ndarray,
    score: np.ndarray,
    score_on: Callable[[dt.date], np.ndarray],
) -> RuleInputs:
    """The arrays the active rules read, in the run's account order (see ``RuleInputs``)."""
    needs = rule_needs(model.rules)
    ids = portfolio.account_id
    conn = session.connection()
    inputs = _run_inputs(as_of=as_of, portfolio=portfolio, stage=stage, band=band, score=score)
    for days in sorted({days for _, days in needs.signal_windows}):
        names = sorted(signal for signal, d in needs.signal_windows if d == days)
        inputs.signals.update(_signal_windows(conn, as_of=as_of, ids=ids, names=names, days=days))
    if needs.signals_ever:
        inputs.signals_ever.update(_ever_seen(conn, _SIGNALS, as_of=as_of, ids=ids, keys=needs.signals_ever))
    if needs.milestones_ever:
        inputs.milestones_ever.update(_ever_seen(conn, _MILESTONES, as_of=as_of, ids=ids, keys=needs.milestones_ever))
    if needs.contact_windows:
        inputs.contacts.update(_contact_changes(conn, as_of=as_of, ids=ids, windows=needs.contact_windows))
    for days in needs.score_days_ago:
        inputs.score_ago[days] = score_on(as_of - dt.timedelta(days=days))
    assert inputs.n == ids.size
    return inputs


def _run_inputs(
    *, as_of: dt.date, portfolio: PortfolioMeasures, stage: np.ndarray, band: np.ndarray, score: np.ndarray
) -> RuleInputs:
    """The inputs the run already holds: stage, band, the measures, the score, the days since
    contract start and to renewal, the usage windows."""
    as_of_day = np.datetime64(as_of, "D")
    days_since_start = (as_of_day - portfolio.contract_start).astype(np.int64).astype(np.float64)
    days_since_start[np.isnat(portfolio.contract_start)] = np.nan
    values = dict(portfolio.raw)
    values["score"] = score
    values["login_days_30d"] = portfolio.login_days_30d
    days_to_renewal = (portfolio.renewal_date - as_of_day).astype(np.int64).astype(np.float64)
    days_to_renewal[np.isnat(portfolio.renewal_date)] = np.nan
    values["days_to_renewal"] = days_to_renewal
    return RuleInputs(
        stage=stage,
        band=band,
        days_since_start=days_since_start,
        values=values,
        usage=dict(portfolio.usage_windows),
        activity_ever=portfolio.ever_used,
    )


def _signal_windows(
    conn: sa.Connection, *, as_of: dt.date, ids: np.ndarray, names: list[str], days: int
) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """Product signals within a rule window of ``days``: count and days with the signal, per
    signal of ``names``. An index range over (signal, day): only the rows the rules read."""
    rows = fetch_rows(
        conn,
        sa.select(UsageSignal.account_id, UsageSignal.signal, sa.func.sum(UsageSignal.count), sa.func.count())
        .where(
            UsageSignal.signal.in_(names),
            UsageSignal.day > as_of - dt.timedelta(days=days),
            UsageSignal.day <= as_of,
        )
        .group_by(UsageSignal.account_id, UsageSignal.signal),
    )
    signal_of = np.array([r[1] for r in rows], dtype=object)
    account, total, seen = float_columns([(r[0], r[2], r[3]) for r in rows], 3)
    account = account.astype(np.int64)
    windows: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
    for signal in names:
        sel = signal_of == signal
        windows[(signal, days)] = (
            scatter(ids, account[sel], total[sel], fill=0.0),
            scatter(ids, account[sel], seen[sel], fill=0.0),
        )
    return windows


def _ever_seen(
    conn: sa.Connection,
    columns: tuple[Any, Any, Any],
    *,
    as_of: dt.date,
    ids: np.ndarray,
    keys: frozenset[str],
) -> dict[str, np.ndarray]:
    """Per key, which accounts have a row with it on or before ``as_of``; ``columns``: the table's
    (account, key, day) columns. Signals ever seen and milestone rules that ever fired (overdue
    rules waiting for one) are both this."""
    account, key, day = columns
    rows = fetch_rows(conn, sa.select(account, key).where(key.in_(sorted(keys)), day <= as_of).group_by(account, key))
    ever: dict[str, np.ndarray] = {}
    for wanted in keys:
        found = np.array([r[0] for r in rows if r[1] == wanted], dtype=np.int64)
        ever[wanted] = np.isin(ids, found)
    return ever


_SIGNALS = (UsageSignal.account_id, UsageSignal.signal, UsageSignal.day)
_MILESTONES = (Event.account_id, Event.rule_id, Event.day)


def _contact_changes(
    conn: sa.Connection, *, as_of: dt.date, ids: np.ndarray, windows: frozenset[tuple[str, tuple[str, ...], int]]
) -> dict[tuple[str, tuple[str, ...], int], np.ndarray]:
    """Contacts added or removed within each (change, roles, days) window, in one pass."""
    longest = max(days for _, _, days in windows)
    keys = sorted(windows)
    counts: list[sa.ColumnElement[Any]] = []
    for change, roles, days in keys:
        column = Contact.added_on if change == "added" else Contact.removed_on
        inside = sa.and_(Contact.role.in_(roles), column > as_of - dt.timedelta(days=days), column <= as_of)
        counts.append(sa.func.sum(sa.case((inside, 1), else_=0)))
    since = as_of - dt.timedelta(days=longest)
    rows = fetch_rows(
        conn,
        sa.select(Contact.account_id, *counts)
        .where(
            sa.or_(
                sa.and_(Contact.added_on > since, Contact.added_on <= as_of),
                sa.and_(Contact.removed_on > since, Contact.removed_on <= as_of),
            )
        )
        .group_by(Contact.account_id),
    )
    numbers = float_columns(rows, 1 + len(keys))
    account = numbers[0].astype(np.int64)
    return {key: scatter(ids, account, numbers[1 + i], fill=0.0) for i, key in enumerate(keys)}


def store_events(
    session: Session,
    *,
    as_of: dt.date,
    version: int,
    model: ScoringModel,
    evaluation: RuleEvaluation,
    inputs: RuleInputs,
    ids: np.ndarray,
) -> tuple[np.ndarray, dict[str, int], list[tuple[Any, ...]]]:
    """Write this run's events; return the (r, n) fired matrix actually stored, counts by rule,
    and the rows written (``EVENT_COLUMNS`` order, trigger values as JSON text, in rule order),
    which the run's alerts compose their messages from instead of reading them back.

    An event already stored for the account, rule and day (a re-run after its state was lost)
    is not stored again, and does not count as fired.
    """
    fired = evaluation.fired.copy()
    existing = fetch_rows(
        session.connection(),
        sa.select(Event.account_id, Event.rule_id).where(Event.day == as_of),
    )
    if existing:
        stored_account = np.array([r[0] for r in existing], dtype=np.int64)
        stored_rule = np.array([r[1] for r in existing], dtype=object)
        for i, rule_id in enumerate(model.rule_ids):
            found = stored_account[stored_rule == rule_id]
            if found.size:
                fired[i] &= ~np.isin(ids, found)
    now = dt.datetime.now(dt.UTC)
    stage_names = [s.value for s in STAGES]
    rows: list[tuple[Any, ...]] = []
    by_rule: dict[str, int] = {}
    score = inputs.values["score"]
    for i, rule in enumerate(model.rules):
        positions = np.flatnonzero(fired[i])
        if not positions.size:
            continue
        by_rule[rule.id] = int(positions.size)
        details = trigger_values(rule, inputs, positions)
        scores = score[positions]
        for account_id, stage_code, s, detail in zip(
            ids[positions].tolist(), inputs.stage[positions].tolist(), scores.tolist(), details, strict=True
        ):
            rows.append(
                (
                    account_id,
                    rule.id,
                    rule.name,
                    rule.kind.value,
                    rule.severity.value,
                    stage_names[stage_code],
                    as_of,
                    version,
                    None if math.isnan(s) else round(s, 4),
                    _json_encode(detail),
                    now,
                )
            )
    if rows:
        bulk_insert(
            session,
            Event.__table__,  # type: ignore[arg-type]
            EVENT_COLUMNS,
            rows,
        )
    return fired, by_rule, rows
