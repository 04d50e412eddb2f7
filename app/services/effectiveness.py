"""Play effectiveness: how accounts that got a play fared against comparable accounts that did not.

The method (also in docs/play-effectiveness.md and the endpoint's docstring):

- **Treated**: every run of the play (optionally ``since <= started_on <= until``). Its *cell* is
  ``(started_on, stage, band)`` from the account's ``health_scores`` row of ``started_on``, or
  the run's own stage and band when that row is missing. Its baseline score is that row's score
  (else the run's score).
- **Score change** at 30 and 90 days: the account's score on exactly ``started_on + h`` minus the
  baseline. A run without both scores is *not measurable* (counted, never silently dropped).
- **Controls**: every account scored in the same cell (same day, stage and band) that had no run
  of this play within ``CONTROL_WINDOW_DAYS`` either side of the cell day (any run of the play,
  even outside since/until). Their change over the same horizons from the same day.
- **Direct standardisation**: the control mean of each cell is weighted by the number of measured
  treated runs in that cell, so both sides have the same mix of days, stages and bands. Treated
  runs in cells without any measured control cannot be compared; they are counted as
  ``unmatched`` and left out of the difference (not of the treated mean).
- **Renewal**: per treated run (per control observation), the first outcome of the account
  strictly after the cell day; renewed or expanded counts as renewed, churned or downgraded as
  not. The control rate is standardised the same way (weights: treated runs with an outcome).
  A rate is null, with a reason, when there is no outcome to compute it from.

Everything is read in two set-based queries (one row per run, one aggregate row per cell); the
weighting is done in numpy. Date arithmetic goes through :func:`add_days`, the one place that
knows PostgreSQL's ``date + integer`` from SQLite's ``date(x, '+N days')``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from app.errors import NotFound
from app.models import HealthScore, Outcome, OutcomeKind, PlayDefinition, PlayRun

HORIZONS = (30, 90)
CONTROL_WINDOW_DAYS = 90
RENEWED_KINDS = (OutcomeKind.RENEWED, OutcomeKind.EXPANDED)


def add_days(day: sa.ColumnElement[Any] | InstrumentedAttribute[Any], days: int, dialect: str) -> sa.ColumnElement[Any]:
    """``day`` shifted by ``days`` (may be negative), as an SQL expression for ``dialect``.

    PostgreSQL: ``date + integer`` is a date. SQLite stores dates as ISO text, and
    ``date(x, '+N days')`` returns ISO text, so it compares equal to stored days.
    """
    days = int(days)
    if dialect == "sqlite":
        return sa.func.date(day, f"{days:+d} days", type_=sa.Date)
    # The integer is rendered inline (it is ours, not user input) so the driver cannot send it
    # as a type PostgreSQL has no ``date + x`` operator for.
    return sa.type_coerce(day + sa.literal_column(str(days), sa.Integer), sa.Date)


@dataclass(frozen=True, slots=True)
class Comparison:
    """Treated values (NaN: not measurable) against per-cell control sums and counts."""

    n: int  # measured treated units
    mean: float | None  # over every measured treated unit
    not_measured: int
    unmatched: int  # measured treated units in cells without a measured control
    control_n: int  # control observations in the matched cells
    control_mean: float | None  # standardised to the treated mix of matched cells
    control_crude: float | None  # plain mean over the same control observations
    matched_cells: int
    difference: float | None  # treated mean over matched cells minus control_mean


def compare(cell: np.ndarray, value: np.ndarray, control_n: np.ndarray, control_sum: np.ndarray) -> Comparison:
    """Directly standardised comparison.

    ``cell`` (int64) and ``value`` (float64, NaN: not measured) are one entry per treated unit;
    ``control_n`` and ``control_sum`` one entry per cell. Each cell's control mean is weighted by
    the measured treated units in the cell; cells without a measured control are left out of the
    difference on both sides.
    """
    measured = ~np.isnan(value)
    n = int(measured.sum())
    weight = np.bincount(cell[measured], minlength=control_n.size).astype(np.float64)
    has_control = control_n > 0
    matched_cell = (weight > 0) & has_control
    matched = measured & has_control[cell]
    w = weight[matched_cell]
    control_mean: float | None = None
    control_crude: float | None = None
    difference: float | None = None
    if w.sum() > 0:
        cell_mean = control_sum[matched_cell] / control_n[matched_cell]
        control_mean = float(np.dot(w, cell_mean) / w.sum())
        control_crude = float(control_sum[matched_cell].sum() / control_n[matched_cell].sum())
        difference = float(value[matched].mean()) - control_mean
    return Comparison(
        n=n,
        mean=float(value[measured].mean()) if n else None,
        not_measured=int(value.size - n),
        unmatched=int(n - matched.sum()),
        control_n=int(control_n[matched_cell].sum()),
        control_mean=control_mean,
        control_crude=control_crude,
        matched_cells=int(matched_cell.sum()),
        difference=difference,
    )


def _first_outcome_kind(account_id: Any, after: Any) -> sa.ScalarSelect[Any]:
    """The kind of the account's first outcome strictly after ``after`` (correlated)."""
    return (
        sa.select(Outcome.kind)
        .where(Outcome.account_id == account_id, Outcome.day > after)
        .order_by(Outcome.day, Outcome.id)
        .limit(1)
        .scalar_subquery()
    )


