"""The comparison: test-period AUCs of the stored health score and the reference methods, with
bootstrap intervals, and the table printed at the end of a run."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.external.dataset import Dataset
from bench.external.metrics import bootstrap_auc, roc_auc
from bench.external.observations import Observations, window_sums

WINDOW = 28


def oriented(train_y: np.ndarray, values: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, str]:
    """``values`` as a risk (higher = more likely to churn), the direction chosen on the training
    observations only: lower counts are riskier unless the training data says otherwise."""
    if roc_auc(train_y, -values[train]) >= 0.5:
        return -values, "lower is riskier"
    return values, "higher is riskier"


def reference_risks(dataset: Dataset, obs: Observations, train: np.ndarray) -> list[tuple[str, np.ndarray, str]]:
    """The reference methods' risks for every observation: each event type's 28-day count, active
    days in 28 days, and a logistic regression on the 28-day counts fitted on ``train``."""
    rows = np.searchsorted(dataset.source_id, obs.account)
    counts = window_sums(dataset.events, dataset.first_day, rows, obs.day, WINDOW)
    active = (dataset.events.sum(axis=2) > 0).astype(np.int32)[:, :, None]
    active_days = window_sums(active, dataset.first_day, rows, obs.day, WINDOW)[:, 0]
    y = obs.churned[train]
    methods = []
    for k, name in enumerate(dataset.event_types):
        risk, how = oriented(y, counts[:, k], train)
        methods.append((f"{name} count, {WINDOW}d", risk, how))
    risk, how = oriented(y, active_days, train)
    methods.append((f"active days, {WINDOW}d", risk, how))
    # The plain reference, and the same on log1p counts (the book's remedy for fat-tailed counts).
    for label, features in ((f"{WINDOW}d counts", counts), (f"log1p {WINDOW}d counts", np.log1p(counts))):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2_000))
        model.fit(features[train], y)
        methods.append((f"logistic regression, {label}", model.predict_proba(features)[:, 1], "fitted on train dates"))
    return methods


def stage_shares(stages: dict[tuple[str, dt.date], str], keys: list, labels: np.ndarray) -> dict[str, list[int]]:
    """Stage -> [observations, of which churned] as the scoring run staged them."""
    shares: dict[str, list[int]] = {}
    for key, label in zip(keys, labels.tolist(), strict=True):
        entry = shares.setdefault(stages.get(key, "unscored"), [0, 0])
        entry[0] += 1
        entry[1] += int(label)
    return shares


def _ids_of(obs: Observations, dataset: Dataset, ids: list[str]) -> list[str]:
    rows = np.searchsorted(dataset.source_id, obs.account)
    return [ids[r] for r in rows.tolist()]


def evaluate(
    dataset: Dataset, obs: Observations, ids: list[str], split: dt.date, runs: dict[str, dict[str, Any]], *, draws: int
) -> dict[str, Any]:
    train = obs.day < np.datetime64(split, "D")
    test = ~train
    keys = list(zip(_ids_of(obs, dataset, ids), obs.day.astype(dt.date).tolist(), strict=True))
    train_keys = [key for key, t in zip(keys, train, strict=True) if t]
    test_keys = [key for key, t in zip(keys, test, strict=True) if t]
    methods: list[tuple[str, np.ndarray, str]] = []
    notes: dict[str, Any] = {}
    for mode, run in runs.items():
        for arm, scores in run["scores"].items():
            values = np.array([scores.get(key) for key in keys], dtype=object)
            missing = int(sum(v is None for v in values))
            # No stored score (not scored, or scored without data): the neutral middle of the scale.
            risk = -np.array([50.0 if v is None else v for v in values], dtype=np.float64)
            label = f"health score, {arm} ({mode})"
            methods.append((label, risk, "low score is riskier"))
            notes[label] = {
                "config_version": run["config_versions"][arm],
                "observations_without_score": missing,
                "train_stages": stage_shares(run["stages"][arm], train_keys, obs.churned[train]),
                "test_stages": stage_shares(run["stages"][arm], test_keys, obs.churned[test]),
            }
    methods.extend(reference_risks(dataset, obs, train))
    rows = []
    for i, (name, risk, how) in enumerate(methods):
        interval = bootstrap_auc(obs.churned[test], risk[test], obs.account[test], draws=draws, seed=i)
        rows.append(
            {
                "method": name,
                "direction": how,
                "test_auc": round(interval.auc, 4),
                "test_auc_95ci": [round(interval.low, 4), round(interval.high, 4)],
                "train_auc": round(roc_auc(obs.churned[train], risk[train]), 4),
                **notes.get(name, {}),
            }
        )
    return {
        "observations": {
            "train": int(train.sum()),
            "train_churned": int(obs.churned[train].sum()),
            "test": int(test.sum()),
            "test_churned": int(obs.churned[test].sum()),
            "test_accounts": int(np.unique(obs.account[test]).size),
            "under_60_days_tenure_share": round(float((obs.tenure_days < 60).mean()), 3) if len(obs) else None,
        },
        "results": rows,
    }


def print_table(report: dict[str, Any]) -> None:
    o = report["observations"]
    print()
    print(
        f"observations: train {o['train']} ({o['train_churned']} churned), test {o['test']} "
        f"({o['test_churned']} churned, {o['test_accounts']} accounts); split {report['parameters']['split']}"
    )
    print(f"{'method':<50} {'test AUC':>8}  {'95% CI':<15} {'train AUC':>9}  direction")
    for row in report["results"]:
        low, high = row["test_auc_95ci"]
        print(
            f"{row['method']:<50} {row['test_auc']:>8.3f}  {low:.3f}-{high:.3f}     "
            f"{row['train_auc']:>9.3f}  {row['direction']}"
        )
    print("wall time (s): " + ", ".join(f"{k} {v}" for k, v in report["timings_seconds"].items()))
