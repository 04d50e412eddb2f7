"""Measure discovery: candidate measures from what the portfolio holds, each judged against churn,
grouped by correlation, and a compact scoring config fitted with the score's own arithmetic.

Pure: numpy in, plain data out; scikit-learn and scipy are imported by the functions that need
them (the web app does not pay for them at start-up). No clock, no I/O, seeds passed in.

The steps (docs/learning.md, "Suggestions"):

1. **Candidates** (``candidate_measures``): from every daily series (usage fields, product
   signals) the windows 7, 28 and 90 days, per active user and per seat, the change against the
   window before, days since the last occurrence, active days; licence utilization; tickets,
   feedback, goals and account fields. Each is a measure of the measure language, so whatever is
   chosen runs in the scoring run as it was judged here.
2. **Direction and curve** (``judge_candidates``): on the training observations, the direction in
   which a candidate's value relates to churn (a *negative* relationship becomes "lower is
   better", never a zero weight), and a monotone curve of churn risk against the value
   (isotonic regression).
3. **Groups** (``correlation_groups``): candidates whose rank correlation is at least ``0.8``
   (in absolute value) measure the same thing; each group offers its best candidate only.
4. **Thresholds** (``curve_thresholds``): where the fitted risk crosses 2x, 1.41x, 1x, 0.71x and
   0.5x the base churn rate: the values the 0-100 mapping puts at 0, 25, 50, 75 and 100 (a score
   linear in the logarithm of the risk ratio). When the curve does not span those, its two ends.
5. **Weights** (``fit_score_weights``): per stage, non-negative weights fitted to the health
   score *as the scoring run computes it*: the weighted mean of the 0-100 measure scores over the
   measures *with data* (a missing measure is left out and the rest re-weighted), fed to a
   logistic link. So the figure a proposal is judged by is the AUC of the score as it will run.
6. **Bands** from the same link: the score where the risk is 2x the base rate is the poor
   cut-off, 0.5x the good one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from scoring.measures import (
    MIN_THRESHOLD_GAP,
    SIGNAL_PREFIX,
    Direction,
    Form,
    Measure,
    MeasureGroup,
    score_measure,
    source_info,
)
from scoring.stage import STAGES
from scoring.validation import roc_auc, sample_rows

#: Windows (days) of the daily-series candidates.
WINDOWS = (7, 28, 90)
#: Candidates whose rank correlation reaches this (in absolute value) are one group.
GROUP_CORRELATION = 0.8
#: At most this many measures carry weight in a proposal.
MAX_MEASURES = 12
#: A candidate must have data for at least this share of the training observations.
MIN_COVERAGE = 0.2
#: A candidate must rank churn at least this well on the training observations to be proposed.
MIN_TRAIN_AUC = 0.55
#: Churn-risk multiples of the base rate that the thresholds sit at: scores 0, 25, 50, 75, 100.
RISK_MULTIPLES = (2.0, math.sqrt(2.0), 1.0, 1.0 / math.sqrt(2.0), 0.5)
#: At most this many rows feed the correlation matrix (a seeded sample beyond it).
CORRELATION_ROWS = 20_000
#: A proposal is fitted on at most this many observations (a seeded sample beyond it): the
#: thresholds and weights it fits settle long before, and the fit's time stays bounded.
FIT_ROWS = 100_000
#: L2 pull of the log-weights toward equal weights in the weight fit.
WEIGHT_L2 = 1e-3
_SLUG = re.compile(r"[^a-z0-9]+")


# --- candidates -----------------------------------------------------------------------------------


def _slug(text: str) -> str:
    slug = _SLUG.sub("_", text.lower()).strip("_")
    return slug or "x"


def _series_name(source: str) -> str:
    if source.startswith(SIGNAL_PREFIX):
        return "sig_" + _slug(source[len(SIGNAL_PREFIX) :])[:30]
    return _slug(source.split(".", 1)[1])[:30]


def _measure(name: str, source: str, group: MeasureGroup, label: str, **fields: Any) -> Measure:
    # Thresholds are placeholders until a curve is fitted (curve_thresholds); a candidate is
    # judged by its raw value, never by these.
    return Measure(name=name, group=group, direction=Direction.HIGHER_IS_BETTER, thresholds=(0.0, 1.0),
                   label=label, source=source, **fields)  # fmt: skip


def _series_candidates(source: str) -> list[Measure]:
    """A daily series' candidates, in order of priority."""
    base = _series_name(source)
    group = MeasureGroup.PRODUCT if source.startswith(SIGNAL_PREFIX) else MeasureGroup.ADOPTION
    what = source[len(SIGNAL_PREFIX) :] if source.startswith(SIGNAL_PREFIX) else source.split(".", 1)[1]
    daily_mean = source == "usage.active_users"  # a level per day: its mean, not its sum, per seat
    agg = "mean" if daily_mean else "sum"
    variants: list[Measure] = [
        _measure(f"{base}_28d", source, group, f"{what}, {agg} over 28 days", aggregate=agg, window_days=28,
                  transform="log1p"),
        _measure(f"{base}_days_since", source, group, f"days since the last {what}", aggregate="sum",
                  window_days=90, form=Form.DAYS_SINCE),
        _measure(f"{base}_change_28d", source, group, f"{what}: change of the 28-day sum against the 28 before",
                  aggregate="sum", window_days=28, form=Form.CHANGE_PCT),
        _measure(f"{base}_per_seat_28d", source, group, f"{what} per seat, {agg} over 28 days", aggregate=agg,
                  window_days=28, per="seat"),
        _measure(f"{base}_7d", source, group, f"{what}, {agg} over 7 days", aggregate=agg, window_days=7,
                  transform="log1p"),
        _measure(f"{base}_90d", source, group, f"{what}, {agg} over 90 days", aggregate=agg, window_days=90,
                  transform="log1p"),
        _measure(f"{base}_active_days_28d", source, group, f"days with {what} in 28 days",
                  aggregate="active_days", window_days=28),
    ]  # fmt: skip
    if source != "usage.active_users":
        variants.append(
            _measure(f"{base}_per_user_28d", source, group, f"{what} per active user over 28 days",
                     aggregate="sum", window_days=28, per="active_user")
        )  # fmt: skip
    return variants


