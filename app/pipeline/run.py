"""The daily scoring run: a fixed sequence of steps over every account not churned as of the day.

Each step is a fixed number of set-based queries and numpy passes whatever the portfolio size,
and all of them share the caller's transaction (the run never commits):

1. ``measures``: the active config, and every raw measure by SQL (``app/pipeline/measures.py``);
2. ``score``: lifecycle stage, health score and band in one vectorized pass (``scoring.health``);
3. ``history``: one history row per account for the day, in bulk, replacing that day's rows;
4. ``events``: the event rules against each account's stored rule state, and the events that
   fired stored (``app/pipeline/events.py``);
5. ``plays``: the plays those events and bands match started, with their tasks (``app/pipeline/plays.py``);
6. ``latest``: the latest scores refreshed, with score changes and churn risk;
7. ``alerts``: this run's events and play starts routed and queued in the outbox (``app/pipeline/alerts.py``).

``PIPELINE`` pairs each step's name with its function; ``run_scoring`` walks it, timing each step,
and the steps hand one another what they computed in a ``_RunState``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.bulk import bulk_insert
from app.models import HealthScore, LatestScore, ScoreCalibration
from app.pipeline.alerts import AlertCounts, RunWrites, newest_event_id, queue_run_alerts
from app.pipeline.arrays import scatter
from app.pipeline.events import first_scored_day, gather_inputs, previous_latest, store_events
from app.pipeline.measures import PortfolioMeasures, compute_measures
from app.pipeline.plays import PlayRunCounts, TaskAssignees, load_plays, play_history, start_play_runs
from app.services.alerts.settings import AlertSettings
from app.services.churn_state import churn_run_measures, has_churn_model
from app.services.scoring_config.active import get_active_model
from playbooks.plays import Play, PlayHistory, match_plays
from scoring.churn import RunMeasures
from scoring.health import BANDS, NO_BAND, HealthResult, compute_health
from scoring.model import ScoringModel
from scoring.rules import RuleEvaluation, evaluate_rules, rule_needs
from scoring.stage import STAGES, assign_stages

ProgressCallback = Callable[[str], None]

_STAGE_NAMES = np.array([stage.value for stage in STAGES], dtype=object)
_BAND_NAMES = np.array([band.value for band in BANDS] + [None], dtype=object)  # NO_BAND (-1) -> None


@dataclass(frozen=True, slots=True)
class ScoringRunSummary:
    as_of: dt.date
    config_version: int
    accounts_scored: int
    accounts_without_score: int
    by_band: dict[str, int]
    by_stage: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    events: int = 0
    events_by_rule: dict[str, int] = field(default_factory=dict)
    play_runs: int = 0
    tasks: int = 0
    play_runs_by_play: dict[str, int] = field(default_factory=dict)
    #: Accounts whose latest score is newer than this run's day: scored into history only, no events.
    accounts_backfilled: int = 0
    alerts: AlertCounts = field(default_factory=AlertCounts)

    def counts(self) -> dict[str, object]:
        return {
            "accounts_scored": self.accounts_scored,
            "accounts_without_score": self.accounts_without_score,
            "by_band": self.by_band,
            "by_stage": self.by_stage,
            "config_version": self.config_version,
            "events": self.events,
            "events_by_rule": self.events_by_rule,
            "play_runs": self.play_runs,
            "play_runs_by_play": self.play_runs_by_play,
            "tasks": self.tasks,
            "accounts_backfilled": self.accounts_backfilled,
            **self.alerts.counts(),
            "seconds": self.seconds,
        }

    def one_line(self) -> str:
        bands = ", ".join(f"{band} {count}" for band, count in self.by_band.items())
        return (
            f"Scored {self.accounts_scored} accounts as of {self.as_of.isoformat()} with config "
            f"v{self.config_version} ({bands}; {self.accounts_without_score} without data); "
            f"{self.events} events, {self.play_runs} play runs, {self.tasks} tasks, "
            f"{self.alerts.queued} alerts ({self.alerts.held} held for the digest) "
            f"in {sum(self.seconds.values()):.2f}s"
        )


def _nullable(values: np.ndarray) -> list[object]:
    """Float array to a list with None for NaN (what the drivers bind as NULL)."""
    out = values.astype(object)
    out[np.isnan(values)] = None
    return out.tolist()  # type: ignore[no-any-return]


def _previous_scores(session: Session, day: dt.date, ids: np.ndarray) -> np.ndarray:
    """Each account's score on ``day`` (NaN where none), aligned with ``ids`` (ascending)."""
    rows = (
        session.connection()
        .execute(sa.select(HealthScore.account_id, HealthScore.score).where(HealthScore.day == day))
        .all()
    )
    found = np.array([tuple(row) for row in rows], dtype=np.float64).reshape(len(rows), 2)
    return scatter(ids, found[:, 0].astype(np.int64), found[:, 1])


