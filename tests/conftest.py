"""Shared fixtures: the app, client and CLI runner on SQLite and on a real PostgreSQL.

Database tests run once per backend. SQLite always runs; PostgreSQL runs against
``HS_TEST_DATABASE_URL`` (default: the local server's ``test`` database) in a schema of its own
that is dropped afterwards. When that server cannot be reached the PostgreSQL tests are
skipped with a message saying so, unless ``HS_REQUIRE_POSTGRES=1`` (CI), where that fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session, sessionmaker

from app import create_app, migrate
from app.db import Base, make_engine
from config import TestConfig, normalize_database_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")


def postgres_base_url() -> str:
    return normalize_database_url(os.environ.get("HS_TEST_DATABASE_URL") or DEFAULT_POSTGRES_URL)


def postgres_required() -> bool:
    return os.environ.get("HS_REQUIRE_POSTGRES", "").lower() in {"1", "true", "yes"}


def _postgres_unreachable_reason(url: str) -> str | None:
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


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database of each backend for the whole session."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    base = postgres_base_url()
    reason = _postgres_unreachable_reason(base)
    if reason:
        if postgres_required():
            pytest.fail(f"{reason} (HS_REQUIRE_POSTGRES is set)")
        pytest.skip(f"{reason}; set HS_TEST_DATABASE_URL to run the PostgreSQL tests")
    schema = f"hs_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    """The session's database, emptied after each test (real commits, so jobs behave as in production)."""
    engine = make_engine(database_url)
    yield engine
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()


@pytest.fixture
def db_session(engine: sa.Engine) -> Iterator[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        yield session


@pytest.fixture
def app(engine: sa.Engine, database_url: str) -> Iterator[Flask]:
    app = create_app(TestConfig(DATABASE_URL=database_url))
    yield app
    app.extensions["engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def backend(database_url: str) -> str:
    return sa.make_url(database_url).get_backend_name()
