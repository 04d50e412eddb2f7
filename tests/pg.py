"""Where the PostgreSQL tests run, and whether they can: shared by conftest and the migration tests."""

from __future__ import annotations

import contextlib
import functools
import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from config import normalize_database_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    return normalize_database_url(os.environ.get("HS_TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL)


def postgres_required() -> bool:
    return os.environ.get("HS_REQUIRE_POSTGRES", "").lower() in {"1", "true", "yes"}


@functools.cache
def postgres_unreachable_reason(url: str) -> str | None:
    """Why PostgreSQL at ``url`` cannot be used (None when it can); probed once per run."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "not reachable"
        return (
            f"PostgreSQL not reachable at {sa.make_url(url).render_as_string(hide_password=True)}: {type(exc).__name__}"
        )
    finally:
        engine.dispose()
    return None


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[str]:
    """A URL for a new, empty PostgreSQL schema of the caller's own, dropped on exit.

    Skips the calling test when the server cannot be reached, or fails it when
    ``HS_REQUIRE_POSTGRES`` is set (CI).
    """
    base = postgres_base_url()
    reason = postgres_unreachable_reason(base)
    if reason:
        if postgres_required():
            pytest.fail(f"{reason} (HS_REQUIRE_POSTGRES is set)")
        pytest.skip(f"{reason}; set HS_TEST_DATABASE_URL to run the PostgreSQL tests")
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
