"""One dataset through a fresh instance of the service: pushed through the ingest API date by date
(a live installation's view: nothing is in the service before its day), every observation date
scored with ``flask score run --as-of``, and as of the cut date the service's own learning:

1. ``POST /api/v1/scoring/suggestions`` and ``POST /api/v1/analysis/churn-model/train`` (both
   ``as_of`` the cut), then ``flask jobs work`` runs the queued jobs;
2. the suggestions job's ``result.new_version`` is posted, as it is, to
   ``/api/v1/scoring/config/versions``;
3. each later date is scored twice: with the default config active, then with the suggested one
   (``POST .../versions/<v>/activate``), reading the stored scores and churn probabilities right
   after each run.

Only those endpoints, ``result.new_version`` and the stored scores are relied on; whatever else the
service says about its suggestions is kept in the results as its claim, not used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.external.run import fresh_database
from bench.external.service import IngestTally, Service
from bench.predictive.panel import Panel

#: (external id, day) -> (score, churn probability), per arm
Stored = dict[str, dict[tuple[str, dt.date], tuple[float | None, float | None]]]
ARMS = ("default", "suggested")


def stored_day(service: Service, day: dt.date) -> dict[str, tuple[float | None, float | None]]:
    """The day's score history as the scoring run stored it: external id -> (score, churn
    probability), read straight from ``health_scores`` as bench.external reads scores."""
    query = sa.text(
        "SELECT a.external_id, h.score, h.churn_probability FROM health_scores h"
        " JOIN accounts a ON a.id = h.account_id WHERE h.day = :day"
    )
    with service.engine.connect() as conn:
        return {row[0]: (row[1], row[2]) for row in conn.execute(query, {"day": day})}


def get(service: Service, path: str) -> tuple[int, Any]:
    answer = service.client.get(path, headers=service.headers)
    return answer.status_code, answer.get_json(silent=True)


class Pusher:
    """Pushes a panel's records through the ingest API, up to a day at a time, tallying answers."""

    def __init__(self, service: Service, panel: Panel) -> None:
        self.service, self.panel = service, panel
        self.through: dt.date | None = None
        self.tallies: dict[str, IngestTally] = {}
        self.seconds = 0.0

    def push(self, through: dt.date) -> None:
        if self.through is not None and through <= self.through:
            return
        started = time.perf_counter()
        self._ingest("accounts", self.panel.account_records(through))
        for kind, records in self.panel.records(self.through, through).items():
            self._ingest(kind, records)
        self.through = through
        self.seconds += time.perf_counter() - started

    def _ingest(self, kind: str, records: list[dict[str, Any]]) -> None:
        if records:
            self.service.ingest(kind, records, self.tallies.setdefault(kind, IngestTally()))

    def summary(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 1), **{kind: vars(t) for kind, t in self.tallies.items()}}


def periodic_months(panel: Panel) -> int:
    """Monthly observation dates the service should build as of the cut: as many as the earlier
    period has (at least one)."""
    return max(1, sum(1 for d in panel.dates if d + dt.timedelta(days=panel.horizon) <= panel.cut))


def _claims(result: dict[str, Any]) -> dict[str, Any]:
    """What the service says of its own suggestion (kept for the reader, not used)."""
    keep = ("validation", "data", "flags", "churned_in_poor_share")
    return {key: result[key] for key in keep if key in result}


def learn(service: Service, panel: Panel) -> dict[str, Any]:
    """Suggestions and the churn model as of the cut; the suggested config posted as a version."""
    body = {"as_of": panel.cut.isoformat(), "horizon_days": panel.horizon, "periodic_months": periodic_months(panel)}
    out: dict[str, Any] = {"request": body, "suggested_version": None}
    started = time.perf_counter()
    queued: dict[str, int] = {}
    for name, path in (
        ("suggestions", "/api/v1/scoring/suggestions"),
        ("churn_model", "/api/v1/analysis/churn-model/train"),
    ):
        status, answer = service.post(path, body)
        if status == 202:
            queued[name] = int(answer["id"])
        else:
            out[name] = {"status": "refused", "http_status": status, "errors": answer}
    if queued:
        try:
            service.flask("jobs", "work")
        except RuntimeError as exc:  # a job failed: its request says why, read below
            out["jobs_work_error"] = str(exc)[-500:]
    out["seconds"] = round(time.perf_counter() - started, 1)
    for name, request_id in queued.items():
        status, answer = get(service, f"/api/v1/jobs/requests/{request_id}")
        if status != 200:
            out[name] = {"status": "unreadable", "http_status": status}
            continue
        out[name] = {"status": answer["status"], "error": answer.get("error"), "request_id": request_id}
        result = answer.get("result")
        if name == "suggestions" and answer["status"] == "succeeded" and result:
            out[name]["service_claims"] = _claims(result)
            status, posted = service.post("/api/v1/scoring/config/versions", result["new_version"])
            if status in (200, 201):
                out["suggested_version"] = int(posted["version"])
            else:
                out[name]["new_version_refused"] = {"http_status": status, "errors": posted}
            out[name]["measures"] = _measure_names(result["new_version"])
        if name == "churn_model" and answer["status"] == "succeeded" and result:
            out[name]["service_claims"] = {k: result[k] for k in ("version", "validation", "data") if k in result}
    return out


def _measure_names(body: dict[str, Any]) -> list[str]:
    config = body.get("config", body)
    measures = config.get("measures", []) if isinstance(config, dict) else []
    if isinstance(measures, dict):
        return sorted(measures)
    return [m.get("name", "?") if isinstance(m, dict) else str(m) for m in measures]


def run(panel: Panel, args: argparse.Namespace, log: Path) -> tuple[Stored, dict[str, Any]]:
    """Load, score and learn on one fresh instance; the stored values per arm and a summary."""
    started = time.perf_counter()
    service = Service(fresh_database(args, panel.name), log)
    default_version = service.active_version()
    pusher = Pusher(service, panel)
    stored: Stored = {arm: {} for arm in ARMS}
    learning: dict[str, Any] | None = None
    score_seconds: list[float] = []
    try:
        for day in sorted(panel.dates):
            if day >= panel.cut and learning is None:
                pusher.push(panel.cut)
                learning = learn(service, panel)
                print(f"  {panel.name}: learned as of {panel.cut} in {learning['seconds']}s", flush=True)
            pusher.push(day)
            versions = {"default": default_version}
            if learning is not None and learning["suggested_version"] is not None:
                versions["suggested"] = learning["suggested_version"]
            for arm, version in versions.items():
                if learning is not None:
                    service.activate(version)
                score_seconds.append(service.score(day))
                for ext, values in stored_day(service, day).items():
                    stored[arm][(ext, day)] = values
        if learning is None:  # every date before the cut: learn all the same, for the record
            pusher.push(panel.cut)
            learning = learn(service, panel)
        pusher.push(panel.end)
    finally:
        service.close()
    summary = {
        "database": sa.make_url(service.database_url).render_as_string(hide_password=True),
        "default_version": default_version,
        "load": pusher.summary(),
        "learning": learning,
        "score_runs": len(score_seconds),
        "score_seconds": round(sum(score_seconds), 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return stored, summary