@dataclass(slots=True)
class _RunState:
    """What the steps of one run hand one another; each step sets its own fields and reads those
    of the steps before it."""

    session: Session
    as_of: dt.date
    alert_settings: AlertSettings | None
    #: The run's clock: the day it runs on. An earlier ``as_of`` is a back-fill (no alerts, tasks due from today).
    today: dt.date
    # measures
    version: int = field(init=False)
    model: ScoringModel = field(init=False)
    portfolio: PortfolioMeasures = field(init=False)
    churn_inputs: RunMeasures | None = field(init=False)  # the churn model's measures in this run
    # score: the result, and its columns as stored
    stage: np.ndarray = field(init=False)
    health: HealthResult = field(init=False)
    stage_names: list[str] = field(init=False)
    band_names: list[str | None] = field(init=False)
    scores: list[object] = field(init=False)
    completeness: list[float] = field(init=False)
    measure_json: list[str] = field(init=False)
    id_list: list[int] = field(init=False)
    # history: the rows' columns, ``_HISTORY_COLUMNS`` order (the latest rows start with them)
    history_values: tuple[list[Any], ...] = field(init=False)
    churn_values: list[str | None] = field(init=False)  # the churn model's inputs (JSON), latest rows only
    # events
    after_event_id: int = field(init=False)
    keep: np.ndarray = field(init=False)  # accounts whose latest score is not newer than as_of
    first: np.ndarray = field(init=False)  # accounts scored for the first time: record, do not fire
    previous_band: np.ndarray = field(init=False)  # each account's band on its previous scored day
    evaluation: RuleEvaluation = field(init=False)
    fired: np.ndarray = field(init=False)
    events_by_rule: dict[str, int] = field(init=False)
    event_rows: list[tuple[Any, ...]] = field(init=False)
    # plays
    plays: list[tuple[Play, int]] = field(init=False)  # the enabled plays with their versions
    play_counts: PlayRunCounts = field(init=False)
    # latest
    change_7d: list[object] = field(init=False)
    # alerts
    alert_counts: AlertCounts = field(init=False)
    #: Older days' scores, read once each (events and latest both compare with them).
    scores_on: dict[dt.date, np.ndarray] = field(default_factory=dict)

    @property
    def ids(self) -> np.ndarray:
        return self.portfolio.account_id

    def score_on(self, day: dt.date) -> np.ndarray:
        """Each account's score on ``day`` (NaN where none)."""
        if day not in self.scores_on:
            self.scores_on[day] = _previous_scores(self.session, day, self.ids)
        return self.scores_on[day]


_HISTORY_COLUMNS = (
    "account_id", "day", "config_version", "stage", "score", "band", "completeness", "measure_values",
    "churn_probability", "expected_arr_at_risk", "churn_model_version",
)  # fmt: skip
_LATEST_COLUMNS = (*_HISTORY_COLUMNS, "score_change_7d", "score_change_30d", "rule_state", "churn_values")


def _measure(run: _RunState) -> None:
    """The config's measures, and the churn model's own (renamed, unweighted) in the same pass."""
    run.version, run.model = get_active_model(run.session)
    run.churn_inputs = churn_run_measures(run.session, run.model.measures)
    extra = () if run.churn_inputs is None else run.churn_inputs.measures
    run.portfolio = compute_measures(
        run.session,
        as_of=run.as_of,
        model=run.model.with_unweighted(extra),
        usage_windows=rule_needs(run.model.rules).usage_windows,
    )


def _score(run: _RunState) -> None:
    portfolio, model = run.portfolio, run.model
    run.stage = assign_stages(
        run.as_of,
        portfolio.contract_start,
        portfolio.renewal_date,
        portfolio.first_value_on,
        model.stage_rules,
        term=portfolio.term,
    )
    raw = portfolio.matrix(model.measure_names)
    result = run.health = compute_health(raw, run.stage, model)
    run.stage_names = _STAGE_NAMES[run.stage].tolist()
    run.band_names = _BAND_NAMES[result.band].tolist()
    run.scores = _nullable(np.round(result.score, 4))
    run.completeness = np.round(result.completeness, 6).tolist()
    run.measure_json = measure_json(raw)
    run.id_list = run.ids.tolist()


