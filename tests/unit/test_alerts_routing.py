"""Routing: the default document, validation errors at their paths, and route semantics."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from alerts.routing import (
    ChannelSpec,
    DigestSettings,
    Item,
    Route,
    Routing,
    RoutingError,
    check_routing,
    default_routing,
    default_routing_data,
    load_routing,
    recipients,
    route,
)

pytestmark = pytest.mark.unit


def doc(**overrides: Any) -> dict[str, Any]:
    data = default_routing_data()
    data.update(overrides)
    return data


def risk(severity: str = "high", *, band: str | None = "average", rule_id: str = "usage-drop", **kw: Any) -> Item:
    return Item(
        stage=kw.pop("stage", "established"),
        segment=kw.pop("segment", "smb"),
        band=band,
        kind="risk",
        severity=severity,
        rule_id=rule_id,
    )


def milestone(**kw: Any) -> Item:
    return Item(
        stage="onboarding", segment="smb", band="good", kind="milestone", severity="low", rule_id="first-value", **kw
    )


def play(play_id: str = "save-account", alert: str = "immediate") -> Item:
    return Item(stage="established", segment="smb", band="poor", play_id=play_id, play_alert=alert)


# --- the default document -------------------------------------------------------------------


def test_default_routing_is_valid_and_round_trips():
    data = default_routing_data()
    assert check_routing(data) == {}
    routing = load_routing(data)
    assert routing.to_dict() == data
    assert load_routing(json.loads(json.dumps(routing.to_dict()))) == routing
    assert default_routing() == routing


def test_default_routing_values():
    routing = default_routing()
    assert routing.budget_per_day == 20
    assert routing.cooldown_hours == 72
    assert routing.escalate_after_hours == 4
    assert routing.max_attempts == 8
    # CSM digests are on by default: held alerts reach the CSMs they were for (issue 17, day one).
    assert routing.digest == DigestSettings(at="08:00", timezone="UTC", managers=True, csms=True, max_accounts=25)
    assert DigestSettings().csms is True
    assert routing.digest.hour == 8 and routing.digest.minute == 0
    assert str(routing.digest.zone) == "UTC"
    assert routing.channel("team") == ChannelSpec(name="team", type="slack", url_env="SLACK_WEBHOOK_URL")
    assert routing.channel("nope") is None
    assert list(recipients(routing)) == ["csm", "manager", "channel:team"]


def test_default_routing_semantics():
    routing = default_routing()
    assert route(routing, [risk("high")]) == {"csm": "immediate", "manager": "immediate", "channel:team": "immediate"}
    assert route(routing, [risk("medium")]) == {"csm": "immediate"}
    assert route(routing, [risk("low")]) == {"csm": "digest"}
    assert route(routing, [risk("low", band="poor")]) == {"csm": "immediate", "manager": "immediate"}
    assert route(routing, [milestone()]) == {"csm": "digest"}
    assert route(routing, [play()]) == {"csm": "immediate"}
    assert route(routing, [play(alert="digest")]) == {"csm": "digest"}
    assert route(routing, [play(alert="none")]) == {}
    assert route(routing, []) == {}


# --- route semantics ------------------------------------------------------------------------


def routing_of(*routes: dict[str, Any], channels: dict[str, Any] | None = None) -> Routing:
    return load_routing({"channels": channels or {}, "routes": list(routes)})


def test_every_matching_route_counts_and_immediate_beats_digest():
    routing = routing_of(
        {"id": "all-digest", "match": {}, "notify": ["csm", "manager"], "mode": "digest"},
        {"id": "high-now", "match": {"severities": ["high"]}, "notify": ["csm"], "mode": "immediate"},
    )
    assert route(routing, [risk("high")]) == {"csm": "immediate", "manager": "digest"}
    assert route(routing, [risk("low")]) == {"csm": "digest", "manager": "digest"}
    # order of routes and of items does not matter
    reverse = Routing(channels=(), routes=tuple(reversed(routing.routes)))
    assert route(reverse, [risk("high")]) == {"csm": "immediate", "manager": "digest"}
    assert route(routing, [risk("low"), risk("high")]) == route(routing, [risk("high"), risk("low")])


@pytest.mark.parametrize(
    ("match", "item", "expected"),
    [
        ({"kinds": ["risk"]}, risk(), True),
        ({"kinds": ["milestone"]}, risk(), False),
        ({"severities": ["low", "medium"]}, risk("medium"), True),
        ({"rules": ["usage-drop"]}, risk(), True),
        ({"rules": ["nps-drop"]}, risk(), False),
        ({"stages": ["pre_renewal"]}, risk(stage="pre_renewal"), True),
        ({"stages": ["pre_renewal"]}, risk(stage="onboarding"), False),
        ({"segments": ["enterprise"]}, risk(segment="enterprise"), True),
        ({"segments": ["enterprise"]}, risk(segment=None), False),
        ({"bands": ["poor"]}, risk(band="poor"), True),
        ({"bands": ["poor"]}, risk(band=None), False),
        ({"kinds": ["risk"], "bands": ["poor"]}, risk(band="average"), False),
        ({}, risk(), True),
        ({}, play(), False),  # a route without plays matches events only
        ({"plays": ["*"]}, risk(), False),  # a route with plays matches play starts only
        ({"plays": ["*"]}, play("anything"), True),
        ({"plays": ["save-account"]}, play("save-account"), True),
        ({"plays": ["save-account"]}, play("onboarding-rescue"), False),
        ({"plays": ["*"], "bands": ["good"]}, play(), False),
        ({"plays": ["*"]}, play(alert="none"), False),
    ],
)
def test_route_match(match, item, expected):
    routing = routing_of({"id": "r", "match": match, "notify": ["csm"], "mode": "immediate"})
    assert (route(routing, [item]) == {"csm": "immediate"}) is expected
    assert routing.routes[0].matches(item) is expected


def test_play_alert_digest_caps_a_play_route_at_digest():
    routing = routing_of(
        {"id": "plays", "match": {"plays": ["*"]}, "notify": ["csm", "manager"], "mode": "immediate"},
        {"id": "risks", "match": {"kinds": ["risk"]}, "notify": ["csm"], "mode": "immediate"},
    )
    assert route(routing, [play(alert="digest")]) == {"csm": "digest", "manager": "digest"}
    # an immediate event for the same account still makes the CSM's message immediate
    assert route(routing, [play(alert="digest"), risk()]) == {"csm": "immediate", "manager": "digest"}
    assert route(routing, [play(alert="none"), risk()]) == {"csm": "immediate"}


def test_channel_recipients():
    routing = routing_of(
        {"id": "r", "match": {"severities": ["high"]}, "notify": ["channel:ops"], "mode": "immediate"},
        channels={"ops": {"type": "webhook", "url": "https://hooks.example.com/x", "secret_env": "OPS_SECRET"}},
    )
    assert route(routing, [risk("high")]) == {"channel:ops": "immediate"}
    assert routing.channel("ops") == ChannelSpec(
        "ops", "webhook", url="https://hooks.example.com/x", secret_env="OPS_SECRET"
    )


def errors_of(data: Any, **kwargs: Any) -> dict[str, list[str]]:
    errors = check_routing(data, **kwargs)
    with pytest.raises(RoutingError) as info:
        load_routing(data, **kwargs)
    assert info.value.errors == errors
    return errors


def with_route(index: int, **changes: Any) -> dict[str, Any]:
    data = default_routing_data()
    entry = data["routes"][index]
    for key, value in changes.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return data


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ([], "_schema", "object"),
        (doc(surprise=1), "surprise", "unknown field"),
        ({"channels": {}}, "routes", "required"),
        (doc(routes={}), "routes", "list"),
        (doc(routes=["x"]), "routes.0", "object"),
        (with_route(2, notify=["csm", "boss"]), "routes.2.notify.1", "csm, manager or channel"),
        (with_route(0, notify=["csm", "channel:nowhere"]), "routes.0.notify.1", "no channel named 'nowhere'"),
        (with_route(0, notify=["csm", "csm"]), "routes.0.notify.1", "listed twice"),
        (with_route(0, notify=[]), "routes.0.notify", "non-empty"),
        (with_route(0, notify=[3]), "routes.0.notify.0", "string"),
        (with_route(1, id="urgent-risk"), "routes.1.id", "duplicate"),
        (with_route(1, id="Bad Id"), "routes.1.id", "lower-case"),
        (with_route(1, id=None), "routes.1.id", "required"),
        (with_route(0, mode="later"), "routes.0.mode", "immediate, digest"),
        (with_route(0, extra=True), "routes.0.extra", "unknown field"),
        (with_route(0, match=[]), "routes.0.match", "object"),
        (with_route(0, match={"kinds": ["threat"]}), "routes.0.match.kinds.0", "milestone, risk"),
        (with_route(0, match={"severities": ["critical"]}), "routes.0.match.severities.0", "high, low, medium"),
        (with_route(0, match={"stages": ["renewal"]}), "routes.0.match.stages.0", "pre_renewal"),
        (with_route(0, match={"bands": ["bad"]}), "routes.0.match.bands.0", "average, good, poor"),
        (with_route(0, match={"rules": [""]}), "routes.0.match.rules.0", "non-empty string"),
        (with_route(0, match={"segments": "smb"}), "routes.0.match.segments", "list"),
        (with_route(0, match={"colour": ["red"]}), "routes.0.match.colour", "unknown field"),
        (with_route(0, match={"plays": ["*"], "kinds": ["risk"]}), "routes.0.match.plays", "cannot also match kinds"),
        (with_route(0, match={"plays": ["*"], "severities": ["high"]}), "routes.0.match.plays", "severities"),
        (with_route(0, match={"plays": ["*"], "rules": ["x"]}), "routes.0.match.plays", "rules"),
        (doc(budget_per_day=0), "budget_per_day", "between 1 and 10000"),
        (doc(budget_per_day=10001), "budget_per_day", "between"),
        (doc(budget_per_day=2.5), "budget_per_day", "integer"),
        (doc(budget_per_day=True), "budget_per_day", "integer"),
        (doc(cooldown_hours=-1), "cooldown_hours", "between 0 and 720"),
        (doc(cooldown_hours=721), "cooldown_hours", "between"),
        (doc(cooldown_hours="72"), "cooldown_hours", "number"),
        (doc(escalate_after_hours=0), "escalate_after_hours", "between 1 and 168"),
        (doc(escalate_after_hours=169), "escalate_after_hours", "between"),
        (doc(max_attempts=0), "max_attempts", "between 1 and 50"),
        (doc(max_attempts=51), "max_attempts", "between"),
        (doc(digest=[]), "digest", "object"),
        (doc(digest={"at": "8:00"}), "digest.at", "HH:MM"),
        (doc(digest={"at": "24:00"}), "digest.at", "HH:MM"),
        (doc(digest={"at": "07:60"}), "digest.at", "HH:MM"),
        (doc(digest={"timezone": "Mars/Olympus"}), "digest.timezone", "IANA"),
        (doc(digest={"timezone": "../../etc/passwd"}), "digest.timezone", "IANA"),
        (doc(digest={"managers": "yes"}), "digest.managers", "true or false"),
        (doc(digest={"max_accounts": 0}), "digest.max_accounts", "between 1 and 100"),
        (doc(digest={"max_accounts": 101}), "digest.max_accounts", "between"),
        (doc(digest={"when": "08:00"}), "digest.when", "unknown field"),
        (doc(channels=[]), "channels", "object"),
        (doc(channels={"team": {"type": "teams", "url_env": "X"}}), "channels.team.type", "slack, webhook"),
        (doc(channels={"team": {"type": "slack"}}), "channels.team.url", "exactly one of url and url_env"),
        (
            doc(channels={"team": {"type": "slack", "url": "https://a.example.com/x", "url_env": "X"}}),
            "channels.team.url",
            "exactly one",
        ),
        (
            doc(channels={"team": {"type": "slack", "url_env": "slack url"}}),
            "channels.team.url_env",
            "environment variable",
        ),
        (doc(channels={"team": {"type": "slack", "url": "http://hooks.slack.com/x"}}), "channels.team.url", "https"),
        (
            doc(channels={"team": {"type": "slack", "url": "https://169.254.169.254/x"}}),
            "channels.team.url",
            "not a public address",
        ),
        (doc(channels={"team": {"type": "slack", "url": 5}}), "channels.team.url", "URL"),
        (
            doc(channels={"team": {"type": "webhook", "url_env": "HOOK_URL"}}),
            "channels.team.secret_env",
            "required for a webhook",
        ),
        (
            doc(channels={"team": {"type": "webhook", "url_env": "U", "secret_env": "bad name"}}),
            "channels.team.secret_env",
            "environment variable",
        ),
        (
            doc(channels={"team": {"type": "slack", "url_env": "U", "secret_env": "S"}}),
            "channels.team.secret_env",
            "only a webhook",
        ),
        (
            doc(channels={"team": {"type": "slack", "url_env": "U", "token": "x"}}),
            "channels.team.token",
            "unknown field",
        ),
        (doc(channels={"team": "x"}), "channels.team", "object"),
        (doc(channels={"Team!": {"type": "slack", "url_env": "U"}}), "channels.Team!", "channel names"),
    ],
)
def test_check_routing_reports_errors_at_their_path(data, path, fragment):
    errors = errors_of(data)
    assert path in errors, errors
    assert any(fragment in message for message in errors[path]), errors[path]


def test_check_routing_collects_every_error():
    data = doc(budget_per_day=0, max_attempts=0, digest={"at": "x", "timezone": "Nowhere/City"})
    data["routes"][0]["notify"] = ["boss"]
    errors = errors_of(data)
    assert set(errors) == {"budget_per_day", "max_attempts", "digest.at", "digest.timezone", "routes.0.notify.0"}


def test_check_routing_applies_the_host_allowlist_to_literal_urls():
    data = doc(channels={"team": {"type": "slack", "url": "https://evil.example.org/x"}})
    assert check_routing(data) == {}
    assert "channels.team.url" in errors_of(data, allowed_hosts=["hooks.slack.com"])
    local = doc(channels={"team": {"type": "slack", "url": "http://127.0.0.1:8080/x"}})
    assert "channels.team.url" in check_routing(local)
    assert check_routing(local, allow_insecure=True) == {}


def test_minimal_document_uses_defaults():
    routing = load_routing({"routes": [{"id": "all", "notify": ["csm"], "mode": "digest"}]})
    assert routing.channels == ()
    assert routing.budget_per_day == 20
    assert routing.digest == DigestSettings()
    assert routing.routes == (Route(id="all", notify=("csm",), mode="digest"),)
    assert load_routing(routing.to_dict()) == routing


def test_routing_error_message_lists_paths():
    with pytest.raises(RoutingError) as info:
        load_routing(doc(max_attempts=99))
    assert "max_attempts" in str(info.value)


def test_load_routing_does_not_mutate_its_input():
    data = default_routing_data()
    before = copy.deepcopy(data)
    load_routing(data)
    assert data == before
