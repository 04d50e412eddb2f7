"""The accounts themselves and their contacts (admins, champions and users, some of whom leave)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.demo.common import (
    SOURCE,
    add_years,
    between,
    dates,
    datetimes,
    epoch_day,
    join,
    numbered,
    offsets,
    words,
)
from app.demo.plan import CHURNED, DECLINING, FIRST_NAMES, LAST_NAMES, SEGMENTS, DemoPlan

ACCOUNT_COLUMNS = (
    "id", "external_id", "name", "owner", "segment", "arr", "contract_start", "renewal_date", "seats_purchased",
    "billing_term", "plan", "status", "created_at", "updated_at",
)  # fmt: skip
HISTORY_COLUMNS = (
    "account_id", "valid_from", "arr", "seats_purchased", "renewal_date", "billing_term", "plan", "owner", "segment",
    "contract_start", "recorded_at",
)  # fmt: skip
#: The plan each segment buys (every demo contract is annual).
PLANS = ("starter", "growth", "enterprise")
TERM = "annual"
#: Anniversaries looked at per account: more than any demo tenure (at most six years).
_MAX_YEARS = 8
CONTACT_COLUMNS = ("account_id", "source", "external_id", "name", "email", "role", "added_on", "removed_on")


def account_rows(plan: DemoPlan) -> Iterator[tuple[Any, ...]]:
    n = plan.size
    status = np.where(plan.cohort == CHURNED, "churned", "active")
    created = datetimes(plan.start * 86_400)
    updated_at = dt.datetime.combine(plan.as_of, dt.time(), tzinfo=dt.UTC)
    return zip(
        plan.account_id.tolist(),
        plan.external_id,
        plan.name,
        np.asarray(plan.csm_emails, dtype=object)[plan.owner].tolist(),
        np.asarray(SEGMENTS)[plan.segment].tolist(),
        plan.arr.tolist(),
        dates(plan.start),
        dates(plan.renewal),
        plan.seats.tolist(),
        [TERM] * n,
        np.asarray(PLANS)[plan.segment].tolist(),
        status.tolist(),
        created,
        [updated_at] * n,
        strict=True,
    )


def history_rows(plan: DemoPlan, outcomes: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Each account's dated history, consistent with its contract and outcomes: a row at the
    contract start and at every anniversary before the account ended (the renewal date moves on a
    year), and one on each day an outcome changed its ARR (renewal uplift, expansion, downgrade).
    The last row holds the account's current values, so a back-filled day reads that day's."""
    today = epoch_day(plan.as_of)
    n = plan.size
    index = {int(account_id): i for i, account_id in enumerate(plan.account_id.tolist())}
    changes: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for account_id, _, _, kind, day, arr_change, _ in outcomes:
        if kind != "churned":  # a churned account is not scored after the day it left
            changes[index[account_id]].append((epoch_day(day), float(arr_change)))
    years = np.arange(_MAX_YEARS + 1)
    anniversaries = add_years(np.repeat(plan.start, years.size), np.tile(years, n)).reshape(n, years.size)
    ends = np.minimum(plan.end, today + 1).tolist()
    owners = np.asarray(plan.csm_emails, dtype=object)[plan.owner].tolist()
    segments = np.asarray(SEGMENTS)[plan.segment].tolist()
    plans = np.asarray(PLANS)[plan.segment].tolist()
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        yearly = anniversaries[i].tolist()
        days = sorted({d for d in yearly if d < ends[i]} | {d for d, _ in changes[i] if d < ends[i]})
        for day in days:
            arr = float(plan.arr[i]) - sum(change for when, change in changes[i] if when > day)
            renewal = next(d for d in yearly if d > day)
            rows.append((int(plan.account_id[i]), day, round(arr, 2), int(plan.seats[i]), renewal, TERM, plans[i],
                         owners[i], segments[i], int(plan.start[i])))  # fmt: skip
    if not rows:
        return []
    columns = list(zip(*rows, strict=True))
    recorded = datetimes(np.asarray(columns[1], dtype=np.int64) * 86_400)
    return list(
        zip(columns[0], dates(np.asarray(columns[1])), columns[2], columns[3], dates(np.asarray(columns[4])),
            columns[5], columns[6], columns[7], columns[8], dates(np.asarray(columns[9])), recorded, strict=True)
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Contacts:
    """The contact rows, and who they are per account (feedback picks its respondents among them)."""

    account: np.ndarray  # plan index per contact
    email: np.ndarray
    offset: np.ndarray  # first contact of each account
    count: np.ndarray  # contacts per account
    rows: Iterator[tuple[Any, ...]]


def draw_contacts(plan: DemoPlan, rng: np.random.Generator) -> Contacts:
    """One admin, one or two champions and a few users per account; champions leave declining accounts."""
    today = epoch_day(plan.as_of)
    n = plan.size
    champions = 1 + (rng.random(n) < 0.5)
    users_range = np.array([[1, 3], [2, 6], [4, 10]])[plan.segment]
    users = between(rng, users_range[:, 0], users_range[:, 1], n)
    count = 1 + champions + users
    offset = offsets(count)
    total = int(count.sum())
    account = np.repeat(np.arange(n), count)
    position = np.arange(total) - offset[account]
    role = np.where(position == 0, "admin", np.where(position <= champions[account], "champion", "user"))
    start = plan.start[account]
    tenure = np.maximum(today - start, 0)
    added = start + np.where(role == "user", between(rng, 0, np.minimum(tenure, 120), total),
                             between(rng, 0, np.minimum(tenure, 10), total))  # fmt: skip
    added = np.minimum(added, today)
    removed = np.full(total, -1, dtype=np.int64)
    # The first champion of some declining accounts left recently (before the churn for churned ones).
    arch = plan.archetype[account]
    cohort = plan.cohort[account]
    first_champion = position == 1
    leaves = first_champion & (arch == DECLINING) & (rng.random(total) < np.where(cohort == CHURNED, 0.7, 0.5))
    left_on = np.where(cohort == CHURNED, plan.end[account] - rng.integers(5, 61, total),
                       today - rng.integers(3, 46, total))  # fmt: skip
    leaves &= left_on > added
    removed = np.where(leaves, left_on, removed)
    # A few users moved on at some point.
    user_left = added + rng.integers(30, 400, total)
    moved_on = (role == "user") & (rng.random(total) < 0.05) & (user_left <= today)
    removed = np.where(moved_on, user_left, removed)

    first = rng.integers(0, len(FIRST_NAMES), total)
    last = rng.integers(0, len(LAST_NAMES), total)
    full_name = join(words(FIRST_NAMES, " ")[first], words(LAST_NAMES)[last])
    email = join(
        words(FIRST_NAMES, ".", lower=True)[first], words(LAST_NAMES, "@", lower=True)[last], plan.domain[account]
    )
    rows = zip(
        plan.account_id[account].tolist(),
        [SOURCE] * total,
        numbered("demo-contact-", total),
        full_name.tolist(),
        email.tolist(),
        role.tolist(),
        dates(added),
        dates(removed),
        strict=True,
    )
    return Contacts(account, email, offset, count, rows)
