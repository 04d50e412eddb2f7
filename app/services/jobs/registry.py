"""Scheduled jobs: the one registry, what each job does, and how a job runs.

Nothing else adds jobs. ``job_specs`` lists them all, family by family (scoring, learning,
sources, alerts, job requests); the scheduler process that runs them is ``scheduler.py``, and
``flask jobs run`` runs one now through ``run_job``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy.orm import Session

from app.db import learning_cache_dir, session_factory, utcnow
from app.demo.feed import write_demo_feed
from app.models import JobRequestStatus
from app.pipeline.run import ScoringRunSummary, run_scoring
from app.services.alerts.digest import queue_digests
from app.services.alerts.dispatch import DispatchCounts, Dispatcher
from app.services.alerts.settings import AlertSettings
from app.services.churn_state import TRAIN_JOB
from app.services.ingest.pull import PullSummary, pull_source
from app.services.jobs.requests import JobRequestWorker, WorkOutcome, lock_scoring_runs
from app.services.jobs.runs import run_recorded
from app.sources.base import Source
from app.sources.config import load_sources

if TYPE_CHECKING:
    from app.services.analysis import TrainSummary

logger = logging.getLogger(__name__)

JOB_REQUESTS_JOB_ID = "job-requests"
#: How often each scheduler process looks for queued job requests.
JOB_REQUESTS_SECONDS = 5


def process_identity() -> str:
    """This process's name in leases and claims: its host, its pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def score_today(
    session: Session, now: dt.datetime, *, alert_settings: AlertSettings | None = None
) -> ScoringRunSummary:
    """The daily scoring run: every active account as of today (UTC), after any scoring run in
    progress (a rescore a job request runs, ``flask score run``) has committed."""
    lock_scoring_runs(session)
    return run_scoring(session, as_of=now.date(), alert_settings=alert_settings, today=now.date())


class AlertDispatch:
    """This process's alert dispatcher, built on first use (it needs the app's session factory)
    and kept, so its SMTP connection and HTTP sessions last across passes."""

    def __init__(self, settings: AlertSettings, worker: str | None = None) -> None:
        self.settings = settings
        self.worker = worker or process_identity()
        self.dispatcher: Dispatcher | None = None

    def run(self) -> DispatchCounts:
        if self.dispatcher is None:
            self.dispatcher = Dispatcher(session_factory(), self.settings, worker=self.worker)
        return self.dispatcher.run_once()


def dispatch_alerts(session: Session, now: dt.datetime, *, dispatch: AlertDispatch) -> DispatchCounts:
    """One dispatcher pass: escalations due, then every due alert (it commits as it goes)."""
    del session, now  # the dispatcher claims and marks in transactions of its own
    counts = dispatch.run()
    if counts.claimed or counts.escalated:
        logger.info("alerts dispatched: %s", counts.counts(), extra={"job_id": "alerts-dispatch"})
    return counts


class RequestedJobs:
    """This process's job-request worker, built on first use (it needs the app's session factory)
    and kept. Every scheduler process runs one: workers claim requests with ``SKIP LOCKED``, so
    each request runs once, and a long one (minutes of suggestions) keeps only this job's thread
    busy, never the heartbeat that keeps the scheduler's lease."""

    def __init__(self, settings: AlertSettings, worker: str | None = None) -> None:
        self.settings = settings
        self.name = worker or process_identity()
        self.worker: JobRequestWorker | None = None

    def run(self) -> list[WorkOutcome]:
        if self.worker is None:
            self.worker = JobRequestWorker(
                session_factory(), alert_settings=self.settings, worker=self.name, cache_dir=learning_cache_dir()
            )
        # Starts no new request after a minute, so the next pass (and its log line) comes soon.
        return self.worker.run_due(max_seconds=60)


def run_job_requests(session: Session, now: dt.datetime, *, requests: RequestedJobs) -> dict[str, int]:
    """Run the due job requests (rescores, suggestions, trainings), each in transactions of its own."""
    del session, now  # the worker claims and records in transactions of its own
    outcomes = requests.run()
    counts = {
        "succeeded": sum(o.status is JobRequestStatus.SUCCEEDED for o in outcomes),
        "failed": sum(o.status is JobRequestStatus.FAILED for o in outcomes),
        "queued_again": sum(o.status is JobRequestStatus.QUEUED for o in outcomes),
        "left_to_lease": sum(o.status is None for o in outcomes),
    }
    if outcomes:
        logger.info("job requests run: %s", counts, extra={"job_id": JOB_REQUESTS_JOB_ID})
    return counts


