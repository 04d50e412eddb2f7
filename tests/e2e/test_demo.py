"""Demo data: reproducible, refuses a non-empty database, clears, and scores into a realistic spread."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import migrate
from app.db import make_engine
from app.demo.plan import ARCHETYPES, demo_plan
from app.demo.seed import DemoSummary, clear_demo, seed_demo
from app.errors import Conflict
from app.models import (
    Account,
    AccountHistory,
    Contact,
    DailyUsage,
    Feedback,
    Goal,
    HealthScore,
    LatestScore,
    LicenseSnapshot,
    Outcome,
    ScoringConfigVersion,
    SupportTicket,
    UsageSignal,
)
from app.pipeline.accounts import accounts_as_of
from app.pipeline.run import run_scoring
from tests.pg import postgres_schema

pytestmark = [pytest.mark.e2e, pytest.mark.db]

AS_OF = dt.date(2026, 6, 30)

#: Every table seed_demo writes, with the summary field counting it and a total order of its rows.
SEEDED = {
    "accounts": (Account, (Account.id,)),
    "account_history": (AccountHistory, (AccountHistory.account_id, AccountHistory.valid_from)),
    "contacts": (Contact, (Contact.id,)),
    "daily_usage": (DailyUsage, (DailyUsage.account_id, DailyUsage.day)),
    "usage_signals": (UsageSignal, (UsageSignal.account_id, UsageSignal.day, UsageSignal.signal)),
    "license_snapshots": (LicenseSnapshot, (LicenseSnapshot.account_id, LicenseSnapshot.day)),
    "support_tickets": (SupportTicket, (SupportTicket.id,)),
    "feedback": (Feedback, (Feedback.id,)),
    "goals": (Goal, (Goal.id,)),
    "outcomes": (Outcome, (Outcome.id,)),
}

EngineFactory = Callable[[], sa.Engine]


@pytest.fixture
def make_db(tmp_path: Path) -> Iterator[EngineFactory]:
    """Fresh migrated SQLite files, one per call, disposed at the end of the test."""
    engines: list[sa.Engine] = []

    def make() -> sa.Engine:
        engine = make_engine(f"sqlite:///{tmp_path / f'demo{len(engines)}.db'}")
        migrate.upgrade(engine)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def postgres_engine() -> Iterator[sa.Engine]:
    """A migrated PostgreSQL schema of this test's own (``HS_TEST_DATABASE_URL``, default the local
    ``test`` database), dropped afterwards; skipped when the server cannot be reached, unless
    ``HS_REQUIRE_POSTGRES`` is set."""
    with postgres_schema("hs_demo") as url:
        engine = make_engine(url)
        try:
            migrate.upgrade(engine)
            yield engine
        finally:
            engine.dispose()


def seed(engine: sa.Engine, *, accounts: int, days: int, seed: int = 7) -> DemoSummary:
    with Session(engine) as session, session.begin():
        return seed_demo(session, accounts=accounts, days=days, seed=seed, as_of=AS_OF)


def _portable(value: Any) -> Any:
    # SQLite reads datetimes back naive (in UTC); PostgreSQL tz-aware.
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def checksums(engine: sa.Engine) -> dict[str, str]:
    """A digest of every seeded table's rows, in a total order (comparable across backends)."""
    out = {}
    with Session(engine) as session:
        for name, (model, order) in SEEDED.items():
            table = model.__table__
            rows = session.execute(sa.select(table).order_by(*order)).all()
            data = [tuple(_portable(value) for value in row) for row in rows]
            out[name] = hashlib.sha256(repr(data).encode()).hexdigest()
    return out


def row_counts(session: Session) -> dict[str, int]:
    return {
        name: session.scalar(sa.select(sa.func.count()).select_from(model)) or 0 for name, (model, _) in SEEDED.items()
    }


def test_same_seed_gives_identical_data(make_db: EngineFactory) -> None:
    first, second = make_db(), make_db()
    summary = seed(first, accounts=120, days=45)
    assert seed(second, accounts=120, days=45) == summary
    assert checksums(first) == checksums(second)
    with Session(first) as session:
        assert row_counts(session) == summary.counts()
    assert all(count > 0 for count in summary.counts().values()), summary
    assert summary.one_line().startswith("Seeded demo data: 120 accounts")


