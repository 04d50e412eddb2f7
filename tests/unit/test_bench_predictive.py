"""The pure parts of the predictive benchmark (bench/predictive): the datasets' loaders and label
derivations on tiny inputs, the candidates, the goals, and the command's refusals."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from bench.external.observations import Observations
from bench.predictive import cdnow, crm, telco
from bench.predictive.evaluate import best_candidate, days_since_active, goals, oriented
from bench.predictive.run import parse_args

pytestmark = pytest.mark.unit

D = dt.date


# --- CDNOW ----------------------------------------------------------------------------------------

MASTER = """ customer_id  date number_of_cds  dollar_value\r
 00001 19970101  1   11.77\r
 00002 19970112  1   12.00\r
 00002 19970112  5   77.00\r
 00002 19970301  2   20.00\r
\r
 00003 19970102  2   20.76\r
 00003 19970330  1   10.00\r
 00003 19971001  1    9.49\r
"""


def test_cdnow_reads_the_master_file() -> None:
    rows = cdnow.read_transactions(MASTER)
    assert rows[0] == (1, D(1997, 1, 1), 1, 11.77)
    assert len(rows) == 7  # the header and the blank line are skipped


@pytest.mark.parametrize(
    ("purchases", "expected"),
    [
        ([D(1997, 1, 1)], D(1997, 4, 1)),  # one purchase: churned 90 days later
        ([D(1997, 1, 1), D(1997, 4, 1)], D(1997, 6, 30)),  # a follow-up on day 90 keeps the customer
        ([D(1997, 1, 1), D(1997, 4, 2)], D(1997, 4, 1)),  # on day 91 it comes too late
        ([D(1998, 6, 1)], None),  # p + 90 after the data's end: not known to have churned
        ([D(1997, 3, 1), D(1997, 1, 1), D(1997, 1, 1)], D(1997, 5, 30)),  # order and repeats do not matter
    ],
)
def test_cdnow_churn_day(purchases: list[D], expected: D | None) -> None:
    assert cdnow.churn_day(purchases) == expected


def test_cdnow_literal_label() -> None:
    assert cdnow.literal_label([D(1997, 1, 1), D(1997, 5, 1)], D(1997, 2, 1), 90) is False
    assert cdnow.literal_label([D(1997, 1, 1), D(1997, 5, 3)], D(1997, 2, 1), 90) is True  # Feb 1 + 90 = May 2


def test_cdnow_panel_derives_churn_and_drops_purchases_after_it() -> None:
    panel = cdnow.build(cdnow.read_transactions(MASTER), accounts=None, seed=1)
    assert panel.ids == ["cdnow-00001", "cdnow-00002", "cdnow-00003"]
    # 1: one purchase -> churned 1997-04-01; 2: 01-12 then 03-01 -> churned 05-30;
    # 3: 01-02, 03-30, then a gap to 10-01 -> churned 06-28, its October purchase dropped.
    assert panel.churn.astype(dt.date).tolist() == [D(1997, 4, 1), D(1997, 5, 30), D(1997, 6, 28)]
    assert panel.meta["purchases_dropped_after_churn"] == 1
    assert panel.cube[:, :, 0].sum() == 6  # 7 transactions, two on one day counting two, 1 dropped
    day = panel.day_index(D(1997, 1, 12))
    assert panel.cube[1, day].tolist() == [2, 6, 89]  # purchases, CDs, dollars rounded
    records = {r["external_id"]: r for r in panel.account_records(D(1997, 4, 15))}
    assert records["cdnow-00001"]["status"] == "churned"
    assert records["cdnow-00002"]["arr"] == 12 + 77 + 20  # spend in the 365 days up to then
    assert records["cdnow-00003"]["contract_start"] == "1997-01-02"
    usage = {(r["account"], r["day"]): r["signals"] for r in panel.usage_records(None, D(1997, 1, 12))}
    assert usage == {
        ("cdnow-00001", "1997-01-01"): {"purchases": 1, "cds": 1, "spend": 12},
        ("cdnow-00002", "1997-01-12"): {"purchases": 2, "cds": 6, "spend": 89},
        ("cdnow-00003", "1997-01-02"): {"purchases": 1, "cds": 2, "spend": 21},
    }
    assert [r["day"] for r in panel.churn_records(D(1997, 4, 1), D(1997, 6, 28))] == ["1997-05-30", "1997-06-28"]


def test_cdnow_sample_is_seeded() -> None:
    rows = [(c, D(1997, 1, 1 + c % 28), 1, 10.0) for c in range(1, 101)]
    first = cdnow.build(rows, accounts=10, seed=3)
    assert first.ids == cdnow.build(rows, accounts=10, seed=3).ids
    assert first.ids != cdnow.build(rows, accounts=10, seed=4).ids
    assert len(first.ids) == 10


# --- ChurnSim crm6 --------------------------------------------------------------------------------


def _gz(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with gzip.open(path, "wt", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture
def crm_cache(tmp_path: Path) -> Path:
    meta = {
        "event_types": ["search", "meeting", "users"],
        "simulated_start": "2022-01-01",
        "simulated_end": "2022-10-01",
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    subs = [
        # account 1: monthly starter, upgraded to basic in March, churned at the end of April
        [1, "starter_mthly", "2022-01-10", "2022-02-10", 100, 1, 5, "users"],
        [1, "meetings", "2022-01-10", "2022-02-10", 300, 1, 5000, "schedule_meeting"],
        [1, "starter_mthly", "2022-02-10", "2022-03-10", 100, 1, 5, "users"],
        [1, "basic_mthly", "2022-03-10", "2022-04-30", 200, 1, 10, "users"],
        # account 2: annual, still a customer at the end
        [2, "standard_annual", "2022-02-01", "2023-02-01", 5000, 12, 25, "users"],
    ]
    _gz(tmp_path / "subscriptions.csv.gz",
        ["account_id", "product", "start_date", "end_date", "mrr", "bill_period_months", "quantity", "units"], subs)  # fmt: skip
    events = [[1, "2022-01-10", "search", 3], [1, "2022-01-12", "meeting", 1], [2, "2022-02-14", "search", 7]]
    _gz(tmp_path / "events_daily.csv.gz", ["account_id", "day", "event", "n"], events)
    _gz(tmp_path / "users_daily.csv.gz", ["account_id", "day", "users"], [[1, "2022-01-10", 2], [2, "2022-02-14", 4]])
    return tmp_path


def test_crm_panel_from_the_export(crm_cache: Path) -> None:
    panel = crm.build(crm_cache, horizon=60)
    assert panel.ids == ["crm6-1", "crm6-2"]
    assert panel.signals == ["search", "meeting"]  # "users" never emitted: dropped
    assert panel.churn.astype(dt.date).tolist()[0] == D(2022, 4, 30)
    assert np.isnat(panel.churn[1])
    usage = panel.usage_records(None, D(2022, 2, 28))
    assert usage[0] == {"account": "crm6-1", "day": "2022-01-10", "active_users": 2, "logins": 2,
                        "signals": {"search": 3}}  # fmt: skip
    march = {r["external_id"]: r for r in panel.account_records(D(2022, 3, 20))}
    assert march["crm6-1"] | {"effective_on": None} == march["crm6-1"] | {
        "seats_purchased": 10, "plan": "basic_mthly", "renewal_date": "2022-04-30", "arr": 2400.0,
        "billing_term": "monthly", "status": "active", "effective_on": None,
    }  # fmt: skip
    assert march["crm6-2"]["billing_term"] == "annual"
    assert march["crm6-2"]["seats_purchased"] == 25
    records = panel.records(None, D(2022, 5, 1))
    kinds = sorted((o["kind"], o["day"]) for o in records["outcomes"])
    assert kinds == [("churned", "2022-04-30"), ("expanded", "2022-03-10"), ("renewed", "2022-02-10")]
    licenses = [r for r in records["licenses"] if r["day"] == "2022-02-15"]
    assert {r["account"]: (r["seats_purchased"], r["seats_active"]) for r in licenses} == {
        "crm6-1": (5, 0),  # no user seen in the 14 days before
        "crm6-2": (25, 4),
    }
    assert not [r for r in records["licenses"] if r["account"] == "crm6-1" and r["day"] == "2022-05-01"]


def test_crm_renewal_kind() -> None:
    sub = crm.Subscription("p", D(2022, 1, 1), D(2022, 2, 1), 100.0, 1, 5.0, "users")
    assert crm.renewal_kind(sub, sub) == "renewed"
    assert crm.renewal_kind(sub, crm.Subscription("q", D(2022, 2, 1), D(2022, 3, 1), 50.0, 1, 5.0, "users")) == (
        "downgraded"
    )


# --- Telco ----------------------------------------------------------------------------------------


def telco_row(n: int, *, churn: str = "No", tenure: int = 5, contract: str = "Month-to-month") -> dict[str, str]:
    row = {name: "No" for name in telco.YES_NO}
    return row | {
        "rownames": str(n), "churn": churn, "tenure": str(tenure), "contract": contract,
        "internet_service": "Fiber optic", "payment_method": "Electronic check", "monthly_charges": "70.4",
        "total_charges": "" if tenure == 0 else "350.2", "senior_citizen": "1", "online_security": "Yes",
        "multiple_lines": "No phone service",
    }  # fmt: skip


def test_telco_split_calendar_and_signals() -> None:
    rows = [telco_row(k, churn="Yes" if k % 2 else "No", tenure=k % 7) for k in range(1, 41)]
    panel = telco.build(rows, accounts=None, seed=2)
    o2 = telco.O1 + dt.timedelta(days=telco.GAP_DAYS)
    train, test = panel.present(telco.O1), panel.present(o2)
    assert test.sum() == 12 and not (train & test).any() and (train | test).all()
    obs = panel.observations()
    assert len(obs) == 40 and obs.churned.sum() == 20  # every churner churns within the horizon
    assert panel.earlier(obs).sum() == 28 and panel.later(obs).sum() == 12
    churn_after = (panel.churn - np.where(test, np.datetime64(o2), np.datetime64(telco.O1))).astype(int)
    assert all(1 <= d <= telco.HORIZON for d in churn_after[~np.isnat(panel.churn)])
    first = panel.usage_records(None, telco.O1)
    assert len(first) == 28  # only the first group exists before the cut
    assert first[0]["signals"]["senior_citizen"] == 1 and first[0]["signals"]["internet_fiber"] == 1
    assert "multiple_lines" not in first[0]["signals"]  # "No phone service" is no
    assert {r["external_id"] for r in panel.account_records(panel.cut)} == {panel.ids[k] for k in np.flatnonzero(~test)}
    assert len(panel.account_records(o2)) == 40
    # Contract start: tenure months before the account's observation day.
    row = int(np.flatnonzero(train)[0])
    assert panel.start[row].astype(dt.date) == telco.months_before(telco.O1, int(rows[row]["tenure"]))


def test_telco_yes_and_billing_terms() -> None:
    assert telco.yes("Yes") == telco.yes("1") == 1
    assert telco.yes("No internet service") == telco.yes("0") == 0
    panel = telco.build([telco_row(1, contract="Two year", tenure=30), telco_row(2)], accounts=None, seed=1)
    records = {r["external_id"]: r for r in panel.account_records(telco.O1 + dt.timedelta(days=60))}
    assert records["telco-0001"]["billing_term"] == "multi_year"
    assert records["telco-0001"]["arr"] == pytest.approx(844.8)


# --- evaluation -----------------------------------------------------------------------------------


def test_days_since_active(crm_cache: Path) -> None:
    panel = crm.build(crm_cache, horizon=60)
    rows = np.array([0, 0, 1])
    days = np.array([D(2022, 1, 12), D(2022, 1, 20), D(2022, 1, 20)], dtype="datetime64[D]")
    assert days_since_active(panel, rows, days).tolist() == [0.0, 8.0, 365.0]


def test_best_candidate_is_chosen_and_oriented_on_the_fit_rows_only() -> None:
    labels = np.array([1, 1, 0, 0, 1, 0])
    fit = np.array([True, True, True, True, False, False])
    values = {"a": np.array([1.0, 2.0, 8.0, 9.0, 50.0, 0.0]), "b": np.array([5.0, 5.0, 5.0, 5.0, 1.0, 9.0])}
    assert best_candidate(values, labels, fit) == ("a", -1.0, 1.0)
    assert oriented(np.array([0, 1]), np.array([1.0, 2.0])) == (1.0, 1.0)


def test_goals() -> None:
    def fig(name: str, auc: float | None) -> tuple[str, dict[str, float | None]]:
        return name, {"auc": auc}

    by_method = dict(
        [
            fig("health score, suggested config", 0.70),
            fig("churn probability (scored with the default config)", 0.71),
            fig("best single candidate: x", 0.69),
            fig("logistic regression, log1p 28d counts", 0.715),
        ]
    )
    assert goals(by_method) == {
        "suggested_at_least_reference_minus_0.02": True,
        "suggested_above_best_single": True,
        "churn_probability_at_least_reference": False,
    }
    by_method["health score, suggested config"]["auc"] = None
    assert goals(by_method)["suggested_above_best_single"] is None


def test_observations_type_is_shared() -> None:
    assert Observations.__slots__ == ("account", "day", "churned", "tenure_days")


# --- arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "x", "--datasets", "cdnow,iris"], "unknown dataset"),
        (["--out", "x", "--datasets", ","], "unknown dataset"),
        (["--out", "x", "--cdnow-accounts", "10"], "between 200 and 23570"),
        (["--out", "x", "--crm-months", "30"], "between 9 and 24"),
        (["--out", "x", "--draws", "5"], "between 10 and 100000"),
        (["--out", "x", "--telco-accounts", "many"], "not a whole number"),
        (["--datasets", "cdnow"], "--out"),
    ],
)
def test_arguments_refuse_bad_values(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_arguments_defaults_and_dataset_list() -> None:
    args = parse_args(["--out", "x", "--datasets", "telco,cdnow,telco"])
    assert args.datasets == ["telco", "cdnow"]
    assert args.cdnow_accounts == 5_000 and args.crm_accounts == 600 and args.telco_accounts == 7_043


# --- ChurnSim models ------------------------------------------------------------------------------


def test_churnsim_models_periods_and_cache_names() -> None:
    from bench.external import churnsim

    crm6 = churnsim.MODELS["crm6"]
    assert crm6.end_after(None) == D(2024, 1, 1)
    assert crm6.end_after(12) == D(2023, 1, 1)
    assert crm6.end_after(15) == D(2023, 4, 1)
    assert churnsim.months_between(crm6.start, crm6.end_after(15)) == 15
    assert churnsim.cache_name("crm6", 600, 1, 12) == "crm6-a600-s1-m12"
    assert churnsim.cache_name("crm6", 600, 1, 12, variant="causal") == "crm6-a600-s1-m12-causal"
    assert churnsim.cache_name("socialnet7", 3000, 1) == "socialnet7-a3000-s1"  # bench.external's folders
    initial = churnsim.initial_customers_for(600, 12, crm6.growth)
    assert initial == 375
    assert abs(churnsim.total_customers(initial, 12, crm6.growth) - 600) <= 12
    # socialnet7's defaults are unchanged: 2,046 initial customers give 3,000 accounts
    assert churnsim.initial_customers_for(3000) == 2046
