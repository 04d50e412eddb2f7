"""Plain builder functions for test data (no factory_boy): each takes a session and overrides."""

from __future__ import annotations

import datetime as dt
import io
import itertools
from typing import Any

import joblib
import numpy as np
from sqlalchemy.orm import Session

from app.models import (
    Account,
    AccountStatus,
    ChurnModel,
    DailyUsage,
    Feedback,
    FeedbackKind,
    Goal,
    GoalStatus,
    LicenseSnapshot,
    SupportTicket,
    TicketPriority,
    TicketStatus,
    UsageSignal,
)
from scoring.churn import FORMAT as CHURN_FORMAT
from scoring.churn import ChurnPredictor, FeatureScaler, churn_feature_names
from scoring.stage import STAGES

_sequence = itertools.count(1)


def make_account(session: Session, **overrides: Any) -> Account:
    n = next(_sequence)
    values: dict[str, Any] = {
        "external_id": f"acct-{n:05d}",
        "name": f"Account {n}",
        "owner": "csm@example.com",
        "segment": "smb",
        "arr": 12_000.0,
        "contract_start": dt.date(2025, 1, 1),
        "renewal_date": dt.date(2027, 1, 1),
        "seats_purchased": 10,
        "status": AccountStatus.ACTIVE,
    }
    values.update(overrides)
    account = Account(**values)
    session.add(account)
    session.flush()
    return account


def add_usage(
    session: Session,
    account: Account,
    first: dt.date,
    last: dt.date,
    *,
    active_users: int = 5,
    logins: int = 8,
    key_feature_uses: int = 2,
) -> None:
    day = first
    while day <= last:
        session.add(
            DailyUsage(
                account_id=account.id,
                day=day,
                active_users=active_users,
                logins=logins,
                key_feature_uses=key_feature_uses,
            )
        )
        day += dt.timedelta(days=1)
    session.flush()


def add_signal(session: Session, account: Account, day: dt.date, signal: str) -> None:
    session.add(UsageSignal(account_id=account.id, day=day, signal=signal, count=1))
    session.flush()


def add_license(
    session: Session, account: Account, day: dt.date, *, purchased: int, assigned: int, active: int
) -> None:
    session.add(
        LicenseSnapshot(
            account_id=account.id, day=day, seats_purchased=purchased, seats_assigned=assigned, seats_active=active
        )
    )
    session.flush()


def add_ticket(
    session: Session,
    account: Account,
    opened: dt.datetime,
    *,
    closed: dt.datetime | None = None,
    priority: TicketPriority = TicketPriority.NORMAL,
    sla_breached: bool = False,
) -> SupportTicket:
    ticket = SupportTicket(
        account_id=account.id,
        external_id=f"t-{next(_sequence)}",
        priority=priority,
        status=TicketStatus.CLOSED if closed else TicketStatus.OPEN,
        opened_at=opened,
        closed_at=closed,
        sla_breached=sla_breached,
    )
    session.add(ticket)
    session.flush()
    return ticket


def add_feedback(session: Session, account: Account, day: dt.date, kind: FeedbackKind, score: float) -> None:
    session.add(Feedback(account_id=account.id, external_id=f"f-{next(_sequence)}", kind=kind, day=day, score=score))
    session.flush()


def add_goal(
    session: Session,
    account: Account,
    *,
    created: dt.date,
    due: dt.date | None = None,
    achieved: dt.date | None = None,
    status: GoalStatus = GoalStatus.OPEN,
) -> None:
    session.add(
        Goal(
            account_id=account.id,
            external_id=f"g-{next(_sequence)}",
            title="Goal",
            status=status,
            created_on=created,
            due_on=due,
            achieved_on=achieved,
        )
    )
    session.flush()


def utc(year: int, month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=dt.UTC)


class ConstantChurn:
    """A stand-in churn estimator (picklable, so it is stored like a trained one): the same
    probability for every account."""

    def __init__(self, probability: float) -> None:
        self.probability = probability

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        p = np.full(features.shape[0], self.probability)
        return np.column_stack([1.0 - p, p])


def add_churn_model(
    session: Session, *, probability: float = 0.25, version: int = 1, as_of: str = "2026-01-01"
) -> None:
    """A stored churn model (of the current format, over no measure: the stage only) that predicts
    ``probability`` for everyone (trained "as of" ``as_of``)."""
    stages = len(STAGES)
    scaler = FeatureScaler(np.zeros(0), np.zeros(stages), np.ones(stages))
    names = churn_feature_names(())
    predictor = ChurnPredictor("constant", (), names, scaler, ConstantChurn(probability), np.zeros(stages))
    blob = io.BytesIO()
    joblib.dump(predictor, blob)
    session.add(
        ChurnModel(
            version=version, trained_by="test", horizon_days=90, config_version=1, neutral_score=50.0,
            measure_names=[], feature_names=list(names), params={"as_of": as_of, "format": CHURN_FORMAT,
            "kind": "constant"}, counts={}, validation={}, model=blob.getvalue(),
        )
    )  # fmt: skip
    session.flush()


def firing_on_first_day(config: dict[str, Any] | None = None) -> dict[str, Any]:
    """A scoring config (default: the shipped one) whose every rule fires on an account's first
    scored day, as every rule did before issue 17: for tests about what a rule or play does
    rather than about day one (which records the state without firing by default)."""
    import copy

    from scoring.model import default_config_dict

    config = copy.deepcopy(config if config is not None else default_config_dict())
    for rule in config["rules"]:
        rule["fire_on_first_day"] = True
    return config


def activate_config(session: Session, config: dict[str, Any]) -> int:
    """Store ``config`` as a new version and make it the only active one (flushes, no commit)."""
    import sqlalchemy as sa

    from app.models import ScoringConfigVersion

    session.execute(sa.update(ScoringConfigVersion).values(active=False))
    version = (session.scalar(sa.select(sa.func.max(ScoringConfigVersion.version))) or 0) + 1
    session.add(ScoringConfigVersion(version=version, config=config, author="test", active=True))
    session.flush()
    return version
