"""What customers and CSMs say, and what accounts aim for: NPS, CSAT and CSM sentiment, and success-plan goals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np

from app.demo.accounts import Contacts
from app.demo.common import SOURCE, between, categorical, dates, epoch_day, numbered, offsets
from app.demo.plan import DECLINING, DemoPlan, usage_level
from app.demo.tickets import Tickets

FEEDBACK_DAYS = 180
_NPS_PER_180_DAYS = np.array([0.8, 1.6, 3.5])  # by segment
_NPS_CATEGORY = np.array(  # detractor, passive, promoter
    [[0.07, 0.28, 0.65], [0.60, 0.30, 0.10], [0.30, 0.40, 0.30], [0.45, 0.40, 0.15], [0.25, 0.45, 0.30]]
)
_CSAT = np.array(  # 1..5
    [
        [0.01, 0.02, 0.07, 0.30, 0.60],
        [0.15, 0.25, 0.30, 0.20, 0.10],
        [0.05, 0.10, 0.25, 0.35, 0.25],
        [0.05, 0.10, 0.35, 0.30, 0.20],
        [0.03, 0.07, 0.25, 0.40, 0.25],
    ]
)
_CSAT_RESPONSE_RATE = 0.55
# CSM sentiment: base + slope * (progress of the account's usage curve), plus noise, on 1..5.
_SENTIMENT_BASE = np.array([4.4, 4.0, 2.0, 2.4, 3.2])
_SENTIMENT_SLOPE = np.array([0.0, -2.8, 2.2, 0.0, 0.0])

# Goals: chance a goal is achieved by its due date, by archetype.
_GOAL_ACHIEVED = np.array([0.85, 0.20, 0.50, 0.05, 0.55])

_GOAL_TITLES = (
    "Roll out to all sales reps", "Replace spreadsheet reporting", "Automate the weekly executive report",
    "Integrate with Salesforce", "Onboard the support team", "Cut ticket handling time by 20%",
    "Reach 80% weekly active users", "Launch the customer portal", "Consolidate data sources",
    "Train admins on SSO and permissions", "Migrate historical data", "Dashboards for every region",
    "Go live in EMEA", "Nightly sync through the API", "Certify 10 power users", "Retire the legacy tool",
)  # fmt: skip
_NPS_COMMENTS = (
    ("Too many bugs lately", "Support takes too long", "Hard to get my team to use it",
     "Reporting does not do what we need", "Too expensive for what we use"),
    ("Does the job", "Good, but setup was painful", "Solid product, a few gaps in reporting"),
    ("Saves our team hours every week", "Great support team", "Could not run our process without it",
     "The dashboards are excellent"),
)  # fmt: skip
_SENTIMENT_COMMENTS = (
    "Exec sponsor disengaged; no reply to QBR invite", "Champion frustrated with open tickets",
    "Neutral call, asked about pricing", "Good QBR, discussing expansion", "Very engaged, wants a case study",
)  # fmt: skip

FEEDBACK_COLUMNS = ("account_id", "source", "external_id", "kind", "day", "score", "respondent", "comment")
GOAL_COLUMNS = ("account_id", "source", "external_id", "title", "status", "created_on", "due_on", "achieved_on")


class _Responses(NamedTuple):
    """One kind of feedback, an entry per response."""

    account: np.ndarray  # plan index
    day: np.ndarray
    score: np.ndarray
    respondent: np.ndarray  # object
    comment: np.ndarray  # object, None for no comment


def feedback_rows(
    plan: DemoPlan, rng: np.random.Generator, contacts: Contacts, tickets: Tickets
) -> Iterator[tuple[Any, ...]]:
    """NPS responses, CSAT after closed tickets, and the CSM's sentiment every few weeks (last 180 days)."""
    today = epoch_day(plan.as_of)
    window = max(FEEDBACK_DAYS, plan.days)
    first_day = today - window + 1
    # Drawn in this order from the one generator; ``kind`` is the position here.
    responses = (
        _nps(plan, rng, contacts, first_day=first_day, window=window),
        _csat(plan, rng, contacts, tickets, first_day=first_day),
        _csm_sentiment(plan, rng, first_day=first_day, window=window),
    )
    account = np.concatenate([r.account for r in responses])
    day = np.concatenate([r.day for r in responses])
    kind = np.concatenate([np.full(r.account.size, code, np.int64) for code, r in enumerate(responses)])
    score = np.concatenate([r.score for r in responses]).astype(np.float64)
    person = np.concatenate([r.respondent for r in responses])
    comment = np.concatenate([r.comment for r in responses])
    order = np.lexsort((kind, day, account))
    total = order.size
    return zip(
        plan.account_id[account[order]].tolist(),
        [SOURCE] * total,
        numbered("demo-feedback-", total),
        np.asarray(["nps", "csat", "csm_sentiment"])[kind[order]].tolist(),
        dates(day[order]),
        score[order].tolist(),
        person[order].tolist(),
        comment[order].tolist(),
        strict=True,
    )


def _respondents(rng: np.random.Generator, contacts: Contacts, account: np.ndarray) -> np.ndarray:
    """One of the account's contacts per response, as an object array of emails."""
    pick = contacts.offset[account] + np.floor(rng.random(account.size) * contacts.count[account]).astype(np.int64)
    return contacts.email[pick].astype(object)


