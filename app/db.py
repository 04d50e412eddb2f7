"""Database wiring: the declarative base, the engine and the session factory."""

from __future__ import annotations

import datetime as dt
import select
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g
from sqlalchemy import event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """An aware UTC datetime from one read back from the database (SQLite hands back naive UTC)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: sa.DateTime(timezone=True),
        dict[str, Any]: sa.JSON().with_variant(JSONB(), "postgresql"),
        list[float | None]: sa.JSON().with_variant(JSONB(), "postgresql"),
    }


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web process read while a scoring run writes; foreign keys are off by default.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, *, echo: bool = False) -> sa.Engine:
    """Create the engine for ``url``; SQLite gets WAL, foreign keys and a busy timeout."""
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if url.startswith("sqlite"):
        database = sa.make_url(url).database
        if database and database != ":memory:":
            # A new user's first command must not fail on a missing instance/ folder.
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        if url in {"sqlite://", "sqlite:///:memory:"}:
            # One shared connection so every session sees the same in-memory database.
            kwargs["poolclass"] = sa.pool.StaticPool
            kwargs["connect_args"] = {"check_same_thread": False}
        engine = sa.create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = sa.create_engine(url, **kwargs)
    if engine.dialect.driver == "psycopg" and hasattr(select, "poll"):  # no poll() on Windows
        # Instead of pool_pre_ping (a round trip to the server on every checkout, ~0.3 ms of a
        # watchlist page): a connection the server has closed since it was last used is dropped
        # at checkout by looking at its socket, and the pool opens a new one.
        event.listen(engine, "checkout", _closed_by_server)
        return engine
    engine.dispose()
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)  # elsewhere: the round trip


def _closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout: raise ``DisconnectionError`` (the pool then replaces the connection) when the
    server has closed it. An idle connection is sent nothing, so a readable socket means the server
    wrote before hanging up: a restart, ``pg_terminate_backend``, ``idle_session_timeout`` all send
    a FATAL message then EOF. No round trip: a poll of the socket with a zero timeout."""
    try:
        if dbapi_connection.closed or dbapi_connection.broken:
            raise sa.exc.DisconnectionError("connection closed")
        poller = select.poll()
        poller.register(dbapi_connection.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
        ready = poller.poll(0)
    except sa.exc.DisconnectionError:
        raise
    except Exception as error:  # a bad connection without a socket
        raise sa.exc.DisconnectionError(f"connection unusable: {error}") from error
    if ready:
        raise sa.exc.DisconnectionError("the server closed the connection")


def init_db(app: Flask) -> None:
    """Build the engine and session factory for ``app``; the request session closes at teardown."""
    engine = make_engine(app.config["DATABASE_URL"], echo=app.config.get("DATABASE_ECHO", False))
    app.extensions["engine"] = engine
    app.extensions["sessionmaker"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.teardown_appcontext(close_session)


def get_engine() -> sa.Engine:
    engine: sa.Engine = current_app.extensions["engine"]
    return engine


def session_factory() -> sessionmaker[Session]:
    factory: sessionmaker[Session] = current_app.extensions["sessionmaker"]
    return factory


def learning_cache_dir() -> Path:
    """Where learning keeps the day's observations (``LEARNING_CACHE_DIR``, by default the
    instance folder's cache/learning): a second suggestion on the same day reads them back."""
    configured = current_app.config.get("LEARNING_CACHE_DIR")
    return Path(configured) if configured else Path(current_app.instance_path) / "cache" / "learning"


def get_session() -> Session:
    """The request's session, created on first use (flaskr's ``get_db``)."""
    if "db_session" not in g:
        g.db_session = session_factory()()
    session: Session = g.db_session
    return session


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
