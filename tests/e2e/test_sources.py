"""Pulling sources into the service on both databases: files, a second SQL database, quarantine, jobs."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session

from app.errors import DomainValidationError
from app.models import Account, DailyUsage, JobRun, QuarantinedRecord, SourceCursor
from app.services.ingest.pull import pull_source, retry_quarantine
from app.services.jobs.scheduler import SchedulerProcess
from app.sources.base import SourceUnavailable
from app.sources.config import load_sources
from app.sources.files import FileSource
from app.sources.sql import SqlSource
from tests.pg import postgres_schema

pytestmark = [pytest.mark.e2e, pytest.mark.db]

NOW = dt.datetime(2026, 6, 30, 6, 0, tzinfo=dt.UTC)


def count(session: Session, model: type) -> int:
    with session.begin():
        return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "accounts.csv").write_text(
        "external_id,name,contract_start,seats_purchased,arr\n"
        "acme,Acme,2025-01-01,20,24000\n"
        "globex,Globex,2025-03-01,-4,1000\n"  # negative seats: quarantined
    )
    (folder / "usage.jsonl").write_text(
        json.dumps({"account": "acme", "day": "2026-06-01", "active_users": 5, "logins": 9}) + "\n"
        + json.dumps({"account": "initech", "day": "2026-06-01", "active_users": 2}) + "\n"  # unknown account
        + '{"account": "acme", "day": \n'  # broken JSON
        + json.dumps({"account": "acme", "day": "2026-06-02", "active_users": 6, "signals": {"data_export": 1}}) + "\n"
    )  # fmt: skip
    return folder


def pull(session: Session, source: FileSource | SqlSource, now: dt.datetime = NOW):  # type: ignore[no-untyped-def]
    with session.begin():
        return pull_source(session, source, now=now)


def test_file_source_lands_good_records_and_quarantines_the_rest(db_session: Session, inbox: Path) -> None:
    source = FileSource("inbox", inbox, ("accounts", "usage"))
    summary = pull(db_session, source)
    assert summary.landed == {"accounts": 1, "usage": 2}
    assert summary.quarantined == {"accounts": 1, "usage": 2}
    with db_session.begin():
        quarantined = db_session.scalars(sa.select(QuarantinedRecord).order_by(QuarantinedRecord.id)).all()
        reasons = [(q.kind, q.errors) for q in quarantined]
        assert reasons[0] == ("accounts", {"seats_purchased": ["Must be greater than or equal to 0."]})
        assert quarantined[0].payload["external_id"] == "globex"
        assert ("usage", {"account": ["Unknown account 'initech'."]}) in reasons
        broken = next(q for q in quarantined if "raw" in q.payload)
        assert broken.errors["_schema"][0].startswith("line 3: not valid JSON")
        cursors = {c.kind: c.pulled_at for c in db_session.scalars(sa.select(SourceCursor))}
        assert set(cursors) == {"accounts", "usage"}


def test_unchanged_files_are_not_read_again_and_rereading_duplicates_nothing(db_session: Session, inbox: Path) -> None:
    source = FileSource("inbox", inbox, ("accounts", "usage"))
    first = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)  # after the files were written
    assert pull(db_session, source, first).total_landed == 3
    later = first + dt.timedelta(minutes=1)
    assert pull(db_session, source, later).total_landed == 0
    assert count(db_session, QuarantinedRecord) == 3
    stamp = (later + dt.timedelta(minutes=1)).timestamp()
    os.utime(inbox / "usage.jsonl", (stamp, stamp))  # the file changed after the last pull
    assert pull(db_session, source, later + dt.timedelta(minutes=2)).landed["usage"] == 2
    assert count(db_session, DailyUsage) == 2
    assert count(db_session, QuarantinedRecord) == 3  # the same bad records were not quarantined twice


def test_retry_lands_records_whose_cause_was_fixed(db_session: Session, inbox: Path, client: FlaskClient) -> None:
    pull(db_session, FileSource("inbox", inbox, ("accounts", "usage")))
    listed = client.get("/api/v1/ingest/quarantine?kind=usage").get_json()
    assert listed["total"] == 2
    assert (
        client.post(
            "/api/v1/ingest/accounts",
            json=[{"external_id": "initech", "name": "Initech", "contract_start": "2025-01-01"}],
        ).status_code
        == 200
    )
    response = client.post("/api/v1/ingest/quarantine/retry?kind=usage")
    assert response.get_json() == {"retried": 2, "landed": 1, "still_rejected": 1}  # the broken line stays
    with db_session.begin():
        left = db_session.scalars(sa.select(QuarantinedRecord).where(QuarantinedRecord.kind == "usage")).one()
        assert "raw" in left.payload and left.retries == 1
    with db_session.begin():
        again = retry_quarantine(db_session, source="inbox", kind=None, now=NOW)
    assert again.retried == 2 and again.landed == 0  # globex's seats are still negative


def test_a_missing_folder_fails_the_pull_and_keeps_the_cursor(db_session: Session, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match=r"folder .* does not exist"):
        pull(db_session, FileSource("gone", tmp_path / "nope", ("usage",)))
    assert count(db_session, SourceCursor) == 0


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A second, real database playing the warehouse, with a pre-aggregated usage table."""

    def build(url: str) -> None:
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.execute(sa.text(
                "CREATE TABLE usage_daily (account VARCHAR(50), day DATE, active_users INTEGER,"
                " logins BIGINT, updated_at TIMESTAMP)"
            ))  # fmt: skip
            conn.execute(
                sa.text("INSERT INTO usage_daily VALUES (:a, :d, :u, :l, :t)"),
                [
                    {"a": "acme", "d": dt.date(2026, 6, 1), "u": 4, "l": 7, "t": dt.datetime(2026, 6, 2)},
                    {"a": "acme", "d": dt.date(2026, 6, 2), "u": 5, "l": 8, "t": dt.datetime(2026, 6, 3)},
                    {"a": "acme", "d": dt.date(2026, 6, 3), "u": -1, "l": 8, "t": dt.datetime(2026, 6, 4)},
                ],
            )
        engine.dispose()

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warehouse.db'}"
        build(url)
        yield url
    else:
        with postgres_schema("hs_wh") as url:
            build(url)
            yield url