_FIXED: tuple[tuple[str, str, MeasureGroup, str, dict[str, Any]], ...] = (
    ("license_utilization", "license.active", MeasureGroup.LICENSE, "active seats per licensed seat",
     {"aggregate": "latest", "per": "licensed_seat"}),
    ("license_assignment", "license.assigned", MeasureGroup.LICENSE, "assigned seats per licensed seat",
     {"aggregate": "latest", "per": "licensed_seat"}),
    ("tickets_opened_90d", "tickets.opened", MeasureGroup.SUPPORT, "tickets opened in 90 days",
     {"window_days": 90, "transform": "log1p"}),
    ("tickets_open_weighted_90d", "tickets.open_weighted", MeasureGroup.SUPPORT,
     "open tickets by priority weight (opened in 90 days)", {"window_days": 90}),
    ("sla_breaches_90d", "tickets.sla_breaches", MeasureGroup.SUPPORT, "SLA breaches in 90 days",
     {"window_days": 90}),
    ("days_to_close_90d", "tickets.days_to_close", MeasureGroup.SUPPORT, "mean days to close (90 days)",
     {"aggregate": "mean", "window_days": 90}),
    ("nps_180d", "feedback.nps", MeasureGroup.FEEDBACK, "NPS over 180 days",
     {"aggregate": "nps", "window_days": 180}),
    ("csat_180d", "feedback.csat", MeasureGroup.FEEDBACK, "mean CSAT over 180 days",
     {"aggregate": "mean", "window_days": 180}),
    ("csm_sentiment_latest", "feedback.csm_sentiment", MeasureGroup.FEEDBACK, "the CSM's latest sentiment",
     {"aggregate": "latest", "window_days": 180}),
    ("goals_achieved_share", "goals.achieved_share", MeasureGroup.OUTCOMES, "goals achieved (share)", {}),
    ("goals_missed", "goals.missed", MeasureGroup.OUTCOMES, "goals missed", {}),
    ("tenure_days", "account.tenure_days", MeasureGroup.ACCOUNT, "days since the contract start", {}),
    ("days_to_renewal", "account.days_to_renewal", MeasureGroup.ACCOUNT, "days to the renewal date", {}),
    ("arr_log", "account.arr", MeasureGroup.ACCOUNT, "ARR (log)", {"transform": "log1p"}),
    ("seats_log", "account.seats", MeasureGroup.ACCOUNT, "seats purchased (log)", {"transform": "log1p"}),
)  # fmt: skip


