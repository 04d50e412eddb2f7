"""The ingest fast paths accept only what the schemas accept, and load it the same way."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from app.records.fast import fast_license, fast_usage, latest_accepted_day
from app.records.schemas import LicenseRecordSchema, UsageRecordSchema
from tests.support.examples import examples

pytestmark = pytest.mark.unit

LATEST = latest_accepted_day()
# Values that are sometimes valid, sometimes subtly not: the interesting edges of each type.
counts = st.one_of(st.integers(-3, 10_000), st.booleans(), st.floats(-1, 5), st.just("7"), st.none())
days = st.one_of(
    st.dates(dt.date(2000, 1, 1), LATEST + dt.timedelta(days=3)).map(dt.date.isoformat),
    st.dates(dt.date(2000, 1, 1), LATEST + dt.timedelta(days=3)),
    st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2030, 1, 1)),
    st.sampled_from(["2026-02-30", "2026-6-01", "20260601", "", "2026-06-01T00:00:00"]),
    st.none(),
    st.integers(),
)
accounts = st.one_of(st.text(max_size=130), st.integers(), st.none())
signals = st.one_of(
    st.dictionaries(st.sampled_from(["data_export", "Bad Name", "x" * 70, "admin_changed"]), counts, max_size=3),
    st.lists(st.integers(), max_size=2),
    st.none(),
)


valid_day = st.dates(dt.date(2000, 1, 1), LATEST).map(dt.date.isoformat)
valid_count = st.integers(0, 10_000)


def mutated(
    valid: st.SearchStrategy[dict[str, Any]], edges: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[Any]:
    """Valid records, and the same with one field replaced by an edge value, dropped, or an unknown one added."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        record = draw(valid)
        change = draw(st.sampled_from(["none", "edge", "drop", "unknown"]))
        name = draw(st.sampled_from(sorted(edges)))
        if change == "edge":
            record[name] = draw(edges[name])
        elif change == "drop":
            record.pop(name, None)
        elif change == "unknown":
            record["colour"] = "red"
        return record

    return build()


usage_records = mutated(
    st.fixed_dictionaries(
        {"account": st.text(min_size=1, max_size=128), "day": valid_day, "active_users": valid_count},
        optional={"logins": valid_count, "key_feature_uses": valid_count,
                  "signals": st.dictionaries(st.sampled_from(["data_export", "admin_changed"]), st.integers(1, 9))},
    ),
    {"account": accounts, "day": days, "active_users": counts, "logins": counts, "key_feature_uses": counts,
     "signals": signals},
)  # fmt: skip
license_records = mutated(
    st.fixed_dictionaries(
        {"account": st.text(min_size=1, max_size=128), "day": valid_day, "seats_purchased": valid_count,
         "seats_assigned": valid_count, "seats_active": valid_count}
    ),
    {"account": accounts, "day": days, "seats_purchased": counts, "seats_assigned": counts, "seats_active": counts},
)  # fmt: skip


def schema_load(schema: Any, record: Any) -> dict[str, Any] | None:
    try:
        return dict(schema.load(record))
    except ValidationError:
        return None


@settings(max_examples=examples(400), deadline=None)
@given(usage_records)
def test_fast_usage_never_accepts_what_the_schema_refuses(record: dict[str, Any]) -> None:
    fast = fast_usage(record, LATEST)
    if fast is not None:
        assert schema_load(UsageRecordSchema(), record) == fast


@settings(max_examples=examples(400), deadline=None)
@given(license_records)
def test_fast_license_never_accepts_what_the_schema_refuses(record: dict[str, Any]) -> None:
    fast = fast_license(record, LATEST)
    if fast is not None:
        assert schema_load(LicenseRecordSchema(), record) == fast


def test_plain_records_take_the_fast_path() -> None:
    usage = {"account": "acme", "day": "2026-06-01", "active_users": 3, "signals": {"data_export": 1}}
    assert fast_usage(usage, LATEST) == {
        "account": "acme", "day": dt.date(2026, 6, 1), "active_users": 3, "logins": 0, "key_feature_uses": 0,
        "signals": {"data_export": 1},
    }  # fmt: skip
    license_ = {"account": "acme", "day": "2026-06-01", "seats_purchased": 5, "seats_assigned": 4, "seats_active": 2}
    assert fast_license(license_, LATEST) is not None
    assert fast_usage({**usage, "active_users": -1}, LATEST) is None
    assert fast_usage([usage], LATEST) is None
