"""The figures, computed here from the stored scores and the data, independently of what the
service says about itself: on the later period's observations, ROC AUC with a bootstrap-by-account
95 % interval for

- the health score with the suggested config and with the default config (risk = -score; an
  observation without a stored score counts as 50, the middle, and is counted);
- the churn probability the scoring run stored (from the model trained as of the cut);
- the best single candidate: among each signal's count over 7, 28 and 90 days, active days in 28
  days, days since the last active day and (where the data has users) active users per day over
  28 days, the one with the best AUC on the earlier period, oriented there;
- a plain logistic regression on log1p of the 28-day counts with StandardScaler, fitted on the
  earlier period.

The earlier period is the observations whose label was known on the cut day; the later period
the observations dated on or after it (``Panel.earlier`` / ``Panel.later``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.external.metrics import bootstrap_auc, roc_auc
from bench.external.observations import Observations, window_sums
from bench.predictive.harness import Stored
from bench.predictive.panel import Panel

WINDOWS = (7, 28, 90)
REFERENCE_WINDOW = 28
NEUTRAL_SCORE = 50.0


def days_since_active(panel: Panel, rows: np.ndarray, days: np.ndarray, cap: int = 365) -> np.ndarray:
    """Days from the last day with any signal (on or before the observation day) to it; ``cap``
    when there is none."""
    active = panel.cube.sum(axis=2) > 0
    index = np.where(active, np.arange(panel.days)[None, :], -1)
    last = np.maximum.accumulate(index, axis=1)
    offset = (np.asarray(days, dtype="datetime64[D]") - np.datetime64(panel.first_day, "D")).astype(np.int64)
    found = last[rows, offset]
    return np.where(found < 0, cap, np.minimum(offset - found, cap)).astype(np.float64)  # type: ignore[no-any-return]


def candidates(panel: Panel, obs: Observations) -> dict[str, np.ndarray]:
    """The single candidates' raw values for every observation."""
    rows, days = obs.account, obs.day
    out: dict[str, np.ndarray] = {}
    for window in WINDOWS:
        counts = window_sums(panel.cube, panel.first_day, rows, days, window)
        for k, name in enumerate(panel.signals):
            out[f"{name}, {window}d"] = counts[:, k]
    active = (panel.cube.sum(axis=2) > 0).astype(np.int32)[:, :, None]
    out["active days, 28d"] = window_sums(active, panel.first_day, rows, days, 28)[:, 0]
    out["days since active"] = days_since_active(panel, rows, days)
    if panel.users is not None:
        users = panel.users[:, :, None].astype(np.int32)
        out["active users per day, 28d"] = window_sums(users, panel.first_day, rows, days, 28)[:, 0] / 28.0
    return out


def oriented(labels: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """(sign, AUC): the sign that makes ``sign * values`` a risk on these observations (lower is
    riskier unless they say otherwise), and the AUC it reaches."""
    low = roc_auc(labels, -values)
    if np.isnan(low):
        return -1.0, float("nan")
    return (-1.0, low) if low >= 0.5 else (1.0, 1.0 - low)


def best_candidate(values: dict[str, np.ndarray], labels: np.ndarray, fit: np.ndarray) -> tuple[str, float, float]:
    """(name, sign, earlier AUC) of the candidate that ranks the earlier period best."""
    best = ("", -1.0, -1.0)
    for name, column in values.items():
        sign, auc = oriented(labels[fit], column[fit])
        if not np.isnan(auc) and auc > best[2]:
            best = (name, sign, auc)
    return best


def reference(panel: Panel, obs: Observations, fit: np.ndarray) -> np.ndarray:
    """The plain reference's churn probability for every observation."""
    counts = window_sums(panel.cube, panel.first_day, obs.account, obs.day, REFERENCE_WINDOW)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2_000))
    model.fit(np.log1p(counts[fit]), obs.churned[fit])
    return model.predict_proba(np.log1p(counts))[:, 1]  # type: ignore[no-any-return]


def stored_values(
    panel: Panel, obs: Observations, stored: Stored, arm: str, column: int
) -> tuple[np.ndarray, np.ndarray]:
    """The arm's stored value (0: score, 1: churn probability) per observation, NaN where none."""
    days = obs.day.astype(dt.date).tolist()
    table = stored.get(arm, {})
    values = np.full(len(obs), np.nan)
    for k, (row, day) in enumerate(zip(obs.account.tolist(), days, strict=True)):
        found = table.get((panel.ids[row], day))
        value = None if found is None else found[column]
        if value is not None:
            values[k] = float(value)
    return values, np.isnan(values)


