"""Watchlist pages kept per worker, served again only while provably current (PostgreSQL).

CSMs and dashboards read the same few watchlist pages over and over, and what a page shows
changes at a scoring run, or when someone pins, overrides, opens or closes a play run, finishes
a task, changes a user or an account. So a worker keeps the JSON body of the pages it served
(an LRU of ``WATCHLIST_CACHE_ENTRIES``) and serves one again when nothing it was read from has
changed since, which costs one indexed query instead of the page's query and its Python.

Exact, not "fresh enough": migration 0012 puts a statement-level trigger on every table a page
reads (``TABLES`` there), recording the id of each writing transaction in ``watchlist_changes``.
A page is read in a REPEATABLE READ transaction together with that transaction's snapshot
(``pg_current_snapshot()``). A committed transaction is either visible in that snapshot (the
page includes its writes) or not (the page may lack them): so the page is current exactly when
no row of ``watchlist_changes`` is invisible in its snapshot, which is the query ``_changed_query``
builds and every hit runs. A transaction still open when the page was read, that commits later, is
caught the same way. Writers do not wait on each other: each inserts its own key.

Time also changes a page, with no write at all: a pin or an override reaching its expiry (an
entry is kept only until the next expiry after it was read), and the day (``days_to_renewal``
and the renewal filter; the day is part of the key). Entries are dropped after ``MAX_AGE``
regardless, and change rows older than ``KEEP_CHANGES`` are pruned (at most hourly, by a
worker filling an entry): a transaction that stays open longer than that between its first
write and its commit could leave an entry stale for up to ``MAX_AGE``.

The account page (app/web/pages.py) is kept the same way, checked against two logs: this one and
``account_page_changes`` (migration 0018: the score history, events, alerts and raw data an
account page shows beyond what a watchlist page reads).

SQLite has no snapshots to compare: there nothing is cached.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

import sqlalchemy as sa

#: An entry is read again at most this long after it was filled (seconds).
MAX_AGE = 600.0
#: Change rows older than this are pruned (see the module docstring).
KEEP_CHANGES = dt.timedelta(days=1)
PRUNE_EVERY = 3600.0  # seconds between one worker's prunes

#: The change logs a watchlist page is read from (migration 0012).
WATCHLIST_LOGS = ("watchlist_changes",)
#: The account page's (migrations 0012 and 0018): everything a watchlist page reads, and the score
#: history, events, alerts and raw data besides.
ACCOUNT_PAGE_LOGS = ("watchlist_changes", "account_page_changes")

#: Run on the driver's own connection (psycopg, prepared after five runs): the statement is
#: constant and its answer one boolean, and SQLAlchemy's execution set-up cost as much as the
#: round trip (~0.3 ms of a ~1.9 ms hit).
_CHANGED_ONE = """
    EXISTS (
        SELECT 1 FROM {log}
        WHERE xid >= pg_snapshot_xmin(CAST(%(snapshot)s AS pg_snapshot))
          AND NOT pg_visible_in_snapshot(xid, CAST(%(snapshot)s AS pg_snapshot))
    )
"""


def _changed_query(logs: tuple[str, ...]) -> str:
    """Whether any of ``logs`` holds a transaction invisible in a snapshot (one round trip)."""
    return "SELECT " + " OR ".join(_CHANGED_ONE.format(log=log) for log in logs)


_STAMP = sa.text(
    """
    SELECT pg_current_snapshot()::text,
           LEAST(
               (SELECT min(expires_at) FROM watchlist_pins WHERE removed_at IS NULL AND expires_at > :now),
               (SELECT min(expires_at) FROM band_overrides WHERE revoked_at IS NULL AND expires_at > :now)
           )
    """
)
_PRUNE = "DELETE FROM {log} WHERE changed_at < :before"
_HAS_LOG = sa.text("SELECT to_regclass(:log) IS NOT NULL")


@dataclass(frozen=True, slots=True)
class Stamp:
    """What a page was read in: its snapshot, and when the next pin or override expires after."""

    snapshot: str
    valid_until: dt.datetime | None
    filled_at: float  # time.monotonic()


class PageCache:
    """One worker's cached bodies by request key, current while none of ``logs`` has a change
    the body's snapshot did not see (see the module docstring)."""

    def __init__(self, max_entries: int, logs: tuple[str, ...] = WATCHLIST_LOGS) -> None:
        self.max_entries = max_entries
        self.logs = logs
        self._changed = _changed_query(logs)
        self._entries: OrderedDict[Hashable, tuple[Stamp, bytes]] = OrderedDict()
        self._lock = threading.Lock()  # a threaded worker shares the cache between requests
        self._last_prune = float("-inf")
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, connection: sa.Connection, key: Hashable, now: dt.datetime) -> bytes | None:
        """The body kept for ``key`` if it is still current (one query), else None."""
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            stamp, body = entry
            if (
                (stamp.valid_until is None or now < stamp.valid_until)
                and time.monotonic() - stamp.filled_at < MAX_AGE
                and not _changed_since(connection, self._changed, stamp.snapshot)
            ):
                with self._lock:
                    if key in self._entries:
                        self._entries.move_to_end(key)
                    self.hits += 1
                return body
            with self._lock:
                self._entries.pop(key, None)
        self.misses += 1
        return None

    def stamp(self, connection: sa.Connection, now: dt.datetime) -> Stamp:
        """Inside the REPEATABLE READ transaction the page is read in: its snapshot and expiry."""
        snapshot, valid_until = connection.execute(_STAMP, {"now": now}).one()
        return Stamp(snapshot, valid_until, time.monotonic())

    def put(self, key: Hashable, stamp: Stamp, body: bytes) -> None:
        with self._lock:
            self._entries[key] = (stamp, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def prune_due(self) -> bool:
        """Whether this worker should prune old change rows now (and note that it does)."""
        clock = time.monotonic()
        with self._lock:
            if clock - self._last_prune < PRUNE_EVERY:
                return False
            self._last_prune = clock
            return True

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _changed_since(connection: sa.Connection, query: str, snapshot: str) -> bool:
    driver = connection.connection.driver_connection  # a psycopg connection: the cache is PostgreSQL only
    row = driver.execute(query, {"snapshot": snapshot}).fetchone()  # type: ignore[union-attr]
    return bool(row[0])


def prune_changes(connection: sa.Connection, now: dt.datetime, logs: tuple[str, ...] = WATCHLIST_LOGS) -> int:
    """Delete change rows older than ``KEEP_CHANGES`` from ``logs``; the number deleted."""
    return sum(
        connection.execute(sa.text(_PRUNE.format(log=log)), {"before": now - KEEP_CHANGES}).rowcount for log in logs
    )


def change_log_exists(connection: sa.Connection, logs: tuple[str, ...] = WATCHLIST_LOGS) -> bool:
    """Whether the database has every one of the change logs (PostgreSQL at migration 0012, 0018 or later)."""
    return connection.dialect.name == "postgresql" and all(
        connection.execute(_HAS_LOG, {"log": log}).scalar_one() for log in logs
    )


__all__ = [
    "ACCOUNT_PAGE_LOGS",
    "MAX_AGE",
    "WATCHLIST_LOGS",
    "PageCache",
    "Stamp",
    "change_log_exists",
    "prune_changes",
]
