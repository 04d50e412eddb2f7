"""Shared fixtures: the app, client and CLI runner on SQLite and on a real PostgreSQL.

Database tests run once per backend. SQLite always runs; PostgreSQL runs against
``HS_TEST_DATABASE_URL`` (default: the local server's ``test`` database) in a schema of its own
that is dropped afterwards. When that server cannot be reached the PostgreSQL tests are
skipped with a message saying so, unless ``HS_REQUIRE_POSTGRES=1`` (CI), where that fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy.orm import Session, sessionmaker

from app import create_app, migrate
from app.auth import create_token, create_user
from app.db import Base, make_engine
from app.models import Role, User
from config import TestConfig
from tests.pg import postgres_base_url, postgres_schema, postgres_unreachable_reason

BACKENDS = ("sqlite", "postgresql")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly, once, when the PostgreSQL half of the database tests did not run."""
    reason = postgres_unreachable_reason.cache_info().currsize and postgres_unreachable_reason(postgres_base_url())
    if reason:
        terminalreporter.write_line(
            f"NOTE: the PostgreSQL variants of the database tests were skipped: {reason}. "
            "Set HS_TEST_DATABASE_URL to a PostgreSQL database to run them.",
            yellow=True,
            bold=True,
        )


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
    with postgres_schema("hs_test") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


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
def app(engine: sa.Engine, database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(TestConfig(DATABASE_URL=database_url, LEARNING_CACHE_DIR=str(tmp_path / "learning-cache")))
    yield app
    app.extensions["engine"].dispose()


@pytest.fixture
def issue_token(engine: sa.Engine) -> Callable[..., str]:
    """Make an API token: ``issue_token(Role.CSM, user="ana", email=None, manager=None)``."""

    def issue(
        role: Role | str, user: str | None = None, *, email: str | None = None, manager: str | None = None
    ) -> str:
        role = Role(role)
        name = user or f"{role.value}-user"
        with sessionmaker(bind=engine).begin() as session:
            if manager is not None and session.scalar(sa.select(User.id).where(User.name == name)) is None:
                create_user(session, name, email=email, manager=manager)
            _, token = create_token(session, name, role, email=email)
        return token

    return issue


@pytest.fixture
def client(app: Flask, issue_token: Callable[..., str]) -> FlaskClient:
    """A test client that sends an admin token (tests of other roles pass their own header)."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {issue_token(Role.ADMIN, 'test-admin')}"
    return client


@pytest.fixture
def anonymous_client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def backend(database_url: str) -> str:
    return sa.make_url(database_url).get_backend_name()