def _figure(
    name: str, risk: np.ndarray, obs: Observations, fit: np.ndarray, test: np.ndarray, *, draws: int, **extra: Any
) -> dict[str, Any]:
    interval = bootstrap_auc(obs.churned[test], risk[test], obs.account[test], draws=draws)
    earlier = roc_auc(obs.churned[fit], risk[fit]) if fit.any() else float("nan")
    return {
        "method": name,
        "auc": round(interval.auc, 4),
        "low": round(interval.low, 4),
        "high": round(interval.high, 4),
        "earlier_auc": None if np.isnan(earlier) else round(earlier, 4),
        **extra,
    }


def evaluate(panel: Panel, stored: Stored, *, draws: int) -> dict[str, Any]:
    obs = panel.observations()
    fit, test = panel.earlier(obs), panel.later(obs)
    if not test.any() or obs.churned[test].all() or not obs.churned[test].any():
        raise ValueError(f"{panel.name}: the later period needs churned and not-churned observations")
    figures: list[dict[str, Any]] = []
    for arm, label in (("suggested", "health score, suggested config"), ("default", "health score, default config")):
        scores, missing = stored_values(panel, obs, stored, arm, 0)
        if arm == "suggested" and missing[test].all():
            figures.append({"method": label, "auc": None, "note": "no suggested config was scored"})
            continue
        risk = -np.where(missing, NEUTRAL_SCORE, scores)
        # The earlier period was scored with the default config only.
        earlier = fit & (arm == "default")
        figures.append(
            _figure(label, risk, obs, earlier, test, draws=draws, later_without_score=int(missing[test].sum()))
        )
    for arm in ("default", "suggested"):
        probability, missing = stored_values(panel, obs, stored, arm, 1)
        label = f"churn probability (scored with the {arm} config)"
        if missing[test].all():
            figures.append({"method": label, "auc": None, "note": "no churn probability was stored"})
            continue
        # An observation without one gets the median of the others (a middle rank), counted.
        filled = np.where(missing, np.nanmedian(probability[test]), probability)
        without = int(missing[test].sum())
        figures.append(
            _figure(label, filled, obs, np.zeros_like(fit), test, draws=draws, later_without_probability=without)
        )
    values = candidates(panel, obs)
    name, sign, _ = best_candidate(values, obs.churned, fit)
    how = "higher is riskier" if sign > 0 else "lower is riskier"
    figures.append(_figure(f"best single candidate: {name} ({how})", sign * values[name], obs, fit, test, draws=draws,
                           candidate=name))  # fmt: skip
    figures.append(
        _figure("logistic regression, log1p 28d counts", reference(panel, obs, fit), obs, fit, test, draws=draws)
    )
    by_method = {f["method"]: f for f in figures}
    return {
        "observations": {
            "earlier": int(fit.sum()),
            "earlier_churned": int(obs.churned[fit].sum()),
            "later": int(test.sum()),
            "later_churned": int(obs.churned[test].sum()),
            "later_accounts": int(np.unique(obs.account[test]).size),
        },
        "figures": figures,
        "goals": goals(by_method),
    }


def goals(by_method: dict[str, dict[str, Any]]) -> dict[str, bool | None]:
    """Issue 15's goals on the later period: the suggested score at least the reference minus
    0.02 and above the best single candidate; the churn probability at least the reference."""

    def auc(prefix: str) -> float | None:
        for name, figure in by_method.items():
            if name.startswith(prefix):
                return figure.get("auc")  # type: ignore[no-any-return]
        return None

    suggested, reference_auc = auc("health score, suggested"), auc("logistic regression")
    single, probability = auc("best single candidate"), auc("churn probability (scored with the default")
    return {
        "suggested_at_least_reference_minus_0.02": None if suggested is None or reference_auc is None
        else suggested >= reference_auc - 0.02,
        "suggested_above_best_single": None if suggested is None or single is None else suggested > single,
        "churn_probability_at_least_reference": None if probability is None or reference_auc is None
        else probability >= reference_auc,
    }  # fmt: skip
