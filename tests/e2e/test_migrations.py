"""Migrations: an empty database goes to head and back to base, and the models agree with head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from app import create_app, migrate
from app.db import Base, make_engine
from config import TestConfig
from tests.pg import postgres_schema

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        yield engine
        engine.dispose()
        return
    with postgres_schema("hs_mig") as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_to_head_and_back_to_base(empty_engine: sa.Engine) -> None:
    assert tables(empty_engine) == set()
    migrate.upgrade(empty_engine)
    assert migrate.current_revision(empty_engine) == migrate.head_revision()
    unmodelled = migrate.UNMODELLED_TABLES if empty_engine.dialect.name == "postgresql" else frozenset()
    assert tables(empty_engine) == set(Base.metadata.tables) | unmodelled
    assert migrate.schema_differences(empty_engine) == []
    migrate.downgrade(empty_engine, "base")
    assert tables(empty_engine) == set()
    assert migrate.current_revision(empty_engine) is None
    migrate.upgrade(empty_engine)  # and up again: downgrade left nothing behind
    assert migrate.schema_differences(empty_engine) == []


def test_cli_upgrade_and_check(tmp_path: Path) -> None:
    app = create_app(TestConfig(DATABASE_URL=f"sqlite:///{tmp_path / 'cli.db'}"))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "Database at revision" in result.output
    assert runner.invoke(args=["db", "check"]).output.strip() == "Models and migrations agree."
    current = runner.invoke(args=["db", "current"]).output
    assert current.startswith(f"database: {migrate.head_revision()}")
    app.extensions["engine"].dispose()