def candidate_measures(available: Sequence[str], *, limit: int = 60, taken: Sequence[str] = ()) -> list[Measure]:
    """Candidate measures over the sources in ``available`` (source names of the measure language,
    ``signal.<name>`` included: those the portfolio holds data for), at most ``limit``.

    The fixed sources (licences, tickets, feedback, goals, account fields) come first; then the
    daily series' variants round-robin, every series' 28-day sum before any series' 7-day one, so
    a limit cuts the least useful variants evenly. Names are slugs, unique, and none of ``taken``
    (the active config's measures): a clash gets the suffix ``_n``.
    """
    have = set(available)
    unknown = sorted(s for s in have if source_info(s) is None)
    if unknown:
        raise ValueError(f"unknown sources: {', '.join(unknown)}")
    out: list[Measure] = []
    for name, source, group, label, extra in _FIXED:
        if source in have:
            out.append(_measure(name, source, group, label, **extra))
    series = [s for s in available if (info := source_info(s)) is not None and info.daily]
    variants = [_series_candidates(s) for s in series]
    depth = max((len(v) for v in variants), default=0)
    for level in range(depth):
        for per_source in variants:
            if level < len(per_source):
                out.append(per_source[level])
    seen: set[str] = set(taken)
    unique = []
    for m in out[:limit]:
        name, n = m.name[:62], 1
        while name in seen:
            n += 1
            name = f"{m.name[:58]}_{n}"
        seen.add(name)
        unique.append(replace(m, name=name))
    return unique


# --- judging candidates ---------------------------------------------------------------------------


def _fill(values: np.ndarray, fill: float) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).copy()
    out[~np.isfinite(out)] = fill
    return out


@dataclass(frozen=True, slots=True)
class Judged:
    """One candidate on the training observations: which way it runs, how well it ranks churn,
    what it is filled with where it has no data, and its data coverage."""

    direction: Direction
    train_auc: float  # oriented: 0.5 is no signal, higher is better
    fill: float  # the training median of the value, used where it has no data
    coverage: float

    def risk(self, values: np.ndarray) -> np.ndarray:
        """Churn risk (higher: riskier) of raw values in this direction, missing as the median."""
        filled = _fill(values, self.fill)
        risk: np.ndarray = -filled if self.direction is Direction.HIGHER_IS_BETTER else filled
        return risk


def judge_candidates(values: np.ndarray, label: np.ndarray) -> list[Judged]:
    """Each column of ``values`` (k, c) on the training observations: its direction (lower is
    better when churn rises with the value), its oriented ROC AUC, its median and coverage."""
    out = []
    label = np.asarray(label, dtype=bool)
    for j in range(values.shape[1]):
        column = np.asarray(values[:, j], dtype=np.float64)
        finite = np.isfinite(column)
        coverage = float(finite.mean()) if column.size else 0.0
        fill = float(np.median(column[finite])) if finite.any() else 0.0
        auc = roc_auc(_fill(column, fill), label)
        if auc is None:
            out.append(Judged(Direction.HIGHER_IS_BETTER, 0.5, fill, coverage))
            continue
        lower = auc > 0.5  # churn rises with the value
        out.append(Judged(Direction.LOWER_IS_BETTER if lower else Direction.HIGHER_IS_BETTER,
                          max(auc, 1.0 - auc), fill, coverage))  # fmt: skip
    return out


