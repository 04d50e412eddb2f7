"""Generate the simulated product with the ``fightchurn`` package's own simulator (ChurnSim, from
the book "Fighting Churn With Data"), in a scratch virtualenv and a scratch PostgreSQL database,
and export it to files in the cache: nothing of the package is copied into this repository.

The package pins libraries this project cannot share (SQLAlchemy 1.4, among others), so it gets
a virtualenv of its own (``<cache>/venv``), made once: the ``fightchurn`` wheel without its
dependencies, plus only what its simulator imports (``SIMULATOR_REQUIREMENTS``; the rest of its
pins are for the book's other listings: shap, xgboost, matplotlib...).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

FIGHTCHURN = "fightchurn==1.2.0"
SIMULATOR_REQUIREMENTS = (
    "hydra-core~=1.3",
    "omegaconf~=2.3",
    "pandas~=2.0",
    "numpy~=2.0",
    "python-dateutil~=2.8",
    "joblib~=1.3",
    "filelock~=3.12",
    "postgres~=4.0",
    "psycopg2-binary~=2.9",
)


@dataclass(frozen=True, slots=True)
class Model:
    """One of the simulator's products (a hydra config of the same name; its schema has that name
    too): the simulated period and the monthly growth of new customers its yaml sets."""

    name: str
    start: dt.date
    end: dt.date
    growth: float

    def end_after(self, months: int | None) -> dt.date:
        """The simulated end: the yaml's, or ``months`` after the start (a shorter run)."""
        if months is None:
            return self.end
        year, month = divmod(self.start.month - 1 + months, 12)
        return dt.date(self.start.year + year, month + 1, self.start.day)


MODELS = {
    # The default consumer product: one user per account, monthly subscriptions, eight event types.
    "socialnet7": Model("socialnet7", dt.date(2020, 1, 1), dt.date(2020, 6, 1), 0.1),
    # A B2B CRM sold by the seat: plans of 5 to 50 users, add-ons, monthly to annual billing,
    # upgrades and downgrades, 26 event types done by the account's users.
    "crm6": Model("crm6", dt.date(2022, 1, 1), dt.date(2024, 1, 1), 0.04),
}
#: The default product (the external benchmark's).
MODEL = "socialnet7"
SIM_START, SIM_END, GROWTH_RATE = MODELS[MODEL].start, MODELS[MODEL].end, MODELS[MODEL].growth
FILES = ("meta.json", "subscriptions.csv.gz", "events_daily.csv.gz")
#: Distinct users active per account and day (products whose events carry a user id).
USERS_FILE = "users_daily.csv.gz"


def total_customers(initial: int, months: int = 5, growth: float = GROWTH_RATE) -> int:
    """How many customers ChurnSim creates from ``initial`` over ``months`` months (its growth rule:
    ceil(initial x growth) new ones in the second month, then x (1 + growth), rounded up, each month)."""
    total, new = initial, math.ceil(initial * growth)
    for _ in range(months - 1):
        total += new
        new = math.ceil(new * (1.0 + growth))
    return total


def initial_customers_for(accounts: int, months: int = 5, growth: float = GROWTH_RATE) -> int:
    """The ``init_customers`` whose total over ``months`` simulated months is nearest to ``accounts``."""
    guess = max(1, round(accounts / total_customers(1_000_000, months, growth) * 1_000_000))
    candidates = range(max(1, guess - 20), guess + 21)
    return min(candidates, key=lambda n: (abs(total_customers(n, months, growth) - accounts), n))


def months_between(start: dt.date, end: dt.date) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def cache_name(model: str, accounts: int, seed: int, months: int | None = None, variant: str | None = None) -> str:
    """The cache folder of one generated dataset (``socialnet7-a3000-s1``, ``crm6-a2000-s1-m12``,
    ``crm6-a600-s1-m12-causal`` for a variant generated with parameter overrides)."""
    return (
        f"{model}-a{accounts}-s{seed}"
        + ("" if months is None else f"-m{months}")
        + ("" if variant is None else f"-{variant}")
    )


def ensure_venv(cache: Path, log: Path) -> Path:
    """The simulator's virtualenv (made on first use); returns its python."""
    venv = cache / "venv"
    python = venv / "bin" / "python"
    marker = venv / ".fightchurn-installed"
    if marker.exists():
        return python
    shutil.rmtree(venv, ignore_errors=True)
    with log.open("a") as out:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out, stderr=out)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-deps", FIGHTCHURN], check=True, stdout=out, stderr=out)
        subprocess.run([*pip, *SIMULATOR_REQUIREMENTS], check=True, stdout=out, stderr=out)
    marker.write_text(FIGHTCHURN + "\n")
    return python


