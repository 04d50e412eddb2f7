"""The scoring run: measures by SQL, one vectorized scoring pass, history and latest scores written in bulk."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.bulk import bulk_insert
from app.models import HealthScore, LatestScore
from app.pipeline.alerts import AlertCounts, RunWrites, newest_event_id, queue_run_alerts
from app.pipeline.arrays import scatter
from app.pipeline.events import gather_inputs, previous_latest, store_events
from app.pipeline.measures import compute_measures
from app.pipeline.plays import load_plays, play_history, start_play_runs
from app.services.alerts.settings import AlertSettings
from app.services.analysis import churn_scores
from app.services.scoring_config.active import get_active_model
from playbooks.plays import PlayHistory, match_plays
from scoring.health import BANDS, NO_BAND, compute_health
from scoring.rules import evaluate_rules, rule_needs
from scoring.stage import STAGES, assign_stages

#: Steps reported to a progress callback, in order.
STEPS = ("measures", "score", "history", "events", "plays", "latest", "alerts")

ProgressCallback = Callable[[str], None]

_STAGE_NAMES = np.array([stage.value for stage in STAGES], dtype=object)
_BAND_NAMES = np.array([band.value for band in BANDS] + [None], dtype=object)  # NO_BAND (-1) -> None
_json_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


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


def run_scoring(
    session: Session,
    *,
    as_of: dt.date,
    progress: ProgressCallback | None = None,
    alert_settings: AlertSettings | None = None,
) -> ScoringRunSummary:
    """Score every account that is not churned as of ``as_of`` with the active config.

    Writes one history row per account for the day (replacing that day's rows, so a re-run
    never duplicates) and refreshes the latest score of accounts whose latest is not newer
    than ``as_of``. A fixed number of queries whatever the portfolio size. Never commits.

    The alerts for this run's events and play starts are queued in the same transaction (the
    outbox); ``alert_settings`` gives their links (defaults: a local run).
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def done(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = round(now - clock, 4)
        clock = now
        if progress is not None:
            progress(step)

    version, model = get_active_model(session)
    portfolio = compute_measures(
        session,
        as_of=as_of,
        first_value_signal=model.stage_rules.first_value_signal,
        usage_windows=rule_needs(model.rules).usage_windows,
    )
    done("measures")

    stage = assign_stages(
        as_of, portfolio.contract_start, portfolio.renewal_date, portfolio.first_value_on, model.stage_rules
    )
    raw = portfolio.matrix(model.measure_names)
    result = compute_health(raw, stage, model)
    ids = portfolio.account_id
    stage_names = _STAGE_NAMES[stage].tolist()
    band_names = _BAND_NAMES[result.band].tolist()
    scores = _nullable(np.round(result.score, 4))
    completeness = np.round(result.completeness, 6).tolist()
    values = np.round(raw, 6).T.astype(object)
    values[np.isnan(raw.T)] = None
    measure_json = list(map(_json_encode, values.tolist()))
    id_list = ids.tolist()
    done("score")

    session.execute(sa.delete(HealthScore).where(HealthScore.day == as_of))
    history_columns = (
        "account_id", "day", "config_version", "stage", "score", "band", "completeness", "measure_values",
    )  # fmt: skip
    history_values = (
        id_list, [as_of] * ids.size, [version] * ids.size, stage_names, scores, band_names, completeness, measure_json,
    )  # fmt: skip
    bulk_insert(session, HealthScore.__table__, history_columns, zip(*history_values, strict=True))  # type: ignore[arg-type]
    done("history")

    # Events: only for accounts whose latest score is not newer than this day (a backfill of an
    # older day writes history and nothing else), from the rule state stored with the latest score.
    after_event_id = newest_event_id(session)  # the run's alerts look up the ids of the events above it
    previous = previous_latest(session, ids, model)
    keep = ~(previous.day > np.datetime64(as_of, "D"))  # NaT (never scored) compares False: kept
    scores_on: dict[dt.date, np.ndarray] = {}

    def score_on(day: dt.date) -> np.ndarray:
        if day not in scores_on:
            scores_on[day] = _previous_scores(session, day, ids)
        return scores_on[day]

    inputs = gather_inputs(
        session,
        as_of=as_of,
        model=model,
        portfolio=portfolio,
        stage=stage,
        band=result.band,
        score=result.score,
        score_on=score_on,
    )
    evaluation = evaluate_rules(model.rules, inputs, previous.state)
    evaluation.fired[:, ~keep] = False
    fired, events_by_rule, event_rows = store_events(
        session, as_of=as_of, version=version, model=model, evaluation=evaluation, inputs=inputs, ids=ids
    )
    done("events")

    plays = [(p, v) for p, v in load_plays(session) if p.enabled]
    history = play_history(session, ids, [p for p, _ in plays], as_of) if plays else PlayHistory({}, {})
    matches = match_plays(
        tuple(p for p, _ in plays),
        model.rule_ids,
        fired=fired,
        band=result.band,
        stage=stage,
        history=history,
        eligible=keep,
    )
    play_counts = start_play_runs(
        session,
        as_of=as_of,
        matches=matches,
        versions={p.id: v for p, v in plays},
        rule_ids=model.rule_ids,
        ids=ids,
        owner=portfolio.owner,
        stage=stage,
        band=result.band,
        score=result.score,
    )
    done("plays")

    # Latest: drop the rows this run supersedes (and those of accounts no longer scored), keep
    # newer ones, and bulk-load this run's rows. (An INSERT ... SELECT from history joined to
    # itself was tried: on a history table without fresh statistics PostgreSQL planned it as a
    # nested loop and took minutes at 100k accounts. This path is linear whatever the plan.)
    session.execute(sa.delete(LatestScore).where(LatestScore.day <= as_of))
    change_7d = _nullable(np.round(result.score - score_on(as_of - dt.timedelta(days=7)), 4))
    change_30d = _nullable(np.round(result.score - score_on(as_of - dt.timedelta(days=30)), 4))
    # Churn probability and expected ARR at risk from the newest churn model (None without one).
    churn = churn_scores(session, model=model, measure_scores=result.measure_scores, stage=stage, arr=portfolio.arr)
    rows = zip(
        *history_values, change_7d, change_30d, evaluation.state.tolist(),
        churn.probability, churn.expected_arr_at_risk, churn.version, keep.tolist(), strict=True,
    )  # fmt: skip
    bulk_insert(
        session,
        LatestScore.__table__,  # type: ignore[arg-type]
        (*history_columns, "score_change_7d", "score_change_30d", "rule_state",
         "churn_probability", "expected_arr_at_risk", "churn_model_version"),
        (row[:-1] for row in rows if row[-1]),
    )  # fmt: skip
    done("latest")

    alert_counts = queue_run_alerts(
        session,
        as_of=as_of,
        now=dt.datetime.now(dt.UTC),
        settings=alert_settings or AlertSettings(),
        model=model,
        # What the run wrote and holds: the alerts step composes its messages from it.
        written=RunWrites(
            ids=ids,
            stage=stage_names,
            band=band_names,
            score=scores,
            change_7d=change_7d,
            contributions=result.contributions,
            events=event_rows,
            runs=play_counts.started,
            tasks=play_counts.task_rows,
        ),
        after_event_id=after_event_id,
        play_names={p.id: p.name for p, _ in plays},
    )
    done("alerts")

    band_counts = np.bincount(result.band[result.band != NO_BAND], minlength=len(BANDS))
    stage_counts = np.bincount(stage, minlength=len(STAGES))
    return ScoringRunSummary(
        as_of=as_of,
        config_version=version,
        accounts_scored=int(ids.size),
        accounts_without_score=int(np.count_nonzero(result.band == NO_BAND)),
        by_band={band.value: int(c) for band, c in zip(BANDS, band_counts, strict=True)},
        by_stage={s.value: int(c) for s, c in zip(STAGES, stage_counts, strict=True)},
        seconds=seconds,
        events=sum(events_by_rule.values()),
        events_by_rule=events_by_rule,
        play_runs=play_counts.runs,
        tasks=play_counts.tasks,
        play_runs_by_play=play_counts.by_play,
        accounts_backfilled=int(np.count_nonzero(~keep)),
        alerts=alert_counts,
    )
