"""Support tickets: a few per account over the window, more, more urgent and slower for declining accounts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.demo.common import SOURCE, categorical, datetimes, epoch_day, numbered
from app.demo.plan import CHURNED, DECLINING, RECOVERING, DemoPlan
from app.models.enums import TicketPriority

_TICKETS_PER_90_DAYS = np.array([1.2, 3.5, 2.5, 0.6, 1.8])
_TICKETS_SEGMENT_FACTOR = np.array([0.7, 1.0, 1.8])
PRIORITIES = tuple(priority.value for priority in TicketPriority)  # the order the tables below use
_PRIORITY_GIVEN_ARCHETYPE = np.array(
    [
        [0.35, 0.50, 0.13, 0.02],
        [0.10, 0.40, 0.35, 0.15],
        [0.20, 0.45, 0.28, 0.07],
        [0.40, 0.45, 0.13, 0.02],
        [0.30, 0.50, 0.17, 0.03],
    ]
)
_RESOLUTION_HOURS = np.array([72.0, 36.0, 16.0, 6.0])  # median, by priority
_RESOLUTION_SLOWNESS = np.array([1.0, 2.5, 1.5, 1.0, 1.2])
_SLA_BREACH = np.array([0.04, 0.30, 0.12, 0.05, 0.08])
_SLA_PRIORITY_FACTOR = np.array([0.6, 1.0, 1.4, 1.8])
_SLA_DAYS = np.array([10, 5, 2, 1])  # an open ticket older than this has breached its SLA

_TICKET_SUBJECTS = (
    "SSO login fails for some users", "Dashboard loads slowly", "CSV export times out",
    "Question about user permissions", "Billing: invoice address change", "API rate limit errors",
    "Report numbers do not match our warehouse", "How do I set up the Salesforce sync?",
    "Users not receiving notification emails", "Request: bulk user import", "Integration webhook failing",
    "Data missing after nightly sync", "Error 500 when saving a workflow", "Need help configuring SAML",
    "Mobile app crashes on start", "Feature request: custom fields on reports", "Cannot invite new users",
    "Scheduled report did not arrive", "Audit log export", "Seat count looks wrong",
)  # fmt: skip

TICKET_COLUMNS = (
    "account_id", "source", "external_id", "subject", "priority", "status", "opened_at", "closed_at", "sla_breached",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Tickets:
    """The ticket rows, and when each closed (feedback rates some of them)."""

    account: np.ndarray  # plan index per ticket
    closed_seconds: np.ndarray  # -1 while open
    rows: Iterator[tuple[Any, ...]]


def draw_tickets(plan: DemoPlan, rng: np.random.Generator) -> Tickets:
    """A few tickets per account over the window; declining accounts have more, more urgent, slower."""
    today = epoch_day(plan.as_of)
    n = plan.size
    arch = plan.archetype
    low = np.maximum(today - plan.days + 1, plan.start)
    high = np.minimum(today, plan.end - 1)
    rate = _TICKETS_PER_90_DAYS[arch] * _TICKETS_SEGMENT_FACTOR[plan.segment] * plan.days / 90.0
    count = np.where(high >= low, rng.poisson(rate), 0)
    account = np.repeat(np.arange(n), count)
    total = account.size
    t_arch = arch[account]
    u = rng.random(total)
    u = np.where(t_arch == DECLINING, u**0.6, np.where(t_arch == RECOVERING, u**1.8, u))  # later / earlier
    opened_day = low[account] + np.floor(u * (high[account] - low[account] + 1)).astype(np.int64)
    opened = opened_day * 86_400 + rng.integers(6 * 3600, 20 * 3600, total) + rng.integers(0, 3600, total)
    priority = categorical(rng, _PRIORITY_GIVEN_ARCHETYPE, t_arch)
    hours = _RESOLUTION_HOURS[priority] * _RESOLUTION_SLOWNESS[t_arch] * rng.lognormal(0.0, 0.9, total)
    stuck = (t_arch == DECLINING) & (rng.random(total) < 0.2)
    hours = np.where(stuck, hours * 8.0, hours)
    closed = opened + np.round(hours * 3600).astype(np.int64)
    # Churned accounts: whatever was open was closed on the churn day.
    churn_close = plan.end[account] * 86_400 + 12 * 3600
    closed = np.where(plan.cohort[account] == CHURNED, np.minimum(closed, churn_close), closed)
    end_of_today = (today + 1) * 86_400
    is_open = closed >= end_of_today
    closed = np.where(is_open, -1, closed)
    status = np.where(
        is_open,
        np.where(rng.random(total) < 0.7, "open", "pending"),
        np.where(closed < end_of_today - 3 * 86_400, "closed", "solved"),
    )
    age_days = (end_of_today - opened) / 86_400
    breach_p = _SLA_BREACH[t_arch] * _SLA_PRIORITY_FACTOR[priority]
    breached = (rng.random(total) < breach_p) | (is_open & (age_days > _SLA_DAYS[priority]))
    subject = np.asarray(_TICKET_SUBJECTS, dtype=object)[rng.integers(0, len(_TICKET_SUBJECTS), total)]
    rows = zip(
        plan.account_id[account].tolist(),
        [SOURCE] * total,
        numbered("demo-ticket-", total),
        subject.tolist(),
        np.asarray(PRIORITIES)[priority].tolist(),
        status.tolist(),
        datetimes(opened),
        datetimes(closed),
        breached.tolist(),
        strict=True,
    )
    return Tickets(account, closed, rows)
