"""Queueing alerts writes each message as JSON text pieced together from parts; it must be exactly
the JSON of the message type (``AccountAlert.to_dict``) that the dispatcher, the digest and the
API read back."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from alerts.base import AccountAlert, AlertKind, DriverLine, EventLine, PlayLine, TaskLine
from app.pipeline import alerts as queue
from scoring.model import default_config_dict, model_from_dict

pytestmark = pytest.mark.unit

ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode  # what the events step writes too

EVENTS = (
    EventLine("any_into_poor", "Into poor", "risk", "high", "2026-06-01", {"band": "poor", "score": 38.25}),
    EventLine("usage_drop", 'Usage "drop" \\ 30d', "risk", "medium", "2026-06-01", {}),
    EventLine("first_value", "Première valeur ✓ 😀", "milestone", "low", "2026-06-01", {"n": [1, 2.5, None]}),
)
PLAYS = (
    PlayLine("poor-health-escalation", "Escalate", (TaskLine("Call", "call", "2026-06-03", "ana@example.com"),)),
    PlayLine("exec-sponsor", "Sponsor\nre-engage", (TaskLine("Mail", "email", "2026-06-08", "manager"),)),
    PlayLine("no-tasks", "No tasks"),
)
DRIVERS = (DriverLine("Licence utilisation", -12.5), DriverLine("Logins", -0.0), DriverLine("NPS", -3.1))


def alert(**overrides: Any) -> AccountAlert:
    values: dict[str, Any] = {
        "kind": AlertKind.IMMEDIATE, "account_id": 42, "account_name": "Acme \u2028 Ltd \"quoted\"",
        "stage": "adoption", "band": "poor", "score": 38.3, "change_7d": -0.1, "arr": 125000.0,
        "owner": "ana@example.com", "segment": "enterprise", "renewal_date": "2026-12-31",
        "account_url": "https://health.example.com/api/v1/accounts/42", "events": EVENTS, "plays": PLAYS,
        "drivers": DRIVERS,
    }  # fmt: skip
    values.update(overrides)
    return AccountAlert(**values)


def pieced(message: AccountAlert) -> str:
    """The message as ``queue_run_alerts`` writes it."""
    head = queue._account_head(
        account_id=message.account_id, name=message.account_name, stage=message.stage, band=message.band,
        score=message.score, change_7d=message.change_7d, arr=message.arr, owner=message.owner,
        segment=message.segment, renewal_date=message.renewal_date, account_url=message.account_url,
    )  # fmt: skip
    events = [
        queue._event_head(e.rule_id, e.rule_name, e.kind, e.severity, e.day) + ENCODE(e.detail) + queue._EVENT_TAIL
        for e in message.events
    ]
    plays = [
        queue._play_json(p.play_id, p.name, [(t.title, t.type, t.due_on, t.owner) for t in p.tasks])
        for p in message.plays
    ]
    drivers = ENCODE([{"label": d.label, "contribution": d.contribution, "score": d.score} for d in message.drivers])
    return queue._message_json(head, events, plays, drivers)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"band": None, "score": None, "change_7d": None, "owner": None, "segment": None, "renewal_date": None},
        {"events": (), "plays": (), "drivers": ()},
        {"score": 1e-7, "change_7d": 1e22, "arr": 0.0},
    ],
)
def test_queue_message_json_is_exactly_the_message_types(overrides: dict[str, Any]) -> None:
    message = alert(**overrides)
    text = pieced(message)
    assert text == ENCODE(message.to_dict())
    assert AccountAlert.from_dict(json.loads(text)) == message


def test_queue_message_json_refuses_what_json_refuses() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        pieced(alert(score=float("nan")))


def test_queue_top_drivers_are_the_most_negative_contributions_as_driver_lines() -> None:
    model = model_from_dict(default_config_dict())
    m = len(model.measures)
    contributions = np.zeros((m, 3))
    contributions[:4, 0] = [-4.04, -20.0, np.nan, -0.04]  # NaN counts as 0; -0.04 shows as -0.0
    contributions[-1, 1] = 5.0  # nothing pulls account 1 down
    contributions[:, 2] = -np.arange(1, m + 1)  # every measure pulls: the three largest
    texts = queue._top_drivers(model, contributions, np.array([0, 1, 2]))
    labels = [measure.label or measure.name for measure in model.measures]
    expected = [
        [(labels[1], -20.0), (labels[0], -4.0), (labels[3], -0.0)],
        [],
        [(labels[j], float(-(j + 1))) for j in (m - 1, m - 2, m - 3)],
    ]
    assert texts == [ENCODE([{"label": label, "contribution": c, "score": None} for label, c in e]) for e in expected]
