"""The measure language against the data: the first configs' measures compute what they did,
windows hold at their edges, and each source, form and normalisation on a small known portfolio."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from sqlalchemy.orm import Session

from app.demo.seed import seed_demo
from app.models import Contact, FeedbackKind, GoalStatus, TicketPriority, UsageSignal
from app.models.enums import ContactRole
from app.pipeline.events import gather_inputs
from app.pipeline.measures import _Plan, compute_measures
from scoring.health import compute_health
from scoring.measures import LEGACY_DEFINITIONS
from scoring.model import ScoringModel, default_config_dict, model_from_dict
from scoring.rules import rule_needs
from scoring.stage import assign_stages
from tests import factories as f
from tests.support import legacy_measures

AS_OF = dt.date(2026, 6, 30)


def _legacy_config() -> dict:
    """The default config as the first versions stored it: each measure named, nothing more."""
    data = default_config_dict()
    data["measures"] = [
        {k: m[k] for k in ("name", "label", "group", "direction", "thresholds")} for m in data["measures"]
    ]
    return data


def test_stored_configs_migrate_forward_with_identical_scores(db_session: Session) -> None:
    """The demo portfolio scored by the measure step before the language (a frozen copy) and by the
    language's reading of a stored first-version config: every raw value and every score equal."""
    seed_demo(db_session, accounts=300, days=400, seed=11, as_of=AS_OF)
    model = model_from_dict(_legacy_config())
    assert {m.name for m in model.measures} == set(LEGACY_DEFINITIONS)
    assert model_from_dict(default_config_dict()).measures == model.measures
    windows = frozenset({("active_users", 14), ("logins", 30), ("active_users", 30)})
    compared = 0
    for day in (AS_OF, AS_OF - dt.timedelta(days=45), AS_OF - dt.timedelta(days=200)):
        old = legacy_measures.compute_measures(
            db_session, as_of=day, first_value_signal=model.stage_rules.first_value_signal, usage_windows=windows
        )
        new = compute_measures(db_session, as_of=day, model=model, usage_windows=windows)
        # The old step also scored accounts whose contract had not started yet; no longer.
        kept = np.isin(old.account_id, new.account_id)
        np.testing.assert_array_equal(new.account_id, old.account_id[kept])
        assert np.all(old.contract_start[~kept] > np.datetime64(day, "D"))
        for name in model.measure_names:
            old_values = old.raw[name][kept]
            np.testing.assert_allclose(new.raw[name], old_values, rtol=1e-12, atol=1e-12, err_msg=name)
            assert np.count_nonzero(~np.isnan(new.raw[name])) == np.count_nonzero(~np.isnan(old_values))
        np.testing.assert_array_equal(new.login_days_30d, old.login_days_30d[kept])
        assert new.usage_windows.keys() == old.usage_windows.keys()
        for key, (current, previous) in new.usage_windows.items():
            np.testing.assert_array_equal(current, old.usage_windows[key][0][kept])
            np.testing.assert_array_equal(previous, old.usage_windows[key][1][kept])
        np.testing.assert_array_equal(new.ever_used, old.ever_used[kept])
        stage = assign_stages(day, new.contract_start, new.renewal_date, new.first_value_on, model.stage_rules)
        scored_new = compute_health(new.matrix(model.measure_names), stage, model)
        scored_old = compute_health(old.matrix(model.measure_names)[:, kept], stage, model)
        np.testing.assert_array_equal(scored_new.score, scored_old.score)
        np.testing.assert_array_equal(scored_new.band, scored_old.band)
        compared += int(np.count_nonzero(~np.isnan(scored_new.score)))
    assert compared > 600  # the comparison saw real scores, not an empty portfolio


# --- a small known portfolio ------------------------------------------------------------------------


