"""Learning from outcomes: training data from the raw tables, suggested weights, the churn model
(trained, stored, and applied by the scoring run) and event lift.

The training data is computed, never read from score history: for each observation date, one
``compute_measures_over`` pass (a fixed number of set-based queries, whatever the number of accounts)
reads the raw tables as of that date and ``compute_health`` turns the values into measure scores
with the active config. Nothing dated after an observation date enters its features; the
accounts table's current state enters only as documented in docs/learning.md (the renewal date
is rebuilt from the outcomes, the current status is not used as a filter).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import DomainValidationError
from app.models import (
    Account,
    AccountStatus,
    ChurnModel,
    DailyUsage,
    Event,
    Feedback,
    HealthScore,
    LicenseSnapshot,
    Outcome,
    OutcomeKind,
    SupportTicket,
    UsageSignal,
)
from app.pipeline.measures import PortfolioMeasures, compute_measures_over
from app.services.churn_state import (  # noqa: F401 (re-exported: they lived here)
    NO_MODEL_NOTE,
    NO_SCORE_NOTE,
    NOT_SCORED_SINCE_NOTE,
    OLD_FORMAT_NOTE,
    TRAIN_JOB,
    churn_note,
    has_churn_model,
    model_format,
)
from app.services.scoring_config.active import get_active_model
from scoring.churn import FORMAT as CHURN_FORMAT
from scoring.churn import (
    RUN_PREFIX,
    ChurnModelFit,
    ChurnPredictor,
    align_measure_values,
    fit_churn_model,
    measure_definitions,
)
from scoring.churn import NotEnoughOutcomes as ChurnOutcomes
from scoring.health import compute_health
from scoring.learning import (
    MIN_PER_CLASS,
    NotEnoughOutcomes,
    RuleLift,
    TrainingSet,
    concat_training_sets,
    epoch_days,
    event_lift,
    label_churn,
    outcome_observation_days,
    periodic_observation_days,
)
from scoring.model import ScoringModel
from scoring.rules import Rule
from scoring.stage import assign_stages

logger = logging.getLogger(__name__)

DEFAULT_HORIZON_DAYS = 90
DEFAULT_PERIODIC_MONTHS = 12  # periodic observations by default: outcomes alone are often too few
#: Outcome observation dates are moved back onto a grid of this many days (one pass per step); 1:
#: exactly the horizon before each outcome (one pass per outcome day), which keeps an observation
#: 90 days before a renewal in the pre-renewal stage, as the scoring run would place it.
SNAP_DAYS = 1
SEED = 0
_KEY = 1_000_000  # account * _KEY + epoch day: one sortable key per (account, day)


class TooFewOutcomes(DomainValidationError):
    """Too few outcomes to learn from (422): the message says how many there are."""


# --- training data --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrainingData:
    """Observations for learning, with what went into them."""

    data: TrainingSet
    config_version: int
    model: ScoringModel
    as_of: dt.date
    horizon_days: int
    periodic_months: int
    observation_dates: int
    outcomes: int  # outcomes behind an observation
    outcome_observations: int
    periodic_observations: int
    skipped: dict[str, int]
    seconds: float

    def counts(self) -> dict[str, Any]:
        return {
            **self.data.counts(),
            "outcomes": self.outcomes,
            "outcome_observations": self.outcome_observations,
            "periodic_observations": self.periodic_observations,
            "observation_dates": self.observation_dates,
            "skipped": self.skipped,
        }


def _keys(account: np.ndarray, day: np.ndarray) -> np.ndarray:
    return account.astype(np.int64) * _KEY + epoch_days(day)


def _last_on_or_before(sorted_keys: np.ndarray, account: np.ndarray, day: np.datetime64) -> np.ndarray:
    """Per account, the latest day in ``sorted_keys`` on or before ``day`` (-1 when none), as epoch days."""
    query = account.astype(np.int64) * _KEY + epoch_days(np.asarray(day))
    pos = np.searchsorted(sorted_keys, query, side="right") - 1
    found = sorted_keys[np.maximum(pos, 0)] if sorted_keys.size else np.zeros_like(query)
    ok = (pos >= 0) & (found // _KEY == account)
    return np.where(ok, found % _KEY, -1)


def _first_after(sorted_keys: np.ndarray, account: np.ndarray, day: np.datetime64) -> np.ndarray:
    """Per account, the earliest day in ``sorted_keys`` after ``day`` (-1 when none), as epoch days."""
    query = account.astype(np.int64) * _KEY + epoch_days(np.asarray(day))
    pos = np.searchsorted(sorted_keys, query, side="right")
    found = sorted_keys[np.minimum(pos, sorted_keys.size - 1)] if sorted_keys.size else np.zeros_like(query)
    ok = (pos < sorted_keys.size) & (found // _KEY == account)
    return np.where(ok, found % _KEY, -1)


def _columns(rows: list[Any], width: int) -> list[tuple[Any, ...]]:
    return list(zip(*rows, strict=True)) if rows else [() for _ in range(width)]


@dataclass(frozen=True, slots=True)
class _Outcomes:
    """The outcomes learning looks at, as arrays, with sorted (account, day) keys to look days up."""

    account: np.ndarray
    day: np.ndarray  # datetime64[D]
    churn: np.ndarray  # bool: the outcome is a churn
    churn_keys: np.ndarray
    renewal_keys: np.ndarray  # renewed: where a contract year ended
    unknown_churn: np.ndarray  # churned now, with no churn outcome: when it churned is unknown


@dataclass(slots=True)
class _Tally:
    skipped: dict[str, int] = field(default_factory=lambda: {"not_a_customer": 0, "no_measure_data": 0})
    outcome_observations: int = 0
    periodic_observations: int = 0
    outcomes_used: int = 0

    def add(self, other: _Tally) -> None:
        for key, value in other.skipped.items():
            self.skipped[key] = self.skipped.get(key, 0) + value
        self.outcome_observations += other.outcome_observations
        self.periodic_observations += other.periodic_observations
        self.outcomes_used += other.outcomes_used


def build_training_data(
    session: Session,
    *,
    as_of: dt.date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    periodic_months: int = 0,
    snap_days: int = SNAP_DAYS,
    versioned: tuple[int, ScoringModel] | None = None,
    outcome_observations: bool = True,
    workers: int = 1,
) -> TrainingData:
    """Observations of accounts, with the active config's measure scores as of each date.

    - **Outcome observations**: every outcome (renewed, churned, expanded, downgraded) dated on
      or before ``as_of`` gives one observation of its account ``horizon_days`` before it (moved
      back onto a ``snap_days`` grid); its label is whether the outcome is a churn.
    - **Periodic observations** (``periodic_months`` > 0): every customer account on each of
      ``periodic_months`` dates a month apart, the last one ``horizon_days`` before ``as_of`` (so
      every horizon has been seen in full); the label is a churn within the horizon after the date.

    An account is observed on a date only when it is a customer then: its contract started on or
    before the date and it had not churned (its last churn outcome is not on or after its contract
    start and on or before the date). Observations with no measure data at all are skipped.

    ``versioned``: (version, model) whose measures to compute; the active config when None (measure
    discovery passes a model of candidate measures). ``outcome_observations=False``: periodic
    observations only (one label meaning, churn within the horizon from any day; and a pass per
    monthly date instead of one per outcome date). ``workers`` > 1 on PostgreSQL: the dates' passes
    run that many at a time, each in a read-only session of its own (the database does the work;
    two passes use two of its cores).
    """
    start = time.perf_counter()
    config_version, model = versioned if versioned is not None else get_active_model(session)
    outcomes = _load_outcomes(session, as_of=as_of)
    observed = outcome_observation_days(outcomes.day, horizon_days, snap_days)
    if not outcome_observations:  # no outcome's date matches any day
        observed = np.full(observed.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    periodic = (
        set(periodic_observation_days(as_of - dt.timedelta(days=horizon_days), periodic_months))
        if periodic_months > 0
        else set()
    )
    dates = sorted({*observed[~np.isnat(observed)].tolist(), *periodic})
    tally = _Tally()

    def observe(pm: PortfolioMeasures, day_tally: _Tally) -> TrainingSet | None:
        day = pm.as_of
        return _observe_on(
            pm,
            model=model,
            outcomes=outcomes,
            outcome_accounts=outcomes.account[observed == np.datetime64(day, "D")],
            periodic=day in periodic,
            horizon_days=horizon_days,
            snap_days=snap_days,
            tally=day_tally,
        )

    def observe_all(on: Session, chunk: list[dt.date], chunk_tally: _Tally) -> list[TrainingSet]:
        measured = compute_measures_over(on, dates=chunk, model=model, include_churned=True)
        return [part for pm in measured if (part := observe(pm, chunk_tally)) is not None]

    engine = session.get_bind()
    if workers > 1 and len(dates) > 1 and engine.dialect.name == "postgresql":
        # ``workers`` runs of consecutive dates, each reading what does not depend on the date once.
        size = -(-len(dates) // workers)
        chunks = [dates[i : i + size] for i in range(0, len(dates), size)]

        def observe_apart(chunk: list[dt.date]) -> tuple[list[TrainingSet], _Tally]:
            chunk_tally = _Tally()
            with Session(bind=engine) as own, own.begin():
                return observe_all(own, chunk, chunk_tally), chunk_tally

        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(observe_apart, chunks))
        for _, chunk_tally in results:
            tally.add(chunk_tally)
        parts = [part for chunk_parts, _ in results for part in chunk_parts]
    else:
        parts = observe_all(session, dates, tally)
    return TrainingData(
        data=concat_training_sets(parts, model.measure_names),
        config_version=config_version,
        model=model,
        as_of=as_of,
        horizon_days=horizon_days,
        periodic_months=periodic_months,
        observation_dates=len(dates),
        outcomes=tally.outcomes_used,
        outcome_observations=tally.outcome_observations,
        periodic_observations=tally.periodic_observations,
        skipped=tally.skipped,
        seconds=round(time.perf_counter() - start, 3),
    )


def _load_outcomes(session: Session, *, as_of: dt.date) -> _Outcomes:
    """The outcomes dated on or before ``as_of``, and the accounts churned without one."""
    outcome_rows = session.execute(
        sa.select(Outcome.account_id, Outcome.kind, Outcome.day).where(Outcome.day <= as_of)
    ).all()
    o_account_t, o_kind_t, o_day_t = _columns(list(outcome_rows), 3)
    o_account = np.asarray(o_account_t, dtype=np.int64)
    o_day = np.asarray(o_day_t, dtype="datetime64[D]")
    o_kind = np.asarray([OutcomeKind(k).value for k in o_kind_t], dtype=object)
    churn = o_kind == OutcomeKind.CHURNED.value
    # Only renewals: a churn is not always at a renewal (a cancellation in the term, a notice given
    # months ahead), and taking its day for the renewal date would put every observation in the
    # horizon before a churn in the pre-renewal stage, a stage the scoring run would not have given.
    renewal_point = o_kind == OutcomeKind.RENEWED.value
    # Churned now but no churn outcome: when it churned is unknown, so it is never observed.
    churned_now = np.asarray(
        session.scalars(sa.select(Account.id).where(Account.status == AccountStatus.CHURNED)).all(), dtype=np.int64
    )
    return _Outcomes(
        account=o_account,
        day=o_day,
        churn=churn,
        churn_keys=np.sort(_keys(o_account[churn], o_day[churn])),
        renewal_keys=np.sort(_keys(o_account[renewal_point], o_day[renewal_point])),
        unknown_churn=np.setdiff1d(churned_now, o_account[churn]),
    )


def _observe_on(
    pm: PortfolioMeasures,
    *,
    model: ScoringModel,
    outcomes: _Outcomes,
    outcome_accounts: np.ndarray,
    periodic: bool,
    horizon_days: int,
    snap_days: int,
    tally: _Tally,
) -> TrainingSet | None:
    """The observations on one date (None when there are none): the accounts of the outcomes observed
    then (``outcome_accounts``), or every account on a periodic date, kept when they are customers
    with measure data; ``tally`` counts them and what was skipped."""
    day = pm.as_of
    day64 = np.datetime64(day, "D")
    names = model.measure_names
    ids = pm.account_id
    customer = _customers_on(pm, day64, outcomes)
    # The renewal date as it stood on the day: the next renewal (renewed outcome) after it, else
    # the renewal date in force on the day (account history).
    next_renewal = _first_after(outcomes.renewal_keys, ids, day64)
    renewal = np.where(next_renewal >= 0, next_renewal.astype("datetime64[D]"), pm.renewal_date)
    stage = assign_stages(day, pm.contract_start, renewal, pm.first_value_on, model.stage_rules, term=pm.term)
    raw = pm.matrix(names)
    result = compute_health(raw, stage, model)
    scores = result.measure_scores.T.astype(np.float64)  # (n, m)
    has_data = ~np.all(np.isnan(scores), axis=1)

    of_outcome = _rows_of(ids, outcome_accounts)
    wanted = of_outcome | periodic
    rows = wanted & customer & has_data
    tally.skipped["not_a_customer"] += int(np.count_nonzero(wanted & ~customer))
    tally.skipped["no_measure_data"] += int(np.count_nonzero(wanted & customer & ~has_data))
    if not np.any(rows):
        return None
    account = ids[rows]
    when = np.full(account.size, day64)
    is_outcome_row = (of_outcome & rows)[rows]
    label = _churn_labels(when, account, is_outcome_row, outcomes, horizon_days=horizon_days, snap_days=snap_days)
    tally.outcome_observations += int(np.count_nonzero(is_outcome_row))
    tally.periodic_observations += int(np.count_nonzero(~is_outcome_row))
    tally.outcomes_used += int(np.count_nonzero(np.isin(outcome_accounts, account[is_outcome_row])))
    return TrainingSet(when, account, stage[rows], scores[rows], label, names, raw.T[rows].astype(np.float64))


def _customers_on(pm: PortfolioMeasures, day64: np.datetime64, outcomes: _Outcomes) -> np.ndarray:
    """Per account of ``pm``: its contract started on or before the day and it had not churned by then."""
    ids = pm.account_id
    start_day = np.where(np.isnat(pm.contract_start), np.iinfo(np.int64).min, epoch_days(pm.contract_start))
    last_churn = _last_on_or_before(outcomes.churn_keys, ids, day64)
    customer = (start_day <= int(day64.astype(np.int64))) & ~((last_churn >= 0) & (last_churn >= start_day))
    customer &= ~np.isin(ids, outcomes.unknown_churn)
    return customer


def _rows_of(ids: np.ndarray, accounts: np.ndarray) -> np.ndarray:
    """Per id of the sorted ``ids``: whether it is one of ``accounts``."""
    mask = np.zeros(ids.size, dtype=bool)
    pos = np.searchsorted(ids, accounts)
    pos = np.minimum(pos, max(ids.size - 1, 0))
    present = ids[pos] == accounts if ids.size else np.zeros(accounts.size, dtype=bool)
    mask[pos[present]] = True
    return mask


def _churn_labels(
    when: np.ndarray,
    account: np.ndarray,
    is_outcome_row: np.ndarray,
    outcomes: _Outcomes,
    *,
    horizon_days: int,
    snap_days: int,
) -> np.ndarray:
    """Whether each observed account churned within the horizon after its observation date.

    Outcome observations sit up to snap_days - 1 days earlier than the horizon: their window
    reaches the outcome itself. Periodic ones look exactly horizon_days ahead."""
    churn_day, churn_account = outcomes.day[outcomes.churn], outcomes.account[outcomes.churn]
    label = label_churn(when, account, churn_day, churn_account, horizon_days)
    label_outcome = label_churn(when, account, churn_day, churn_account, horizon_days + snap_days - 1)
    return np.where(is_outcome_row, label_outcome | label, label)


# --- suggestions (app/services/suggestions.py builds them) --------------------------------------


def check_enough_outcomes(session: Session, *, as_of: dt.date, periodic_months: int, min_per_class: int) -> None:
    """Refuse at once (``TooFewOutcomes``) what ``build_training_data`` could never give enough
    observations for, from a few counts of the outcomes and accounts; lets through anything else
    (the job itself then says whether the real observations suffice).

    Upper bounds, so nothing that would succeed is refused: an observation is one account on one
    date, and the dates are the outcomes' (one each) and ``periodic_months`` monthly ones. A churned
    one needs a churn outcome of its account dated on or before ``as_of``, so there are at most
    that many churn outcomes, plus the other outcomes of those accounts, plus one per periodic date
    and such account. A churn outcome's own observation is always churned (the churn lies within
    its horizon), so the not churned ones are at most the other outcomes plus one per periodic date
    and account.
    """
    churned_kind = Outcome.kind == OutcomeKind.CHURNED
    upto = Outcome.day <= as_of
    churners = sa.select(Outcome.account_id).where(churned_kind, upto).distinct().subquery()
    churn_outcomes = session.scalar(sa.select(sa.func.count()).where(churned_kind, upto)) or 0
    other_outcomes = session.scalar(sa.select(sa.func.count()).select_from(Outcome).where(~churned_kind, upto)) or 0
    churners_other = (
        session.scalar(
            sa.select(sa.func.count()).where(
                ~churned_kind, upto, Outcome.account_id.in_(sa.select(churners.c.account_id))
            )
        )
        or 0
    )
    churner_accounts = session.scalar(sa.select(sa.func.count()).select_from(churners)) or 0
    accounts = session.scalar(sa.select(sa.func.count()).select_from(Account)) if periodic_months else 0
    most_churned = churn_outcomes + churners_other + periodic_months * churner_accounts
    most_not_churned = other_outcomes + periodic_months * (accounts or 0)
    if most_churned >= min_per_class and most_not_churned >= min_per_class:
        return
    message = (
        f"Too few outcomes to learn from: {most_churned} churned and {most_not_churned} not churned observations "
        f"at most ({churn_outcomes} churn and {other_outcomes} other outcomes up to {as_of.isoformat()}, "
        f"{periodic_months} monthly dates); at least {min_per_class} of each are needed."
    )
    raise TooFewOutcomes(message, errors={"outcomes": [message]})


def _too_few(exc: NotEnoughOutcomes, training: TrainingData) -> TooFewOutcomes:
    return TooFewOutcomes(
        f"{exc} Outcomes behind the observations: {training.outcomes}; horizon {training.horizon_days} days.",
        errors={"outcomes": [str(exc)]},
    )


def evaluate_learning(
    session: Session,
    *,
    as_of: dt.date,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    periodic_months: int = DEFAULT_PERIODIC_MONTHS,
    min_per_class: int = MIN_PER_CLASS,
    seed: int = SEED,
) -> dict[str, Any]:
    """The validation figures of a suggested config (walk-forward, against the active config) and
    of a churn model; stores nothing. ``TooFewOutcomes`` when there is not enough to learn from."""
    from app.services.suggestions import suggest_config

    suggestion = suggest_config(
        session, as_of=as_of, horizon_days=horizon_days, periodic_months=periodic_months,
        min_per_class=min_per_class, seed=seed,
    )  # fmt: skip
    training = build_training_data(
        session, as_of=as_of, horizon_days=horizon_days, periodic_months=periodic_months,
        outcome_observations=periodic_months == 0, workers=2,
    )  # fmt: skip
    fit = _fit(training, min_per_class=min_per_class, seed=seed)
    return {"suggestions": suggestion, "churn_model": fit.validation.to_dict()}


# --- the churn model ------------------------------------------------------------------------------


def first_data_day(session: Session) -> dt.date | None:
    """The earliest day anything the churn model or suggestions learn from is dated (usage,
    signals, licenses, feedback, tickets, outcomes); None when there is nothing. One index-backed
    ``min`` per table."""
    days = [
        session.scalar(sa.select(sa.func.min(column)))
        for column in (DailyUsage.day, UsageSignal.day, LicenseSnapshot.day, Feedback.day, Outcome.day)
    ]
    opened = session.scalar(sa.select(sa.func.min(SupportTicket.opened_at)))
    if opened is not None:
        days.append(opened.date())
    known = [d for d in days if d is not None]
    return min(known) if known else None


def check_history(session: Session, *, as_of: dt.date, horizon_days: int) -> None:
    """Refuse at once (``TooFewOutcomes``, a 422 with field messages) an ``as_of`` before any data,
    or a horizon longer than the history up to ``as_of``: the latest observation is dated
    ``as_of - horizon_days`` and needs data on or before it."""
    first = first_data_day(session)
    if first is None:
        message = "There is no data to learn from yet: no usage, signals, licenses, feedback, tickets or outcomes."
        raise TooFewOutcomes(message, errors={"as_of": [message]})
    if as_of < first:
        message = f"as_of {as_of.isoformat()} is before any data: the first data is dated {first.isoformat()}."
        raise TooFewOutcomes(message, errors={"as_of": [message]})
    history = (as_of - first).days
    if horizon_days > history:
        message = (
            f"horizon_days {horizon_days} is longer than the history: the data runs from {first.isoformat()} to "
            f"as_of {as_of.isoformat()}, {history} days, and an observation needs its whole horizon after it; "
            f"use at most {history} days or a later as_of."
        )
        raise TooFewOutcomes(message, errors={"horizon_days": [message]})


def _model_fields(row: ChurnModel) -> dict[str, Any]:
    return {
        "version": row.version,
        "trained_at": row.trained_at,
        "trained_by": row.trained_by,
        "horizon_days": row.horizon_days,
        "config_version": row.config_version,
        "format": model_format(row.params),
        "kind": row.params.get("kind"),
        "measure_names": list(row.measure_names),
        "feature_names": list(row.feature_names),
        "params": row.params,
        "counts": row.counts,
        "validation": row.validation,
    }


def train_churn_model(
    session: Session,
    *,
    as_of: dt.date,
    actor: str,
    horizon_days: int = DEFAULT_HORIZON_DAYS,
    periodic_months: int = DEFAULT_PERIODIC_MONTHS,
    min_per_class: int = MIN_PER_CLASS,
    seed: int = SEED,
    snap_days: int = SNAP_DAYS,
    cache_dir: Path | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Train a churn model on the outcomes (and periodic observations): both candidates compared
    by walk-forward validation, the winner calibrated and stored as the next version (the scoring
    run uses the newest). ``TooFewOutcomes`` when there is not enough to learn from (or ``as_of``
    and the horizon leave no history); nothing is stored then.

    The model learns from the raw values of the active config's measures *and* of every candidate
    measure discovery builds from the sources with data (``app.services.suggestions.observations``,
    cached for the day and shared with the suggestions), and keeps the best of each group of
    correlated ones (``scoring.churn.select_measures``). It stores their definitions, and the
    scoring run computes them beside the config's: the probability does not depend on which config
    is active, and sees signals no config weighs (Telco's contract type, docs/learning.md)."""
    from app.services.suggestions import MAX_CANDIDATES, observations  # the suggestions' cached observations

    check_history(session, as_of=as_of, horizon_days=horizon_days)
    # Periodic observations only when there are any: an outcome observation sits exactly its horizon
    # before the outcome, and where churn is declared after a span of inactivity (CDNOW's 90 days
    # without a purchase) that day is the last active one: a tell the later period does not have,
    # which taught the model that recent activity means churn (AUC 0.28 there, docs/learning.md).
    data_start = time.perf_counter()
    training, _, _ = observations(
        session, as_of=as_of, horizon_days=horizon_days, periodic_months=periodic_months, snap_days=snap_days,
        max_candidates=MAX_CANDIDATES, cache_dir=cache_dir, today=today or dt.datetime.now(dt.UTC).date(),
    )  # fmt: skip
    fit_start = time.perf_counter()
    fit = _fit(training, min_per_class=min_per_class, seed=seed)
    definitions = measure_definitions(fit.predictor.measure_names, training.model.measures)
    predictor = dataclasses.replace(fit.predictor, measures=definitions)
    buffer = io.BytesIO()
    joblib.dump(predictor, buffer)
    version = (session.scalar(sa.select(sa.func.max(ChurnModel.version))) or 0) + 1
    row = ChurnModel(
        version=version,
        trained_at=utcnow(),
        trained_by=actor,
        horizon_days=horizon_days,
        config_version=training.config_version,
        neutral_score=training.model.neutral_score,
        measure_names=list(predictor.measure_names),
        feature_names=list(predictor.feature_names),
        params={
            "format": CHURN_FORMAT,
            "kind": predictor.kind,
            "calibration": "sigmoid (Platt), 3 folds, one base model refitted on every observation",
            "as_of": as_of.isoformat(),
            "periodic_months": periodic_months,
            "min_per_class": min_per_class,
            "seed": seed,
            "snap_days": snap_days,
            "candidates": len(training.model.measures),
            "measures": list(definitions),
        },
        counts=training.counts(),
        validation=fit.validation.to_dict(),
        model=buffer.getvalue(),
    )
    session.add(row)
    session.flush()
    out = _model_fields(row)
    out["seconds"] = {"data": round(fit_start - data_start, 3), "fit": round(time.perf_counter() - fit_start, 3)}
    return out