QUERY = (
    "SELECT account, day, active_users, logins FROM usage_daily "
    "WHERE day <= :as_of AND updated_at > :since ORDER BY day"
)


def test_sql_source_pulls_from_a_second_database(db_session: Session, client: FlaskClient, warehouse_url: str) -> None:
    client.post(
        "/api/v1/ingest/accounts", json=[{"external_id": "acme", "name": "Acme", "contract_start": "2025-01-01"}]
    )
    source = SqlSource("warehouse", warehouse_url, {"usage": QUERY}, chunk_size=2)
    try:
        summary = pull(db_session, source)
    finally:
        source.dispose()
    assert summary.landed == {"usage": 2} and summary.quarantined == {"usage": 1}
    with db_session.begin():
        days = db_session.scalars(sa.select(DailyUsage.day).order_by(DailyUsage.day)).all()
    assert days == [dt.date(2026, 6, 1), dt.date(2026, 6, 2)]


def test_an_unreachable_sql_source_fails_with_its_reason(db_session: Session) -> None:
    source = SqlSource("warehouse", "postgresql+psycopg://nobody@127.0.0.1:1/none", {"usage": QUERY})
    with pytest.raises(SourceUnavailable, match="warehouse: usage query failed: OperationalError"):
        pull(db_session, source)
    source.dispose()
    assert count(db_session, SourceCursor) == 0