def correlation_groups(values: np.ndarray, *, threshold: float = GROUP_CORRELATION, seed: int = 0) -> np.ndarray:
    """A group number per column of ``values`` (k, c): average-linkage clusters of the columns'
    rank (Spearman) correlation, cut where the absolute correlation falls below ``threshold``.
    A constant column is a group of its own."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.stats import rankdata

    k, c = values.shape
    if c == 0:
        return np.empty(0, dtype=np.int64)
    if c == 1:
        return np.zeros(1, dtype=np.int64)
    rows = values
    if k > CORRELATION_ROWS:
        rows = values[np.random.default_rng(seed).choice(k, CORRELATION_ROWS, replace=False)]
    filled = np.empty(rows.shape, dtype=np.float64)
    for j in range(c):
        column = np.asarray(rows[:, j], dtype=np.float64)
        finite = np.isfinite(column)
        filled[:, j] = _fill(column, float(np.median(column[finite])) if finite.any() else 0.0)
    ranks = rankdata(filled, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(ranks, rowvar=False)
    corr = np.nan_to_num(np.atleast_2d(corr), nan=0.0)
    distance = 1.0 - np.abs(corr)
    np.fill_diagonal(distance, 0.0)
    condensed = np.clip(distance[np.triu_indices(c, 1)], 0.0, None)
    tree = linkage(condensed, method="average")
    groups: np.ndarray = fcluster(tree, t=1.0 - threshold, criterion="distance").astype(np.int64) - 1
    return groups


def curve_thresholds(values: np.ndarray, label: np.ndarray, direction: Direction) -> tuple[float, ...] | None:
    """Thresholds of a measure from its fitted risk curve (see the module doc): ascending raw
    values, five when the curve spans 2x to 0.5x the base rate, else the curve's two ends; None
    when the curve is flat (the value says nothing about churn)."""
    from sklearn.isotonic import IsotonicRegression

    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    x, y = x[finite], np.asarray(label, dtype=np.float64)[finite]
    if x.size < 2 or y.min() == y.max():
        return None
    base = float(y.mean())
    increasing = direction is Direction.LOWER_IS_BETTER  # risk rises with the value
    iso = IsotonicRegression(increasing=increasing, out_of_bounds="clip").fit(x, y)
    xs = np.unique(x)
    risk = iso.predict(xs)
    if risk.max() - risk.min() <= 1e-12:
        return None
    if not increasing:  # np.interp wants the risk ascending
        xs, risk = xs[::-1], risk[::-1]
    targets = np.clip(np.asarray(RISK_MULTIPLES) * base, risk.min(), risk.max())
    # The value at which the fitted risk reaches each target: the first value where it does.
    points = np.interp(targets, risk, xs)
    ascending = np.sort(np.unique(_round_sig(points)))
    if ascending.size == len(RISK_MULTIPLES) and np.all(np.diff(ascending) > MIN_THRESHOLD_GAP):
        return tuple(float(v) for v in ascending)
    ends = np.sort(_round_sig(np.asarray([points[0], points[-1]])))
    if ends[1] - ends[0] <= MIN_THRESHOLD_GAP:
        return None
    return (float(ends[0]), float(ends[1]))


def _round_sig(values: np.ndarray, digits: int = 4) -> np.ndarray:
    """Values rounded to ``digits`` significant digits (thresholds a person can read)."""
    out = np.asarray(values, dtype=np.float64).copy()
    nonzero = out != 0
    magnitude = np.floor(np.log10(np.abs(out[nonzero])))
    scale = 10.0 ** (digits - 1 - magnitude)
    out[nonzero] = np.round(out[nonzero] * scale) / scale
    return out


# --- the weight fit -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreFit:
    """Weights (summing to ``scale``) and the logistic link of the score they give:
    ``P(churn) = sigmoid(intercept + slope * (score - 50) / 50)``."""

    weights: np.ndarray
    intercept: float
    slope: float
    rows: int
    churned: int


def score_of(measure_scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The health score of (k, m) measure scores (NaN: no data) under one weight vector: the
    weighted mean over the measures with data; NaN where none of the weighted ones has data."""
    has = np.isfinite(measure_scores)
    w = np.where(has, weights[None, :], 0.0)
    total = w.sum(axis=1)
    num = (np.where(has, measure_scores, 0.0) * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, num / total, np.nan)