def _fit(training: TrainingData, *, min_per_class: int, seed: int) -> ChurnModelFit:
    """The churn model of a training set (``TooFewOutcomes`` with the counts when too few)."""
    data = training.data
    raw = data.raw_values if data.raw_values is not None else np.full(data.measure_scores.shape, np.nan)
    try:
        return fit_churn_model(
            raw, data.stage, data.label, observed_on=data.observed_on, account_id=data.account_id,
            measure_names=data.measure_names, horizon_days=training.horizon_days, min_per_class=min_per_class,
            seed=seed,
        )  # fmt: skip
    except ChurnOutcomes as exc:
        raise TooFewOutcomes(
            f"{exc} Outcomes behind the observations: {training.outcomes}; horizon {training.horizon_days} days.",
            errors={"outcomes": [str(exc)]},
        ) from None


@dataclass(frozen=True, slots=True)
class TrainSummary:
    """What a training job reports (``job_runs.counts``)."""

    result: dict[str, Any]

    def counts(self) -> dict[str, Any]:
        r = self.result
        return {
            "version": r["version"],
            "kind": r["kind"],
            "observations": r["counts"]["observations"],
            "churned": r["counts"]["churned"],
            "auc": r["validation"]["auc"],
            "brier": r["validation"]["brier"],
            "seconds": r["seconds"],
        }

    def one_line(self) -> str:
        r = self.result
        v = r["validation"]
        auc = v["auc"]
        brier = v["brier"]
        return (
            f"Churn model v{r['version']} ({r['kind']}) trained on {r['counts']['observations']} observations "
            f"({r['counts']['churned']} churned); walk-forward AUC {auc if auc is not None else 'n/a'}, "
            f"Brier {brier if brier is not None else 'n/a'}. {v['reason']}"
        )


