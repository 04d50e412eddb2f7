"""Product usage: daily usage along each account's curve, product signals, and weekly license snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from app.demo.common import dates, epoch_day, uniform
from app.demo.plan import DECLINING, NEVER_ADOPTING, DemoPlan, usage_level

#: Accounts per daily-usage block: each block is a (block, days) matrix per column.
BLOCK_ACCOUNTS = 16_384
# Product signals on usage days: probability per usage day, by archetype.
_SIGNALS = (
    "setup_completed", "first_value", "report_viewed", "data_export", "admin_changed", "business_review",
    "module_adopted",
)  # fmt: skip
_SIGNAL_ON_USAGE_DAY = {
    "report_viewed": np.array([0.15, 0.04, 0.08, 0.02, 0.06]),
    "data_export": np.array([0.01, 0.05, 0.015, 0.005, 0.015]),
    "admin_changed": np.array([0.003, 0.015, 0.006, 0.004, 0.004]),
    # A business review roughly each quarter for engaged accounts; a new module now and then.
    "business_review": np.array([0.02, 0.006, 0.015, 0.004, 0.012]),
    "module_adopted": np.array([0.004, 0.0005, 0.003, 0.0002, 0.002]),
}
#: Signals that grow more frequent while a declining account falls.
_SIGNALS_OF_DECLINE = frozenset({"data_export", "admin_changed"})
_FIRST_VALUE_DAYS = np.array([[20, 60], [0, 0], [45, 120], [0, 0], [30, 75]])  # after contract start
_HAS_FIRST_VALUE = np.array([True, False, True, False, True])


# License snapshots, per archetype: (low, high) ranges.
_MONTHLY_ACTIVE_FACTOR = np.array([[1.2, 1.5], [1.2, 1.6], [1.2, 1.5], [2.0, 6.0], [1.3, 1.7]])
_SEATS_ASSIGNED_SHARE = np.array([[0.6, 0.95], [0.5, 0.9], [0.4, 0.8], [0.05, 0.3], [0.4, 0.8]])

USAGE_COLUMNS = ("account_id", "day", "active_users", "logins", "key_feature_uses")
SIGNAL_COLUMNS = ("account_id", "day", "signal", "count")
LICENSE_COLUMNS = ("account_id", "day", "seats_purchased", "seats_assigned", "seats_active")


@dataclass(slots=True)
class Signals:
    """Product signals collected while usage is generated, written after it in (account, day, signal) order."""

    account_id: list[np.ndarray] = field(default_factory=list)
    day: list[np.ndarray] = field(default_factory=list)
    signal: list[np.ndarray] = field(default_factory=list)
    count: list[np.ndarray] = field(default_factory=list)

    def add(self, account_id: np.ndarray, day: np.ndarray, signal: int, count: np.ndarray) -> None:
        self.account_id.append(account_id)
        self.day.append(day)
        self.signal.append(np.full(account_id.size, signal, dtype=np.int64))
        self.count.append(count)

    def rows(self) -> Iterator[tuple[Any, ...]]:
        account = np.concatenate(self.account_id)
        day = np.concatenate(self.day)
        signal = np.concatenate(self.signal)
        order = np.lexsort((signal, day, account))
        return zip(
            account[order].tolist(),
            dates(day[order]),
            np.asarray(_SIGNALS)[signal[order]].tolist(),
            np.concatenate(self.count)[order].tolist(),
            strict=True,
        )


def usage_rows(plan: DemoPlan, signals: Signals) -> Iterator[tuple[Any, ...]]:
    """Daily usage rows in (account, day) order, one block of accounts at a time; product signals
    on usage days go to ``signals``."""
    today = epoch_day(plan.as_of)
    day = np.arange(today - plan.days + 1, today + 1, dtype=np.int64)
    day_objects = np.asarray(dates(day), dtype=object)
    weekend = ((day + 3) % 7) >= 5  # 1970-01-01 was a Thursday
    for block, first in enumerate(range(0, plan.size, BLOCK_ACCOUNTS)):
        rng = np.random.default_rng([plan.seed, 1, block])
        sel = slice(first, min(first + BLOCK_ACCOUNTS, plan.size))
        level, progress = usage_level(plan, sel, day[None, :])
        arch = plan.archetype[sel]
        share = level * np.where(weekend[None, :], plan.weekend_factor[sel][:, None], 1.0)
        share *= rng.lognormal(0.0, 0.2, share.shape)
        share *= rng.random(share.shape) < plan.active_day_share[sel][:, None]
        np.clip(share, 0.0, 0.95, out=share)
        active = rng.binomial(plan.seats[sel][:, None], share)
        rows, cols = np.nonzero(active)
        active = active[rows, cols]
        logins = active + rng.poisson(active * plan.login_extra[sel][rows])
        peak = np.maximum(plan.level_start[sel], plan.level_end[sel])[rows]
        ratio = np.sqrt(np.clip(level[rows, cols] / peak, 0.0, 1.0))
        key_uses = rng.binomial(logins, np.clip(plan.key_feature_share[sel][rows] * ratio, 0.0, 1.0))
        account_id = plan.account_id[sel][rows]

        # Signals on usage days: more exports and admin changes while a declining account falls.
        row_arch = arch[rows]
        falling = np.where(row_arch == DECLINING, 0.5 + 1.5 * progress[rows, cols], 1.0)
        for name, probability in _SIGNAL_ON_USAGE_DAY.items():
            p = probability[row_arch] * (falling if name in _SIGNALS_OF_DECLINE else 1.0)
            hit = rng.random(rows.size) < p
            count = rng.integers(1, 4, hit.sum()) if name == "report_viewed" else np.ones(hit.sum(), np.int64)
            signals.add(account_id[hit], day[cols[hit]], _SIGNALS.index(name), count)
        del level, progress, share
        yield from zip(
            account_id.tolist(),
            day_objects[cols].tolist(),
            active.tolist(),
            logins.tolist(),
            key_uses.tolist(),
            strict=True,
        )


def add_milestone_signals(plan: DemoPlan, rng: np.random.Generator, signals: Signals) -> None:
    """``setup_completed`` soon after the contract start, ``first_value`` some weeks later."""
    today = epoch_day(plan.as_of)
    n = plan.size
    arch = plan.archetype
    never = arch == NEVER_ADOPTING
    has_setup = ~never | (rng.random(n) < 0.3)
    setup = plan.start + np.where(never, rng.integers(10, 41, n), rng.integers(1, 15, n))
    ok = has_setup & (setup <= today) & (setup < plan.end)
    signals.add(plan.account_id[ok], setup[ok], _SIGNALS.index("setup_completed"), np.ones(ok.sum(), np.int64))
    first_value = plan.start + uniform(rng, _FIRST_VALUE_DAYS, arch).astype(np.int64)
    ok = _HAS_FIRST_VALUE[arch] & (first_value <= today) & (first_value < plan.end) & (first_value > setup)
    signals.add(plan.account_id[ok], first_value[ok], _SIGNALS.index("first_value"), np.ones(ok.sum(), np.int64))


def license_rows(plan: DemoPlan, rng: np.random.Generator) -> Iterator[tuple[Any, ...]]:
    """Weekly snapshots over the window, ending at as_of."""
    today = epoch_day(plan.as_of)
    day = today - 7 * np.arange((plan.days - 1) // 7, -1, -1, dtype=np.int64)
    level, _ = usage_level(plan, slice(None), day[None, :])
    live = (day[None, :] >= plan.start[:, None]) & (day[None, :] < plan.end[:, None])
    monthly = uniform(rng, _MONTHLY_ACTIVE_FACTOR, plan.archetype)
    seats = plan.seats[:, None]
    active = rng.binomial(seats, np.clip(level * monthly[:, None], 0.0, 1.0))
    assigned_share = uniform(rng, _SEATS_ASSIGNED_SHARE, plan.archetype)
    assigned = active + rng.binomial(seats - active, assigned_share[:, None])
    rows, cols = np.nonzero(live)
    return zip(
        plan.account_id[rows].tolist(),
        dates(day[cols]),
        plan.seats[rows].tolist(),
        assigned[rows, cols].tolist(),
        active[rows, cols].tolist(),
        strict=True,
    )