def _runs_cte(play_id: str, since: dt.date | None, until: dt.date | None, dialect: str) -> sa.CTE:
    """One row per treated run: its cell, baseline and later scores, first outcome after it."""
    hs0 = aliased(HealthScore, name="hs0")
    no_row = hs0.account_id.is_(None)
    columns: list[Any] = [
        PlayRun.id.label("run_id"),
        PlayRun.account_id.label("account_id"),
        PlayRun.started_on.label("day"),
        sa.case((no_row, PlayRun.stage), else_=hs0.stage).label("stage"),
        sa.case((no_row, PlayRun.band), else_=hs0.band).label("band"),
        sa.case((no_row, PlayRun.score), else_=hs0.score).label("base_score"),
        no_row.label("fallback"),
    ]
    query = sa.select(*columns).outerjoin(
        hs0, sa.and_(hs0.account_id == PlayRun.account_id, hs0.day == PlayRun.started_on)
    )
    for days in HORIZONS:
        later = aliased(HealthScore, name=f"hs{days}")
        query = query.outerjoin(
            later,
            sa.and_(later.account_id == PlayRun.account_id, later.day == add_days(PlayRun.started_on, days, dialect)),
        ).add_columns(later.score.label(f"score_{days}"))
    query = query.add_columns(_first_outcome_kind(PlayRun.account_id, PlayRun.started_on).label("outcome"))
    query = query.where(PlayRun.play_id == play_id)
    if since is not None:
        query = query.where(PlayRun.started_on >= since)
    if until is not None:
        query = query.where(PlayRun.started_on <= until)
    return query.cte("treated_runs")


def _control_cells(play_id: str, runs: sa.CTE, dialect: str) -> sa.Select[Any]:
    """One aggregate row per cell of ``runs``: control counts and sums per horizon and outcome."""
    cells = sa.select(runs.c.day, runs.c.stage, runs.c.band).distinct().cte("cells")
    c0 = aliased(HealthScore, name="c0")
    other = aliased(PlayRun, name="other_run")
    got_play = (
        sa.select(sa.literal(1))
        .where(
            other.play_id == play_id,
            other.account_id == c0.account_id,
            other.started_on >= add_days(cells.c.day, -CONTROL_WINDOW_DAYS, dialect),
            other.started_on <= add_days(cells.c.day, CONTROL_WINDOW_DAYS, dialect),
        )
        .exists()
    )
    observation = sa.select(
        cells.c.day, cells.c.stage, cells.c.band, _first_outcome_kind(c0.account_id, cells.c.day).label("outcome")
    ).join(
        c0,
        sa.and_(c0.day == cells.c.day, c0.stage == cells.c.stage, c0.band.is_not_distinct_from(cells.c.band)),
    )
    for days in HORIZONS:
        later = aliased(HealthScore, name=f"c{days}")
        observation = observation.outerjoin(
            later, sa.and_(later.account_id == c0.account_id, later.day == add_days(cells.c.day, days, dialect))
        ).add_columns((later.score - c0.score).label(f"change_{days}"))
    obs = observation.where(~got_play).subquery("controls")
    aggregates: list[Any] = []
    for days in HORIZONS:
        change = obs.c[f"change_{days}"]
        aggregates += [sa.func.count(change).label(f"n_{days}"), sa.func.sum(change).label(f"sum_{days}")]
    renewed = sa.case((obs.c.outcome.in_(RENEWED_KINDS), 1), else_=0)
    aggregates += [sa.func.count(obs.c.outcome).label("n_outcomes"), sa.func.sum(renewed).label("renewed")]
    return sa.select(obs.c.day, obs.c.stage, obs.c.band, *aggregates).group_by(obs.c.day, obs.c.stage, obs.c.band)


