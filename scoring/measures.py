"""The measure language: what a measure computes, checked as configuration, and its 0-100 mapping.

A measure is an entry of the scoring config. It names a **source** (a raw table's field, a named
product signal or an account field) and a computation over a window of days ending on the scored
day, or it is the **ratio** of two other measures:

``source``       ``usage.active_users|logins|key_feature_uses``, ``signal.<name>``,
                 ``license.purchased|assigned|active``,
                 ``tickets.opened|open|open_weighted|sla_breaches|days_to_close``,
                 ``feedback.nps|csat|csm_sentiment``, ``goals.achieved_share|achieved|missed``,
                 ``account.tenure_days|arr|seats|days_to_renewal``.
``aggregate``    ``sum``, ``count`` (signals: events, as ``sum``; feedback: responses), ``mean``,
                 ``active_days``, ``latest``, ``max``, ``nps`` (NPS of the responses); which ones a
                 source allows is in ``SOURCES``.
``window_days``  the window, 1-730 days ending on the scored day: a record on day ``as_of - N + 1``
                 counts, one on ``as_of - N`` does not.
``per``          normalisation: ``active_user``, ``login`` (the usage sums over the same window),
                 ``seat`` (the account's seats), ``licensed_seat`` (the latest license snapshot's
                 purchased seats, else the account's), ``day`` (days of the window).
``form``         ``value``; ``change_pct`` / ``change_diff`` against the window before; ``days_since``
                 the last occurrence within the window (window + 1 when none).
``transform``    ``log1p`` (sign-preserving: ``sign(x) * log(1 + |x|)``).
``missing``      ``skip``: no data leaves the measure out and re-weights the rest; ``zero``: no data
                 counts as 0.
``mapping``      ``thresholds`` (ascending points scored evenly 0-100) or ``percentile`` (the
                 account's place among the scored day's portfolio, through the day's 0, 5, ..., 100th
                 percentiles).

Pure: the pipeline (``app/pipeline/measures.py``) computes the values set-based from the tables;
this module defines, checks and post-processes them. docs/scoring.md is the reference.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import numpy as np

#: Bounds that keep the interpolation exact (no overflow, no division by a vanishing gap).
MAX_THRESHOLD = 1e9
MIN_THRESHOLD_GAP = 1e-9
MAX_WINDOW_DAYS = 730
#: Percentile mapping needs a portfolio of at least this many accounts to mean anything.
MIN_PERCENTILE_ACCOUNTS = 20
MEASURE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
SIGNAL_NAME = re.compile(r"^[^\x00-\x1f]{1,64}$")


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class MeasureGroup(StrEnum):
    OUTCOMES = "outcomes"
    ADOPTION = "adoption"
    PRODUCT = "product"
    LICENSE = "license"
    SUPPORT = "support"
    FEEDBACK = "feedback"
    ACCOUNT = "account"


class Form(StrEnum):
    VALUE = "value"
    CHANGE_PCT = "change_pct"
    CHANGE_DIFF = "change_diff"
    DAYS_SINCE = "days_since"


class Missing(StrEnum):
    SKIP = "skip"
    ZERO = "zero"


class Mapping01(StrEnum):
    THRESHOLDS = "thresholds"
    PERCENTILE = "percentile"


PERS = ("active_user", "login", "seat", "licensed_seat", "day")
TRANSFORMS = ("log1p",)
TICKET_PRIORITIES = ("urgent", "high", "normal", "low")


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a source offers: its table family, the aggregates it allows (the first is the default),
    whether it needs a window, whether it is a daily series (``mean`` is per day of the window,
    change and days-since apply), and a description for the catalog."""

    family: str
    aggregates: tuple[str, ...]
    windowed: bool
    daily: bool
    description: str


