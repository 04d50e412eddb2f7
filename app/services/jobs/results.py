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

_INTERVAL = _fields(value=FLOAT, low=FLOAT, high=FLOAT)
_DECILE = _fields(decile=INT, observations=INT, churned=INT, churn_rate=FLOAT, low=FLOAT, high=FLOAT)
_SIGNAL = _fields(
    measure=STR,
    label=STR,
    definition=PLAIN,
    direction=STR,
    coverage=FLOAT,
    train_auc=FLOAT,
    test_auc=_INTERVAL,
    top_decile_lift=FLOAT,
    deciles=_list(_DECILE),
    group=INT,
    chosen=_or_none(bool),
)
_SUGGESTIONS = _fields(
    as_of=DATE,
    horizon_days=INT,
    periodic_months=INT,
    active_version=INT,
    data=PLAIN,
    measures=_list(_fields(measure=PLAIN, reason=STR, weights=_mapping(FLOAT))),
    bands=PLAIN,
    messages=_list(STR),
    validation=_fields(
        folds=_list(PLAIN),
        comparison=_fields(
            observations=INT,
            churned=INT,
            accounts=INT,
            draws=INT,
            auc=_mapping(_INTERVAL),
            reference=STR,
            difference_vs_reference=_mapping(_INTERVAL),
        ),
        top_decile_lift=_mapping(FLOAT),
        verdict=_fields(improvement=_or_none(bool), worse=_or_none(bool), message=STR),
        messages=_list(STR),
    ),
    signals=_list(_SIGNAL),
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
    validation=PLAIN,
    seconds=_mapping(FLOAT),
)


def run_summary_result(as_of: dt.date, counts: Mapping[str, Any]) -> dict[str, Any]:
    """A scoring run's summary, as an activation answered it."""
    result: dict[str, Any] = _RUN_SUMMARY({"as_of": as_of, **counts})
    return result


def suggestions_result(suggestions: Mapping[str, Any]) -> dict[str, Any]:
    """A suggested config, as the ``Suggestions`` schema dumps it."""
    result: dict[str, Any] = _SUGGESTIONS(suggestions)
    return result


def churn_model_result(trained: Mapping[str, Any]) -> dict[str, Any]:
    """A trained churn model, as the training endpoint answered it."""
    result: dict[str, Any] = _CHURN_MODEL(trained)
    return result