def fit_score_weights(
    measure_scores: np.ndarray, label: np.ndarray, *, scale: float = 100.0, l2: float = WEIGHT_L2
) -> ScoreFit:
    """Non-negative weights that make the score's own arithmetic (see ``score_of``) fit churn
    best under a logistic link, by L-BFGS over log-weights with the exact gradient.

    Rows with no data in any measure are left out. Raises ``ValueError`` when the rows left have
    only one class.
    """
    from scipy.optimize import minimize

    s = np.asarray(measure_scores, dtype=np.float64)
    has_any = np.isfinite(s).any(axis=1)
    s, y = s[has_any], np.asarray(label, dtype=np.float64)[has_any]
    k, m = s.shape
    if k == 0 or y.min() == y.max():
        raise ValueError("the weight fit needs churned and not churned observations with data")
    h = np.isfinite(s).astype(np.float64)
    s0 = np.where(h > 0, s, 0.0)
    base = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        v, a, b = theta[:m], theta[m], theta[m + 1]
        w = np.exp(v - v.max())
        d = h @ w
        score = (s0 @ w) / d
        x = (score - 50.0) / 50.0
        z = a + b * x
        # log(1 + e^z) - y z, stably.
        value = float(np.mean(np.logaddexp(0.0, z) - y * z)) + l2 * float(v @ v)
        g = (1.0 / (1.0 + np.exp(-z)) - y) / k
        grad_x_w = (h * (s0 - score[:, None])) / (50.0 * d[:, None])  # d x_i / d w_j
        grad_v = w * (grad_x_w.T @ (g * b)) + 2.0 * l2 * v
        return value, np.concatenate([grad_v, [g.sum(), float(g @ x)]])

    start = np.concatenate([np.zeros(m), [math.log(base / (1 - base)), -1.0]])
    result = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 300, "ftol": 1e-7})
    v = result.x[:m]
    w = np.exp(v - v.max())
    weights = np.round(w / w.sum() * scale, 4)
    if weights.sum() <= 0:
        weights[int(np.argmax(w))] = scale
    return ScoreFit(weights, float(result.x[m]), float(result.x[m + 1]), k, int(y.sum()))


def link_bands(score: np.ndarray, label: np.ndarray) -> tuple[float, float] | None:
    """(poor, good) cut-offs of a score: where a logistic fit of churn on the score puts the risk at
    2x and 0.5x the base rate, clamped to 1-99 and rounded; None when the score does not fall as
    churn rises (no cut-off would mean anything)."""
    from sklearn.linear_model import LogisticRegression

    ok = np.isfinite(score)
    x, y = score[ok], np.asarray(label, dtype=bool)[ok]
    if x.size < 2 or y.all() or not y.any():
        return None
    fit = LogisticRegression(C=1e6, max_iter=1000).fit(((x - 50.0) / 50.0)[:, None], y)
    a, b = float(fit.intercept_[0]), float(fit.coef_[0, 0])
    if b >= 0:
        return None
    base = float(y.mean())

    def at(multiple: float) -> float:
        p = min(max(multiple * base, 1e-6), 1 - 1e-6)
        return 50.0 + 50.0 * (math.log(p / (1 - p)) - a) / b

    poor, good = round(min(max(at(2.0), 1.0), 99.0), 1), round(min(max(at(0.5), 1.0), 99.0), 1)
    if good <= poor:
        return None
    return poor, good


# --- a proposal -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chosen:
    """A candidate the proposal keeps: its measure (direction and thresholds fitted) and why."""

    index: int  # column in the candidate values
    measure: Measure
    reason: str


@dataclass(frozen=True, slots=True)
class Proposal:
    """A compact scoring proposal fitted on some observations."""

    chosen: list[Chosen]
    weights: dict[str, dict[str, float]]  # stage -> measure -> weight
    bands: tuple[float, float] | None
    judged: list[Judged]
    groups: np.ndarray
    messages: list[str] = field(default_factory=list)

    def measure_scores(self, values: np.ndarray) -> np.ndarray:
        """(k, len(chosen)) 0-100 scores of the chosen measures from all the candidate values."""
        out = np.empty((values.shape[0], len(self.chosen)), dtype=np.float64)
        for j, c in enumerate(self.chosen):
            raw = np.asarray(values[:, c.index], dtype=np.float64)
            out[:, j] = score_measure(raw, np.asarray(c.measure.thresholds), c.measure.direction)
        return out

    def score(self, values: np.ndarray, stage: np.ndarray) -> np.ndarray:
        """The health score the proposal gives (NaN: no chosen measure has data)."""
        scores = self.measure_scores(values)
        names = [c.measure.name for c in self.chosen]
        out = np.full(values.shape[0], np.nan)
        for code, st in enumerate(STAGES):
            rows = stage == code
            if rows.any():
                w = np.array([self.weights[st.value].get(n, 0.0) for n in names])
                out[rows] = score_of(scores[rows], w)
        return out


