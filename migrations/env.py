"""Alembic environment: metadata from ``app.models``, the URL from ``config.py`` (never alembic.ini)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

import app.models  # noqa: F401 - registers every table on Base.metadata
from app.db import Base
from app.migrate import include_name
from config import config_from_env

target_metadata = Base.metadata
alembic_config = context.config


def database_url() -> str:
    url = alembic_config.get_main_option("sqlalchemy.url")
    return url or config_from_env().DATABASE_URL


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_name=include_name,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_with_connection(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates tables when a revision needs it.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = alembic_config.attributes.get("connection")
    if connection is not None:
        run_with_connection(connection)
        return
    engine = sa.create_engine(database_url(), poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        run_with_connection(conn)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