_DAILY = ("sum", "mean", "active_days", "latest", "max")
SOURCES: dict[str, SourceInfo] = {
    "usage.active_users": SourceInfo("usage", _DAILY, True, True, "Active users per day (daily usage)."),
    "usage.logins": SourceInfo("usage", _DAILY, True, True, "Logins per day (daily usage)."),
    "usage.key_feature_uses": SourceInfo("usage", _DAILY, True, True, "Key-feature uses per day (daily usage)."),
    "license.purchased": SourceInfo("license", ("latest", "mean", "max"), False, False, "Seats purchased."),
    "license.assigned": SourceInfo("license", ("latest", "mean", "max"), False, False, "Seats assigned."),
    "license.active": SourceInfo("license", ("latest", "mean", "max"), False, False, "Seats active."),
    "tickets.opened": SourceInfo("tickets", ("sum",), True, False, "Tickets opened in the window."),
    "tickets.open": SourceInfo("tickets", ("sum",), True, False, "Tickets opened in the window, open at the day."),
    "tickets.open_weighted": SourceInfo(
        "tickets", ("sum",), True, False, "Open tickets weighted by priority (urgent 4, high 2, normal 1, low 0.5)."
    ),
    "tickets.sla_breaches": SourceInfo(
        "tickets", ("sum",), True, False, "Tickets opened in the window that breached SLA."
    ),
    "tickets.days_to_close": SourceInfo(
        "tickets", ("mean", "max"), True, False, "Days from open to close of the tickets closed in the window."
    ),
    "feedback.nps": SourceInfo("feedback", ("nps", "mean", "latest", "count"), True, False, "NPS responses (0-10)."),
    "feedback.csat": SourceInfo("feedback", ("mean", "latest", "max", "count"), True, False, "CSAT ratings (1-5)."),
    "feedback.csm_sentiment": SourceInfo(
        "feedback", ("latest", "mean", "max", "count"), True, False, "The CSM's sentiment ratings (1-5)."
    ),
    "goals.achieved_share": SourceInfo(
        "goals", ("latest",), False, False, "Success-plan goals achieved out of those achieved, missed or due."
    ),
    "goals.achieved": SourceInfo("goals", ("latest",), False, False, "Success-plan goals achieved by the day."),
    "goals.missed": SourceInfo("goals", ("latest",), False, False, "Goals due by the day and not achieved."),
    "account.tenure_days": SourceInfo("account", ("latest",), False, False, "Days since the contract start."),
    "account.arr": SourceInfo("account", ("latest",), False, False, "Annual recurring revenue."),
    "account.seats": SourceInfo("account", ("latest",), False, False, "Seats purchased (account data)."),
    "account.days_to_renewal": SourceInfo(
        "account", ("latest",), False, False, "Days until the renewal date (negative once passed)."
    ),
}
SIGNAL_PREFIX = "signal."
SIGNAL_SOURCE = SourceInfo("signal", ("sum", "count", "mean", "active_days", "latest", "max"), True, True, "")


def source_info(source: str) -> SourceInfo | None:
    """The source's description, ``signal.<name>`` included (None for an unknown source)."""
    if source.startswith(SIGNAL_PREFIX):
        return SIGNAL_SOURCE if SIGNAL_NAME.match(source[len(SIGNAL_PREFIX) :]) else None
    return SOURCES.get(source)