def measure_json(raw: np.ndarray) -> list[str]:
    """Each account's raw values (a column of the (m, n) ``raw``) as a JSON array, rounded to six
    decimals, ``null`` for no data. One orjson call for the whole matrix, split per row (a float
    array has no nested brackets): per-row encoding was most of the score step at 30 measures."""
    n = raw.shape[1]
    if n == 0:
        return []
    if raw.shape[0] == 0:
        return ["[]"] * n
    text = orjson.dumps(np.ascontiguousarray(np.round(raw.T, 6)), option=orjson.OPT_SERIALIZE_NUMPY).decode()
    return [f"[{row}]" for row in text[2:-2].split("],[")]


def _write_history(run: _RunState) -> None:
    """Replace the day's history rows with this run's (so a re-run never duplicates)."""
    run.session.execute(sa.delete(HealthScore).where(HealthScore.day == run.as_of))
    n = run.ids.size
    # Churn probability and expected ARR at risk from the newest churn model (None without one),
    # kept for every scored day so stored predictions can be judged against outcomes.
    churn = _churn_columns(run)
    run.history_values = (
        run.id_list, [run.as_of] * n, [run.version] * n, run.stage_names, run.scores, run.band_names,
        run.completeness, run.measure_json, *churn,
    )  # fmt: skip
    bulk_insert(run.session, HealthScore.__table__, _HISTORY_COLUMNS, zip(*run.history_values, strict=True))  # type: ignore[arg-type]
    _write_calibration(run)


def _churn_columns(run: _RunState) -> tuple[list[Any], list[Any], list[Any]]:
    """Probability, expected ARR at risk and model version per account: all None without a churn
    model; with one, the learning service applies it (imported here, on demand: it brings
    scikit-learn and scipy, two seconds of start-up the run does not pay without a model)."""
    if has_churn_model(run.session) is not True:  # none, or only one of an older format
        none: list[Any] = [None] * run.ids.size
        run.churn_values = none
        return none, none, none
    from app.services.analysis import churn_scores

    names = None if run.churn_inputs is None else run.churn_inputs.names
    churn = churn_scores(run.session, portfolio=run.portfolio, stage=run.stage, names=names)
    values: list[str | None] = [None] * run.ids.size
    if churn.values is not None:
        values = list(measure_json(churn.values.T))
    run.churn_values = values
    return churn.probability, churn.expected_arr_at_risk, churn.version


def _write_calibration(run: _RunState) -> None:
    """The day's percentile points and band cut-offs, for a config that depends on the portfolio."""
    calibration = run.model.calibration(run.health.model)
    run.session.execute(
        sa.delete(ScoreCalibration).where(
            ScoreCalibration.day == run.as_of, ScoreCalibration.config_version == run.version
        )
    )
    if calibration is not None:
        run.session.add(ScoreCalibration(day=run.as_of, config_version=run.version, calibration=calibration))
        run.session.flush()


def _fire_events(run: _RunState) -> None:
    """Events only for accounts whose latest score is not newer than this day (a backfill of an
    older day writes history and nothing else), from the rule state stored with the latest score.
    An account's first scored day (no latest score yet) records the rules' state and fires only
    the rules that opt in (``fire_on_first_day``)."""
    session, model = run.session, run.model
    run.after_event_id = newest_event_id(session)  # the run's alerts look up the ids of the events above it
    previous = previous_latest(session, run.ids, model)
    run.keep = ~(previous.day > np.datetime64(run.as_of, "D"))  # NaT (never scored) compares False: kept
    run.first = first_scored_day(previous.day, run.as_of, run.score_on)
    run.previous_band = previous.band
    inputs = gather_inputs(
        session,
        as_of=run.as_of,
        model=model,
        portfolio=run.portfolio,
        stage=run.stage,
        band=run.health.band,
        score=run.health.score,
        score_on=run.score_on,
    )
    evaluation = run.evaluation = evaluate_rules(model.rules, inputs, previous.state, first=run.first)
    evaluation.fired[:, ~run.keep] = False
    run.fired, run.events_by_rule, run.event_rows = store_events(
        session, as_of=run.as_of, version=run.version, model=model, evaluation=evaluation, inputs=inputs, ids=run.ids
    )


def _start_plays(run: _RunState) -> None:
    run.plays = plays = [(p, v) for p, v in load_plays(run.session) if p.enabled]
    history = play_history(run.session, run.ids, [p for p, _ in plays], run.as_of) if plays else PlayHistory({}, {})
    matches = match_plays(
        tuple(p for p, _ in plays),
        run.model.rule_ids,
        fired=run.fired,
        band=run.health.band,
        stage=run.stage,
        history=history,
        eligible=run.keep,
        first=run.first,
        previous_band=run.previous_band,
    )
    run.play_counts = start_play_runs(
        run.session,
        as_of=run.as_of,
        matches=matches,
        versions={p.id: v for p, v in plays},
        rule_ids=run.model.rule_ids,
        ids=run.ids,
        owner=run.portfolio.owner,
        stage=run.stage,
        band=run.health.band,
        score=run.health.score,
        today=run.today,
        assignees=TaskAssignees.load(run.session) if matches else None,
    )