def _cell_key(day: Any, stage: Any, band: Any) -> tuple[str, str, str]:
    # Dates may come back as date objects or ISO strings; enums as members or their values.
    return (str(day), str(getattr(stage, "value", stage)), str(getattr(band, "value", band)))


def _rate_block(n_outcomes: int, renewed: int, rate: float | None) -> dict[str, Any]:
    return {"n_outcomes": n_outcomes, "renewed": renewed, "rate": rate}


@dataclass(frozen=True, slots=True)
class _Cells:
    """Both sides' cells as shared int64 codes: each treated run's cell, and the control aggregates."""

    run_cell: np.ndarray  # per treated run
    count: int
    rows: list[Any]  # one control aggregate row per cell that has controls
    positions: np.ndarray  # the cell of each of ``rows``

    @classmethod
    def of(cls, run_rows: list[Any], cell_rows: list[Any]) -> _Cells:
        index: dict[tuple[str, str, str], int] = {}
        for row in cell_rows:
            index.setdefault(_cell_key(row.day, row.stage, row.band), len(index))
        for row in run_rows:
            index.setdefault(_cell_key(row.day, row.stage, row.band), len(index))
        run_cell = np.fromiter(
            (index[_cell_key(r.day, r.stage, r.band)] for r in run_rows), dtype=np.int64, count=len(run_rows)
        )
        positions = np.fromiter(
            (index[_cell_key(r.day, r.stage, r.band)] for r in cell_rows), dtype=np.int64, count=len(cell_rows)
        )
        return cls(run_cell, len(index), cell_rows, positions)

    def per_cell(self, name: str) -> np.ndarray:
        """The control aggregate ``name`` per cell (0 for cells without controls)."""
        out = np.zeros(self.count, dtype=np.float64)
        out[self.positions] = np.array([float(getattr(r, name) or 0) for r in self.rows], dtype=np.float64)
        return out


def _treated_values(run_rows: list[Any], get: Callable[[Any], float]) -> np.ndarray:
    """One value per treated run (NaN where it has none)."""
    return np.array([get(r) for r in run_rows], dtype=np.float64).reshape(len(run_rows))


def play_effectiveness(
    session: Session, play_id: str, *, since: dt.date | None = None, until: dt.date | None = None
) -> dict[str, Any]:
    """The effectiveness report of one play (see the module docstring for the method).

    Raises ``NotFound`` for an unknown play id.
    """
    play = session.get(PlayDefinition, play_id)
    if play is None:
        raise NotFound(f"Play {play_id!r} does not exist.")
    dialect = session.get_bind().dialect.name
    runs = _runs_cte(play_id, since, until, dialect)
    run_rows = list(session.execute(sa.select(runs).order_by(runs.c.run_id)).all())
    cell_rows = list(session.execute(_control_cells(play_id, runs, dialect)).all()) if run_rows else []
    cells = _Cells.of(run_rows, cell_rows)
    notes = _method_notes(run_rows)
    horizons = [_horizon_report(days, cells, run_rows, notes) for days in HORIZONS]
    renewal = _renewal_report(cells, run_rows, notes)
    return {
        "play": {"id": play.id, "name": play.definition.get("name", play.id)},
        "since": since,
        "until": until,
        "runs": len(run_rows),
        "control_window_days": CONTROL_WINDOW_DAYS,
        "horizons": horizons,
        "renewal": renewal,
        "notes": notes,
    }


