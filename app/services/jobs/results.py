"""The stored results of queued jobs as plain JSON data: the bodies their endpoints answered when
they were synchronous (the API answers with the stored JSON as it is).

Each result keeps exactly the fields of the matching answer in ``app.schemas`` (``RunSummary``,
``Suggestions``, ``ChurnModel``), in the same order, converted as the schema dumps them: whole
numbers with ``int``, numbers with ``float``, dates and moments (UTC) in ISO form, ``None`` kept.
``tests/unit/test_job_results.py`` holds each result to the schema's dump.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

Convert = Callable[[Any], Any]


def _or_none(convert: Convert) -> Convert:
    return lambda value: None if value is None else convert(value)


def _utc_iso(moment: dt.datetime) -> str:
    moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    return moment.isoformat()


INT = _or_none(int)
FLOAT = _or_none(float)
STR = _or_none(str)
DATE = _or_none(lambda day: day.isoformat())
UTC_MOMENT = _or_none(_utc_iso)
PLAIN = _or_none(dict)  # a mapping passed on as it is


def _mapping(values: Convert = lambda value: value) -> Convert:
    return _or_none(lambda mapping: {str(key): values(value) for key, value in mapping.items()})


def _list(item: Convert) -> Convert:
    return _or_none(lambda items: [item(value) for value in items])


def _fields(**spec: Convert) -> Convert:
    """A mapping reduced to ``spec``'s fields (those present), each converted."""
    return _or_none(lambda data: {name: convert(data[name]) for name, convert in spec.items() if name in data})


_RUN_SUMMARY = _fields(
    as_of=DATE,
    config_version=INT,
    accounts_scored=INT,
    accounts_without_score=INT,
    by_band=_mapping(INT),
    by_stage=_mapping(INT),
    accounts_backfilled=INT,
    events=INT,
    events_by_rule=_mapping(INT),
    play_runs=INT,
    play_runs_by_play=_mapping(INT),
    tasks=INT,
    seconds=_mapping(FLOAT),
)

_RANKING = _fields(
    observations=INT, churned=INT, auc=FLOAT, top_decile_lift=FLOAT, churned_in_poor_share=FLOAT, note=STR
)
_WEIGHTS = _mapping(_mapping(FLOAT))
_SUGGESTIONS = _fields(
    as_of=DATE,
    horizon_days=INT,
    periodic_months=INT,
    active_version=INT,
    data=PLAIN,
    stages=_list(
        _fields(stage=STR, source=STR, churned=INT, not_churned=INT, coefficients=_mapping(FLOAT), message=STR)
    ),
    flags=_list(_fields(stage=STR, measure=STR, configured_direction=STR, coefficient=FLOAT, message=STR)),
    messages=_list(STR),
    validation=_fields(split=PLAIN, proposed=_RANKING, active=_RANKING, messages=_list(STR)),
    churned_in_poor_share=_fields(proposed=FLOAT, active=FLOAT),
    weights=_fields(proposed=_WEIGHTS, active=_WEIGHTS),
    new_version=_fields(config=PLAIN, comment=STR),
    suggested_author=STR,
    seconds=_mapping(FLOAT),
)

_CHURN_MODEL = _fields(
    version=INT,
    trained_at=UTC_MOMENT,
    trained_by=STR,
    horizon_days=INT,
    config_version=INT,
    measure_names=_list(STR),
    feature_names=_list(STR),
    params=PLAIN,
    counts=PLAIN,
    format=INT,
    kind=STR,
    validation=PLAIN,
    seconds=_mapping(FLOAT),
)


def run_summary_result(as_of: dt.date, counts: Mapping[str, Any]) -> dict[str, Any]:
    """A scoring run's summary, as an activation answered it."""
    result: dict[str, Any] = _RUN_SUMMARY({"as_of": as_of, **counts})
    return result


def suggestions_result(suggestions: Mapping[str, Any]) -> dict[str, Any]:
    """Suggested weights, as ``POST /scoring/suggestions`` answered them."""
    result: dict[str, Any] = _SUGGESTIONS(suggestions)
    return result


def churn_model_result(trained: Mapping[str, Any]) -> dict[str, Any]:
    """A trained churn model, as the training endpoint answered it."""
    result: dict[str, Any] = _CHURN_MODEL(trained)
    return result
