"""Running queued job requests in tests, as the scheduler's job-requests job does."""

from __future__ import annotations

from typing import Any

from flask import Flask

from app.db import learning_cache_dir, session_factory
from app.services.alerts.settings import AlertSettings
from app.services.jobs.requests import JobRequestWorker, WorkOutcome


def work_requests(app: Flask, **options: Any) -> list[WorkOutcome]:
    """Run every due job request of ``app``'s database with a worker of its own (``options`` go to
    ``JobRequestWorker``: a clock, a lease, executors)."""
    with app.app_context():
        options.setdefault("worker", "test-worker")
        options.setdefault("cache_dir", learning_cache_dir())
        worker = JobRequestWorker(session_factory(), alert_settings=AlertSettings.from_config(app.config), **options)
        return worker.run_due()