@dataclass(frozen=True, slots=True)
class Measure:
    """One measure of a scoring config: what it computes (see the module doc) and how it scores."""

    name: str
    group: MeasureGroup
    direction: Direction
    thresholds: tuple[float, ...] = ()
    label: str = ""
    source: str = ""
    aggregate: str = ""  # empty: the source's default
    window_days: int | None = None
    per: str | None = None
    form: Form = Form.VALUE
    ratio: tuple[str, str] | None = None
    transform: str | None = None
    data_days: int | None = None  # has data only with a source row within this many days
    priority: tuple[str, ...] = ()  # tickets: only these priorities
    missing: Missing = Missing.SKIP
    mapping: Mapping01 = Mapping01.THRESHOLDS

    @property
    def effective_aggregate(self) -> str:
        info = source_info(self.source)
        return self.aggregate or (info.aggregates[0] if info else "")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: the fields that differ from their defaults, name and scoring always."""
        out: dict[str, Any] = {"name": self.name, "label": self.label, "group": self.group.value}
        if self.ratio is not None:
            out["ratio"] = list(self.ratio)
        else:
            out["source"] = self.source
            out["aggregate"] = self.effective_aggregate
            if self.window_days is not None:
                out["window_days"] = self.window_days
        for key, default in (("per", None), ("form", Form.VALUE), ("transform", None), ("data_days", None)):
            value = getattr(self, key)
            if value != default:
                out[key] = value.value if isinstance(value, StrEnum) else value
        if self.priority:
            out["priority"] = list(self.priority)
        out["missing"] = self.missing.value
        out["mapping"] = self.mapping.value
        out["direction"] = self.direction.value
        if self.mapping is Mapping01.THRESHOLDS or self.thresholds:
            out["thresholds"] = list(self.thresholds)
        return out


#: The measures of the first configs, which named a measure and nothing else: a stored config
#: whose measure has no ``source`` and no ``ratio`` is read with these definitions, which compute
#: exactly what the code computed then. (The ticket lookback was 366 days: kept, so scores match.)
LEGACY_DEFINITIONS: dict[str, dict[str, Any]] = {
    "goals_achieved_ratio": {"source": "goals.achieved_share"},
    "active_user_ratio": {"source": "usage.active_users", "aggregate": "mean", "window_days": 30, "per": "seat"},
    "usage_trend_pct": {"source": "usage.active_users", "aggregate": "sum", "window_days": 30, "form": "change_pct"},
    "key_feature_adoption_ratio": {
        "source": "usage.key_feature_uses",
        "aggregate": "sum",
        "window_days": 30,
        "per": "login",
    },
    "days_since_last_login": {"source": "usage.logins", "window_days": 60, "form": "days_since"},
    "license_utilization_ratio": {"source": "license.active", "aggregate": "latest", "per": "licensed_seat"},
    "open_ticket_load": {"source": "tickets.open_weighted", "window_days": 366, "data_days": 366},
    "sla_breaches_90d": {"source": "tickets.sla_breaches", "window_days": 90, "data_days": 366},
    "nps": {"source": "feedback.nps", "aggregate": "nps", "window_days": 180},
    "csat_avg": {"source": "feedback.csat", "aggregate": "mean", "window_days": 180},
    "csm_sentiment": {"source": "feedback.csm_sentiment", "aggregate": "latest", "window_days": 180},
}


def measure_from_dict(data: Mapping[str, Any]) -> Measure:
    """Read one measure's JSON form (a legacy entry, a name alone, gets its old definition)."""
    data = dict(data)
    if "source" not in data and "ratio" not in data and data.get("name") in LEGACY_DEFINITIONS:
        data = {**LEGACY_DEFINITIONS[data["name"]], **data}
    ratio = data.get("ratio")
    window = data.get("window_days")
    info = source_info(data.get("source") or "")
    if not data.get("aggregate") and info is not None and ratio is None:
        data["aggregate"] = info.aggregates[0]  # spelled out, so equal measures compare equal
    data_days = data.get("data_days")
    return Measure(
        name=data["name"],
        label=data.get("label", "") or "",
        group=MeasureGroup(data["group"]),
        direction=Direction(data["direction"]),
        thresholds=tuple(float(t) for t in data.get("thresholds") or ()),
        source=data.get("source", "") or "",
        aggregate=data.get("aggregate", "") or "",
        window_days=None if window is None else int(window),
        per=data.get("per"),
        form=Form(data.get("form", Form.VALUE)),
        ratio=None if ratio is None else (str(ratio[0]), str(ratio[1])),
        transform=data.get("transform"),
        data_days=None if data_days is None else int(data_days),
        priority=tuple(data.get("priority") or ()),
        missing=Missing(data.get("missing", Missing.SKIP)),
        mapping=Mapping01(data.get("mapping", Mapping01.THRESHOLDS)),
    )


#: The fields that decide a measure's raw value (the others only map it to 0-100 or name it).
COMPUTATION_FIELDS = (
    "source",
    "aggregate",
    "window_days",
    "per",
    "form",
    "ratio",
    "transform",
    "data_days",
    "priority",
    "missing",
)


