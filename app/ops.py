"""Operational endpoints outside the API: ``/healthz`` (the process answers), ``/readyz`` (it can
serve: database, migrations, scheduler lease, outbox) and ``/metrics`` (Prometheus' text format,
from prometheus-client; for an admin API token or ``METRICS_TOKEN``). See docs/operations.md."""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, current_app, jsonify
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.auth import authenticate, bearer_token
from app.db import get_engine, get_session
from app.errors import error_body
from app.limits import check_auth_failures, count_auth_failure
from app.models import Role
from app.services.ops import Figures, check_readiness, collect_figures

bp = Blueprint("ops", __name__)

#: Counted in this process (the push API's records); the other figures come from the database.
PROCESS_REGISTRY = CollectorRegistry()
INGEST_RECORDS = Counter(
    "healthscore_ingest_records",
    "Pushed records (and Segment calls) accepted or rejected by this process, by kind.",
    ["kind", "outcome"],
    registry=PROCESS_REGISTRY,
)


def count_ingested(kind: str, *, accepted: int, rejected: int) -> None:
    """Count a pushed batch's records for ``/metrics``."""
    INGEST_RECORDS.labels(kind, "accepted").inc(accepted)
    INGEST_RECORDS.labels(kind, "rejected").inc(rejected)


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the process answers; touches nothing else (a liveness probe)."""
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when the install can serve, 503 naming what is wrong (a readiness probe)."""
    from app import migrate  # alembic: imported by the probe, not by every process importing the app

    now = dt.datetime.now(dt.UTC)
    try:
        with get_engine().connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        revision = migrate.current_revision(get_engine())
    except sa.exc.SQLAlchemyError as exc:
        body = {"status": "not ready", "checks": {"database": {"ok": False, "detail": type(exc).__name__}}}
        return jsonify(body), 503
    session = get_session()
    with session.begin():
        readiness = check_readiness(
            session,
            now=now,
            schema_revision=revision,
            head_revision=migrate.head_revision(),
            outbox_max_due_seconds=int(current_app.config["READY_OUTBOX_MAX_DUE_SECONDS"]),
            require_scheduler=bool(current_app.config["READY_REQUIRE_SCHEDULER"]),
        )
    return jsonify(readiness.as_dict()), 200 if readiness.ok else 503


@bp.get("/metrics")
def metrics() -> Response | tuple[Response, int]:
    """The figures in Prometheus' text format, for ``Authorization: Bearer <METRICS_TOKEN>`` or an
    admin API token."""
    refused = _refusal()
    if refused is not None:
        return refused
    session = get_session()
    with session.begin():
        figures = collect_figures(session, now=dt.datetime.now(dt.UTC))
    registry = CollectorRegistry()
    registry.register(_FiguresCollector(figures))
    text = generate_latest(registry) + generate_latest(PROCESS_REGISTRY)
    return Response(text, mimetype="text/plain; version=0.0.4; charset=utf-8")


def _refusal() -> tuple[Response, int] | None:
    token = bearer_token()
    if token is None:
        return _error(401, "Send the metrics token or an admin API token: 'Authorization: Bearer <token>'.")
    check_auth_failures()
    expected = str(current_app.config.get("METRICS_TOKEN") or "")
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return None
    session = get_session()
    with session.begin():
        principal = authenticate(session, token, dt.datetime.now(dt.UTC))
    if principal is None:
        count_auth_failure()
        return _error(401, "The token is unknown, revoked or expired.")
    if principal.role is not Role.ADMIN:
        return _error(403, "Only admins (or the metrics token) may read the metrics.")
    return None


def _error(code: int, message: str) -> tuple[Response, int]:
    response = jsonify(error_body(code, message))
    if code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="healthscore"'
    return response, code


class _FiguresCollector(Collector):
    def __init__(self, figures: Figures) -> None:
        self.figures = figures

    def collect(self) -> Any:
        f = self.figures
        runs = CounterMetricFamily("healthscore_job_runs", "Recorded job runs (job_runs), by job and status.",
                                   labels=["job", "status"])  # fmt: skip
        seconds = CounterMetricFamily("healthscore_job_run_seconds", "Seconds spent in finished job runs, by job.",
                                      labels=["job"])  # fmt: skip
        per_job: dict[str, float] = {}
        for job, status, count, total in f.job_runs:
            runs.add_metric([job, status], count)
            per_job[job] = per_job.get(job, 0.0) + total
        for job, total in per_job.items():
            seconds.add_metric([job], total)
        last = GaugeMetricFamily("healthscore_job_last_run_seconds", "Duration of the newest finished run, by job.",
                                 labels=["job"])  # fmt: skip
        for job, value in f.last_run_seconds:
            last.add_metric([job], value)
        failures = CounterMetricFamily("healthscore_job_request_failures", "Job requests that failed, by kind.",
                                       labels=["kind"])  # fmt: skip
        for kind, count in f.job_request_failures:
            failures.add_metric([kind], count)
        alerts = GaugeMetricFamily("healthscore_alerts", "Alerts in the outbox, by status (pending, sent, dead...).",
                                   labels=["status"])  # fmt: skip
        for status, count in f.alerts:
            alerts.add_metric([status], count)
        oldest = GaugeMetricFamily("healthscore_alert_oldest_due_seconds",
                                   "How long the oldest pending alert has been due (0: none).",
                                   value=f.oldest_due_alert_seconds)  # fmt: skip
        quarantined = GaugeMetricFamily("healthscore_ingest_quarantined_records",
                                        "Pulled records waiting in the quarantine.", value=f.quarantined)  # fmt: skip
        yield from (runs, seconds, last, failures, alerts, oldest, quarantined)


def init_ops(app: Flask) -> None:
    app.register_blueprint(bp)
