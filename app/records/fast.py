"""Fast paths for the daily kinds, which arrive by the hundred thousand.

A fast loader accepts only records that are plainly valid (exact types, ISO dates, in range) and
returns what the record schema would have loaded; anything else returns None and goes through the
schema, which gives the exact messages. So a fast loader never accepts what the schema refuses
(tests/unit/test_ingest_fast.py checks that property).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from app.records.schemas import FUTURE_SLACK, MAX_EXTERNAL_ID, SIGNAL_NAME_PATTERN
from app.validation import BAD_TEXT, MAX_INT

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_SIGNAL_NAME = re.compile(SIGNAL_NAME_PATTERN)


def latest_accepted_day() -> dt.date:
    """The newest day a record may carry (today in UTC plus the slack)."""
    return dt.datetime.now(dt.UTC).date() + FUTURE_SLACK


def _day(value: Any, latest: dt.date) -> dt.date | None:
    if type(value) is dt.date:  # from a SQL source; the schema's Date field takes it as it is
        return value if value <= latest else None
    if type(value) is not str or not _ISO_DAY.match(value):
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return day if day <= latest else None


def _count(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_INT


def _account(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= MAX_EXTERNAL_ID and not BAD_TEXT.search(value)


_USAGE_FIELDS = frozenset({"account", "day", "active_users", "logins", "key_feature_uses", "signals"})
_LICENSE_FIELDS = frozenset({"account", "day", "seats_purchased", "seats_assigned", "seats_active"})


def fast_usage(record: Any, latest: dt.date) -> dict[str, Any] | None:
    """A plainly valid usage record as ``UsageRecordSchema`` loads it, or None."""
    if type(record) is not dict or not record.keys() <= _USAGE_FIELDS:
        return None
    account, active = record.get("account"), record.get("active_users")
    logins, key_uses = record.get("logins", 0), record.get("key_feature_uses", 0)
    day = _day(record.get("day"), latest)
    if day is None or not (_account(account) and _count(active) and _count(logins) and _count(key_uses)):
        return None
    if "signals" not in record:
        signals = {}
    elif type(signals := record["signals"]) is not dict or not all(
        type(name) is str and _SIGNAL_NAME.match(name) and type(count) is int and 1 <= count <= MAX_INT
        for name, count in signals.items()
    ):
        return None
    else:
        signals = dict(signals)
    return {
        "account": account,
        "day": day,
        "active_users": active,
        "logins": logins,
        "key_feature_uses": key_uses,
        "signals": signals,
    }


def fast_license(record: Any, latest: dt.date) -> dict[str, Any] | None:
    """A plainly valid license snapshot as ``LicenseRecordSchema`` loads it, or None."""
    if type(record) is not dict or record.keys() != _LICENSE_FIELDS:
        return None
    day = _day(record["day"], latest)
    seats = (record["seats_purchased"], record["seats_assigned"], record["seats_active"])
    if day is None or not _account(record["account"]) or not all(_count(v) for v in seats):
        return None
    return {
        "account": record["account"],
        "day": day,
        "seats_purchased": seats[0],
        "seats_assigned": seats[1],
        "seats_active": seats[2],
    }


FAST_LOADERS = {"usage": fast_usage, "licenses": fast_license}