def churn_model_info(session: Session) -> dict[str, Any]:
    """The newest churn model's metadata and validation figures; ``model`` is None before any."""
    row = session.scalar(sa.select(ChurnModel).order_by(ChurnModel.version.desc()).limit(1))
    models = session.scalar(sa.select(sa.func.count()).select_from(ChurnModel)) or 0
    note = None
    if row is None:
        note = NO_MODEL_NOTE
    elif model_format(row.params) != CHURN_FORMAT:
        note = OLD_FORMAT_NOTE.format(version=row.version)
    return {"model": None if row is None else _model_fields(row), "versions": models, "note": note}


@functools.lru_cache(maxsize=4)
def _predictor(version: int, trained_at: dt.datetime, blob: bytes) -> ChurnPredictor:
    # Keyed by version and training time, so a version number reused by a rebuilt database
    # never serves the old model. The blob comes from this service's own table.
    predictor: ChurnPredictor = joblib.load(io.BytesIO(blob))
    return predictor


def _load_predictor(session: Session, version: int | None = None) -> tuple[int, ChurnPredictor | None] | None:
    """The newest churn model (or ``version``): (version, predictor), the predictor None when the
    stored model is of an older format (logged); None when there is no such model."""
    query = sa.select(ChurnModel.version, ChurnModel.trained_at, ChurnModel.params)
    query = query.where(ChurnModel.version == version) if version is not None else query
    row = session.execute(query.order_by(ChurnModel.version.desc()).limit(1)).first()
    if row is None:
        return None
    found, trained_at, params = row
    if model_format(params) != CHURN_FORMAT:
        logger.warning(OLD_FORMAT_NOTE.format(version=found))
        return found, None
    blob = session.scalar(sa.select(ChurnModel.model).where(ChurnModel.version == found)) or b""
    return found, _predictor(found, trained_at, blob)


