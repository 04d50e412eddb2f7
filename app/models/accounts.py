"""Accounts (customer companies), their dated history and their contacts."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow
from app.models.enums import AccountStatus, BillingTerm, ContactRole, enum_type


class Account(Base):
    __tablename__ = "accounts"
    # The watchlist's default order (ARR at risk, largest first; id breaks ties the same way): a
    # page is a backward index range, not a sort of every account.
    __table_args__ = (sa.Index("ix_accounts_arr_id", "arr", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(sa.String(128), unique=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    owner: Mapped[str | None] = mapped_column(sa.String(255), index=True)  # the CSM (email or handle)
    segment: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    arr: Mapped[float] = mapped_column(sa.Float, default=0.0)  # annual recurring revenue
    contract_start: Mapped[dt.date] = mapped_column(sa.Date)
    renewal_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    seats_purchased: Mapped[int] = mapped_column(default=0)
    billing_term: Mapped[BillingTerm | None] = mapped_column(enum_type(BillingTerm, "billing_term"))
    plan: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[AccountStatus] = mapped_column(
        enum_type(AccountStatus, "account_status"), default=AccountStatus.ACTIVE, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    contacts: Mapped[list[Contact]] = relationship(back_populates="account", passive_deletes=True)


#: The account fields kept as dated history (``account_history``), in its column order.
DATED_FIELDS = (
    "arr", "seats_purchased", "renewal_date", "billing_term", "plan", "owner", "segment", "contract_start",
)  # fmt: skip


class AccountHistory(Base):
    """What an account's dated fields were from ``valid_from`` until the next row's day.

    One row per change: ingest writes a row whenever a record (pushed or pulled, effective on its
    ``effective_on`` day) changes the fields in force that day. A day before an account's first
    row is read from that first row, except its renewal date (see ``app/pipeline/accounts.py``).
    Accounts with no row (written before this table existed, or by hand) read their current
    values for every day.
    """

    __tablename__ = "account_history"

    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    valid_from: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    arr: Mapped[float] = mapped_column(sa.Float)
    seats_purchased: Mapped[int]
    renewal_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    billing_term: Mapped[BillingTerm | None] = mapped_column(enum_type(BillingTerm, "billing_term"))
    plan: Mapped[str | None] = mapped_column(sa.String(64))
    owner: Mapped[str | None] = mapped_column(sa.String(255))
    segment: Mapped[str | None] = mapped_column(sa.String(64))
    contract_start: Mapped[dt.date] = mapped_column(sa.Date)
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (sa.UniqueConstraint("source", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(sa.String(64), default="manual")
    external_id: Mapped[str] = mapped_column(sa.String(128))
    name: Mapped[str | None] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(255))
    role: Mapped[ContactRole] = mapped_column(enum_type(ContactRole, "contact_role"))
    added_on: Mapped[dt.date] = mapped_column(sa.Date)
    removed_on: Mapped[dt.date | None] = mapped_column(sa.Date)

    account: Mapped[Account] = relationship(back_populates="contacts")