def fit_rows(rows: np.ndarray, seed: int) -> np.ndarray:
    """The rows a proposal is fitted on: all of ``rows``, or a seeded sample of ``FIT_ROWS``."""
    return sample_rows(rows, FIT_ROWS, seed)


def propose(
    values: np.ndarray,
    stage: np.ndarray,
    label: np.ndarray,
    candidates: Sequence[Measure],
    *,
    min_per_class: int,
    max_measures: int = MAX_MEASURES,
    seed: int = 0,
) -> Proposal:
    """Fit a proposal on these observations (all of them training; a seeded sample of
    ``FIT_ROWS`` when there are more): judge every candidate, group them, keep the best of each
    group that ranks churn at all, fit thresholds and per-stage weights (a stage with fewer than
    ``min_per_class`` of either class takes the weights of all stages pooled), and band cut-offs.
    Raises ``ValueError`` when nothing can be proposed."""
    label = np.asarray(label, dtype=bool)
    if label.size > FIT_ROWS:
        rows = fit_rows(np.arange(label.size), seed)
        values, stage, label = values[rows], stage[rows], label[rows]
    judged = judge_candidates(values, label)
    groups = correlation_groups(values, seed=seed)
    order = sorted(range(len(candidates)), key=lambda j: -judged[j].train_auc)
    chosen: list[Chosen] = []
    taken_groups: dict[int, str] = {}
    messages: list[str] = []
    for j in order:
        if len(chosen) >= max_measures:
            break
        jd = judged[j]
        if jd.coverage < MIN_COVERAGE or jd.train_auc < MIN_TRAIN_AUC:
            continue
        g = int(groups[j])
        if g in taken_groups:
            continue
        thresholds = curve_thresholds(values[:, j], label, jd.direction)
        if thresholds is None:
            continue
        taken_groups[g] = candidates[j].name
        measure = replace(candidates[j], direction=jd.direction, thresholds=thresholds)
        runs = "higher is better" if jd.direction is Direction.HIGHER_IS_BETTER else "lower is better"
        members = int(np.count_nonzero(groups == g))
        reason = (
            f"Ranks churn with AUC {jd.train_auc:.3f} on the training observations ({runs}); "
            f"data for {jd.coverage:.0%} of them; the best of {members} correlated candidate"
            f"{'s' if members != 1 else ''}."
        )
        chosen.append(Chosen(j, measure, reason))
    if not chosen:
        raise ValueError(
            f"No candidate ranks churn better than AUC {MIN_TRAIN_AUC} with data for at least "
            f"{MIN_COVERAGE:.0%} of the observations: nothing to propose."
        )
    draft = Proposal(chosen, {}, None, judged, groups)
    scores = draft.measure_scores(values)
    pooled = fit_score_weights(scores, label)
    names = [c.measure.name for c in chosen]
    weights: dict[str, dict[str, float]] = {}
    for code, st in enumerate(STAGES):
        rows = stage == code
        y = label[rows]
        pos = int(np.count_nonzero(y))
        if pos >= min_per_class and y.size - pos >= min_per_class:
            fit = fit_score_weights(scores[rows], y)
        else:
            fit = pooled
            messages.append(
                f"Stage {st.value}: {pos} churned and {y.size - pos} not churned observations, fewer than "
                f"{min_per_class} of one; its weights come from all stages pooled."
            )
        weights[st.value] = {n: float(w) for n, w in zip(names, fit.weights.tolist(), strict=True)}
    proposal = Proposal(chosen, weights, None, judged, groups, messages)
    bands = link_bands(proposal.score(values, stage), label)
    if bands is None:
        messages.append("The fitted score does not fall as churn rises: the active bands are kept.")
    return Proposal(chosen, weights, bands, judged, groups, messages)


def proposal_table(proposal: Proposal) -> list[dict[str, Any]]:
    """The chosen measures for a person to read: definition, direction, thresholds, weights, why."""
    return [
        {
            "measure": c.measure.to_dict(),
            "reason": c.reason,
            "weights": {st: w.get(c.measure.name, 0.0) for st, w in proposal.weights.items()},
        }
        for c in proposal.chosen
    ]


def merged_weights(proposal: Proposal, keep: Mapping[str, Any], stages: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per-stage weights over the proposal's measures and the measures kept unweighted (``keep``)."""
    return {st: {**{name: 0.0 for name in keep}, **proposal.weights.get(st, {})} for st in stages}
