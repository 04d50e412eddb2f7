"""Seeding and clearing: ``seed_demo`` writes the plan and its raw data in bulk, ``clear_demo`` deletes it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, DropConstraint

from app.auth import create_user
from app.bulk import bulk_insert
from app.db import Base
from app.demo.accounts import (
    ACCOUNT_COLUMNS,
    CONTACT_COLUMNS,
    HISTORY_COLUMNS,
    account_rows,
    draw_contacts,
    history_rows,
)
from app.demo.feedback import FEEDBACK_COLUMNS, GOAL_COLUMNS, feedback_rows, goal_rows
from app.demo.outcomes import OUTCOME_COLUMNS, outcome_rows
from app.demo.plan import DemoPlan, demo_plan
from app.demo.tickets import TICKET_COLUMNS, draw_tickets
from app.demo.usage import (
    LICENSE_COLUMNS,
    SIGNAL_COLUMNS,
    USAGE_COLUMNS,
    Signals,
    add_milestone_signals,
    license_rows,
    usage_rows,
)
from app.errors import Conflict
from app.models import (
    Account,
    AccountHistory,
    Contact,
    DailyUsage,
    Feedback,
    Goal,
    LicenseSnapshot,
    Outcome,
    QuarantinedRecord,
    SourceCursor,
    SupportTicket,
    UsageSignal,
    User,
)


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """Rows written per table by ``seed_demo``."""

    accounts: int
    account_history: int
    contacts: int
    daily_usage: int
    usage_signals: int
    license_snapshots: int
    support_tickets: int
    feedback: int
    goals: int
    outcomes: int

    @property
    def total(self) -> int:
        return sum(astuple(self))

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def one_line(self) -> str:
        parts = ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in self.counts().items())
        return f"Seeded demo data: {parts} ({self.total:,} rows)"


#: The tables seed_demo loads after the accounts.
_RAW_TABLES = (
    AccountHistory,
    Contact,
    DailyUsage,
    UsageSignal,
    LicenseSnapshot,
    SupportTicket,
    Feedback,
    Goal,
    Outcome,
)


def _foreign_keys_to_accounts() -> list[sa.ForeignKeyConstraint]:
    """The raw tables' foreign keys to ``accounts``.

    On PostgreSQL, ``seed_demo`` drops them before loading and adds them back after, in its
    transaction (DDL is transactional there, so a failure restores them): adding a foreign key
    checks every row with one anti-join, where a loaded row is checked by a trigger query each,
    which costs about 6 us per row (two thirds of the load time for 100,000 accounts). The
    tables stay locked until the transaction ends, which is fine for a database being seeded.
    """
    accounts = Account.__table__
    return [
        constraint
        for model in _RAW_TABLES
        for constraint in model.__table__.foreign_key_constraints  # type: ignore[attr-defined]
        if constraint.referred_table is accounts
    ]


def _insert(session: Session, model: type[Base], columns: Sequence[str], rows: Any) -> int:
    return bulk_insert(session, model.__table__, columns, rows)  # type: ignore[arg-type]


# --- Public API --------------------------------------------------------------------------------------


# --- Public API --------------------------------------------------------------------------------------


def seed_demo(session: Session, *, accounts: int, days: int, seed: int = 7, as_of: dt.date) -> DemoSummary:
    """Write ``accounts`` demo accounts with ``days`` days of raw data ending at ``as_of``.

    Reproducible: the same arguments always write the same rows. Account ids are 1..accounts.
    Uses the session's transaction and never commits. Raises ``Conflict`` when the database
    already has accounts (``clear_demo`` empties it first).
    """
    if session.scalar(sa.select(Account.id).limit(1)) is not None:
        raise Conflict("The database already has accounts; demo data goes into an empty database (clear it first).")
    plan = demo_plan(accounts=accounts, days=days, seed=seed, as_of=as_of)
    session.flush()
    n_accounts = _insert(session, Account, ACCOUNT_COLUMNS, account_rows(plan))
    postgres = session.connection().dialect.name == "postgresql"
    if postgres:
        # Explicit ids do not move the id sequence: move it past them for later inserts.
        session.execute(
            sa.text("SELECT setval(pg_get_serial_sequence('accounts', 'id'), (SELECT max(id) FROM accounts))")
        )
        # Load the child tables first and check their foreign keys after, by one join each
        # (per-row checks would be most of the load time; see _foreign_keys_to_accounts).
        for constraint in _foreign_keys_to_accounts():
            session.execute(DropConstraint(constraint))
    counts = _load_raw_data(session, plan)
    if postgres:
        for constraint in _foreign_keys_to_accounts():
            session.execute(AddConstraint(constraint))
    return DemoSummary(accounts=n_accounts, **counts)


def _load_raw_data(session: Session, plan: DemoPlan) -> dict[str, int]:
    """Write the accounts' raw data table by table, each drawn from its own generator derived from the
    seed; returns the rows written per ``DemoSummary`` field."""

    def rng(stream: int) -> np.random.Generator:
        return np.random.default_rng([plan.seed, 2, stream])

    contacts = draw_contacts(plan, rng(1))
    counts = {"contacts": _insert(session, Contact, CONTACT_COLUMNS, contacts.rows)}
    # Usage collects the product signals on usage days as it is written; the milestones come after.
    signals = Signals()
    counts["daily_usage"] = _insert(session, DailyUsage, USAGE_COLUMNS, usage_rows(plan, signals))
    add_milestone_signals(plan, rng(2), signals)
    counts["usage_signals"] = _insert(session, UsageSignal, SIGNAL_COLUMNS, signals.rows())
    counts["license_snapshots"] = _insert(session, LicenseSnapshot, LICENSE_COLUMNS, license_rows(plan, rng(3)))
    tickets = draw_tickets(plan, rng(4))
    counts["support_tickets"] = _insert(session, SupportTicket, TICKET_COLUMNS, tickets.rows)
    feedback = feedback_rows(plan, rng(5), contacts, tickets)
    counts["feedback"] = _insert(session, Feedback, FEEDBACK_COLUMNS, feedback)
    counts["goals"] = _insert(session, Goal, GOAL_COLUMNS, goal_rows(plan, rng(6)))
    outcomes = list(outcome_rows(plan, rng(7)))
    counts["outcomes"] = _insert(session, Outcome, OUTCOME_COLUMNS, outcomes)
    # The accounts' dated history follows from their contracts and outcomes (no draws of its own).
    counts["account_history"] = _insert(session, AccountHistory, HISTORY_COLUMNS, history_rows(plan, outcomes))
    return counts


def _tables_with_accounts() -> list[sa.Table]:
    """``accounts`` and every table that references it (directly or through another), children first."""
    accounts = Account.__table__
    dependent: set[sa.Table] = {accounts}  # type: ignore[arg-type]
    grew = True
    while grew:
        grew = False
        for table in Base.metadata.tables.values():
            references = any(fk.column.table in dependent for fk in table.foreign_keys)
            # Score tables carry account ids without a foreign key (see app/models/scores.py).
            if table not in dependent and (references or table.info.get("account_scoped")):
                dependent.add(table)
                grew = True
    return [table for table in reversed(Base.metadata.sorted_tables) if table in dependent]


def clear_demo(session: Session) -> dict[str, int]:
    """Delete every account and everything that belongs to accounts (raw data, contacts, scores...),
    and the ingest bookkeeping about them (quarantined records, source cursors).

    Set-based, children before parents, in the session's transaction (never commits). Scoring-config
    versions and job runs stay. Returns the rows deleted per table.
    """
    session.flush()
    deleted: dict[str, int] = {}
    tables: list[Any] = [QuarantinedRecord.__table__, SourceCursor.__table__, *_tables_with_accounts()]
    for table in tables:
        result = session.execute(sa.delete(table))
        deleted[table.name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    session.expire_all()
    return deleted


def create_demo_users(session: Session, *, manager: str, manager_email: str) -> tuple[list[str], int]:
    """A user for each CSM that owns accounts, all in ``manager``'s team (the manager is created
    when missing); idempotent. Returns the names created and the number of account owners."""
    boss = session.scalar(sa.select(User).where(User.name == manager)) or create_user(
        session, manager, email=manager_email
    )
    owners = [o for o in session.scalars(sa.select(Account.owner).distinct()).all() if o]
    known = set(session.scalars(sa.select(User.name)).all())
    created = [create_user(session, owner, manager=boss.name).name for owner in sorted(owners) if owner not in known]
    return created, len(owners)
