"""Any scoring config the API accepts activates and scores a portfolio without error: a property
over generated configs in the measure language (sources, aggregates, windows, normalisations, forms,
ratios, transforms, missing rules, mappings, weights up to the bound, fixed or calibrated bands and
per-term stages), each loaded by the API's schema and, when accepted, activated and run."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from sqlalchemy.orm import Session

from app.demo.seed import seed_demo
from app.models import HealthScore, ScoringConfigVersion
from app.pipeline.run import run_scoring
from app.schemas.scoring_config import load_scoring_config
from app.services.scoring_config.active import ensure_default_config
from scoring.measures import PERS, SOURCES, source_info
from scoring.model import default_config_dict
from tests.support.examples import examples

AS_OF = dt.date(2026, 6, 30)
AGGREGATES = ("sum", "count", "mean", "active_days", "latest", "max", "nps")
STAGES = ("onboarding", "established", "pre_renewal")
pytestmark = [pytest.mark.e2e, pytest.mark.db]
SIGNALS = ("first_value", "report_built", "integration_connected", "never_seen")


@st.composite
def measure(draw: st.DrawFn, name: str, earlier: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "group": draw(st.sampled_from(["adoption", "product", "support", "account"])),
        "direction": draw(st.sampled_from(["higher_is_better", "lower_is_better"])),
    }
    if len(earlier) >= 2 and draw(st.booleans()):
        out["ratio"] = draw(st.lists(st.sampled_from(earlier), min_size=2, max_size=2, unique=True))
    else:
        source = out["source"] = draw(st.sampled_from([*SOURCES, *(f"signal.{s}" for s in SIGNALS)]))
        info = source_info(source)
        assert info is not None
        # Mostly what the source allows, sometimes anything: both paths must end well.
        wild = draw(st.integers(0, 9)) == 0
        out["aggregate"] = draw(st.sampled_from(AGGREGATES if wild else info.aggregates))
        if info.windowed or wild:
            out["window_days"] = draw(st.sampled_from([1, 7, 28, 90, 730]))
        if (info.daily or wild) and out["aggregate"] != "latest" and draw(st.booleans()):
            out["form"] = draw(st.sampled_from(["change_pct", "change_diff", "days_since"]))
        elif draw(st.booleans()):
            out["per"] = draw(st.sampled_from(PERS if info.windowed or wild else ("seat", "licensed_seat")))
        if draw(st.integers(0, 3)) == 0:
            out["data_days"] = draw(st.integers(1, 730))
    if draw(st.booleans()):
        out["transform"] = "log1p"
    out["missing"] = draw(st.sampled_from(["skip", "zero"]))
    if draw(st.integers(0, 3)) == 0:
        out["mapping"] = "percentile"
    else:
        start = draw(st.floats(-1e6, 1e6, allow_nan=False))
        steps = draw(st.lists(st.floats(1e-3, 1e5), min_size=1, max_size=4))
        out["thresholds"] = [start + sum(steps[:i]) for i in range(len(steps) + 1)]
    return out


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    data = default_config_dict()
    names: list[str] = []
    measures = []
    for i in range(draw(st.integers(1, 8))):
        name = f"m{i}"
        measures.append(draw(measure(name, list(names))))
        names.append(name)
    data["measures"] = measures
    weight = st.one_of(st.just(0.0), st.floats(0.001, 1e6, allow_nan=False))
    data["weights"] = {}
    for stage in STAGES:
        weights = {n: draw(weight) for n in names}
        weights[draw(st.sampled_from(names))] = draw(st.floats(0.1, 1e6))
        data["weights"][stage] = weights
    if draw(st.booleans()):
        good = draw(st.floats(0.0, 0.6))
        data["bands"] = {"good_share": good, "poor_share": draw(st.floats(0.0, 0.39))}
    if draw(st.booleans()):
        data["stages"]["terms"] = {
            "monthly": {"pre_renewal": False},
            "annual": draw(st.sampled_from([{"pre_renewal_days": 60}, {"pre_renewal_share": 0.2}, {}])),
        }
    data["rules"] = [r for r in data["rules"] if r["type"] != "threshold"]  # they read the old measures
    return data


def test_any_config_the_api_accepts_activates_and_scores(db_session: Session) -> None:
    seed_demo(db_session, accounts=40, days=120, seed=5, as_of=AS_OF)
    ensure_default_config(db_session)
    db_session.commit()
    seen = {"accepted": 0, "refused": 0}

    @settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=configs())
    def check(data: dict[str, Any]) -> None:
        try:
            model = load_scoring_config(data)
        except ValidationError:
            seen["refused"] += 1
            return
        seen["accepted"] += 1
        try:
            db_session.execute(sa.update(ScoringConfigVersion).values(active=False))
            db_session.add(ScoringConfigVersion(version=99, config=model.to_dict(), author="t", active=True))
            db_session.flush()
            summary = run_scoring(db_session, as_of=AS_OF)
            scores = np.array(
                db_session.scalars(sa.select(HealthScore.score).where(HealthScore.day == AS_OF)).all(), dtype=float
            )
            assert summary.accounts_scored == scores.size > 0
            valid = scores[~np.isnan(scores)]
            assert np.all((valid >= 0) & (valid <= 100))
        finally:
            db_session.rollback()

    check()
    assert seen["accepted"] >= seen["refused"] / 4, seen  # the strategy mostly reaches the scoring