def model_of(*measures: dict, bands: dict | None = None, stages: dict | None = None) -> ScoringModel:
    data = default_config_dict()
    data["measures"] = [
        {"label": "", "group": "product", "direction": "higher_is_better", "thresholds": [0.0, 1.0], **m}
        for m in measures
    ]
    data["weights"] = {stage: {m["name"]: 1 for m in measures} for stage in data["weights"]}
    data["rules"] = []
    if bands is not None:
        data["bands"] = bands
    if stages is not None:
        data["stages"] = {**data["stages"], **stages}
    return model_from_dict(data)


def raw_of(session: Session, as_of: dt.date, *measures: dict) -> dict[str, list[float | None]]:
    portfolio = compute_measures(session, as_of=as_of, model=model_of(*measures))
    return {
        name: [None if np.isnan(v) else round(float(v), 6) for v in values] for name, values in portfolio.raw.items()
    }


WINDOWED = [
    pytest.param({"source": "usage.active_users", "aggregate": "sum"}, "usage", 5.0, 0.0, id="usage-sum"),
    pytest.param({"source": "usage.logins", "aggregate": "active_days"}, "usage", 1.0, 0.0, id="usage-active-days"),
    pytest.param({"source": "signal.post", "aggregate": "sum"}, "signal", 1.0, 0.0, id="signal-sum"),
    pytest.param({"source": "signal.post", "aggregate": "active_days"}, "signal", 1.0, 0.0, id="signal-days"),
    pytest.param({"source": "signal.post", "aggregate": "max"}, "signal", 1.0, 0.0, id="signal-max"),
    pytest.param({"source": "tickets.opened"}, "ticket", 1.0, 0.0, id="tickets-opened"),
    pytest.param({"source": "tickets.sla_breaches"}, "ticket", 1.0, 0.0, id="tickets-sla"),
    pytest.param({"source": "feedback.csat", "aggregate": "count"}, "csat", 1.0, 0.0, id="feedback-count"),
    pytest.param({"source": "feedback.csat", "aggregate": "mean"}, "csat", 4.0, None, id="feedback-mean"),
    pytest.param({"source": "license.active", "aggregate": "max"}, "license", 3.0, None, id="license-max"),
]


def _record(session: Session, account: Any, kind: str, day: dt.date) -> None:
    if kind == "usage":
        f.add_usage(session, account, day, day, active_users=5, logins=8)
    elif kind == "signal":
        f.add_signal(session, account, day, "post")
    elif kind == "ticket":
        # The first moment of the day inside the window, the last moment of the day outside it.
        f.add_ticket(session, account, dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC), sla_breached=True)
    elif kind == "csat":
        f.add_feedback(session, account, day, FeedbackKind.CSAT, 4)
    else:
        f.add_license(session, account, day, purchased=10, assigned=5, active=3)


@pytest.mark.parametrize("window", [1, 7, 28, 90])
@pytest.mark.parametrize(("spec", "kind", "inside", "outside"), WINDOWED)
def test_every_window_holds_at_its_edge(  # noqa: PLR0917
    db_session: Session, spec: dict, kind: str, inside: float, outside: float | None, window: int
) -> None:
    """A record on day as_of - N + 1 counts; one on as_of - N does not (nor anything after as_of)."""
    edge_in, edge_out = make_account(db_session), make_account(db_session)
    _record(db_session, edge_in, kind, AS_OF - dt.timedelta(days=window - 1))
    _record(db_session, edge_out, kind, AS_OF - dt.timedelta(days=window))
    if kind == "ticket":  # the last second of the day before the window
        f.add_ticket(
            db_session, edge_out, dt.datetime.combine(AS_OF - dt.timedelta(days=window), dt.time(23, 59, 59), dt.UTC)
        )
    _record(db_session, edge_out, kind, AS_OF + dt.timedelta(days=1))  # after the scored day: never read
    raw = raw_of(db_session, AS_OF, {"name": "m", "window_days": window, **spec})["m"]
    assert raw == [inside, outside]


def make_account(session: Session, **overrides: Any) -> Any:
    return f.make_account(session, **{"contract_start": dt.date(2025, 1, 1), **overrides})