def write_sources(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    return str(path)


def test_sources_file_declares_jobs_and_a_failing_source_does_not_stop_the_others(
    app: Flask, runner: FlaskCliRunner, db_session: Session, inbox: Path, tmp_path: Path
) -> None:
    app.config["SOURCES_FILE"] = write_sources(
        tmp_path,
        f'[[sources]]\nname = "inbox"\ntype = "files"\nfolder = "{inbox}"\nevery_minutes = 5\n'
        '[[sources]]\nname = "gone"\ntype = "files"\nfolder = "missing"\nevery_minutes = 5\n',
    )
    listed = runner.invoke(args=["jobs", "list"]).output
    assert "pull-inbox" in listed and "pull-gone" in listed
    failed = runner.invoke(args=["jobs", "run", "pull-gone"])
    assert failed.exit_code != 0
    ran = runner.invoke(args=["jobs", "run", "pull-inbox"])
    assert ran.exit_code == 0, ran.output
    assert ran.output.startswith("Pulled inbox: 3 records landed")
    with db_session.begin():
        runs = {run.job: run for run in db_session.scalars(sa.select(JobRun))}
        assert runs["pull-gone"].status == "failed" and "does not exist" in runs["pull-gone"].error
        assert runs["pull-inbox"].status == "succeeded" and runs["pull-inbox"].counts["landed"]["usage"] == 2
    assert count(db_session, Account) == 1
    assert "inbox" in runner.invoke(args=["sources", "list"]).output
    quarantine = runner.invoke(args=["ingest", "quarantine", "--source", "inbox"])
    assert quarantine.exit_code == 0 and "3 quarantined record(s)" in quarantine.output


@pytest.mark.parametrize(
    ("text", "env", "fragment"),
    [
        ('[[sources]]\nname = "x"\ntype = "ftp"\nevery_minutes = 5\n', {}, "'type': ['Must be one of: files, sql, http.']"),
        ('[[sources]]\nname = "x"\ntype = "files"\nevery_minutes = 5\n', {}, "Required for a files source."),
        ('[[sources]]\nname = "x"\ntype = "sql"\nurl_env = "WH_URL"\nevery_minutes = 5\n[sources.queries]\nusage = "SELECT 1"\n',
         {}, "needs the environment variable WH_URL, which is not set"),
        ('[[sources]]\nname = "x"\ntype = "files"\nfolder = "f"\nevery_minutes = 5\npassword = "hunter2"\n', {}, "Unknown field."),
        ("sources = [", {}, "Cannot read the sources file"),
    ],
)  # fmt: skip
def test_bad_sources_files_are_refused_with_reasons(
    tmp_path: Path, text: str, env: dict[str, str], fragment: str
) -> None:
    with pytest.raises(DomainValidationError) as excinfo:
        load_sources(write_sources(tmp_path, text), env)
    assert fragment in f"{excinfo.value.message} {excinfo.value.errors}"


def test_a_scheduled_pull_that_brought_data_is_followed_by_a_scoring_run(
    app: Flask, db_session: Session, inbox: Path, tmp_path: Path
) -> None:
    app.config["SOURCES_FILE"] = write_sources(
        tmp_path, f'[[sources]]\nname = "inbox"\ntype = "files"\nfolder = "{inbox}"\nevery_minutes = 5\n'
    )
    process = SchedulerProcess(app)
    assert process.heartbeat()
    process.run_scheduled("pull-inbox")
    process.run_scheduled("pull-inbox")  # nothing changed: no second scoring run
    with db_session.begin():
        jobs = [(run.job, run.status) for run in db_session.scalars(sa.select(JobRun).order_by(JobRun.id))]
    assert jobs == [("pull-inbox", "succeeded"), ("score-daily", "succeeded"), ("pull-inbox", "succeeded")]
    process.release()


def test_the_demo_feed_writes_today_and_the_inbox_pull_scores_it(
    app: Flask, runner: FlaskCliRunner, db_session: Session, tmp_path: Path
) -> None:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert runner.invoke(args=["demo", "seed", "--accounts", "30", "--days", "20", "--as-of", today]).exit_code == 0
    inbox = tmp_path / "inbox"
    app.config["DEMO_FEED_INBOX"] = str(inbox)
    app.config["SOURCES_FILE"] = write_sources(
        tmp_path, '[[sources]]\nname = "demo-inbox"\ntype = "files"\nfolder = "inbox"\nevery_minutes = 1\n'
    )
    process = SchedulerProcess(app)
    assert {"demo-feed", "pull-demo-inbox"} <= set(process.specs)
    assert process.heartbeat()
    process.run_scheduled("demo-feed")
    lines = (inbox / "usage.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["day"] == today for line in lines)
    process.run_scheduled("pull-demo-inbox")
    with db_session.begin():
        jobs = [run.job for run in db_session.scalars(sa.select(JobRun).order_by(JobRun.id))]
        quarantined = db_session.scalar(sa.select(sa.func.count()).select_from(QuarantinedRecord))
    assert jobs == ["demo-feed", "pull-demo-inbox", "score-daily"] and quarantined == 0
    process.release()