def test_different_seeds_differ(make_db: EngineFactory) -> None:
    first, second = make_db(), make_db()
    seed(first, accounts=120, days=45, seed=7)
    seed(second, accounts=120, days=45, seed=8)
    a, b = checksums(first), checksums(second)
    assert all(a[name] != b[name] for name in SEEDED)


def test_refuses_a_database_with_accounts(make_db: EngineFactory) -> None:
    engine = make_db()
    seed(engine, accounts=20, days=10)
    with pytest.raises(Conflict, match="already has accounts"), Session(engine) as session, session.begin():
        seed_demo(session, accounts=20, days=10, as_of=AS_OF)
    with Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Account)) == 20


def test_clear_demo_empties_accounts_raw_data_and_scores(make_db: EngineFactory) -> None:
    engine = make_db()
    seed(engine, accounts=60, days=30)
    with Session(engine) as session, session.begin():
        run_scoring(session, as_of=AS_OF)
    with Session(engine) as session, session.begin():
        deleted = clear_demo(session)
    assert deleted["accounts"] == 60 and deleted["daily_usage"] > 0 and deleted["latest_scores"] > 0
    with Session(engine) as session:
        assert set(row_counts(session).values()) == {0}
        for model in (HealthScore, LatestScore):
            assert session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
        # The scoring config is not demo data.
        assert session.scalar(sa.select(sa.func.count()).select_from(ScoringConfigVersion)) == 1
    # Empty again: seeding works, with the same ids.
    again = seed(engine, accounts=60, days=30)
    assert again.accounts == 60
    with Session(engine) as session:
        assert session.scalars(sa.select(Account.id).order_by(Account.id)).all() == list(range(1, 61))


def test_rows_are_consistent(make_db: EngineFactory) -> None:
    engine = make_db()
    seed(engine, accounts=200, days=60)
    checks = {
        # Nothing after as_of, except renewal dates (and due dates of goals, which are plans).
        "future": """
            SELECT (SELECT count(*) FROM daily_usage WHERE day > :d)
                 + (SELECT count(*) FROM usage_signals WHERE day > :d)
                 + (SELECT count(*) FROM license_snapshots WHERE day > :d)
                 + (SELECT count(*) FROM feedback WHERE day > :d)
                 + (SELECT count(*) FROM outcomes WHERE day > :d)
                 + (SELECT count(*) FROM accounts WHERE contract_start > :d)
                 + (SELECT count(*) FROM goals WHERE created_on > :d OR achieved_on > :d)
                 + (SELECT count(*) FROM contacts WHERE added_on > :d OR removed_on > :d)
                 + (SELECT count(*) FROM support_tickets WHERE opened_at >= :end OR closed_at >= :end)""",
        "usage outside the contract": """
            SELECT count(*) FROM daily_usage u JOIN accounts a ON a.id = u.account_id
            WHERE u.day < a.contract_start OR (a.status = 'churned' AND u.day >= a.renewal_date)""",
        "usage counts": """
            SELECT count(*) FROM daily_usage u JOIN accounts a ON a.id = u.account_id
            WHERE u.active_users <= 0 OR u.logins < u.active_users OR u.key_feature_uses > u.logins
               OR u.active_users > a.seats_purchased""",
        "licenses": """
            SELECT count(*) FROM license_snapshots
            WHERE seats_active > seats_assigned OR seats_assigned > seats_purchased""",
        "open tickets": """
            SELECT count(*) FROM support_tickets
            WHERE (closed_at IS NULL) != (status IN ('open', 'pending')) OR closed_at < opened_at""",
        # A churn at the renewal date, or before it (a contract ended in its term), never after.
        "churn outcome": """
            SELECT count(*) FROM accounts a LEFT JOIN outcomes o ON o.account_id = a.id AND o.kind = 'churned'
            WHERE a.status = 'churned' AND (o.day IS NULL OR o.day > a.renewal_date)""",
        "churned once": """
            SELECT count(*) FROM (SELECT account_id FROM outcomes WHERE kind = 'churned'
                                  GROUP BY account_id HAVING count(*) > 1) AS twice""",
        "renewal passed": "SELECT count(*) FROM accounts WHERE status = 'active' AND renewal_date <= :d",
    }
    end = dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    with Session(engine) as session:
        found = {name: session.scalar(sa.text(sql), {"d": AS_OF, "end": end}) for name, sql in checks.items()}
        assert found == dict.fromkeys(checks, 0)
        # Every account has one admin and at least one champion.
        roles = session.execute(
            sa.select(Contact.account_id, Contact.role, sa.func.count()).group_by(Contact.account_id, Contact.role)
        ).all()
        by_role: dict[str, list[int]] = {}
        for _, role, count in roles:
            by_role.setdefault(str(role), []).append(count)
        assert by_role["admin"] == [1] * 200
        assert len(by_role["champion"]) == 200


