"""Users and their API tokens (stored hashed)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.models.enums import Role, enum_type


class User(Base):
    """A person (or a machine client) the API knows. ``name`` and ``email`` are what an account's
    ``owner`` holds for the accounts a CSM owns; ``manager_id`` makes the manager's team."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    manager_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Signing in to the pages (app/web): the role the user signs in with (None: no sign-in),
    # the argon2 hash of the password, and when it was set (a new password ends older sessions).
    role: Mapped[Role | None] = mapped_column(enum_type(Role, "user_role"))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    password_set_at: Mapped[dt.datetime | None]
    # The one-time link of an invitation or a password reset: the SHA-256 of its token, and its expiry.
    link_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    link_expires_at: Mapped[dt.datetime | None]
    #: The IANA time zone the person's messages show times in (digests: since and until).
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")


class ApiToken(Base):
    """A bearer token: only its SHA-256 is stored (tokens are 256-bit random, so a fast hash is
    enough); ``prefix`` (its first characters) names it in listings. The role is the token's."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(enum_type(Role, "role"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    description: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]
