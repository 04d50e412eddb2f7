"""Running alembic from the app: upgrade, downgrade, current and the models-vs-migrations check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

import app.models  # noqa: F401 - registers every table on Base.metadata
from app.db import Base

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
#: Tables the migrations create without a model: PostgreSQL's watchlist and account page change
#: logs (migrations 0012 and 0018), written only by triggers and read by raw SQL
#: (app/services/watchlist/cache.py).
UNMODELLED_TABLES = frozenset({"watchlist_changes", "account_page_changes"})


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Autogenerate and the models check leave the unmodelled tables alone (not even reflected:
    SQLAlchemy knows no ``xid8`` type)."""
    return not (type_ == "table" and name in UNMODELLED_TABLES)


def alembic_config(url: str, connection: sa.Connection | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # "%" would be read as interpolation by configparser.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        command.upgrade(alembic_config(str(engine.url), conn), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    with engine.begin() as conn:
        command.downgrade(alembic_config(str(engine.url), conn), revision)


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def schema_differences(engine: sa.Engine) -> list[Any]:
    """What autogenerate would change to make the database match the models (empty when they agree)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
        return list(compare_metadata(context, Base.metadata))