def test_signal_measures_forms_normalisation_and_missing(db_session: Session) -> None:
    a = make_account(db_session, seats_purchased=4)
    quiet = make_account(db_session)  # sends other signals, never "post"
    make_account(db_session)  # silent: no product signal at all
    f.add_usage(db_session, a, AS_OF - dt.timedelta(days=27), AS_OF, active_users=2, logins=4)
    # 3 posts in the last 28 days (two on one day), 5 in the 28 days before.
    for back, count in ((1, 1), (2, 2), (30, 1), (31, 1), (32, 1), (33, 1), (40, 1)):
        db_session.add(UsageSignal(account_id=a.id, day=AS_OF - dt.timedelta(days=back), signal="post", count=count))
    f.add_signal(db_session, quiet, AS_OF - dt.timedelta(days=3), "login")
    specs = [
        {"name": "posts", "source": "signal.post", "aggregate": "sum", "window_days": 28},
        {"name": "post_days", "source": "signal.post", "aggregate": "active_days", "window_days": 28},
        {
            "name": "posts_per_user",
            "source": "signal.post",
            "aggregate": "sum",
            "window_days": 28,
            "per": "active_user",
        },
        {"name": "posts_per_seat", "source": "signal.post", "aggregate": "sum", "window_days": 28, "per": "seat"},
        {"name": "posts_change", "source": "signal.post", "aggregate": "sum", "window_days": 28, "form": "change_pct"},
        {"name": "posts_diff", "source": "signal.post", "aggregate": "sum", "window_days": 28, "form": "change_diff"},
        {"name": "since_post", "source": "signal.post", "window_days": 90, "form": "days_since"},
        {"name": "posts_log", "source": "signal.post", "aggregate": "sum", "window_days": 28, "transform": "log1p"},
        {"name": "posts_zero", "source": "signal.post", "aggregate": "sum", "window_days": 28, "missing": "zero"},
        {"name": "logins", "source": "usage.logins", "aggregate": "sum", "window_days": 28},
        {"name": "posts_per_login", "ratio": ["posts", "logins"]},
    ]
    raw = raw_of(db_session, AS_OF, *specs)
    assert raw["posts"] == [3.0, 0.0, None]  # quiet sends signals: 0; silent has no signal data
    assert raw["post_days"] == [2.0, 0.0, None]
    assert raw["posts_per_user"] == [1.5, 0.0, None]  # 3 posts / 2 daily active users on average
    assert raw["posts_per_seat"] == [0.75, 0.0, None]
    assert raw["posts_change"] == [-40.0, -100.0, None]  # 3 against 5; quiet: no post in either window
    assert raw["posts_diff"] == [-2.0, 0.0, None]
    assert raw["since_post"] == [1.0, 91.0, None]
    assert raw["posts_log"] == [round(float(np.log1p(3.0)), 6), 0.0, None]
    assert raw["posts_zero"] == [3.0, 0.0, 0.0]
    assert raw["posts_per_login"] == [round(3 / (4 * 28), 6), None, None]  # no logins: no ratio