def same_values(a: Measure, b: Measure) -> bool:
    """Whether two measures compute the same raw values (a ratio's parts are compared by name)."""
    return all(getattr(a, key) == getattr(b, key) for key in COMPUTATION_FIELDS)


def stale_measures(target: tuple[Measure, ...], stored: tuple[Measure, ...]) -> list[Measure]:
    """The measures of ``target`` whose raw values rows stored under ``stored`` do not hold: new
    names, changed computations, and ratios over either."""
    have = {m.name: m for m in stored}
    stale: set[str] = set()
    for m in evaluation_order(target):
        old = have.get(m.name)
        if old is None or not same_values(m, old) or any(part in stale for part in m.ratio or ()):
            stale.add(m.name)
    return [m for m in target if m.name in stale]


# --- checking ------------------------------------------------------------------------------------


def check_measures(measures: tuple[Measure, ...]) -> dict[str, list[str]]:
    """Meaning errors of a measure list by field path (``measures.3.window_days``); empty when valid."""
    errors: dict[str, list[str]] = {}

    def add(path: str, message: str) -> None:
        errors.setdefault(path, []).append(message)

    names: dict[str, int] = {}
    for i, m in enumerate(measures):
        if not MEASURE_NAME.match(m.name):
            add(f"measures.{i}.name", "A measure name is a lowercase letter, then letters, digits or _ (64 at most).")
        elif m.name in names:
            add(f"measures.{i}.name", f"Measure {m.name!r} is listed twice.")
        names.setdefault(m.name, i)
    for i, m in enumerate(measures):
        for path, message in _check_one(m, names):
            add(f"measures.{i}.{path}", message)
    for i, cycle in _cycles(measures, names):
        add(f"measures.{i}.ratio", "Circular ratio: " + " -> ".join(cycle) + ".")
    if not measures:
        add("measures", "At least one measure is needed.")
    return errors


def _check_one(m: Measure, names: Mapping[str, int]) -> Iterable[tuple[str, str]]:
    if m.ratio is not None:
        yield from _check_ratio(m, names)
    else:
        yield from _check_source(m)
    if m.per is not None and m.per not in PERS:
        yield "per", f"Unknown normalisation {m.per!r}; known: {', '.join(PERS)}."
    if m.transform is not None and m.transform not in TRANSFORMS:
        yield "transform", f"Unknown transform {m.transform!r}; known: {', '.join(TRANSFORMS)}."
    if m.data_days is not None and not 1 <= m.data_days <= MAX_WINDOW_DAYS:
        yield "data_days", f"Must be between 1 and {MAX_WINDOW_DAYS} days."
    if m.mapping is Mapping01.THRESHOLDS or m.thresholds:
        message = _check_thresholds(m.thresholds)
        if message:
            yield "thresholds", message


def _check_ratio(m: Measure, names: Mapping[str, int]) -> Iterable[tuple[str, str]]:
    assert m.ratio is not None
    if m.source:
        yield "source", "A ratio measure has no source of its own."
    numerator, denominator = m.ratio
    if numerator == denominator:
        yield "ratio", "The ratio of a measure to itself is always 1."
    for part in (numerator, denominator):
        if part not in names:
            yield "ratio", f"Unknown measure {part!r} in the ratio."
        elif part == m.name:
            yield "ratio", "A measure cannot be a ratio of itself."
    if m.form is not Form.VALUE:
        yield "form", "A ratio measure has the value form only."
    if m.per is not None:
        yield "per", "A ratio measure is not normalised."
    if m.window_days is not None:
        yield "window_days", "A ratio measure has no window of its own."


