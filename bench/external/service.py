"""A fresh instance of the service for the benchmark: its own database (a SQLite file or a
PostgreSQL database), migrated and given an admin token with the service's own CLI, fed through
the JSON API (Flask's test client, with the bearer token, through every layer a real request
takes) and scored with ``flask score run --as-of``."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app import create_app
from config import Config

ROOT = Path(__file__).resolve().parents[2]
BATCH = 5_000  # HS_INGEST_MAX_BATCH's default


@dataclass
class IngestTally:
    """What the ingest API said about the records of one kind."""

    received: int = 0
    landed: int = 0
    rejected: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)  # the first few rejections

    def add(self, answer: dict[str, Any]) -> None:
        self.received += answer.get("received", 0)
        self.landed += answer.get("landed", 0)
        rejected = answer.get("rejected", [])
        self.rejected += len(rejected)
        self.examples.extend(rejected[: max(0, 3 - len(self.examples))])


class Service:
    def __init__(self, database_url: str, log: Path) -> None:
        self.database_url = database_url
        self.log = log
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "FLASK_APP": "wsgi",
            "HS_LOG_LEVEL": "WARNING",
            # As a production instance runs: its own key (the service refuses to start without one
            # outside development), and a bulk loader's pace for the per-user limit on expensive POSTs.
            "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(32),
            # (HS_-prefixed: the unprefixed name is not read, so the default 10 a minute applied and
            # a fast machine's alternated activations ran into it.)
            "HS_RATE_LIMIT_EXPENSIVE": "1000 per minute",
        }
        self.env.pop("HS_DATABASE_URL", None)
        self.flask("db", "upgrade")
        created = self.flask("tokens", "create", "--user", "bench-external", "--role", "admin")
        self.headers = {"Authorization": f"Bearer {created.strip().splitlines()[-1]}"}
        self.app = create_app(Config.from_env(self.env))
        self.client = self.app.test_client()
        self.engine = sa.create_engine(Config.from_env(self.env).DATABASE_URL)

    def flask(self, *args: str) -> str:
        """Run ``flask <args>`` against this instance's database; its output, or RuntimeError."""
        done = subprocess.run(
            [sys.executable, "-m", "flask", *args], check=False, cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        with self.log.open("a") as out:
            out.write(f"$ flask {' '.join(args)}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return done.stdout

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        answer = self.client.post(path, json=body, headers=self.headers)
        return answer.status_code, answer.get_json(silent=True)

    def ingest(self, kind: str, records: list[dict[str, Any]], tally: IngestTally) -> None:
        """Push ``records`` in batches; a 422 (every record of a batch refused) is tallied like a
        partial refusal, any other non-200 answer raises."""
        for begin in range(0, len(records), BATCH):
            status, answer = self.post(f"/api/v1/ingest/{kind}", records[begin : begin + BATCH])
            if status == 422 and isinstance(answer, dict) and "json" in answer.get("errors", {}):
                answer = answer["errors"]["json"]
            elif status != 200:
                raise RuntimeError(f"POST /api/v1/ingest/{kind}: {status} {str(answer)[:500]}")
            tally.add(answer)

    def score(self, day: dt.date) -> float:
        """``flask score run --as-of DAY``; its wall seconds."""
        started = time.perf_counter()
        self.flask("score", "run", "--as-of", day.isoformat())
        return time.perf_counter() - started

    def add_config(self, config: dict[str, Any]) -> int:
        """Post a scoring config as a new version; its number (RuntimeError with the API's errors)."""
        status, answer = self.post("/api/v1/scoring/config/versions", config)
        if status not in (200, 201):
            raise RuntimeError(f"the scoring config was refused: {status} {answer}")
        return int(answer["version"])

    def activate(self, version: int) -> None:
        """Make ``version`` the active config (a no-op when it already is)."""
        status, answer = self.post(f"/api/v1/scoring/config/versions/{version}/activate", None)
        if status not in (200, 201, 202, 409):
            raise RuntimeError(f"activating config version {version}: {status} {answer}")

    def active_version(self) -> int:
        answer = self.client.get("/api/v1/scoring/config", headers=self.headers)
        if answer.status_code != 200:
            body = answer.get_data(as_text=True)[:300]
            raise RuntimeError(f"GET /api/v1/scoring/config: {answer.status_code} {body}")
        return int(answer.get_json()["version"])

    def stored_scores(self, day: dt.date) -> dict[str, tuple[float | None, str, int]]:
        """The score history of ``day`` as the scoring run stored it: external id -> (score,
        stage, config version). Read straight from ``health_scores`` (there is no bulk history
        endpoint; reading 3,000 account pages would only add time)."""
        query = sa.text(
            "SELECT a.external_id, h.score, h.stage, h.config_version FROM health_scores h"
            " JOIN accounts a ON a.id = h.account_id WHERE h.day = :day"
        )
        with self.engine.connect() as conn:
            return {row[0]: (row[1], str(row[2]), int(row[3])) for row in conn.execute(query, {"day": day})}

    def close(self) -> None:
        self.engine.dispose()
