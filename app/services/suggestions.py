"""Suggestions: a complete scoring config proposed from outcomes (measure discovery), judged by a
walk-forward validation next to the active config, the best single candidate and a plain
logistic-regression reference; and the ranking of every candidate for a person to read.

The learning is pure (``scoring/discovery.py``, ``scoring/validation.py``); this module reads the
portfolio (which sources hold data, the observations with every candidate's raw value as of each
date, through ``build_training_data``), keeps the observations of the day in a file cache, and
shapes the answer. See docs/learning.md, "Suggestions".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.models import (
    Account,
    DailyUsage,
    Feedback,
    FeedbackKind,
    Goal,
    JobKind,
    JobRequest,
    JobRequestStatus,
    LicenseSnapshot,
    SupportTicket,
    UsageSignal,
)
from app.services.analysis import (
    DEFAULT_HORIZON_DAYS,
    DEFAULT_PERIODIC_MONTHS,
    SEED,
    SNAP_DAYS,
    TooFewOutcomes,
    TrainingData,
    build_training_data,
    check_history,
)
from app.services.scoring_config.active import get_active_model
from scoring.discovery import Judged, Proposal, candidate_measures, fit_rows, proposal_table, propose
from scoring.learning import MIN_PER_CLASS, TrainingSet, weight_matrix, weighted_scores
from scoring.measures import SIGNAL_PREFIX, SOURCES, Measure, signed_log1p, source_info
from scoring.model import Bands, ScoringModel
from scoring.rules import RuleType
from scoring.stage import STAGES
from scoring.validation import (
    DRAWS,
    FOLDS,
    churn_by_decile,
    compare_methods,
    top_decile_lift,
    walk_forward_folds,
)

logger = logging.getLogger(__name__)

#: Observation dates computed at a time (PostgreSQL; each pass in a session of its own).
ASSEMBLY_WORKERS = 2
#: At most this many candidate measures are generated.
MAX_CANDIDATES = 60
#: Bootstrap draws of each candidate's interval in the ranking, a normal interval from their spread
#: (the headline comparison uses DRAWS and percentile intervals).
CANDIDATE_DRAWS = 50
#: The headline methods, in the order the answer lists them.
METHODS = ("proposal", "active", "best_single", "reference_lr")
_CACHE_VERSION = 1


# --- bad input found once the observations are known ---------------------------------------------


def _check_classes(label: np.ndarray, min_per_class: int, training: TrainingData) -> None:
    churned = int(np.count_nonzero(label))
    not_churned = int(label.size) - churned
    if not_churned == 0 and churned:
        message = f"Every one of the {churned} observations churned: there is nothing to tell churn apart from."
    elif churned == 0 and not_churned:
        message = f"None of the {not_churned} observations churned: there is no churn to learn from."
    elif churned < min_per_class or not_churned < min_per_class:
        message = (
            f"Too few outcomes to learn from: {churned} churned and {not_churned} not churned observations; "
            f"at least {min_per_class} of each are needed. Outcomes behind the observations: "
            f"{training.outcomes}; horizon {training.horizon_days} days."
        )
    else:
        return
    raise TooFewOutcomes(message, errors={"outcomes": [message]})


# --- candidates and the observations ----------------------------------------------------------------


def available_sources(session: Session) -> list[str]:
    """Sources of the measure language that hold data, product signals by number of events.

    One existence probe per table (an index lookup, not a count of the table) and one aggregate
    over the signals' covering index."""

    def has(table: Any, *where: Any) -> bool:
        return session.scalar(sa.select(sa.literal(1)).select_from(table).where(*where).limit(1)) is not None

    family = {
        "usage": has(DailyUsage),
        "license": has(LicenseSnapshot),
        "tickets": has(SupportTicket),
        "goals": has(Goal),
    }
    feedback = {kind.value: has(Feedback, Feedback.kind == kind) for kind in FeedbackKind}
    account = {
        "account.tenure_days": has(Account, Account.contract_start.is_not(None)),
        "account.arr": has(Account, Account.arr.is_not(None)),
        "account.seats": has(Account, Account.seats_purchased.is_not(None)),
        "account.days_to_renewal": has(Account, Account.renewal_date.is_not(None)),
    }
    out = []
    for name, info in SOURCES.items():
        if info.family == "feedback":
            held = feedback.get(name.split(".", 1)[1], False)
        elif info.family == "account":
            held = account[name]
        else:
            held = family[info.family]
        if held:
            out.append(name)
    signals = session.execute(
        sa.select(UsageSignal.signal, sa.func.sum(UsageSignal.count).label("events"))
        .group_by(UsageSignal.signal)
        .order_by(sa.desc("events"), UsageSignal.signal)
    ).all()
    out += [f"{SIGNAL_PREFIX}{signal}" for signal, _ in signals if source_info(f"{SIGNAL_PREFIX}{signal}")]
    return out