@dataclass(frozen=True, slots=True)
class ChurnScores:
    """Per account (the scoring run's order): probability, expected ARR at risk, model version
    (all None without a model)."""

    probability: list[float | None]
    expected_arr_at_risk: list[float | None]
    version: list[int | None]
    values: np.ndarray | None = None  # (n, f) the model's inputs, its ``measure_names`` order


def churn_scores(
    session: Session, *, portfolio: PortfolioMeasures, stage: np.ndarray, names: dict[str, str] | None = None
) -> ChurnScores:
    """Churn probability and expected ARR at risk (probability x ARR) of every account the scoring
    run scored, from the newest churn model, in one ``predict_proba`` over the portfolio.

    The churn model's measures are read from ``portfolio`` under their run ``names``
    (``scoring.churn.run_measures``: the run computes them beside the config's, or reads a config
    measure that computes the same; one it did not compute counts as no data). A stored model of an
    older format is ignored (logged): the probabilities stay null and the notes say to retrain.
    """
    n = stage.shape[0]
    loaded = _load_predictor(session) if n else None
    predictor = None if loaded is None else loaded[1]
    if loaded is None or predictor is None:
        return ChurnScores([None] * n, [None] * n, [None] * n)
    version = loaded[0]
    known = names or {}
    raw = _aligned_raw(portfolio, tuple(known.get(name, RUN_PREFIX + name) for name in predictor.measure_names))
    # Rounded before the product, so the stored expected value is the stored probability x ARR.
    probability = np.round(predictor.predict(raw, stage), 6)
    expected = np.round(probability * np.asarray(portfolio.arr, dtype=np.float64), 2)
    return ChurnScores(probability.tolist(), expected.tolist(), [version] * n, raw)