def _admin(pg_url: str) -> psycopg.Connection:
    return psycopg.connect(pg_url, dbname="postgres", autocommit=True)


def generate(
    cache: Path,
    *,
    accounts: int,
    seed: int,
    pg_url: str,
    log: Path,
    model: str = MODEL,
    months: int | None = None,
    parallel: int = 1,
    parameters: Mapping[str, str] | None = None,
) -> dict:
    """Simulate ``model`` (for ``months`` months from its start, default its own period) into a
    scratch database ``hs_churnsim_<pid>`` (dropped afterwards, also on failure), export to
    ``cache`` and return the metadata. ``cache`` must not hold a finished export. ``parallel``:
    the simulator's ``n_parallel`` (customers simulated in that many processes; its id counter
    is shared through a file lock). ``parameters``: the model's own parameters overridden (Hydra
    overrides such as ``acausal_churn`` -> ``0``), recorded in the metadata."""
    product = MODELS[model]
    end = product.end_after(months)
    cache.mkdir(parents=True, exist_ok=True)
    python = ensure_venv(cache.parent, log)
    initial = initial_customers_for(accounts, months_between(product.start, end), product.growth)
    database = f"hs_churnsim_{os.getpid()}"
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    with _admin(pg_url) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        with tempfile.TemporaryDirectory(prefix="churnsim-") as scratch:
            # ChurnSim keeps its customer-id counter and lock in the temp folder: a private one.
            env = {
                **os.environ,
                "TMPDIR": scratch,
                "CHURN_DB": database,
                "CHURN_DB_USER": info.get("user", "postgres"),
                "CHURN_DB_PASS": info.get("password", ""),
                "CHURN_DB_HOST": info.get("host", "127.0.0.1"),
                "CHURN_OUT_DIR": scratch,
            }
            overrides = [f"init_customers={initial}", f"random_seed={seed}", "force=True"]
            if model != MODEL:
                overrides = [f"--config-name={model}", *overrides]
            if end != product.end:
                overrides.append(f"end_date='{end.isoformat()}'")
            if parallel > 1:
                overrides.append(f"n_parallel={parallel}")
            overrides.extend(f"{name}={value}" for name, value in (parameters or {}).items())
            started = time.perf_counter()
            with log.open("a") as out:
                subprocess.run(
                    [str(python), "-m", "fightchurn.churnsim.churnsim", *overrides],
                    check=True, env=env, cwd=scratch, stdout=out, stderr=out,
                )  # fmt: skip
            seconds = time.perf_counter() - started
        with psycopg.connect(pg_url, dbname=database) as conn:
            meta = _export(conn, cache, model)
    finally:
        with _admin(pg_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    meta |= {
        "generator": FIGHTCHURN,
        "model": model,
        "init_customers": initial,
        "random_seed": seed,
        "simulated_start": product.start.isoformat(),
        "simulated_end": end.isoformat(),
        "simulation_seconds": round(seconds, 1),
        "n_parallel": parallel,
        "parameters": dict(parameters or {}),
    }
    (cache / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _copy_out(conn: psycopg.Connection, query: str, path: Path) -> None:
    statement = f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)"
    with gzip.open(path, "wb") as out, conn.cursor().copy(statement) as copy:
        for chunk in copy:
            out.write(chunk)


def _export(conn: psycopg.Connection, cache: Path, model: str = MODEL) -> dict:
    """Subscriptions as they are (with their seats: ``quantity`` of ``units``), events counted per
    account, day and event type, and the distinct users active per account and day (none for a
    product whose events carry no user)."""
    _copy_out(
        conn,
        "SELECT account_id, product, start_date, end_date, mrr, bill_period_months, quantity, units"
        f" FROM {model}.subscription ORDER BY account_id, start_date, product",
        cache / "subscriptions.csv.gz",
    )
    _copy_out(
        conn,
        f"SELECT e.account_id, e.event_time::date AS day, t.event_type_name AS event, count(*) AS n"
        f" FROM {model}.event e JOIN {model}.event_type t USING (event_type_id)"
        " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        cache / "events_daily.csv.gz",
    )
    _copy_out(
        conn,
        f"SELECT account_id, event_time::date AS day, count(DISTINCT user_id) AS users FROM {model}.event"
        " WHERE user_id IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        cache / USERS_FILE,
    )
    names = [row[0] for row in conn.execute(f"SELECT event_type_name FROM {model}.event_type ORDER BY event_type_id")]
    accounts = conn.execute(f"SELECT count(*) FROM {model}.account").fetchone()
    events = conn.execute(f"SELECT count(*) FROM {model}.event").fetchone()
    return {"event_types": names, "accounts": accounts[0] if accounts else 0, "events": events[0] if events else 0}


def is_cached(cache: Path) -> bool:
    return all((cache / name).exists() for name in FILES)
