"""The churn model: a churn probability per account from its measures' raw values, chosen between
two candidates by walk-forward validation, calibrated, and explained by per-feature contributions.

Pure: numpy in, plain data out; no clock, no I/O, every seed passed in. scikit-learn is imported
inside the functions that fit (and by unpickling a stored model), never when this module is
imported, so the web app does not pay for it at start-up.

**Features** (``churn_feature_names``), from the (k, m) raw values of the measures (NaN: no data):

- ``value:<measure>``: the value through a sign-preserving ``log1p`` (``sign(x) * log(1 + |x|)``:
  counts and amounts spread over orders of magnitude, changes can be negative), a missing value
  replaced by the training mean of the column;
- ``missing:<measure>``: 1 when the measure had no data;
- ``stage:<stage>``: the lifecycle stage, one-hot.

Every column is then standardized with the training rows' mean and standard deviation (a
constant column is left at 0), so a logistic-regression coefficient is the change in log-odds
per standard deviation and ``coefficient x standardized value`` is a contribution.

**Candidates**: an L2 logistic regression and scikit-learn's ``HistGradientBoostingClassifier``,
each fitted *and calibrated* (Platt scaling, below) on the training side of every walk-forward
fold (``scoring.validation.walk_forward_folds``, the features standardized on that side only),
their test predictions pooled, and their AUCs compared with paired bootstrap-over-accounts
intervals (``compare_methods``). Gradient boosting wins only when its AUC beats the logistic
regression's *beyond the interval of the difference* (the interval's low end above 0); otherwise
the logistic regression, simpler and explained exactly, is kept.

**Calibration**: ``CalibratedClassifierCV(method="sigmoid", cv=3, ensemble=False)``: the base
model's cross-validated scores fit one Platt curve (two parameters), the base model is refitted on
every row. Sigmoid rather than isotonic because outcomes are few in most portfolios (a few hundred
churned observations): isotonic regression fits a free step function and overfits below about a
thousand calibration rows (scikit-learn's user guide says as much), and its steps tie many
accounts at one probability, which blurs the ranking. Platt's curve is monotone, so the ranking
(AUC) is the base model's. ``ensemble=False`` keeps one base model and one curve, which makes the
contributions below exact in the calibrated log-odds.

**Contributions** (``ChurnPredictor.contributions``), in the calibrated log-odds (positive: raises
the churn risk), with ``a`` the Platt slope (calibrated log-odds = ``a x f + b`` for the base
model's log-odds ``f``):

- logistic regression: ``a x coefficient_j x standardized value_j``: the change from an account
  at the training mean of every feature; exact: the contributions plus the calibrated intercept
  add up to the account's calibrated log-odds;
- gradient boosting: ``a x (f(x) - f(x with feature j replaced by its training median))``, every
  feature at once in one vectorized ``decision_function`` call over a (features x rows) stack. It
  reads "how much this feature, as it is, moves the prediction from a typical value"; unlike the
  linear case the contributions need not add up (interactions).

A measure's reasons are its ``value`` and ``missing`` contributions added; the stage's columns add
up into one ``stage`` reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from scoring.discovery import MIN_COVERAGE, correlation_groups, judge_candidates
from scoring.measures import Measure, evaluation_order, measure_from_dict, same_values, signed_log1p
from scoring.stage import STAGES
from scoring.validation import Comparison, churn_by_decile, compare_methods, sample_rows, walk_forward_folds

#: The stored model's format: a ``ChurnPredictor`` over the raw values of measures of its own, whose
#: definitions it carries (``measures``). 1 was a bare estimator over centered measure scores, 2 a
#: predictor over the active config's measures read by name; such stored models are ignored with a
#: message.
FORMAT = 3
#: The model keeps at most this many measures (``select_measures``): the best of each group of
#: near copies, best first. It bounds what the scoring run computes for the model beside the config.
MAX_MEASURES = 24
#: Candidates whose rank correlation reaches this (in absolute value) are near copies, of which the
#: model keeps one. Higher than the suggestions' 0.8 (``scoring.discovery.GROUP_CORRELATION``): a
#: score a person reads wants one measure per idea, a regularized model gains from correlated
#: measures that still differ (on IBM Telco 0.8 and 16 measures gave 0.851 on the later period,
#: 0.95 and 24 gave 0.858, docs/learning.md).
GROUP_CORRELATION = 0.95
#: The prefix of the churn model's measures in a scoring run that computes them beside the config's
#: (``run_measures``): a config measure may carry the same name with another definition.
RUN_PREFIX = "churn__"
#: Fewer observations than this of either class: no churn model (too few outcomes).
MIN_PER_CLASS = 30
#: Inverse L2 regularization strength of the logistic regression.
L2_C = 1.0
#: Bins of the reliability table (equal width over 0-1).
RELIABILITY_BINS = 10
#: Fewer churned (or not churned) training observations than this in a fold (or than the caller's
#: ``min_per_class``, when lower): the fold is skipped.
MIN_FOLD_PER_CLASS = 10
#: Each fit (of a fold or the final one) learns from at most this many observations, drawn at random
#: (seeded) when there are more: the cost of a fit stays bounded on a large portfolio, and a model of
#: a few dozen features gains little from more rows (the scaler and the medians use every row).
MAX_FIT_ROWS = 100_000
#: How many reasons an account's answer carries.
TOP_REASONS = 5
LOGISTIC = "logistic_regression"
BOOSTING = "gradient_boosting"
CANDIDATES = (LOGISTIC, BOOSTING)


class NotEnoughOutcomes(ValueError):
    """Too few observations of a class to learn anything; the message says how many there are."""


# --- features -------------------------------------------------------------------------------------


def churn_feature_names(measure_names: Sequence[str]) -> tuple[str, ...]:
    """The churn model's columns: each measure's (log) value, whether it had data, the stage."""
    return (
        *(f"value:{name}" for name in measure_names),
        *(f"missing:{name}" for name in measure_names),
        *(f"stage:{stage.value}" for stage in STAGES),
    )


@dataclass(frozen=True, slots=True, eq=False)
class FeatureScaler:
    """What turns raw values into standardized features, learned from training rows only."""

    fill: np.ndarray  # (m,) the training mean of each transformed value (for missing ones)
    mean: np.ndarray  # (F,) of the unstandardized columns
    scale: np.ndarray  # (F,) their standard deviation (1 where constant)

    @classmethod
    def fit(cls, raw_values: np.ndarray, stage: np.ndarray) -> FeatureScaler:
        v = signed_log1p(raw_values)
        has = ~np.isnan(v)
        count = has.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            fill = np.where(count > 0, np.where(has, v, 0.0).sum(axis=0) / np.maximum(count, 1), 0.0)
        unscaled = _unscaled(v, stage, fill)
        mean = unscaled.mean(axis=0) if unscaled.shape[0] else np.zeros(unscaled.shape[1])
        scale = unscaled.std(axis=0) if unscaled.shape[0] else np.ones(unscaled.shape[1])
        scale = np.where(scale > 1e-12, scale, 1.0)
        return cls(fill, mean, scale)

    def transform(self, raw_values: np.ndarray, stage: np.ndarray) -> np.ndarray:
        x: np.ndarray = (_unscaled(signed_log1p(raw_values), stage, self.fill) - self.mean) / self.scale
        return x


def _unscaled(v: np.ndarray, stage: np.ndarray, fill: np.ndarray) -> np.ndarray:
    missing = np.isnan(v)
    values = np.where(missing, fill[None, :], v)
    stages = (np.asarray(stage)[:, None] == np.arange(len(STAGES))[None, :]).astype(np.float64)
    out: np.ndarray = np.hstack([values, missing.astype(np.float64), stages])
    return out


# --- which measures --------------------------------------------------------------------------------


def select_measures(
    raw_values: np.ndarray, label: np.ndarray, *, limit: int = MAX_MEASURES, seed: int = 0
) -> np.ndarray:
    """The columns of ``raw_values`` (k, m) the model keeps, best first: each column judged on these
    rows alone (its ROC AUC in its better direction, ``scoring.discovery.judge_candidates``), columns
    with data on fewer than ``MIN_COVERAGE`` of the rows set aside, the rest grouped by rank
    correlation (``correlation_groups`` at ``GROUP_CORRELATION``: near copies, such as an event's
    28-day count and its sum per active user where every account has one user, fall in one group),
    and the best of each group kept, at most ``limit``.

    Judged on at most ``MAX_FIT_ROWS`` rows (seeded). When no column has the coverage, the best
    column is kept alone, so there is always a model to fit."""
    m = raw_values.shape[1]
    if m == 0:
        return np.empty(0, dtype=np.int64)
    rows = sample_rows(np.arange(raw_values.shape[0]), MAX_FIT_ROWS, seed)
    values, y = raw_values[rows], np.asarray(label, dtype=bool)[rows]
    judged = judge_candidates(values, y)
    auc = np.array([j.train_auc for j in judged])
    covered = np.flatnonzero(np.array([j.coverage >= MIN_COVERAGE for j in judged]))
    if covered.size == 0:
        return np.array([int(np.argmax(auc))], dtype=np.int64)
    groups = correlation_groups(values[:, covered], threshold=GROUP_CORRELATION, seed=seed)
    best: dict[int, int] = {}
    for column, group in zip(covered.tolist(), groups.tolist(), strict=True):
        if group not in best or auc[column] > auc[best[group]]:
            best[group] = column
    kept = sorted(best.values(), key=lambda j: (-auc[j], j))[:limit]
    return np.asarray(kept, dtype=np.int64)


def measure_definitions(chosen: Sequence[str], measures: Sequence[Measure]) -> tuple[dict[str, Any], ...]:
    """The definitions of the ``chosen`` measures among ``measures``, with the parts of any ratio
    among them (recursively), in the order of ``measures``: what computes the chosen values."""
    by_name = {m.name: m for m in measures}
    needed: set[str] = set()
    stack = list(chosen)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        if name not in by_name:
            raise ValueError(f"no definition of the measure {name!r}")
        needed.add(name)
        stack.extend(by_name[name].ratio or ())
    return tuple(m.to_dict() for m in measures if m.name in needed)


@dataclass(frozen=True, slots=True)
class RunMeasures:
    """What a scoring run computes to apply the churn model: ``measures`` to add to the config's,
    and ``names``, each model measure's name in the run (a config measure's, or its own)."""

    measures: tuple[Measure, ...]
    names: dict[str, str]


def run_measures(definitions: Sequence[Mapping[str, Any]], config: Sequence[Measure] = ()) -> RunMeasures:
    """The churn model's measures as a scoring run computes them beside the ``config``'s: one that
    computes the same raw values as a config measure (``same_values``; a ratio over the same parts)
    is read from it, the others are added, renamed ``RUN_PREFIX + name`` (ratios' parts too), so none
    collides with a config measure."""
    own = tuple(measure_from_dict(data) for data in definitions)
    names: dict[str, str] = {}
    added: list[Measure] = []
    for measure in evaluation_order(own):
        ratio = None if measure.ratio is None else (names[measure.ratio[0]], names[measure.ratio[1]])
        candidate = replace(measure, ratio=ratio)
        same = next((m for m in config if same_values(m, candidate)), None)
        if same is not None:
            names[measure.name] = same.name
            continue
        names[measure.name] = RUN_PREFIX + measure.name
        added.append(replace(candidate, name=RUN_PREFIX + measure.name))
    return RunMeasures(tuple(added), names)


# --- the candidates -------------------------------------------------------------------------------


def _base_estimator(kind: str, seed: int, C: float) -> Any:
    if kind == LOGISTIC:
        from sklearn.linear_model import LogisticRegression

        # Not class-balanced: balancing would move the probabilities away from the real churn
        # rate, which is the one thing this model is for.
        return LogisticRegression(C=C, max_iter=2000)
    if kind == BOOSTING:
        from sklearn.ensemble import HistGradientBoostingClassifier

        # Shallow, slow and regularized: outcomes are few, and a boosted model memorizes them fast.
        return HistGradientBoostingClassifier(
            learning_rate=0.1, max_iter=100, max_leaf_nodes=15, min_samples_leaf=40, l2_regularization=1.0,
            early_stopping=True, validation_fraction=0.15, n_iter_no_change=15, random_state=seed,
        )  # fmt: skip
    raise ValueError(f"unknown candidate {kind!r}")


def _one_thread() -> Any:
    """OpenMP limited to one thread while fitting or predicting. Gradient boosting's OpenMP loops
    spin-wait for their threads: on a busy machine (a scoring run, other workers) 2 threads took
    20 to 30 s where 1 took 0.6 s (3,554 x 25 observations, 2 cores, load 8); on an idle machine
    the second thread would save at most half."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _calibrated(kind: str, seed: int, C: float) -> Any:
    from sklearn.calibration import CalibratedClassifierCV

    return CalibratedClassifierCV(_base_estimator(kind, seed, C), method="sigmoid", cv=3, ensemble=False)


@dataclass(frozen=True, slots=True, eq=False)
class ChurnPredictor:
    """A fitted, calibrated churn model and what it needs to predict and explain (what is stored)."""

    kind: str
    measure_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    scaler: FeatureScaler
    estimator: Any  # a fitted CalibratedClassifierCV (ensemble=False)
    median: np.ndarray  # (F,) training medians of the standardized features (boosting's reference)
    #: The measure-language definitions (``Measure.to_dict``) of ``measure_names``, and of the parts
    #: of any ratio among them: what a scoring run computes to apply the model (``run_measures``).
    measures: tuple[dict[str, Any], ...] = ()
    format: int = FORMAT

    def features(self, raw_values: np.ndarray, stage: np.ndarray) -> np.ndarray:
        return self.scaler.transform(raw_values, stage)

    def predict(self, raw_values: np.ndarray, stage: np.ndarray) -> np.ndarray:
        """Churn probabilities of (k, m) raw values over ``measure_names``, one call."""
        if raw_values.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        with _one_thread():
            proba = np.asarray(self.estimator.predict_proba(self.features(raw_values, stage)))
        return proba[:, 1].astype(np.float64)

    def _platt(self) -> tuple[Any, float, float]:
        """The base model and the Platt curve: calibrated log-odds = ``slope x f + intercept``."""
        fitted = self.estimator.calibrated_classifiers_[0]
        curve = fitted.calibrators[0]
        # scikit-learn's sigmoid is 1 / (1 + exp(a f + b)): the log-odds of churn are -(a f + b).
        return fitted.estimator, -float(curve.a_), -float(curve.b_)

    def contributions(self, raw_values: np.ndarray, stage: np.ndarray) -> np.ndarray:
        """(k, F) contributions to the calibrated log-odds of churn (see the module doc)."""
        x = self.features(raw_values, stage)
        base, slope, _ = self._platt()
        if self.kind == LOGISTIC:
            out: np.ndarray = slope * x * np.asarray(base.coef_[0])[None, :]
            return out
        with _one_thread():
            return slope * replacement_contributions(base.decision_function, x, self.median)

    def log_odds(self, raw_values: np.ndarray, stage: np.ndarray) -> np.ndarray:
        """The calibrated log-odds of churn (``logit`` of ``predict``)."""
        base, slope, intercept = self._platt()
        with _one_thread():
            f = np.asarray(base.decision_function(self.features(raw_values, stage)))
        out: np.ndarray = slope * f + intercept
        return out

    def reasons(self, raw_values: np.ndarray, stage: np.ndarray, top: int = TOP_REASONS) -> list[list[dict[str, Any]]]:
        """Per row, the ``top`` reasons by size of contribution: each measure (value and missing
        flag together) and the stage. A predictor of another kind than the candidates' (a stand-in
        whose estimator is not a calibrated scikit-learn model) gives no reasons."""
        if self.kind not in CANDIDATES:
            return [[] for _ in range(raw_values.shape[0])]
        c = self.contributions(raw_values, stage)
        m = len(self.measure_names)
        per_measure = c[:, :m] + c[:, m : 2 * m]
        grouped = np.hstack([per_measure, c[:, 2 * m :].sum(axis=1, keepdims=True)])
        names = [*self.measure_names, "stage"]
        out = []
        for row in range(grouped.shape[0]):
            order = np.argsort(-np.abs(grouped[row]), kind="stable")[:top]
            reasons = []
            for j in order.tolist():
                value = grouped[row, j]
                if abs(value) < 1e-9:
                    continue
                raw = None
                if j < m and not math.isnan(raw_values[row, j]):
                    raw = round(float(raw_values[row, j]), 6)
                reasons.append(
                    {
                        "feature": names[j],
                        "value": raw,
                        "contribution": round(float(value), 4),
                        "effect": "raises_risk" if value > 0 else "lowers_risk",
                    }
                )
            out.append(reasons)
        return out


def replacement_contributions(decision: Any, x: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(k, F): per row and feature, ``decision(x) - decision(x with feature j set to reference[j])``,
    computed in one call of ``decision`` over the (F x k) stacked copies of ``x``."""
    k, f = x.shape
    if k == 0:
        return np.empty((0, f))
    stacked = np.repeat(x[None, :, :], f, axis=0)  # (F, k, F)
    stacked[np.arange(f), :, np.arange(f)] = reference[:, None]
    values = np.asarray(decision(np.vstack([x, stacked.reshape(f * k, f)])), dtype=np.float64)
    full, replaced = values[:k], values[k:].reshape(f, k)
    out: np.ndarray = (full[None, :] - replaced).T
    return out


def fit_predictor(
    kind: str, raw_values: np.ndarray, stage: np.ndarray, label: np.ndarray, measure_names: Sequence[str], *,
    seed: int = 0, C: float = L2_C,
) -> ChurnPredictor:  # fmt: skip
    """One candidate fitted and calibrated on the given rows (features standardized on them; at most
    ``MAX_FIT_ROWS`` of them, drawn from ``seed``, for the fit)."""
    scaler = FeatureScaler.fit(raw_values, stage)
    x = scaler.transform(raw_values, stage)
    rows = sample_rows(np.arange(x.shape[0]), MAX_FIT_ROWS, seed)
    with _one_thread():
        estimator = _calibrated(kind, seed, C).fit(x[rows], np.asarray(label)[rows])
    median = np.median(x, axis=0) if x.shape[0] else np.zeros(x.shape[1])
    return ChurnPredictor(kind, tuple(measure_names), churn_feature_names(measure_names), scaler, estimator, median)


# --- validation and the choice --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Predictions in ``[low, high)``: how many, the mean prediction and the share that churned."""

    low: float
    high: float
    observations: int
    mean_predicted: float
    observed_rate: float


def reliability_table(probability: np.ndarray, label: np.ndarray, bins: int = RELIABILITY_BINS) -> list[ReliabilityBin]:
    """Equal-width bins over 0-1 (the last one closed), empty bins left out."""
    index = np.minimum((probability * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    mean = np.bincount(index, weights=probability, minlength=bins)
    positives = np.bincount(index, weights=label.astype(np.float64), minlength=bins)
    return [
        ReliabilityBin(round(i / bins, 6), round((i + 1) / bins, 6), int(count[i]), round(float(mean[i] / count[i]), 6),
                       round(float(positives[i] / count[i]), 6))
        for i in range(bins)
        if count[i]
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class ChurnValidation:
    """Walk-forward figures of both candidates on the same pooled test observations, the winner
    and why, and the winner's calibration there."""

    folds: list[dict[str, Any]]
    comparison: dict[str, Any] | None  # Comparison.to_dict(): AUCs with intervals, paired difference
    winner: str
    reason: str
    auc: float | None  # the winner's pooled walk-forward AUC
    brier: float | None
    base_rate_brier: float | None  # always predicting each fold's training churn rate
    reliability: list[ReliabilityBin]
    deciles: list[dict[str, Any]]
    observations: int
    churned: int
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ChurnModelFit:
    predictor: ChurnPredictor
    counts: dict[str, int]
    validation: ChurnValidation
    columns: np.ndarray  # the columns of the raw values the predictor uses (``select_measures``)


def _class_counts(label: np.ndarray) -> tuple[int, int]:
    churned = int(np.count_nonzero(label))
    return churned, int(label.size) - churned


def check_outcomes(label: np.ndarray, min_per_class: int) -> None:
    """``NotEnoughOutcomes`` with a message a person can act on when a class has too few rows."""
    churned, kept = _class_counts(label)
    if churned >= min_per_class and kept >= min_per_class:
        return
    if label.size and churned == label.size:
        detail = f"every one of the {label.size} observations churned: nothing to tell churn from"
    elif label.size and churned == 0:
        detail = f"none of the {label.size} observations churned: nothing to learn churn from"
    else:
        detail = f"{churned} churned and {kept} not churned observations"
    raise NotEnoughOutcomes(
        f"Too few outcomes to train a churn model: {detail}; at least {min_per_class} of each "
        "(churned and not churned) are needed."
    )


def fit_churn_model(
    raw_values: np.ndarray,
    stage: np.ndarray,
    label: np.ndarray,
    *,
    observed_on: np.ndarray,
    account_id: np.ndarray,
    measure_names: Sequence[str],
    horizon_days: int,
    min_per_class: int = MIN_PER_CLASS,
    seed: int = 0,
    C: float = L2_C,
    draws: int = 1000,
    max_measures: int = MAX_MEASURES,
) -> ChurnModelFit:
    """Compare the candidates by walk-forward validation, then choose the measures
    (``select_measures``) and fit and calibrate the winner on every observation. The measures are
    chosen inside each fold too, on its training rows, so the validation judges the whole procedure.
    ``NotEnoughOutcomes`` when a class has fewer than ``min_per_class`` observations."""
    label = np.asarray(label, dtype=bool)
    check_outcomes(label, min_per_class)
    validation = validate_candidates(
        raw_values, stage, label, observed_on=observed_on, account_id=account_id, measure_names=measure_names,
        horizon_days=horizon_days, seed=seed, C=C, draws=draws,
        min_fold_per_class=min(min_per_class, MIN_FOLD_PER_CLASS), max_measures=max_measures,
    )  # fmt: skip
    columns = select_measures(raw_values, label, limit=max_measures, seed=seed)
    names = [measure_names[j] for j in columns.tolist()]
    predictor = fit_predictor(validation.winner, raw_values[:, columns], stage, label, names, seed=seed, C=C)
    churned, kept = _class_counts(label)
    counts = {
        "observations": int(label.size),
        "churned": churned,
        "not_churned": kept,
        "accounts": int(np.unique(account_id).size),
    }
    return ChurnModelFit(predictor, counts, validation, columns)


def validate_candidates(
    raw_values: np.ndarray,
    stage: np.ndarray,
    label: np.ndarray,
    *,
    observed_on: np.ndarray,
    account_id: np.ndarray,
    measure_names: Sequence[str],
    horizon_days: int,
    seed: int = 0,
    C: float = L2_C,
    draws: int = 1000,
    min_fold_per_class: int = MIN_FOLD_PER_CLASS,
    max_measures: int = MAX_MEASURES,
) -> ChurnValidation:
    """Both candidates through the walk-forward folds (see the module doc), each fold choosing its
    measures on its training rows; the winner and why."""
    label = np.asarray(label, dtype=bool)
    folds = walk_forward_folds(observed_on, account_id, horizon_days=horizon_days, seed=seed)
    tested = np.zeros(label.size, dtype=bool)
    predicted = {kind: np.full(label.size, np.nan) for kind in CANDIDATES}
    base_rate = np.full(label.size, np.nan)
    fold_rows = []
    for fold in folds:
        row = fold.counts(label)
        churned, kept = _class_counts(label[fold.train])
        if min(churned, kept) < min_fold_per_class or not fold.test.any():
            row["skipped"] = (
                f"{churned} churned and {kept} not churned training observations (at least "
                f"{min_fold_per_class} of each are needed), {row['test']} test observations"
            )
            fold_rows.append(row)
            continue
        train_raw = raw_values[fold.train]
        columns = select_measures(train_raw, label[fold.train], limit=max_measures, seed=seed)
        names = [measure_names[j] for j in columns.tolist()]
        row["measures"] = names
        for kind in CANDIDATES:
            fitted = fit_predictor(
                kind, train_raw[:, columns], stage[fold.train], label[fold.train], names, seed=seed, C=C
            )
            predicted[kind][fold.test] = fitted.predict(raw_values[fold.test][:, columns], stage[fold.test])
        base_rate[fold.test] = churned / (churned + kept)
        tested |= fold.test
        row["skipped"] = None
        fold_rows.append(row)
    y = label[tested]
    churned, kept = _class_counts(y)
    if churned == 0 or kept == 0:
        note = (
            "No walk-forward validation: "
            + ("no fold could be trained and tested" if not tested.any() else "the tested observations hold one class")
            + f" ({len(folds)} folds over the observation dates; see the folds). The logistic regression is kept."
        )
        return ChurnValidation(fold_rows, None, LOGISTIC, note, None, None, None, [], [], int(y.size), churned, note)
    comparison = compare_methods(
        {kind: predicted[kind][tested] for kind in CANDIDATES}, y, account_id[tested], reference=LOGISTIC, draws=draws,
        seed=seed,
    )  # fmt: skip
    winner, reason = _choose(comparison)
    p = predicted[winner][tested]
    deciles = [asdict(d) for d in churn_by_decile(p, y)]
    return ChurnValidation(
        folds=fold_rows,
        comparison=comparison.to_dict(),
        winner=winner,
        reason=reason,
        auc=_round(comparison.auc[winner].value),
        brier=round(float(np.mean((p - y) ** 2)), 6),
        base_rate_brier=round(float(np.mean((base_rate[tested] - y) ** 2)), 6),
        reliability=reliability_table(p, y),
        deciles=deciles,
        observations=int(y.size),
        churned=churned,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _choose(comparison: Comparison) -> tuple[str, str]:
    """Gradient boosting only when it beats the logistic regression beyond the paired interval."""
    lr, hgb = comparison.auc[LOGISTIC], comparison.auc[BOOSTING]
    diff = comparison.difference[BOOSTING]

    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    figures = (
        f"walk-forward AUC {show(hgb.value)} for gradient boosting against {show(lr.value)} for the logistic "
        f"regression, difference {show(diff.value)} (95 % interval {show(diff.low)} to {show(diff.high)}, "
        f"{comparison.accounts} accounts resampled)"
    )
    if diff.excludes_zero:
        return BOOSTING, f"Gradient boosting won: {figures}; its gain lies beyond the interval."
    return LOGISTIC, (
        f"The logistic regression was kept: {figures}; gradient boosting does not beat it beyond the interval, "
        "and the simpler model's reasons are exact."
    )


def align_measure_values(values: np.ndarray, names: Sequence[str], target: Sequence[str]) -> np.ndarray:
    """(k, len(target)) columns of (k, len(names)) ``values`` by name; NaN for a missing name."""
    out = np.full((values.shape[0], len(target)), np.nan, dtype=np.float64)
    position = {name: i for i, name in enumerate(names)}
    for j, name in enumerate(target):
        i = position.get(name)
        if i is not None:
            out[:, j] = values[:, i]
    return out