def test_ticket_feedback_license_goal_and_account_sources(db_session: Session) -> None:
    a = make_account(db_session, arr=24_000.0, seats_purchased=10, renewal_date=AS_OF + dt.timedelta(days=40))
    make_account(db_session, contract_start=AS_OF - dt.timedelta(days=9), renewal_date=None)
    day = lambda n: dt.datetime.combine(AS_OF - dt.timedelta(days=n), dt.time(9), dt.UTC)  # noqa: E731
    f.add_ticket(db_session, a, day(10), closed=day(8), priority=TicketPriority.URGENT)
    f.add_ticket(db_session, a, day(5), priority=TicketPriority.URGENT)
    f.add_ticket(db_session, a, day(4), priority=TicketPriority.LOW)
    for score in (10, 9, 3, 7):
        f.add_feedback(db_session, a, AS_OF - dt.timedelta(days=20), FeedbackKind.NPS, score)
    f.add_license(db_session, a, AS_OF - dt.timedelta(days=60), purchased=10, assigned=8, active=2)
    f.add_license(db_session, a, AS_OF - dt.timedelta(days=5), purchased=8, assigned=8, active=6)
    f.add_goal(db_session, a, created=dt.date(2026, 1, 1), due=AS_OF - dt.timedelta(days=1))
    f.add_goal(db_session, a, created=dt.date(2026, 1, 1), achieved=AS_OF, status=GoalStatus.ACHIEVED)
    raw = raw_of(
        db_session,
        AS_OF,
        {"name": "open_urgent", "source": "tickets.open", "window_days": 30, "priority": ["urgent"]},
        {"name": "open_load", "source": "tickets.open_weighted", "window_days": 30},
        {"name": "close_days", "source": "tickets.days_to_close", "window_days": 30},
        {"name": "since_ticket", "source": "tickets.opened", "window_days": 30, "form": "days_since"},
        {"name": "nps", "source": "feedback.nps", "window_days": 30},
        {"name": "utilization", "source": "license.active", "per": "licensed_seat"},
        {"name": "goals", "source": "goals.achieved_share"},
        {"name": "missed", "source": "goals.missed"},
        {"name": "tenure", "source": "account.tenure_days"},
        {"name": "to_renewal", "source": "account.days_to_renewal"},
        {"name": "arr", "source": "account.arr", "transform": "log1p"},
    )
    assert raw["open_urgent"] == [1.0, None]  # b has no ticket: no data
    assert raw["open_load"] == [4.5, None]
    assert raw["close_days"] == [2.0, None]
    assert raw["since_ticket"] == [4.0, None]
    assert raw["nps"] == [25.0, None]  # 2 promoters, 1 detractor, 4 responses
    assert raw["utilization"] == [0.75, None]
    assert raw["goals"] == [0.5, None]
    assert raw["missed"] == [1.0, None]
    assert raw["tenure"][1] == 9.0
    assert raw["to_renewal"] == [40.0, None]
    assert raw["arr"][0] == round(float(np.log1p(24_000.0)), 6)


def test_percentile_mapping_and_calibrated_bands_spread_a_portfolio(db_session: Session) -> None:
    accounts = [make_account(db_session) for _ in range(25)]
    for i, account in enumerate(accounts):
        f.add_usage(db_session, account, AS_OF - dt.timedelta(days=6), AS_OF, active_users=i + 1)
    model = model_of(
        {
            "name": "users",
            "source": "usage.active_users",
            "aggregate": "sum",
            "window_days": 7,
            "mapping": "percentile",
        },
        bands={"good_share": 0.2, "poor_share": 0.2},
    )
    portfolio = compute_measures(db_session, as_of=AS_OF, model=model)
    stage = assign_stages(
        AS_OF, portfolio.contract_start, portfolio.renewal_date, portfolio.first_value_on, model.stage_rules
    )
    result = compute_health(portfolio.matrix(model.measure_names), stage, model)
    assert result.score.min() == 0.0 and result.score.max() == 100.0
    assert np.all(np.diff(result.score) > 0)  # more users, a higher percentile
    counts = np.bincount(result.band, minlength=3)
    assert counts.tolist() == [5, 15, 5]  # good, average, poor: the target shares
    # The resolved model explains one account the way the portfolio scored it.
    one = compute_health(portfolio.matrix(model.measure_names)[:, 12:13], stage[12:13], result.model)
    assert one.score[0] == pytest.approx(result.score[12])
    assert one.band[0] == result.band[12]


