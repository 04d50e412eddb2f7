"""Outcomes: the cohorts' churns and renewals, and a few expansions and downgrades."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from app.demo.common import SOURCE, add_years, dates, epoch_day, numbered
from app.demo.plan import CHURNED, DECLINING, ESTABLISHED, HEALTHY, NEW, PRE_RENEWAL, RENEWED, DemoPlan

#: An outcome needs this many days of history before it: its 90-day horizon, and usage before that.
_HISTORY_BEFORE_OUTCOME = 120

OUTCOME_COLUMNS = ("account_id", "source", "external_id", "kind", "day", "arr_change", "note")
_CHURN_REASONS = (
    "Budget cuts", "Moved to a competitor", "Champion left the company", "Low adoption",
    "Acquired; tools consolidated", "Product gaps in reporting",
)  # fmt: skip


def outcome_rows(plan: DemoPlan, rng: np.random.Generator) -> Iterator[tuple[Any, ...]]:
    """Churns and renewals of the cohorts, the renewals at the last anniversary of the accounts that
    stay (every annual contract renews or churns once a year), plus a few expansions (healthy) and
    downgrades (declining)."""
    today = epoch_day(plan.as_of)
    n = plan.size
    arch, cohort = plan.archetype, plan.cohort
    settled = (cohort != NEW) & (cohort != CHURNED)
    expands = settled & (arch == HEALTHY) & (rng.random(n) < 0.06)
    downgrades = settled & (arch == DECLINING) & (rng.random(n) < 0.12)
    expand_day = np.maximum(today - rng.integers(1, 181, n), plan.start + 30)
    downgrade_day = np.maximum(today - rng.integers(1, 121, n), plan.start + 30)
    expand_change = np.round(plan.arr * rng.uniform(0.1, 0.4, n), -2)
    downgrade_change = -np.round(plan.arr * rng.uniform(0.1, 0.35, n), -2)
    renewal_change = np.round(plan.arr * rng.uniform(0.0, 0.08, n), -2)
    reason = np.asarray(_CHURN_REASONS, dtype=object)[rng.integers(0, len(_CHURN_REASONS), n)]
    # Accounts that stay renewed at their last anniversary, when it lies in the history (with room
    # for a horizon before it) and is not the contract start.
    anniversary = add_years(plan.renewal, -1)
    renewed_before = (
        ((cohort == ESTABLISHED) | (cohort == PRE_RENEWAL))
        & (anniversary > plan.start)
        & (anniversary <= today)
        & (anniversary >= today - plan.days + 1 + _HISTORY_BEFORE_OUTCOME)
    )

    groups = [
        (np.flatnonzero(cohort == CHURNED), "churned", plan.event_day, -plan.arr, "Did not renew: "),
        (np.flatnonzero(cohort == RENEWED), "renewed", plan.event_day, renewal_change, "Renewed for 12 months"),
        (np.flatnonzero(renewed_before), "renewed", anniversary, renewal_change, "Renewed for 12 months"),
        (np.flatnonzero(expands), "expanded", expand_day, expand_change, "Added seats"),
        (np.flatnonzero(downgrades), "downgraded", downgrade_day, downgrade_change, "Reduced seats"),
    ]
    account = np.concatenate([g[0] for g in groups])
    kind = np.concatenate([np.full(g[0].size, g[1], dtype=object) for g in groups])
    day = np.concatenate([g[2][g[0]] for g in groups])
    change = np.concatenate([g[3][g[0]] for g in groups])
    note = np.concatenate(
        [np.char.add(g[4], reason[g[0]].astype(str)) if g[1] == "churned" else np.full(g[0].size, g[4])
         for g in groups]
    ).astype(object)  # fmt: skip
    order = np.lexsort((day, account))
    total = order.size
    return zip(
        plan.account_id[account[order]].tolist(),
        [SOURCE] * total,
        numbered("demo-outcome-", total),
        kind[order].tolist(),
        dates(day[order]),
        change[order].tolist(),
        note[order].tolist(),
        strict=True,
    )