def digests(session: Session, now: dt.datetime, *, alert_settings: AlertSettings) -> dict[str, int]:
    """Queue the daily digests that are due (at the routing's local time, once a day each)."""
    queued = queue_digests(session, now=now, settings=alert_settings)
    if queued:
        logger.info("queued %d digests", queued, extra={"job_id": "alerts-digest"})
    return {"digests": queued}


def train_churn(session: Session, now: dt.datetime, *, horizon_days: int, periodic_months: int) -> TrainSummary:
    """Retrain the churn model on the outcomes up to today (the scoring run uses the newest)."""
    from app.services.analysis import TrainSummary, train_churn_model  # scikit-learn, on demand

    result = train_churn_model(
        session, as_of=now.date(), actor="scheduler", horizon_days=horizon_days, periodic_months=periodic_months,
        cache_dir=learning_cache_dir(), today=now.date(),
    )  # fmt: skip
    return TrainSummary(result)


def demo_feed(session: Session, now: dt.datetime, *, inbox: str) -> dict[str, int]:
    """The demo's live feed: today's usage for every demo account, written to the inbox folder."""
    return {"records": write_demo_feed(session, inbox=Path(inbox), now=now)}


def pull(session: Session, now: dt.datetime, *, source: Source) -> PullSummary:
    """Pull one source: what changed since its last good pull; bad records to quarantine."""
    return pull_source(session, source, now=now)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduled job: what it does (``work(session, now)``), when, and how it is counted."""

    id: str
    description: str
    work: Callable[..., Any]  # work(session, now, **params)
    counts: Callable[[Any], dict[str, Any]]
    trigger: BaseTrigger
    misfire_grace_time: int
    params: dict[str, Any] = field(default_factory=dict)  # keyword arguments of ``work``
    run_at_start: bool = False  # also run once as the scheduler starts
    leader_only: bool = True  # False: every scheduler process runs it (alert dispatchers share work)
    recorded: bool = True  # False: not written to job_runs (jobs every few seconds; they log instead)
    options: dict[str, Any] = field(default_factory=lambda: {"coalesce": True, "max_instances": 1})


def job_specs(config: Mapping[str, Any]) -> tuple[JobSpec, ...]:
    """The registry of scheduled jobs, with triggers from the app's configuration: the daily
    scoring run, the churn model's retraining, one pull per source in the sources file
    (``SOURCES_FILE``), the demo's feed when configured, the alert jobs and the job-request worker."""
    alert_settings = AlertSettings.from_config(config)
    return (
        _daily_scoring(config, alert_settings),
        _churn_retraining(config),
        *_source_pulls(config),
        *_demo_feed(config),
        *_alert_jobs(config, alert_settings),
        _job_requests(alert_settings),
    )


def _daily_scoring(config: Mapping[str, Any], alert_settings: AlertSettings) -> JobSpec:
    interval = int(config["SCORE_INTERVAL_SECONDS"])
    hour, minute = (int(part) for part in str(config["SCORE_DAILY_AT"]).split(":"))
    trigger: BaseTrigger = (
        IntervalTrigger(seconds=interval, timezone=dt.UTC)
        if interval > 0
        else CronTrigger(hour=hour, minute=minute, timezone=dt.UTC)
    )
    return JobSpec(
        id="score-daily",
        description="Score every active account as of today",
        work=score_today,
        counts=ScoringRunSummary.counts,
        trigger=trigger,
        # A scheduler that was down at 02:00 still scores when it is back within 6 hours.
        misfire_grace_time=6 * 3600,
        params={"alert_settings": alert_settings},
    )


def _churn_retraining(config: Mapping[str, Any]) -> JobSpec:
    return JobSpec(
        id=TRAIN_JOB,
        description=f"Retrain the churn model ({config['CHURN_MODEL_RETRAIN_CRON']} UTC)",
        work=train_churn,
        counts=lambda summary: summary.counts(),  # a TrainSummary
        trigger=CronTrigger.from_crontab(str(config["CHURN_MODEL_RETRAIN_CRON"]), timezone=dt.UTC),
        misfire_grace_time=24 * 3600,  # monthly: a day late is still worth it
        params={
            "horizon_days": int(config["CHURN_MODEL_HORIZON_DAYS"]),
            "periodic_months": int(config["CHURN_MODEL_PERIODIC_MONTHS"]),
        },
    )