def _check_source(m: Measure) -> Iterable[tuple[str, str]]:
    info = source_info(m.source)
    if not m.source:
        yield "source", f"Measure {m.name!r} needs a source or a ratio (docs/scoring.md)."
        return
    if info is None:
        known = ", ".join([*SOURCES, "signal.<name>"])
        yield "source", f"Unknown source {m.source!r}; known: {known}."
        return
    if m.aggregate and m.aggregate not in info.aggregates:
        yield "aggregate", f"{m.source} allows: {', '.join(info.aggregates)}."
    if m.window_days is not None and not 1 <= m.window_days <= MAX_WINDOW_DAYS:
        yield "window_days", f"A window is between 1 and {MAX_WINDOW_DAYS} days."
    elif m.window_days is None and info.windowed:
        yield "window_days", f"{m.source} needs a window (1-{MAX_WINDOW_DAYS} days)."
    elif m.window_days is not None and info.family in ("goals", "account"):
        yield "window_days", f"{m.source} is a value as of the day: it has no window."
    if m.form in (Form.CHANGE_PCT, Form.CHANGE_DIFF) and not info.daily:
        yield "form", f"{m.form.value} applies to daily series (usage, signals)."
    if m.form is Form.DAYS_SINCE and not (info.daily or info.family in ("tickets", "feedback")):
        yield "form", "days_since applies to usage, signals, tickets and feedback."
    if m.data_days is not None and info.family not in ("usage", "signal", "tickets", "feedback"):
        yield (
            "data_days",
            f"{m.source} has data whenever it has a value: data_days applies to usage, signals, tickets and feedback.",
        )
    if m.form is not Form.VALUE and m.per is not None:
        yield "per", f"The {m.form.value} form is not normalised."
    if m.form in (Form.CHANGE_PCT, Form.CHANGE_DIFF) and m.effective_aggregate == "latest":
        yield "aggregate", "A change compares windows: use sum, mean, active_days or max."
    if m.per == "day" and not info.daily:
        yield "per", "Per day of the window applies to daily series (usage, signals)."
    if m.per in ("active_user", "login") and not info.windowed:
        yield "per", f"Per {m.per} needs a windowed source."
    if m.priority:
        if info.family != "tickets":
            yield "priority", "Only ticket sources filter by priority."
        bad = [p for p in m.priority if p not in TICKET_PRIORITIES]
        if bad:
            yield "priority", f"Unknown priorities {bad}; known: {', '.join(TICKET_PRIORITIES)}."


def _check_thresholds(thresholds: tuple[float, ...]) -> str | None:
    t = np.asarray(thresholds, dtype=np.float64)
    if t.size < 2:
        return "At least two thresholds are needed."
    if not np.all(np.isfinite(t)):
        return "Thresholds must be finite numbers."
    if np.any(np.abs(t) > MAX_THRESHOLD):
        return f"Thresholds must lie within +-{MAX_THRESHOLD:g}."
    if not np.all(np.diff(t) > 0):
        return "Thresholds must be strictly ascending."
    if np.any(np.diff(t) < MIN_THRESHOLD_GAP):
        return f"Thresholds must be at least {MIN_THRESHOLD_GAP:g} apart."
    return None


def _cycles(measures: tuple[Measure, ...], names: Mapping[str, int]) -> list[tuple[int, list[str]]]:
    """Each measure on a ratio cycle, with the cycle (walked from it)."""
    by_name = {m.name: m for m in measures}
    found = []
    for i, m in enumerate(measures):
        if m.ratio is None:
            continue
        path = _cycle_from(m.name, by_name)
        if path:
            found.append((i, path))
    return found


def _cycle_from(start: str, by_name: Mapping[str, Measure]) -> list[str] | None:
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        measure = by_name.get(name)
        if measure is None or measure.ratio is None:
            continue
        for part in measure.ratio:
            if part == start:
                return [*path, part]
            if part not in seen and part != name:
                seen.add(part)
                stack.append((part, [*path, part]))
    return None


def evaluation_order(measures: tuple[Measure, ...]) -> list[Measure]:
    """Source measures first, then ratios after the measures they read (a checked, acyclic list)."""
    by_name = {m.name: m for m in measures}
    done: set[str] = set()
    order: list[Measure] = []

    def visit(m: Measure) -> None:
        if m.name in done:
            return
        done.add(m.name)
        for part in m.ratio or ():
            if part in by_name:
                visit(by_name[part])
        order.append(m)

    for m in measures:
        visit(m)
    return order