def test_stages_follow_the_billing_term(db_session: Session) -> None:
    rules = model_of(
        {"name": "u", "source": "usage.logins", "window_days": 7},
        stages={"terms": {"monthly": {"pre_renewal": False}, "quarterly": {"pre_renewal_share": 0.25}}},
    ).stage_rules
    day = np.datetime64(AS_OF, "D")
    start = np.array([day - 400] * 4, dtype="datetime64[D]")
    renewal = np.array([day + 5, day + 20, day + 25, day + 80], dtype="datetime64[D]")
    term = np.array(["monthly", "quarterly", "quarterly", None], dtype=object)
    stage = assign_stages(AS_OF, start, renewal, np.full(4, np.datetime64("NaT"), "datetime64[D]"), rules, term=term)
    # monthly: tenure alone; quarterly: 23 days (25% of 91); unknown term: the 90-day default
    assert [s for s in stage] == [1, 2, 1, 2]


# --- the event rules' windows, at their edges -------------------------------------------------------

RULE_WINDOWS = [1, 7, 30, 90]


@pytest.mark.parametrize("window", RULE_WINDOWS)
def test_event_rule_windows_hold_at_their_edges(db_session: Session, window: int) -> None:
    """Signal, change and contact rules read the days as_of - N + 1 .. as_of, for any N: an
    off-by-one, or a window twice as long, fails here."""
    inside, outside = make_account(db_session), make_account(db_session)
    edge_in, edge_out = AS_OF - dt.timedelta(days=window - 1), AS_OF - dt.timedelta(days=window)
    for account, day in ((inside, edge_in), (outside, edge_out)):
        f.add_signal(db_session, account, day, "invite")
        f.add_usage(db_session, account, day, day, active_users=3)
        # the previous window of a change rule: its last day is as_of - N, its first as_of - 2N + 1
        f.add_usage(
            db_session, account, day - dt.timedelta(days=window), day - dt.timedelta(days=window), active_users=7
        )
        db_session.add(
            Contact(account_id=account.id, external_id=f"c{account.id}", role=ContactRole.CHAMPION, added_on=day)
        )
    db_session.flush()
    rules = [
        {"id": "invites", "name": "Invites", "kind": "milestone", "severity": "low", "type": "signal",
         "signal": "invite", "window_days": window},
        {"id": "usage_fall", "name": "Usage fall", "kind": "risk", "severity": "low", "type": "change",
         "value": "active_users", "window_days": window, "change_pct": -10},
        {"id": "champion", "name": "Champion", "kind": "milestone", "severity": "low", "type": "contacts",
         "change": "added", "roles": ["champion"], "window_days": window},
    ]  # fmt: skip
    data = default_config_dict()
    data["rules"] = rules
    model = model_from_dict(data)
    portfolio = compute_measures(
        db_session, as_of=AS_OF, model=model, usage_windows=rule_needs(model.rules).usage_windows
    )
    stage = np.ones(portfolio.account_id.size, dtype=np.int8)
    nan = np.full(portfolio.account_id.size, np.nan)
    inputs = gather_inputs(
        db_session, as_of=AS_OF, model=model, portfolio=portfolio, stage=stage,
        band=np.zeros_like(stage), score=nan, score_on=lambda _day: nan,
    )  # fmt: skip
    assert inputs.signals[("invite", window)][0].tolist() == [1.0, 0.0]
    current, previous = inputs.usage[("active_users", window)]
    assert current.tolist() == [3.0, 0.0]
    assert previous.tolist() == [7.0, 3.0]  # outside's current-window record is its previous window's last day
    assert inputs.contacts[("added", ("champion",), window)].tolist() == [1.0, 0.0]


def test_only_the_tables_the_measures_read_are_read() -> None:
    """The plan names the passes a run makes: a config of signal measures reads no goals, tickets,
    feedback or licenses (daily usage is read for the rules' login-days fact whatever the config)."""
    model = model_of({"name": "posts", "source": "signal.post", "window_days": 28})
    plan = _Plan.of(model.measures, frozenset())
    assert not plan.goals and not plan.tickets_ever and plan.signals_ever
    assert {family for family, needs in plan.needs.items() if needs} == {"usage", "signal"}
    assert _Plan.of(model_of({"name": "g", "source": "goals.achieved_share"}).measures, frozenset()).goals