def _source_pulls(config: Mapping[str, Any]) -> tuple[JobSpec, ...]:
    return tuple(
        JobSpec(
            id=f"pull-{configured.source.name}",
            description=f"Pull {configured.source.name} every {configured.every_minutes} min",
            work=pull,
            counts=PullSummary.counts,
            trigger=IntervalTrigger(minutes=configured.every_minutes, timezone=dt.UTC),
            misfire_grace_time=configured.every_minutes * 60,
            params={"source": configured.source},
        )
        for configured in load_sources(config.get("SOURCES_FILE"))
    )


def _demo_feed(config: Mapping[str, Any]) -> tuple[JobSpec, ...]:
    """The demo's live feed, only when ``DEMO_FEED_INBOX`` is set."""
    if not config.get("DEMO_FEED_INBOX"):
        return ()
    minutes = int(config.get("DEMO_FEED_MINUTES", 1))
    return (
        JobSpec(
            id="demo-feed",
            description=f"Write today's demo usage to the inbox every {minutes} min",
            work=demo_feed,
            counts=dict,
            trigger=IntervalTrigger(minutes=minutes, timezone=dt.UTC),
            misfire_grace_time=minutes * 60,
            params={"inbox": str(config["DEMO_FEED_INBOX"])},
            run_at_start=True,  # data in the inbox before the first pull
        ),
    )


def _alert_jobs(config: Mapping[str, Any], alert_settings: AlertSettings) -> tuple[JobSpec, ...]:
    dispatch_seconds = int(config.get("ALERT_DISPATCH_SECONDS", 2))
    digest_minutes = int(config.get("ALERT_DIGEST_CHECK_MINUTES", 5))
    return (
        JobSpec(
            id="alerts-dispatch",
            description=f"Send due alerts every {dispatch_seconds} s (on every scheduler process)",
            work=dispatch_alerts,
            counts=DispatchCounts.counts,
            trigger=IntervalTrigger(seconds=dispatch_seconds, timezone=dt.UTC),
            misfire_grace_time=max(dispatch_seconds, 1),
            params={"dispatch": AlertDispatch(alert_settings)},
            leader_only=False,
            recorded=False,
        ),
        JobSpec(
            id="alerts-digest",
            description=f"Queue the daily digests that are due (checked every {digest_minutes} min)",
            work=digests,
            counts=dict,
            trigger=IntervalTrigger(minutes=digest_minutes, timezone=dt.UTC),
            misfire_grace_time=digest_minutes * 60,
            params={"alert_settings": alert_settings},
            recorded=False,
        ),
    )


def _job_requests(alert_settings: AlertSettings) -> JobSpec:
    return JobSpec(
        id=JOB_REQUESTS_JOB_ID,
        description=f"Run queued job requests every {JOB_REQUESTS_SECONDS} s (on every scheduler process)",
        work=run_job_requests,
        counts=dict,
        trigger=IntervalTrigger(seconds=JOB_REQUESTS_SECONDS, timezone=dt.UTC),
        misfire_grace_time=JOB_REQUESTS_SECONDS,
        params={"requests": RequestedJobs(alert_settings)},
        leader_only=False,  # workers share the queue (SKIP LOCKED claims)
        recorded=False,  # every few seconds: it logs; a rescore or a training records its own run
    )


def find_job(config: Mapping[str, Any], job_id: str) -> JobSpec:
    """The job named ``job_id``; ``KeyError`` naming the known ones otherwise."""
    specs = {spec.id: spec for spec in job_specs(config)}
    if job_id not in specs:
        raise KeyError(f"No job {job_id!r}; jobs: {', '.join(sorted(specs))}")
    return specs[job_id]


def run_job(app: Flask, spec: JobSpec, *, runner: str = "cli") -> Any:
    """Run one job now, recorded in ``job_runs`` (its own transaction); returns its result.
    A job that is not recorded runs in a transaction of its own and only logs a failure."""
    now = utcnow()
    if not spec.recorded:
        with app.app_context(), session_factory().begin() as session:
            return spec.work(session, now, **spec.params)
    with app.app_context():
        return run_recorded(
            session_factory(),
            spec.id,
            {"as_of": now.date().isoformat(), "runner": runner},
            lambda session: spec.work(session, now, **spec.params),
            spec.counts,
        )
