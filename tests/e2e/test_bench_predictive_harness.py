"""The predictive benchmark's harness end to end on a small made-up product: a fresh service
(SQLite file, migrated and given a token by its own CLI), records pushed through the ingest API,
every date scored by ``flask score run``, the suggestions and the churn model as of the cut run by
``flask jobs work``, ``result.new_version`` posted and activated, and the figures computed from
what the scoring runs stored. Slow (a dozen ``flask`` processes)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.predictive import harness
from bench.predictive.evaluate import evaluate
from bench.predictive.panel import Panel

pytestmark = pytest.mark.e2e

START = dt.date(2023, 1, 1)
END = dt.date(2023, 8, 31)


def made_up_panel(accounts: int = 240, seed: int = 7) -> Panel:
    """Half the accounts use the product little and churn often (15 % a month), the rest use it
    a lot and rarely churn (2 %): the signal ``use`` tells them apart."""
    rng = np.random.default_rng(seed)
    days = (END - START).days + 1
    low = np.arange(accounts) % 2 == 0
    rate = np.where(low, 0.4, 3.0)
    start = np.array([np.datetime64(START + dt.timedelta(days=int(k % 20)), "D") for k in range(accounts)])
    hazard = np.where(low, 0.15, 0.02) / 30.0
    churn_after = rng.geometric(hazard)
    churn = start + churn_after.astype("timedelta64[D]")
    churn = np.where(churn <= np.datetime64(END, "D"), churn, np.datetime64("NaT"))
    cube = np.zeros((accounts, days, 1), dtype=np.int32)
    for row in range(accounts):
        first = int((start[row] - np.datetime64(START, "D")).astype(int))
        last = days if np.isnat(churn[row]) else int((churn[row] - np.datetime64(START, "D")).astype(int))
        cube[row, first:last, 0] = rng.poisson(rate[row], max(0, last - first))
    ids = [f"acct-{k:03d}" for k in range(accounts)]

    def account_records(as_of: dt.date) -> list[dict[str, Any]]:
        day = np.datetime64(as_of, "D")
        return [
            {
                "external_id": ids[row],
                "name": ids[row],
                "contract_start": str(start[row]),
                "arr": 1200.0,
                "seats_purchased": 1,
                "status": "churned" if not np.isnat(churn[row]) and churn[row] <= day else "active",
                "effective_on": as_of.isoformat(),
            }
            for row in np.flatnonzero(start <= day).tolist()
        ]

    dates = [dt.date(2023, m, 1) for m in (3, 4, 5, 6, 7)]
    return Panel(
        name="madeup",
        ids=ids,
        start=start,
        churn=churn,
        first_day=START,
        end=END,
        signals=["use"],
        cube=cube,
        dates=dates,
        cut=dt.date(2023, 6, 1),
        horizon=30,
        account_records=account_records,
    )


def test_harness_runs_the_service_learning_and_reads_what_it_stored(tmp_path: Path) -> None:
    panel = made_up_panel()
    args = argparse.Namespace(out=tmp_path, database_url=None)
    stored, summary = harness.run(panel, args, tmp_path / "run.log")

    load = summary["load"]
    assert load["usage"]["rejected"] == 0 and load["accounts"]["rejected"] == 0
    assert load["outcomes"]["landed"] == int((~np.isnat(panel.churn)).sum())
    learning = summary["learning"]
    assert learning["request"] == {"as_of": "2023-06-01", "horizon_days": 30, "periodic_months": 3}
    assert learning["suggestions"]["status"] == "succeeded", learning
    assert learning["churn_model"]["status"] == "succeeded", learning
    assert learning["suggested_version"] is not None
    # Every date scored with the default config; the later ones with the suggested config too.
    default_days = {day for _, day in stored["default"]}
    assert default_days == set(panel.dates)
    assert {day for _, day in stored["suggested"]} == {dt.date(2023, 6, 1), dt.date(2023, 7, 1)}
    assert summary["score_runs"] == 3 + 2 * 2
    # The churn model exists from the cut: later days carry a probability, earlier ones none.
    later = [values for (_, day), values in stored["default"].items() if day >= panel.cut]
    earlier = [values for (_, day), values in stored["default"].items() if day < panel.cut]
    assert all(p is not None for _, p in later) and all(p is None for _, p in earlier)

    result = evaluate(panel, stored, draws=50)
    by_method = {f["method"].split(":")[0]: f for f in result["figures"]}
    assert result["observations"]["later_churned"] > 0
    for method in ("health score, suggested config", "health score, default config", "best single candidate"):
        assert 0.0 <= by_method[method]["auc"] <= 1.0
    # The made-up signal separates the two kinds of account: the candidate and the reference see it.
    assert by_method["best single candidate"]["auc"] > 0.65
    assert by_method["logistic regression, log1p 28d counts"]["auc"] > 0.65