def _rule_measures(model: ScoringModel) -> list[Measure]:
    """The active config's measures its threshold rules read: kept (unweighted) in a proposal."""
    read = {r.value for r in model.rules if r.type is RuleType.THRESHOLD}
    return [m for m in model.measures if m.name in read]


def _cache_key(version: int, model: ScoringModel, options: dict[str, Any], today: dt.date) -> str:
    spec = {
        "cache": _CACHE_VERSION,
        "day": today.isoformat(),
        "version": version,
        "measures": [m.to_dict() for m in model.measures],
        "options": options,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:32]


_ARRAYS = ("observed_on", "account_id", "stage", "measure_scores", "label", "raw_values")


def _load_cached(path: Path, training_fields: dict[str, Any], model: ScoringModel) -> TrainingData | None:
    try:
        meta = json.loads((path / "meta.json").read_text())
        arrays = {name: np.load(path / f"{name}.npy", allow_pickle=False) for name in _ARRAYS}
    except (OSError, ValueError, KeyError):
        return None
    data = TrainingSet(**arrays, measure_names=model.measure_names)  # type: ignore[arg-type]
    return TrainingData(data=data, model=model, **training_fields, **meta)


def _store(path: Path, training: TrainingData) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            np.save(tmp / f"{name}.npy", getattr(training.data, name), allow_pickle=False)
        meta = {
            "observation_dates": training.observation_dates,
            "outcomes": training.outcomes,
            "outcome_observations": training.outcome_observations,
            "periodic_observations": training.periodic_observations,
            "skipped": training.skipped,
            "seconds": training.seconds,
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        tmp.rename(path)  # whole or not at all (another worker may have written it first)
    except (OSError, ValueError) as exc:  # a cache that cannot be written only costs time
        logger.warning("learning cache not written to %s: %s", path, exc)
        shutil.rmtree(tmp, ignore_errors=True)


def _prune(cache_dir: Path, today: dt.date) -> None:
    """Drop the cache entries of earlier days (each entry's folder name starts with its day)."""
    for entry in cache_dir.glob("*"):
        if entry.is_dir() and not entry.name.startswith(today.isoformat()):
            shutil.rmtree(entry, ignore_errors=True)


def observations(
    session: Session,
    *,
    as_of: dt.date,
    horizon_days: int,
    periodic_months: int,
    snap_days: int,
    max_candidates: int,
    cache_dir: Path | None,
    today: dt.date,
) -> tuple[TrainingData, list[Measure], bool]:
    """The observations with every candidate's raw value (and the active measures' scores), from
    the day's cache when an identical request built them today; and whether the cache served."""
    version, model = get_active_model(session)
    candidates = candidate_measures(
        available_sources(session), limit=max_candidates, taken=[m.name for m in model.measures]
    )
    full = model.with_unweighted(tuple(candidates))  # one pass computes both
    options = {"as_of": as_of, "horizon_days": horizon_days, "periodic_months": periodic_months, "snap": snap_days}
    path = None
    fields = {"config_version": version, "as_of": as_of, "horizon_days": horizon_days,
              "periodic_months": periodic_months}  # fmt: skip
    if cache_dir is not None:
        path = cache_dir / f"{today.isoformat()}-{_cache_key(version, full, options, today)}"
        if path.is_dir():
            cached = _load_cached(path, fields, full)
            if cached is not None:
                return cached, candidates, True
    training = build_training_data(
        session,
        as_of=as_of,
        horizon_days=horizon_days,
        periodic_months=periodic_months,
        snap_days=snap_days,
        versioned=(version, full),
        outcome_observations=periodic_months == 0,
        workers=ASSEMBLY_WORKERS,
    )
    if path is not None and cache_dir is not None:
        _prune(cache_dir, today)
        _store(path, training)
    return training, candidates, False


# --- the validation ----------------------------------------------------------------------------------


def _reference_lr(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """A plain logistic regression on every candidate (sign-preserving log1p, missing as the
    training median, standardized): the reference a proposal has to stand next to, fitted on the
    same training observations as the proposal."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def prepare(x: np.ndarray, median: np.ndarray) -> np.ndarray:
        out = signed_log1p(x)
        return np.where(np.isfinite(out), out, median[None, :])

    logged = signed_log1p(train_x)
    with np.errstate(all="ignore"):
        median = np.nan_to_num(np.nanmedian(np.where(np.isfinite(logged), logged, np.nan), axis=0))
    fit = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    fit.fit(prepare(train_x, median), train_y)
    proba: np.ndarray = fit.predict_proba(prepare(test_x, median))[:, 1]
    return proba


def _best_single(judged: list[Judged]) -> int:
    from scoring.discovery import MIN_COVERAGE

    eligible = [j for j, jd in enumerate(judged) if jd.coverage >= MIN_COVERAGE]
    pool = eligible or list(range(len(judged)))
    return max(pool, key=lambda j: judged[j].train_auc)


def _risk_of_score(score: np.ndarray, neutral: float) -> np.ndarray:
    """Risk from a health score: 100 - score; no score counts as the neutral score (as stored)."""
    return 100.0 - np.where(np.isfinite(score), score, neutral)


def _walk_forward(
    data: TrainingSet,
    values: np.ndarray,
    active_scores: np.ndarray,
    active: ScoringModel,
    candidates: list[Measure],
    *,
    horizon_days: int,
    min_per_class: int,
    seed: int,
    draws: int,
    folds: int,
) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Walk-forward figures: per fold the whole procedure fitted on the fold's training side and
    every method scored on its test side; pooled, compared with paired bootstrap intervals.
    Returns the answer's validation part, each candidate's pooled test risk, and the pooled
    labels and accounts."""
    label = data.label
    active_w = weight_matrix({s.value: w for s, w in active.weights.items()}, active.measure_names)
    pooled: dict[str, list[np.ndarray]] = {m: [] for m in METHODS}
    cand_risk: list[list[np.ndarray]] = [[] for _ in candidates]
    y_parts: list[np.ndarray] = []
    acct_parts: list[np.ndarray] = []
    fold_rows = []
    messages = []
    for fold in walk_forward_folds(data.observed_on, data.account_id, horizon_days=horizon_days, folds=folds,
                                   seed=seed):  # fmt: skip
        info = fold.counts(label)
        ytr = label[fold.train]
        pos = int(np.count_nonzero(ytr))
        if pos < min_per_class or ytr.size - pos < min_per_class or not fold.test.any():
            info["skipped"] = (
                f"Training side has {pos} churned and {ytr.size - pos} not churned observations "
                f"(at least {min_per_class} of each are needed) or the test side is empty."
            )
            fold_rows.append(info)
            continue
        rows = fit_rows(np.flatnonzero(fold.train), seed)  # index first: no copy of the whole side
        try:
            proposal = propose(values[rows], data.stage[rows], label[rows], candidates,
                               min_per_class=min_per_class, seed=seed)  # fmt: skip
        except ValueError as exc:
            info["skipped"] = str(exc)
            fold_rows.append(info)
            continue
        test = fold.test
        tv = values[test]
        best = _best_single(proposal.judged)
        pooled["proposal"].append(_risk_of_score(proposal.score(tv, data.stage[test]), active.neutral_score))
        pooled["active"].append(
            _risk_of_score(weighted_scores(active_scores[test], data.stage[test], active_w), active.neutral_score)
        )
        pooled["best_single"].append(proposal.judged[best].risk(tv[:, best]))
        pooled["reference_lr"].append(_reference_lr(values[rows], label[rows], tv))
        for j, jd in enumerate(proposal.judged):
            cand_risk[j].append(jd.risk(tv[:, j]))
        y_parts.append(label[test])
        acct_parts.append(data.account_id[test])
        info["best_single"] = candidates[best].name
        info["proposal_measures"] = [c.measure.name for c in proposal.chosen]
        fold_rows.append(info)
    if not y_parts:
        messages.append("No walk-forward fold had enough earlier outcomes to train on: no validation.")
        return (
            {"folds": fold_rows, "comparison": None, "verdict": None, "messages": messages},
            {},
            np.empty(0, bool),
            np.empty(0),
        )
    y = np.concatenate(y_parts)
    accounts = np.concatenate(acct_parts)
    risks = {m: np.concatenate(parts) for m, parts in pooled.items()}
    comparison = compare_methods(risks, y, accounts, reference="active", draws=draws, seed=seed)
    per_candidate = {c.name: np.concatenate(parts) for c, parts in zip(candidates, cand_risk, strict=True)}
    verdict = _verdict(comparison.to_dict())
    lift = {m: _round(top_decile_lift(r, y)) for m, r in risks.items()}
    return (
        {"folds": fold_rows, "comparison": comparison.to_dict(), "top_decile_lift": lift, "verdict": verdict,
         "messages": messages},
        per_candidate,
        y,
        accounts,
    )  # fmt: skip


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def _verdict(comparison: dict[str, Any]) -> dict[str, Any]:
    diff = comparison["difference_vs_reference"]["proposal"]
    auc = comparison["auc"]
    improvement = diff["low"] is not None and diff["low"] > 0
    worse = diff["high"] is not None and diff["high"] < 0
    if improvement:
        text = (
            f"The proposal ranks later churn better than the active config: AUC {auc['proposal']['value']} against "
            f"{auc['active']['value']}, a difference of {diff['value']} (95% interval {diff['low']} to {diff['high']})."
        )
    elif worse:
        text = (
            f"The proposal ranks later churn WORSE than the active config: AUC {auc['proposal']['value']} against "
            f"{auc['active']['value']} (difference {diff['value']}, interval {diff['low']} to {diff['high']}). "
            "Do not activate it."
        )
    else:
        text = (
            f"Not an improvement: the proposal's AUC {auc['proposal']['value']} against the active config's "
            f"{auc['active']['value']} differs by {diff['value']}, within its 95% interval ({diff['low']} to "
            f"{diff['high']}). The data does not show it ranks churn better."
        )
    return {"improvement": improvement, "worse": worse, "message": text}


# --- the ranking ---------------------------------------------------------------------------------------


def _ranking(
    candidates: list[Measure],
    *,
    judged_all: list[Judged],
    groups: np.ndarray,
    chosen: set[str],
    per_candidate: dict[str, np.ndarray],
    y: np.ndarray,
    accounts: np.ndarray,
    seed: int,
) -> list[dict[str, Any]]:
    """Every candidate for a person to read, best first: its definition, direction, training AUC,
    and on the pooled walk-forward test observations its AUC with an interval, top-decile lift and
    churn rate by decile with intervals; its correlation group, and whether the proposal uses it."""
    tested: dict[str, Any] = {}
    if per_candidate and y.size:
        comparison = compare_methods(
            per_candidate, y, accounts, draws=CANDIDATE_DRAWS, seed=seed, normal=True
        ).to_dict()
        tested = comparison["auc"]
    rows = []
    for j, (c, jd) in enumerate(zip(candidates, judged_all, strict=True)):
        risk = per_candidate.get(c.name)
        row: dict[str, Any] = {
            "measure": c.name,
            "label": c.label,
            "definition": {k: v for k, v in c.to_dict().items() if k not in {"thresholds", "direction", "name"}},
            "direction": jd.direction.value,
            "coverage": round(jd.coverage, 4),
            "train_auc": round(jd.train_auc, 4),
            "test_auc": tested.get(c.name),
            "top_decile_lift": None if risk is None else _round(top_decile_lift(risk, y)),
            "deciles": [] if risk is None else [dataclasses.asdict(d) for d in churn_by_decile(risk, y)],
            "group": int(groups[j]),
            "chosen": c.name in chosen,
        }
        rows.append(row)
    rows.sort(key=lambda r: -((r["test_auc"] or {}).get("value") or r["train_auc"]))
    return rows


# --- the whole suggestion ----------------------------------------------------------------------------


def _new_config(active: ScoringModel, proposal: Proposal) -> ScoringModel:
    kept = [m for m in _rule_measures(active) if m.name not in {c.measure.name for c in proposal.chosen}]
    measures = (*kept, *(c.measure for c in proposal.chosen))
    weights = {stage: {**{m.name: 0.0 for m in kept}, **proposal.weights[stage.value]} for stage in STAGES}
    bands = active.bands if proposal.bands is None else Bands(poor=proposal.bands[0], good=proposal.bands[1])
    return ScoringModel(
        measures=measures,
        weights=weights,
        bands=bands,
        stage_rules=active.stage_rules,
        neutral_score=active.neutral_score,
        rules=active.rules,
    )


def suggest_config(
    session: Session,
    *,
    as_of: dt.date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    periodic_months: int = DEFAULT_PERIODIC_MONTHS,
    min_per_class: int = MIN_PER_CLASS,
    seed: int = SEED,
    snap_days: int = SNAP_DAYS,
    max_candidates: int = MAX_CANDIDATES,
    folds: int = FOLDS,
    draws: int = DRAWS,
    cache_dir: Path | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """A complete new config version proposed from outcomes, judged walk-forward next to the
    active config, the best single candidate and a plain logistic-regression reference, with the
    ranking of every candidate. Changes nothing (but the default config version on a fresh
    database). ``DomainValidationError``/``TooFewOutcomes`` (422) for what cannot be learned from."""
    check_history(session, as_of=as_of, horizon_days=horizon_days)
    started = time.perf_counter()
    training, candidates, cached = observations(
        session, as_of=as_of, horizon_days=horizon_days, periodic_months=periodic_months, snap_days=snap_days,
        max_candidates=max_candidates, cache_dir=cache_dir, today=today or dt.datetime.now(dt.UTC).date(),
    )  # fmt: skip
    data_seconds = time.perf_counter() - started
    if not candidates:
        message = "No source holds data to build a measure from: push usage, signals, tickets or feedback first."
        raise TooFewOutcomes(message, errors={"outcomes": [message]})
    data = training.data
    _check_classes(data.label, min_per_class, training)
    _, active = get_active_model(session)
    assert data.raw_values is not None
    m_active = len(active.measures)
    values = data.raw_values[:, m_active:]
    active_scores = data.measure_scores[:, :m_active]
    fit_start = time.perf_counter()
    validation, per_candidate, y, accounts = _walk_forward(
        data, values, active_scores, active, candidates, horizon_days=horizon_days, min_per_class=min_per_class,
        seed=seed, draws=draws, folds=folds,
    )  # fmt: skip
    try:
        proposal = propose(values, data.stage, data.label, candidates, min_per_class=min_per_class, seed=seed)
    except ValueError as exc:
        raise TooFewOutcomes(str(exc), errors={"outcomes": [str(exc)]}) from None
    new = _new_config(active, proposal)
    chosen = {c.measure.name for c in proposal.chosen}
    ranking = _ranking(
        candidates, judged_all=proposal.judged, groups=proposal.groups, chosen=chosen, per_candidate=per_candidate, y=y,
        accounts=accounts, seed=seed,
    )  # fmt: skip
    verdict = validation.get("verdict")
    comment = _comment(training, verdict)
    return {
        "as_of": as_of,
        "horizon_days": horizon_days,
        "periodic_months": periodic_months,
        "active_version": training.config_version,
        "data": {**training.counts(), "candidates": len(candidates), "cached": cached},
        "measures": proposal_table(proposal),
        "bands": new.bands.to_dict(),
        "messages": proposal.messages,
        "validation": validation,
        "signals": ranking,
        "new_version": {"config": new.to_dict(), "comment": comment},
        "suggested_author": "suggestions",
        "seconds": {"data": round(data_seconds, 3), "fit": round(time.perf_counter() - fit_start, 3)},
    }


def _comment(training: TrainingData, verdict: dict[str, Any] | None) -> str:
    text = f"suggested from {training.outcomes} outcomes"
    if training.periodic_observations:
        text += f" and {training.periodic_observations} periodic observations"
    text += f" (horizon {training.horizon_days} days, as of {training.as_of.isoformat()})"
    if verdict is None:
        return text + "; not validated (too few earlier outcomes)"
    return text + (
        "; validated better than the active config"
        if verdict["improvement"]
        else "; NOT shown better than the active config"
    )


# --- the latest ranking ---------------------------------------------------------------------------------


def latest_signals(session: Session) -> dict[str, Any] | None:
    """The candidate ranking of the newest succeeded suggestions request (None when there is none)."""
    row = session.scalars(
        sa.select(JobRequest)
        .where(JobRequest.kind == JobKind.SUGGESTIONS, JobRequest.status == JobRequestStatus.SUCCEEDED)
        .order_by(JobRequest.finished_at.desc(), JobRequest.id.desc())
        .limit(1)
    ).first()
    if row is None or not row.result or "signals" not in row.result:
        return None
    result = row.result
    return {
        "request_id": row.id,
        "finished_at": row.finished_at,
        "as_of": result.get("as_of"),
        "horizon_days": result.get("horizon_days"),
        "observations": (result.get("data") or {}).get("observations"),
        "signals": result["signals"],
    }
