"""The job registry: unique kebab-case ids, module-level functions, valid triggers, safe options."""

from __future__ import annotations

import datetime as dt
import importlib
import re

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from app.services.jobs.registry import find_job, job_specs
from app.services.jobs.scheduler import HEARTBEAT_JOB_ID, SchedulerProcess
from config import ConfigError, TestConfig, config_from_env

pytestmark = pytest.mark.unit

CONFIG = TestConfig().as_flask_mapping()


def test_job_ids_are_unique_and_kebab_case() -> None:
    ids = [spec.id for spec in job_specs(CONFIG)]
    assert len(ids) == len(set(ids)) and HEARTBEAT_JOB_ID not in ids
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", job_id) for job_id in ids)


def test_job_functions_are_importable_module_level_functions() -> None:
    for spec in job_specs(CONFIG):
        module = importlib.import_module(spec.work.__module__)
        assert getattr(module, spec.work.__qualname__) is spec.work


def test_every_job_coalesces_runs_alone_and_has_a_misfire_grace_time() -> None:
    for spec in job_specs(CONFIG):
        assert spec.options == {"coalesce": True, "max_instances": 1}
        assert spec.misfire_grace_time > 0


def test_daily_scoring_runs_at_the_configured_utc_time() -> None:
    spec = find_job({**CONFIG, "SCORE_DAILY_AT": "03:15"}, "score-daily")
    assert isinstance(spec.trigger, CronTrigger)
    now = dt.datetime(2026, 6, 30, 4, 0, tzinfo=dt.UTC)
    assert spec.trigger.get_next_fire_time(None, now) == dt.datetime(2026, 7, 1, 3, 15, tzinfo=dt.UTC)


def test_interval_scoring_when_configured() -> None:
    spec = find_job({**CONFIG, "SCORE_INTERVAL_SECONDS": 90}, "score-daily")
    assert isinstance(spec.trigger, IntervalTrigger) and spec.trigger.interval == dt.timedelta(seconds=90)


def test_unknown_job_names_the_known_ones() -> None:
    with pytest.raises(
        KeyError,
        match="No job 'nope'; jobs: alerts-digest, alerts-dispatch, job-requests, score-daily, train-churn-model",
    ):
        find_job(CONFIG, "nope")


def test_alert_dispatch_runs_every_few_seconds_on_every_scheduler_process() -> None:
    spec = find_job({**CONFIG, "ALERT_DISPATCH_SECONDS": 3}, "alerts-dispatch")
    assert isinstance(spec.trigger, IntervalTrigger) and spec.trigger.interval == dt.timedelta(seconds=3)
    # Dispatchers share the outbox (SKIP LOCKED), so every process runs one, and a job every few
    # seconds would flood job_runs: it logs instead.
    assert not spec.leader_only and not spec.recorded
    digest = find_job(CONFIG, "alerts-digest")
    assert digest.leader_only and not digest.recorded


def test_job_requests_run_every_few_seconds_on_every_scheduler_process_unrecorded() -> None:
    spec = find_job(CONFIG, "job-requests")
    assert isinstance(spec.trigger, IntervalTrigger) and spec.trigger.interval == dt.timedelta(seconds=5)
    # Workers share the queue (SKIP LOCKED claims), so every process runs one; the rescores and
    # trainings it runs record their own job runs, the polling itself only logs.
    assert not spec.leader_only and not spec.recorded
    assert spec.misfire_grace_time == 5


def test_the_built_scheduler_holds_the_heartbeat_and_every_job() -> None:
    from flask import Flask

    app = Flask("registry-test")
    app.config.from_mapping(CONFIG)
    scheduler = SchedulerProcess(app).build()
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {HEARTBEAT_JOB_ID, *(spec.id for spec in job_specs(CONFIG))}
    for job in jobs.values():
        assert job.coalesce and job.max_instances == 1 and job.misfire_grace_time


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"HS_SCORE_DAILY_AT": "25:00"}, "SCORE_DAILY_AT must be a time HH:MM"),
        ({"HS_SCORE_DAILY_AT": "2am"}, "SCORE_DAILY_AT must be a time HH:MM"),
        ({"HS_SCHEDULER_HEARTBEAT_SECONDS": "60"}, "SCHEDULER_HEARTBEAT_SECONDS must be positive and shorter"),
        ({"HS_SCORE_INTERVAL_SECONDS": "-1"}, "SCORE_INTERVAL_SECONDS must not be negative"),
    ],
)
def test_bad_scheduler_settings_are_refused(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        config_from_env(env)


def test_churn_model_retrains_monthly_by_default_and_on_the_configured_crontab() -> None:
    spec = find_job(CONFIG, "train-churn-model")
    now = dt.datetime(2026, 6, 30, 4, 0, tzinfo=dt.UTC)
    assert spec.trigger.get_next_fire_time(None, now) == dt.datetime(2026, 7, 1, 3, 0, tzinfo=dt.UTC)
    assert spec.params == {"horizon_days": 90, "periodic_months": 12}
    weekly = find_job({**CONFIG, "CHURN_MODEL_RETRAIN_CRON": "30 1 * * mon"}, "train-churn-model")
    assert weekly.trigger.get_next_fire_time(None, now) == dt.datetime(2026, 7, 6, 1, 30, tzinfo=dt.UTC)
    with pytest.raises(ConfigError, match="CHURN_MODEL_RETRAIN_CRON must be a crontab line"):
        config_from_env({"HS_ENV": "test", "HS_CHURN_MODEL_RETRAIN_CRON": "monthly"})