def _aligned_raw(portfolio: PortfolioMeasures, names: tuple[str, ...]) -> np.ndarray:
    """(n, len(names)) raw values of the portfolio's accounts; NaN for a measure it lacks."""
    known = tuple(name for name in names if name in portfolio.raw)
    values = portfolio.matrix(known).T.astype(np.float64) if known else np.empty((portfolio.account_id.size, 0))
    return align_measure_values(values, known, names)


def churn_reasons(
    session: Session, *, version: int | None, values: list[float | None] | None, stage: int
) -> list[dict[str, Any]] | None:
    """An account's top reasons (contributions to the calibrated log-odds of churn) from the churn
    model ``version`` that made its probability, over the inputs stored with its latest score
    (``latest_scores.churn_values``); None when there is no such model, it is of an older format,
    or no inputs were stored."""
    if version is None or values is None:
        return None
    loaded = _load_predictor(session, version)
    if loaded is None or loaded[1] is None:
        return None
    predictor = loaded[1]
    if len(values) != len(predictor.measure_names):
        return None
    raw = np.asarray([[np.nan if v is None else v for v in values]], dtype=np.float64)
    return predictor.reasons(raw, np.asarray([stage]))[0]


# --- event lift -----------------------------------------------------------------------------------


def compute_event_lift(session: Session, *, window_days: int = DEFAULT_HORIZON_DAYS) -> dict[str, Any]:
    """Per event rule: of the outcomes an event of the rule preceded (within ``window_days`` before
    the outcome, for the same account), how many were churns, against every outcome's churn rate:
    the lift with a Wilson 95 % interval. Rules of the active config first, then any other rule
    that fired. Downgrades count as not churned.

    Only outcomes whose account was scored in the window count: events come from scoring runs, so
    an account never scored then (a churned account left out of a back-filled history, an account
    from before the service ran) could not have had one, and counting it would bias the lift."""
    _, model = get_active_model(session)
    outcome_rows = session.execute(sa.select(Outcome.account_id, Outcome.kind, Outcome.day)).all()
    o_account_t, o_kind, o_day = _columns(list(outcome_rows), 3)
    o_account = np.asarray(o_account_t, dtype=np.int64)
    days = np.asarray(o_day, dtype="datetime64[D]")
    first = days.min().astype(dt.date) - dt.timedelta(days=window_days) if days.size else None
    observed = _scored_in_window(session, o_account, days, first=first, window_days=window_days)
    event_rows = (
        session.execute(sa.select(Event.account_id, Event.rule_id, Event.day).where(Event.day >= first)).all()
        if first is not None
        else []
    )
    e_account, e_rule, e_day = _columns(list(event_rows), 3)
    known = {rule.id: rule for rule in model.rules}
    rule_ids = [*known, *sorted(set(e_rule) - set(known))]
    code = {rule_id: i for i, rule_id in enumerate(rule_ids)}
    churned = np.asarray([OutcomeKind(k) is OutcomeKind.CHURNED for k in o_kind], dtype=bool)
    lift = event_lift(
        outcome_account=o_account[observed],
        outcome_day=days[observed],
        outcome_churned=churned[observed],
        event_account=np.asarray(e_account, dtype=np.int64),
        event_rule=np.asarray([code[r] for r in e_rule], dtype=np.int64),
        event_day=np.asarray(e_day, dtype="datetime64[D]"),
        rules=len(rule_ids),
        window_days=window_days,
    )
    rules = [_rule_lift(item, rule_ids[item.rule], known.get(rule_ids[item.rule])) for item in lift.rules]
    rules.sort(key=lambda r: (r["lift"] is None, -(r["lift"] or 0.0), r["rule_id"]))
    unscored = int(np.count_nonzero(~observed))
    note = None
    if unscored:
        note = (
            f"{unscored} outcomes ({int(np.count_nonzero(churned & ~observed))} churned) are left out: their account "
            f"was not scored in the {window_days} days before them, so no event could have fired."
        )
    return {
        "window_days": window_days,
        "outcomes_unscored": unscored,
        "note": note,
        "outcomes": lift.outcomes,
        "churned": lift.churned,
        "churn_rate": lift.churn_rate,
        "interval": "Wilson 95 % interval of the churn rate with the event, divided by the overall churn rate",
        "rules": rules,
    }