def _write_latest(run: _RunState) -> None:
    """Drop the latest rows this run supersedes (and those of accounts no longer scored), keep
    newer ones, and bulk-load this run's rows. (An INSERT ... SELECT from history joined to
    itself was tried: on a history table without fresh statistics PostgreSQL planned it as a
    nested loop and took minutes at 100k accounts. This path is linear whatever the plan.)"""
    session, as_of, result = run.session, run.as_of, run.health
    session.execute(sa.delete(LatestScore).where(LatestScore.day <= as_of))
    run.change_7d = _nullable(np.round(result.score - run.score_on(as_of - dt.timedelta(days=7)), 4))
    change_30d = _nullable(np.round(result.score - run.score_on(as_of - dt.timedelta(days=30)), 4))
    rows = zip(
        *run.history_values, run.change_7d, change_30d, run.evaluation.state.tolist(), run.churn_values,
        run.keep.tolist(), strict=True,
    )  # fmt: skip
    bulk_insert(session, LatestScore.__table__, _LATEST_COLUMNS, (row[:-1] for row in rows if row[-1]))  # type: ignore[arg-type]


def _queue_alerts(run: _RunState) -> None:
    run.alert_counts = queue_run_alerts(
        run.session,
        as_of=run.as_of,
        now=dt.datetime.now(dt.UTC),
        settings=run.alert_settings or AlertSettings(),
        model=run.model,
        # What the run wrote and holds: the alerts step composes its messages from it.
        written=RunWrites(
            ids=run.ids,
            stage=run.stage_names,
            band=run.band_names,
            score=run.scores,
            change_7d=run.change_7d,
            contributions=run.health.contributions,
            events=run.event_rows,
            runs=run.play_counts.started,
            tasks=run.play_counts.task_rows,
        ),
        after_event_id=run.after_event_id,
        play_names={p.id: p.name for p, _ in run.plays},
        today=run.today,
    )


#: The run's steps in order, each with its function.
PIPELINE: tuple[tuple[str, Callable[[_RunState], None]], ...] = (
    ("measures", _measure),
    ("score", _score),
    ("history", _write_history),
    ("events", _fire_events),
    ("plays", _start_plays),
    ("latest", _write_latest),
    ("alerts", _queue_alerts),
)
#: Steps reported to a progress callback, in order.
STEPS = tuple(name for name, _ in PIPELINE)


def run_scoring(
    session: Session,
    *,
    as_of: dt.date,
    progress: ProgressCallback | None = None,
    alert_settings: AlertSettings | None = None,
    today: dt.date | None = None,
) -> ScoringRunSummary:
    """Score every account that is not churned as of ``as_of`` with the active config.

    Writes one history row per account for the day (replacing that day's rows, so a re-run
    never duplicates) and refreshes the latest score of accounts whose latest is not newer
    than ``as_of``. A fixed number of queries whatever the portfolio size. Never commits.

    The alerts for this run's events and play starts are queued in the same transaction (the
    outbox); ``alert_settings`` gives their links (defaults: a local run). ``today`` is the run's
    clock (default: ``as_of``): scoring an earlier day is a back-fill, which queues no alerts and
    dates its tasks from today.
    """
    run = _RunState(session, as_of, alert_settings, today or as_of)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    for name, step in PIPELINE:
        step(run)
        now = time.perf_counter()
        seconds[name] = round(now - clock, 4)
        clock = now
        if progress is not None:
            progress(name)
    return _summary(run, seconds)


def _summary(run: _RunState, seconds: dict[str, float]) -> ScoringRunSummary:
    band, stage, ids = run.health.band, run.stage, run.ids
    band_counts = np.bincount(band[band != NO_BAND], minlength=len(BANDS))
    stage_counts = np.bincount(stage, minlength=len(STAGES))
    return ScoringRunSummary(
        as_of=run.as_of,
        config_version=run.version,
        accounts_scored=int(ids.size),
        accounts_without_score=int(np.count_nonzero(band == NO_BAND)),
        by_band={b.value: int(c) for b, c in zip(BANDS, band_counts, strict=True)},
        by_stage={s.value: int(c) for s, c in zip(STAGES, stage_counts, strict=True)},
        seconds=seconds,
        events=sum(run.events_by_rule.values()),
        events_by_rule=run.events_by_rule,
        play_runs=run.play_counts.runs,
        tasks=run.play_counts.tasks,
        play_runs_by_play=run.play_counts.by_play,
        accounts_backfilled=int(np.count_nonzero(~run.keep)),
        alerts=run.alert_counts,
    )