# --- values: the derived forms, and the 0-100 mapping -----------------------------------------------


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """``sign(x) * log(1 + |x|)``, elementwise (NaN stays NaN): monotone, odd, 0 at 0. The measure
    language's ``log1p`` transform, and how the learning code compresses counts."""
    x = np.asarray(values, dtype=np.float64)
    out: np.ndarray = np.sign(x) * np.log1p(np.abs(x))
    return out


def finish_values(measures: tuple[Measure, ...], base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Raw values of every measure from the source measures' ``base`` values (NaN: no data):
    ratios in dependency order, then each measure's transform and missing rule. A ratio reads its
    parts as configured (after their transform and missing rule): the ratio of what the admin
    sees. A zero or missing denominator gives no data."""
    values: dict[str, np.ndarray] = {}
    for m in evaluation_order(measures):
        if m.ratio is not None:
            numerator, denominator = (values[part] for part in m.ratio)
            with np.errstate(invalid="ignore", divide="ignore"):
                value = np.where(denominator != 0, numerator / denominator, np.nan)
        else:
            value = base[m.name]
        if m.transform == "log1p":
            value = signed_log1p(value)
        if m.missing is Missing.ZERO:
            value = np.where(np.isnan(value), 0.0, value)
        values[m.name] = value
    return values


def percentile_points(raw: np.ndarray, steps: int = 20) -> tuple[float, ...]:
    """Thresholds equivalent to percentile mapping on this portfolio: the values at 0, 5, ..., 100 %
    (strictly ascending, duplicates dropped); () when fewer than two distinct values."""
    values = raw[~np.isnan(raw)]
    if values.size == 0:
        return ()
    points = np.unique(np.quantile(values, np.linspace(0.0, 1.0, steps + 1)))
    keep = [float(points[0])]
    for p in points[1:]:
        if p - keep[-1] >= MIN_THRESHOLD_GAP and abs(p) <= MAX_THRESHOLD:
            keep.append(float(p))
    return tuple(keep) if len(keep) >= 2 else ()


def resolve_percentiles(measures: tuple[Measure, ...], raw: Mapping[str, np.ndarray]) -> tuple[Measure, ...]:
    """The measures with each percentile mapping turned into the day's percentile points, so one
    account can be scored (or explained) the way the portfolio was; a measure whose portfolio has
    fewer than two distinct values gets points that score it 50."""
    out = []
    for measure in measures:
        if measure.mapping is not Mapping01.PERCENTILE:
            out.append(measure)
            continue
        values = np.asarray(raw[measure.name], dtype=np.float64)
        points = percentile_points(values)
        if not points:
            value = float(np.nanmax(values)) if np.any(~np.isnan(values)) else 0.0
            points = (value - 1.0, value + 1.0)
        out.append(replace(measure, thresholds=points, mapping=Mapping01.THRESHOLDS))
    return tuple(out)


def score_measure(raw: np.ndarray, thresholds: np.ndarray, direction: Direction) -> np.ndarray:
    """Map raw values to 0-100 by linear interpolation between ascending ``thresholds``.

    The thresholds get evenly spaced scores: 0 for the first and 100 for the last when higher
    is better, the reverse when lower is better; values outside are clamped, +-inf included.
    NaN (no data) stays NaN. Written as a sum of clamped segments rather than ``np.interp``:
    the same values, about twice as fast, and NaN propagates through ``minimum``/``maximum``.
    """
    segments = thresholds.size - 1
    step = 100.0 / segments
    out = np.zeros(raw.shape, dtype=np.float64)
    tmp = np.empty(raw.shape, dtype=np.float64)
    # A huge finite raw value may overflow to +-inf on the way; the clamp makes that harmless.
    with np.errstate(over="ignore"):
        for i in range(segments):
            np.subtract(raw, thresholds[i], out=tmp)
            tmp *= step / (thresholds[i + 1] - thresholds[i])
            np.minimum(tmp, step, out=tmp)
            np.maximum(tmp, 0.0, out=tmp)
            out += tmp
    if direction == Direction.LOWER_IS_BETTER:  # equality: a plain string works too
        np.subtract(100.0, out, out=out)
    return out