def _method_notes(run_rows: list[Any]) -> list[str]:
    """The notes every report starts with: how controls are chosen, and what the runs lack."""
    notes: list[str] = [
        f"Controls: accounts scored in the same (day, stage, band) cell with no run of this play within "
        f"{CONTROL_WINDOW_DAYS} days either side; control means are weighted by the treated runs per cell "
        "(direct standardisation).",
    ]
    if not run_rows:
        notes.append("The play has no runs in the period: nothing to compare.")
    fallback = sum(1 for r in run_rows if r.fallback)
    if fallback:
        notes.append(
            f"{fallback} run(s) had no health score on their start day; their stage, band and baseline "
            "come from the run itself."
        )
    return notes


def _horizon_report(days: int, cells: _Cells, run_rows: list[Any], notes: list[str]) -> dict[str, Any]:
    """Score change ``days`` after the runs against the controls'; what cannot be measured goes to ``notes``."""

    def change(r: Any) -> float:
        later = getattr(r, f"score_{days}")
        return np.nan if later is None or r.base_score is None else float(later) - float(r.base_score)

    result = compare(
        cells.run_cell, _treated_values(run_rows, change), cells.per_cell(f"n_{days}"), cells.per_cell(f"sum_{days}")
    )
    reason = None
    if result.n == 0:
        reason = f"No treated run has a score {days} days after its start yet." if run_rows else "No runs."
    elif result.difference is None:
        reason = "No comparable control account has a score change over this horizon."
    if result.not_measured:
        notes.append(f"{result.not_measured} run(s) are not yet measurable at {days} days (no score on that day).")
    if result.unmatched:
        notes.append(
            f"{result.unmatched} measured run(s) at {days} days have no control in their cell and are "
            "left out of the difference."
        )
    return {
        "days": days,
        "treated": {
            "n": result.n,
            "mean_change": result.mean,
            "not_measurable": result.not_measured,
            "unmatched": result.unmatched,
        },
        "control": {"n": result.control_n, "mean_change": result.control_mean, "cells": result.matched_cells},
        "difference": result.difference,
        "reason": reason,
    }


def _renewal_report(cells: _Cells, run_rows: list[Any], notes: list[str]) -> dict[str, Any]:
    """Renewal rate after the runs against the controls'; unmatched runs go to ``notes``."""

    def renewed(r: Any) -> float:
        if r.outcome is None:
            return np.nan
        return 1.0 if OutcomeKind(getattr(r.outcome, "value", r.outcome)) in RENEWED_KINDS else 0.0

    cell = cells.run_cell
    outcome_values = _treated_values(run_rows, renewed)
    renewal = compare(cell, outcome_values, cells.per_cell("n_outcomes"), cells.per_cell("renewed"))
    treated_renewed = int(np.nansum(outcome_values))
    matched_cell = (np.bincount(cell[~np.isnan(outcome_values)], minlength=cells.count) > 0) & (
        cells.per_cell("n_outcomes") > 0
    )
    reason = None
    if renewal.n == 0:
        reason = "No treated account has an outcome after its run yet." if run_rows else "No runs."
    elif renewal.difference is None:
        reason = "No comparable control account has an outcome after the cell day."
    if renewal.unmatched:
        notes.append(
            f"{renewal.unmatched} treated run(s) with an outcome have no control outcome in their cell and are "
            "left out of the renewal difference."
        )
    control_renewed = int(cells.per_cell("renewed")[matched_cell].sum())
    return {
        "treated": {**_rate_block(renewal.n, treated_renewed, renewal.mean), "no_outcome": renewal.not_measured},
        "control": {
            **_rate_block(renewal.control_n, control_renewed, renewal.control_mean),
            "crude_rate": renewal.control_crude,
        },
        "difference": renewal.difference,
        "reason": reason,
    }