def _scored_in_window(
    session: Session, o_account: np.ndarray, days: np.ndarray, *, first: dt.date | None, window_days: int
) -> np.ndarray:
    """Per outcome: whether its account was scored in the ``window_days`` before it."""
    # Each outcome account's first and last scored day since the earliest window (an index-only
    # aggregate over the history's primary key): scored in the window when the span meets it.
    spans = (
        session.execute(
            sa.select(HealthScore.account_id, sa.func.min(HealthScore.day), sa.func.max(HealthScore.day))
            .where(HealthScore.day >= first)
            .group_by(HealthScore.account_id)
        ).all()
        if first is not None
        else []
    )
    s_account, s_first, s_last = _columns(list(spans), 3)
    s_ids = np.asarray(s_account, dtype=np.int64)
    order = np.argsort(s_ids)
    s_ids = s_ids[order]
    scored_first = np.asarray(s_first, dtype="datetime64[D]")[order]
    scored_last = np.asarray(s_last, dtype="datetime64[D]")[order]
    pos = np.minimum(np.searchsorted(s_ids, o_account), max(s_ids.size - 1, 0))
    has_span = (s_ids[pos] == o_account) if s_ids.size else np.zeros(o_account.size, dtype=bool)
    window = np.timedelta64(window_days, "D")
    observed = np.zeros(o_account.size, dtype=bool)
    if s_ids.size:
        observed = has_span & (scored_first[pos] < days) & (scored_last[pos] >= days - window)
    return observed


def _rule_lift(item: RuleLift, rule_id: str, rule: Rule | None) -> dict[str, Any]:
    """One rule's lift, with how to read it: more or less churn when its interval excludes 1."""
    if item.lift is None:
        reading = "no_data"
    elif item.ci_low is not None and item.ci_low > 1.0:
        reading = "more_churn"
    elif item.ci_high is not None and item.ci_high < 1.0:
        reading = "less_churn"
    else:
        reading = "unclear"
    return {
        "rule_id": rule_id,
        "name": None if rule is None else rule.name,
        "kind": None if rule is None else rule.kind.value,
        "in_active_config": rule is not None,
        "outcomes_with_event": item.outcomes_with_event,
        "churned_with_event": item.churned_with_event,
        "churn_rate_with_event": item.churn_rate_with_event,
        "lift": item.lift,
        "ci_low": item.ci_low,
        "ci_high": item.ci_high,
        "reading": reading,
    }
