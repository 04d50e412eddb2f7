"""Point-in-time account data on both databases: what ingest writes to ``account_history`` (pushed,
pulled and Segment), and what ``accounts_as_of`` reads for a day before, between and after rows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from app.models import Account, AccountHistory, Outcome, OutcomeKind
from app.pipeline.accounts import accounts_as_of
from app.services.ingest.pull import pull_source
from app.services.ingest.records import ingest_records
from app.sources.files import FileSource
from tests import factories as f

pytestmark = [pytest.mark.e2e, pytest.mark.db]

BASE = {"external_id": "acme", "name": "Acme", "contract_start": "2025-01-10", "billing_term": "annual"}


def ingest(session: Session, *records: dict[str, Any]) -> Any:
    with session.begin():
        return ingest_records(session, kind="accounts", records=list(records), source="test")


def history(session: Session) -> list[tuple[Any, ...]]:
    with session.begin():
        return [
            (str(row.valid_from), row.arr, row.seats_purchased, row.renewal_date and str(row.renewal_date), row.owner)
            for row in session.scalars(sa.select(AccountHistory).order_by(AccountHistory.valid_from))
        ]


def as_of(session: Session, day: str, **kwargs: Any) -> Any:
    with session.begin():
        return accounts_as_of(session.connection(), as_of=dt.date.fromisoformat(day), **kwargs)


def test_each_change_is_a_dated_row_and_an_unchanged_record_writes_none(db_session: Session) -> None:
    first = {**BASE, "arr": 1000, "seats_purchased": 5, "renewal_date": "2026-01-10", "owner": "kim",
             "effective_on": "2025-06-01"}  # fmt: skip
    ingest(db_session, first)
    ingest(db_session, {**first, "effective_on": "2025-07-01"})  # same values: nothing new
    renewed = {**first, "arr": 2000, "renewal_date": "2027-01-10", "effective_on": "2026-01-10"}
    result = ingest(db_session, renewed)
    assert result.landed == 1 and not result.rejected
    assert history(db_session) == [
        ("2025-06-01", 1000.0, 5, "2026-01-10", "kim"),
        ("2026-01-10", 2000.0, 5, "2027-01-10", "kim"),
    ]
    # A late correction between the rows lands in history; the account keeps its newest values.
    ingest(db_session, {**first, "owner": "lee", "effective_on": "2025-09-01"})
    assert [row[0] for row in history(db_session)] == ["2025-06-01", "2025-09-01", "2026-01-10"]
    with db_session.begin():
        account = db_session.scalars(sa.select(Account)).one()
        assert (account.arr, account.owner, str(account.renewal_date)) == (2000.0, "kim", "2027-01-10")
    # The same day again replaces that day's row.
    ingest(db_session, {**renewed, "seats_purchased": 9})
    assert history(db_session)[-1] == ("2026-01-10", 2000.0, 9, "2027-01-10", "kim")


def test_a_record_without_a_day_takes_effect_on_the_day_it_is_ingested(db_session: Session) -> None:
    ingest(db_session, {**BASE, "arr": 10})
    assert history(db_session)[0][0] == dt.datetime.now(dt.UTC).date().isoformat()


def test_a_day_reads_the_row_in_force_and_before_the_first_row_derives_the_renewal(db_session: Session) -> None:
    ingest(
        db_session,
        {**BASE, "arr": 1000, "seats_purchased": 5, "renewal_date": "2026-01-10", "owner": "kim", "plan": "team",
         "segment": "smb", "effective_on": "2025-06-01"},
        {**BASE, "external_id": "monthly", "name": "M", "billing_term": "monthly", "renewal_date": "2026-02-10",
         "effective_on": "2026-01-15"},
        {**BASE, "external_id": "unknown-term", "name": "U", "billing_term": None, "renewal_date": "2026-05-01",
         "effective_on": "2026-01-15"},
    )  # fmt: skip
    ingest(db_session, {**BASE, "arr": 3000, "seats_purchased": 8, "renewal_date": "2027-01-10", "owner": "lee",
                        "plan": "business", "segment": "mid", "effective_on": "2026-01-10"})  # fmt: skip
    before = as_of(db_session, "2025-03-01")  # before acme's first row
    assert before.ids.size == 3
    assert (before.arr[0], before.seats[0], before.owner[0], before.plan[0], before.term[0]) == (
        1000.0, 5.0, "kim", "team", "annual",
    )  # fmt: skip
    # The renewal recorded later is not known yet: the term says the next anniversary of the start.
    assert str(before.renewal_date[0]) == "2026-01-10"
    assert str(before.renewal_date[1]) == "2025-03-10"  # monthly from Jan 10
    assert np.isnat(before.renewal_date[2])  # no term: unknown, not the later recorded date
    between = as_of(db_session, "2026-01-09")
    assert (between.arr[0], between.owner[0], str(between.renewal_date[0])) == (1000.0, "kim", "2026-01-10")
    after = as_of(db_session, "2026-01-10")
    assert (after.arr[0], after.seats[0], after.owner[0], after.plan[0], after.segment[0]) == (
        3000.0, 8.0, "lee", "business", "mid",
    )  # fmt: skip
    assert str(after.renewal_date[0]) == "2027-01-10"
    assert str(after.contract_start[0]) == "2025-01-10"
    # A renewal date that has passed rolls forward by whole terms when the term is known...
    later = as_of(db_session, "2026-04-20")
    assert str(later.renewal_date[1]) == "2026-05-10"
    # ...and stays as recorded without one.
    assert str(as_of(db_session, "2026-06-01").renewal_date[2]) == "2026-05-01"


def test_accounts_without_history_read_their_current_values_and_churned_ones_are_filtered(
    db_session: Session,
) -> None:
    with db_session.begin():
        plain = f.make_account(db_session, arr=500.0, renewal_date=dt.date(2026, 3, 1))
        gone = f.make_account(db_session, status="churned")
        db_session.add(Outcome(account_id=gone.id, source="t", external_id="o1", kind=OutcomeKind.CHURNED,
                               day=dt.date(2026, 2, 1)))  # fmt: skip
    early = as_of(db_session, "2025-02-01")
    assert early.ids.tolist() == [plain.id, gone.id]
    assert early.arr[0] == 500.0 and str(early.renewal_date[0]) == "2026-03-01"
    assert as_of(db_session, "2026-02-01").ids.tolist() == [plain.id]
    assert as_of(db_session, "2026-02-01", include_churned=True).ids.tolist() == [plain.id, gone.id]
    empty = as_of(db_session, "2024-01-01")
    assert empty.ids.dtype == np.int64


def test_bad_dated_fields_get_field_errors(client: FlaskClient, db_session: Session) -> None:
    tomorrow_but_one = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)).isoformat()
    response = client.post(
        "/api/v1/ingest/accounts",
        json=[
            {**BASE, "billing_term": "weekly"},
            {**BASE, "external_id": "b", "effective_on": tomorrow_but_one},
            {**BASE, "external_id": "c", "plan": "x" * 65},
            {**BASE, "external_id": "d", "effective_on": "not a day"},
            {**BASE, "external_id": "good", "effective_on": "2026-01-01"},
        ],
    )
    body = response.get_json()
    assert response.status_code == 200 and body["landed"] == 1, body
    fields = [(r["index"], sorted(r["errors"])) for r in body["rejected"]]
    assert fields == [(0, ["billing_term"]), (1, ["effective_on"]), (2, ["plan"]), (3, ["effective_on"])]
    assert history(db_session) == [("2026-01-01", 0.0, 0, None, None)]


def test_the_api_shows_billing_term_and_plan(client: FlaskClient, db_session: Session) -> None:
    response = client.post("/api/v1/ingest/accounts", json=[{**BASE, "plan": "team"}])
    assert response.get_json()["landed"] == 1
    with db_session.begin():
        account_id = db_session.scalar(sa.select(Account.id))
    detail = client.get(f"/api/v1/accounts/{account_id}").get_json()
    assert (detail["billing_term"], detail["plan"]) == ("annual", "team")
    listed = client.get("/api/v1/accounts").get_json()["items"][0]
    assert (listed["billing_term"], listed["plan"]) == ("annual", "team")


def test_a_pulled_snapshot_writes_history_from_its_effective_day(db_session: Session, tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_text(
        "external_id,name,contract_start,arr,billing_term,effective_on\n"
        "acme,Acme,2025-01-01,24000,quarterly,2026-05-01\n"
    )
    with db_session.begin():
        pull_source(db_session, FileSource("inbox", tmp_path, ("accounts",)),
                    now=dt.datetime(2026, 6, 30, tzinfo=dt.UTC))  # fmt: skip
    assert history(db_session) == [("2026-05-01", 24000.0, 0, None, None)]
    assert str(as_of(db_session, "2026-05-20").renewal_date[0]) == "2026-07-01"  # quarterly from Jan 1


def test_a_segment_group_call_writes_history_on_its_day(client: FlaskClient, db_session: Session) -> None:
    group = {"type": "group", "messageId": "g-1", "userId": "u-1", "groupId": "acme",
             "timestamp": "2026-06-01T10:00:00Z", "traits": {"name": "Acme", "arr": 48000}}  # fmt: skip
    assert client.post("/api/v1/ingest/segment", json=group).get_json()["landed"] == 1
    later = {**group, "messageId": "g-2", "timestamp": "2026-06-05T10:00:00Z", "traits": {"arr": 60000}}
    assert client.post("/api/v1/ingest/segment", json=later).get_json()["landed"] == 1
    assert [(row[0], row[1]) for row in history(db_session)] == [("2026-06-01", 48000.0), ("2026-06-05", 60000.0)]