def test_scores_spread_over_stages_and_bands(make_db: EngineFactory) -> None:
    engine = make_db()
    accounts = 300
    seed(engine, accounts=accounts, days=90)
    with Session(engine) as session, session.begin():
        summary = run_scoring(session, as_of=AS_OF)
    assert all(count > 0 for count in summary.by_stage.values()), summary.by_stage
    assert all(count > 0 for count in summary.by_band.values()), summary.by_band
    # About 20 % onboarding and 20 % pre-renewal.
    assert 0.1 < summary.by_stage["onboarding"] / summary.accounts_scored < 0.3
    assert 0.1 < summary.by_stage["pre_renewal"] / summary.accounts_scored < 0.3

    plan = demo_plan(accounts=accounts, days=90, as_of=AS_OF)
    with Session(engine) as session:
        churned = set(session.scalars(sa.select(Account.id).where(Account.status == "churned")))
        latest = {row[0]: row[1] for row in session.execute(sa.select(LatestScore.account_id, LatestScore.score))}
    assert churned, "some accounts churned"
    assert churned.isdisjoint(latest)
    assert summary.accounts_scored == accounts - len(churned)

    ids = np.array(sorted(latest))
    scores = np.array([np.nan if latest[i] is None else latest[i] for i in ids])
    archetype = np.asarray(plan.archetype)[ids - 1]
    mean = {name: np.nanmean(scores[archetype == code]) for code, name in enumerate(ARCHETYPES)}
    assert mean["declining"] + 20 < mean["healthy"], mean
    assert mean["never_adopting"] < mean["average"] < mean["healthy"], mean


def test_postgres_gets_the_same_rows_and_keeps_its_constraints(
    make_db: EngineFactory, postgres_engine: sa.Engine
) -> None:
    summary = seed(postgres_engine, accounts=120, days=45)
    sqlite = make_db()
    assert seed(sqlite, accounts=120, days=45) == summary
    assert checksums(postgres_engine) == checksums(sqlite)
    # The foreign keys dropped for the load are back, as the migrations define them.
    assert migrate.schema_differences(postgres_engine) == []
    with Session(postgres_engine) as session, session.begin():
        # The id sequence moved past the demo ids.
        account = Account(external_id="acct-new", name="New Co", contract_start=AS_OF, arr=0.0, seats_purchased=1)
        session.add(account)
        session.flush()
        assert account.id == 121
    with pytest.raises(sa.exc.IntegrityError), Session(postgres_engine) as session, session.begin():
        session.execute(sa.insert(DailyUsage).values(account_id=10_000, day=AS_OF, active_users=1, logins=1))
    with Session(postgres_engine) as session, session.begin():
        clear_demo(session)
    with Session(postgres_engine) as session:
        assert set(row_counts(session).values()) == {0}


def test_demo_history_ends_at_the_current_values_and_moves_the_renewal_each_year(make_db: EngineFactory) -> None:
    engine = make_db()
    seed(engine, accounts=150, days=400)
    with Session(engine) as session, session.begin():
        now = accounts_as_of(session.connection(), as_of=AS_OF, include_churned=True)
        accounts = session.execute(
            sa.select(Account.id, Account.arr, Account.renewal_date, Account.status).order_by(Account.id)
        ).all()
        active = [i for i, a in enumerate(accounts) if a.status != "churned"]
        assert [accounts[i].arr for i in active] == now.arr[active].tolist()
        assert [np.datetime64(accounts[i].renewal_date, "D") for i in active] == now.renewal_date[active].tolist()
        assert set(now.term.tolist()) == {"annual"} and None not in now.plan.tolist()
        rows = session.execute(
            sa.select(AccountHistory.account_id, AccountHistory.valid_from, AccountHistory.renewal_date)
        ).all()
    # Every row's renewal date is within a year after its day: a past day never sees a later renewal.
    assert rows and all(0 < (renewal - day).days <= 366 for _, day, renewal in rows)
    assert len(rows) > 150  # anniversaries and ARR changes, not one row per account
