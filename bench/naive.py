"""The scoring run done the naive way, for comparison only: ORM objects and queries per account.

Same measures, same core maths per account in plain Python; this is what the real run avoids.
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from app.models import (
    Account,
    AccountStatus,
    DailyUsage,
    Feedback,
    FeedbackKind,
    Goal,
    GoalStatus,
    HealthScore,
    LatestScore,
    LicenseSnapshot,
    SupportTicket,
    UsageSignal,
)
from app.pipeline.sources import PRIORITY_WEIGHT
from app.services.scoring_config.active import get_active_model
from scoring.measures import Direction
from scoring.stage import LifecycleStage


def _interp(x: float, thresholds: tuple[float, ...], direction: Direction) -> float:
    k = len(thresholds)
    anchors = [100.0 * i / (k - 1) for i in range(k)]
    if direction is Direction.LOWER_IS_BETTER:
        anchors.reverse()
    if x <= thresholds[0]:
        return anchors[0]
    for i in range(1, k):
        if x <= thresholds[i]:
            t0, t1 = thresholds[i - 1], thresholds[i]
            return anchors[i - 1] + (anchors[i] - anchors[i - 1]) * (x - t0) / (t1 - t0)
    return anchors[-1]


def _measures(session: Session, account: Account, as_of: dt.date) -> dict[str, float | None]:
    w60 = as_of - dt.timedelta(days=60)
    w30 = as_of - dt.timedelta(days=30)
    usage = session.scalars(
        sa.select(DailyUsage).where(DailyUsage.account_id == account.id, DailyUsage.day > w60, DailyUsage.day <= as_of)
    ).all()
    ever = session.scalar(
        sa.select(sa.func.count()).where(DailyUsage.account_id == account.id, DailyUsage.day <= as_of)
    )
    cur = sum(u.active_users for u in usage if u.day > w30)
    prev = sum(u.active_users for u in usage if u.day <= w30)
    logins = sum(u.logins for u in usage if u.day > w30)
    key = sum(u.key_feature_uses for u in usage if u.day > w30)
    login_days = [u.day for u in usage if u.logins > 0]
    age = (as_of - account.contract_start).days
    out: dict[str, float | None] = dict.fromkeys(
        ("active_user_ratio", "usage_trend_pct", "key_feature_adoption_ratio", "days_since_last_login")
    )
    if ever:
        window = min(max(age + 1, 1), 30)
        out["active_user_ratio"] = cur / window / account.seats_purchased if account.seats_purchased > 0 else None
        if age >= 60:
            out["usage_trend_pct"] = (
                (cur - prev) / prev * 100 if prev > 0 else 100.0 if cur > 0 else 0.0 if usage else -100.0
            )
        out["key_feature_adoption_ratio"] = key / logins if logins > 0 else 0.0
        out["days_since_last_login"] = float((as_of - max(login_days)).days) if login_days else 61.0
    snapshot = session.scalars(
        sa.select(LicenseSnapshot)
        .where(LicenseSnapshot.account_id == account.id, LicenseSnapshot.day <= as_of)
        .order_by(LicenseSnapshot.day.desc())
        .limit(1)
    ).first()
    out["license_utilization_ratio"] = (
        snapshot.seats_active / snapshot.seats_purchased if snapshot and snapshot.seats_purchased > 0 else None
    )
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    tickets = session.scalars(
        sa.select(SupportTicket).where(
            SupportTicket.account_id == account.id,
            SupportTicket.opened_at >= end - dt.timedelta(days=366),
            SupportTicket.opened_at < end,
        )
    ).all()
    if tickets:
        out["open_ticket_load"] = sum(
            PRIORITY_WEIGHT[t.priority]
            for t in tickets
            if t.closed_at is None or t.closed_at.replace(tzinfo=dt.UTC) >= end
        )
        out["sla_breaches_90d"] = float(
            sum(
                1
                for t in tickets
                if t.sla_breached and t.opened_at.replace(tzinfo=dt.UTC) >= end - dt.timedelta(days=90)
            )
        )
    else:
        out["open_ticket_load"] = out["sla_breaches_90d"] = None
    feedback = session.scalars(
        sa.select(Feedback)
        .where(Feedback.account_id == account.id, Feedback.day > as_of - dt.timedelta(days=180), Feedback.day <= as_of)
        .order_by(Feedback.day, Feedback.id)
    ).all()
    nps = [fb.score for fb in feedback if fb.kind == FeedbackKind.NPS]
    csat = [fb.score for fb in feedback if fb.kind == FeedbackKind.CSAT]
    sentiment = [fb.score for fb in feedback if fb.kind == FeedbackKind.CSM_SENTIMENT]
    out["nps"] = (sum(s >= 9 for s in nps) - sum(s <= 6 for s in nps)) / len(nps) * 100 if nps else None
    out["csat_avg"] = sum(csat) / len(csat) if csat else None
    out["csm_sentiment"] = sentiment[-1] if sentiment else None
    goals = session.scalars(
        sa.select(Goal).where(
            Goal.account_id == account.id, Goal.created_on <= as_of, Goal.status != GoalStatus.CANCELLED
        )
    ).all()
    achieved = sum(1 for g in goals if g.achieved_on and g.achieved_on <= as_of)
    due = sum(1 for g in goals if (g.achieved_on and g.achieved_on <= as_of) or (g.due_on and g.due_on <= as_of))
    out["goals_achieved_ratio"] = achieved / due if due else None
    return out


def run_scoring_naive(factory: sessionmaker[Session], *, as_of: dt.date) -> int:
    """Score every active account one at a time through the ORM; returns the number scored."""
    with factory.begin() as session:
        version, model = get_active_model(session)
        session.execute(sa.delete(HealthScore).where(HealthScore.day == as_of))
        accounts = session.scalars(sa.select(Account).where(Account.status != AccountStatus.CHURNED)).all()
        rules = model.stage_rules
        for account in accounts:
            first_value = session.scalar(
                sa.select(sa.func.min(UsageSignal.day)).where(
                    UsageSignal.account_id == account.id,
                    UsageSignal.signal == rules.first_value_signal,
                    UsageSignal.day <= as_of,
                )
            )
            stage = LifecycleStage.ESTABLISHED
            if (as_of - account.contract_start).days < rules.onboarding_max_days and not first_value:
                stage = LifecycleStage.ONBOARDING
            if account.renewal_date and (account.renewal_date - as_of).days <= rules.pre_renewal_days:
                stage = LifecycleStage.PRE_RENEWAL
            raw = _measures(session, account, as_of)
            total = weighted = 0.0
            for measure in model.measures:
                value = raw[measure.name]
                weight = model.weights[stage].get(measure.name, 0.0)
                if value is None or weight <= 0:
                    continue
                total += weight
                weighted += weight * _interp(value, measure.thresholds, measure.direction)
            score = weighted / total if total else None
            band = None if score is None else "good" if score >= 70 else "average" if score >= 40 else "poor"
            values = [raw[m.name] for m in model.measures]
            all_weight = sum(model.weights[stage].values())
            common = {
                "account_id": account.id,
                "day": as_of,
                "config_version": version,
                "stage": stage,
                "score": score,
                "band": band,
                "completeness": total / all_weight,
                "measure_values": values,
            }
            session.add(HealthScore(**common))
            session.merge(LatestScore(**common))
            json.dumps(values)
    return len(accounts)