def _nps(plan: DemoPlan, rng: np.random.Generator, contacts: Contacts, *, first_day: int, window: int) -> _Responses:
    """NPS: surveys from a month after the start, until the churn."""
    today = epoch_day(plan.as_of)
    low = np.maximum(first_day, plan.start + 30)
    high = np.minimum(today, plan.end - 1)
    count = np.where(high >= low, rng.poisson(_NPS_PER_180_DAYS[plan.segment] * window / FEEDBACK_DAYS), 0)
    account = np.repeat(np.arange(plan.size), count)
    day = between(rng, low[account], high[account], account.size)
    category = categorical(rng, _NPS_CATEGORY, plan.archetype[account])  # detractor, passive, promoter
    score = np.select(
        [category == 0, category == 1],
        [rng.integers(0, 7, category.size), rng.integers(7, 9, category.size)],
        rng.integers(9, 11, category.size),
    )
    per_category = np.array([len(c) for c in _NPS_COMMENTS])
    flat_comments = np.asarray([text for comments in _NPS_COMMENTS for text in comments], dtype=object)
    pick = offsets(per_category)[category] + rng.integers(0, 1000, category.size) % per_category[category]
    comment = flat_comments[pick]
    comment[rng.random(category.size) >= 0.4] = None
    return _Responses(account, day, score, _respondents(rng, contacts, account), comment)


def _csat(
    plan: DemoPlan, rng: np.random.Generator, contacts: Contacts, tickets: Tickets, *, first_day: int
) -> _Responses:
    """CSAT: about half of the tickets closed in the feedback window get a rating that day."""
    today = epoch_day(plan.as_of)
    closed_day = np.where(tickets.closed_seconds >= 0, tickets.closed_seconds // 86_400, -1)
    rated = (closed_day >= first_day) & (closed_day <= today) & (rng.random(closed_day.size) < _CSAT_RESPONSE_RATE)
    account = tickets.account[rated]
    day = closed_day[rated]
    score = 1 + categorical(rng, _CSAT, plan.archetype[account])
    respondent = _respondents(rng, contacts, account)
    return _Responses(account, day, score, respondent, np.full(account.size, None, dtype=object))


def _csm_sentiment(plan: DemoPlan, rng: np.random.Generator, *, first_day: int, window: int) -> _Responses:
    """CSM sentiment every 3-8 weeks, following the account's usage curve."""
    today = epoch_day(plan.as_of)
    n = plan.size
    arch = plan.archetype
    interval = rng.integers(21, 57, n)
    first_offset = np.floor(rng.random(n) * interval).astype(np.int64)
    steps = window // 21 + 1
    s_day = today - first_offset[:, None] - interval[:, None] * np.arange(steps)[None, :]
    valid = (s_day >= first_day) & (s_day >= plan.start[:, None] + 7) & (s_day < plan.end[:, None])
    _, progress = usage_level(plan, slice(None), s_day)
    latent = (
        _SENTIMENT_BASE[arch][:, None] + _SENTIMENT_SLOPE[arch][:, None] * progress + rng.normal(0.0, 0.5, s_day.shape)
    )
    churning = plan.signals_churn[:, None]  # sentiment falls with the usage of a signalled churn
    latent = np.where(churning, np.minimum(latent, 4.0 - 2.5 * progress), latent)
    sentiment = np.clip(np.round(latent), 1, 5)
    account, cols = np.nonzero(valid)
    score = sentiment[account, cols]
    comment = np.asarray(_SENTIMENT_COMMENTS, dtype=object)[(score - 1).astype(np.int64)]
    comment[rng.random(score.size) >= 0.3] = None
    respondent = np.asarray(plan.csm_emails, dtype=object)[plan.owner[account]]
    return _Responses(account, s_day[account, cols], score, respondent, comment)


def goal_rows(plan: DemoPlan, rng: np.random.Generator) -> Iterator[tuple[Any, ...]]:
    """1-4 success-plan goals per account: achieved for healthy accounts, missed or overdue for declining."""
    today = epoch_day(plan.as_of)
    n = plan.size
    count = rng.integers(1, 5, n)
    account = np.repeat(np.arange(n), count)
    total = account.size
    arch = plan.archetype[account]
    first = np.maximum(plan.start[account], today - 365)
    created = np.minimum(first + rng.integers(0, 61, total), today)
    due = created + rng.integers(30, 151, total)
    is_due = due <= today
    succeeds = rng.random(total) < _GOAL_ACHIEVED[arch]
    early = (~is_due) & (rng.random(total) < _GOAL_ACHIEVED[arch] * 0.3)
    fraction = rng.uniform(0.5, 1.0, total)
    achieved_on = np.where(
        is_due,
        created + np.floor((due - created) * fraction).astype(np.int64),
        created + np.floor((today - created) * fraction).astype(np.int64),
    )
    achieved = np.where(is_due, succeeds, early) & (achieved_on <= today) & (achieved_on < plan.end[account])
    # Not achieved and past due: missed, or still open (overdue), more often for declining accounts.
    overdue = rng.random(total) < np.where(arch == DECLINING, 0.5, 0.3)
    status = np.where(achieved, "achieved", np.where(is_due, np.where(overdue, "open", "missed"), "open"))
    cancelled = rng.random(total) < 0.03
    status = np.where(cancelled, "cancelled", status)
    achieved_on = np.where(achieved & ~cancelled, achieved_on, -1)
    title = np.asarray(_GOAL_TITLES, dtype=object)[rng.integers(0, len(_GOAL_TITLES), total)]
    return zip(
        plan.account_id[account].tolist(),
        [SOURCE] * total,
        numbered("demo-goal-", total),
        title.tolist(),
        status.tolist(),
        dates(created),
        dates(due),
        dates(achieved_on),
        strict=True,
    )
