"""Rendering: Slack Block Kit, email text and HTML and the webhook body say the same, safely."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from alerts.base import (
    AccountAlert,
    AlertKind,
    Digest,
    DigestAccount,
    DriverLine,
    EventLine,
    PlayLine,
    TaskLine,
    message_from_dict,
)
from alerts.render import (
    SLACK_MAX_BLOCKS,
    SLACK_MAX_HEADER_TEXT,
    SLACK_MAX_SECTION_TEXT,
    EmailContent,
    email_content,
    format_score,
    render_detail,
    slack_payload,
    webhook_body,
)

pytestmark = pytest.mark.unit


def make_alert(**overrides: object) -> AccountAlert:
    values: dict[str, object] = {
        "kind": AlertKind.IMMEDIATE,
        "account_id": 7,
        "account_name": "Acme Corp",
        "stage": "pre_renewal",
        "band": "poor",
        "score": 42.1,
        "change_7d": -8.3,
        "arr": 120000.0,
        "owner": "dana@example.com",
        "segment": "enterprise",
        "renewal_date": "2025-09-01",
        "account_url": "https://hs.example.com/accounts/7",
        "events": (
            EventLine(
                "usage-drop", "Usage dropped", "risk", "high", "2025-06-01", {"usage_ratio_30d": 0.4512, "days": 30}
            ),
        ),
        "plays": (
            PlayLine(
                "save-account",
                "Save the account",
                (
                    TaskLine("Call the sponsor", "call", "2025-06-03", "dana@example.com"),
                    TaskLine("Send usage report", "email", "2025-06-05", None),
                ),
            ),
        ),
        "drivers": (DriverLine("Weekly logins", -12.34, 20.0), DriverLine("Open P1 tickets", -4.0)),
        "ack_url": "https://hs.example.com/alerts/ack/tok123",
    }
    values.update(overrides)
    return AccountAlert(**values)  # type: ignore[arg-type]


def make_digest(**overrides: object) -> Digest:
    values: dict[str, object] = {
        "recipient_name": "Maria Manager",
        "since": "2025-06-01T08:00:00+00:00",
        "until": "2025-06-02T08:00:00+00:00",
        "at_risk": (
            DigestAccount(
                1,
                "Beta GmbH",
                "poor",
                31.0,
                -5.5,
                -12.0,
                50000,
                "dana",
                "2025-08-01",
                "https://hs/a/1",
                ("usage down",),
            ),
            DigestAccount(2, "Gamma Ltd", "average", 55.0, None, None, 9000, None, None, "https://hs/a/2"),
        ),
        "changes": (EventLine("nps-drop", "NPS fell", "risk", "medium", "2025-06-01", {"nps": -20}, 1, "Beta GmbH"),),
        "held": (make_alert(account_id=9, account_name="Held Inc", account_url="https://hs/a/9"),),
        "at_risk_total": 5,
        "changes_total": 1,
        "dashboard_url": "https://hs.example.com/",
    }
    values.update(overrides)
    return Digest(**values)  # type: ignore[arg-type]


def all_block_text(payload: dict) -> str:
    return json.dumps(payload["blocks"], ensure_ascii=False)


# --- Slack ----------------------------------------------------------------------------------


def test_slack_payload_account_alert_has_header_facts_events_drivers_plays_and_buttons():
    payload = slack_payload(make_alert())
    blocks = payload["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["text"] == "Acme Corp: Usage dropped"
    fields = [f["text"] for f in blocks[1]["fields"]]
    assert "*Stage*\npre renewal" in fields
    assert "*Band*\npoor" in fields
    assert "*Score*\n42.1 (-8.3 in 7 days)" in fields
    assert "*ARR*\n120,000" in fields
    assert "*Renewal*\n2025-09-01" in fields
    text = all_block_text(payload)
    assert "Usage dropped" in text and "high risk" in text and "usage ratio 30d: 0.451" in text
    assert "Weekly logins: -12.3 points" in text
    assert "Save the account" in text
    assert "Call the sponsor (call, due 2025-06-03, owner dana@example.com)" in text
    assert "owner unassigned" in text
    actions = blocks[-1]
    assert actions["type"] == "actions"
    buttons = {b["text"]["text"]: b["url"] for b in actions["elements"]}
    assert buttons == {
        "Open account": "https://hs.example.com/accounts/7",
        "Acknowledge": "https://hs.example.com/alerts/ack/tok123",
    }
    assert payload["text"].startswith("Acme Corp: Usage dropped")


def test_slack_payload_without_ack_url_has_no_acknowledge_button():
    blocks = slack_payload(make_alert(ack_url=None))["blocks"]
    assert [b["text"]["text"] for b in blocks[-1]["elements"]] == ["Open account"]


def test_slack_payload_escalation_says_how_long_it_was_unacknowledged():
    payload = slack_payload(make_alert(kind=AlertKind.ESCALATION, escalated_alert_id=3, unacknowledged_hours=4.5))
    assert payload["blocks"][0]["text"]["text"] == "Escalation: Acme Corp: not acknowledged"
    assert "not acknowledged for 4.5 hours" in all_block_text(payload)


def test_slack_payload_play_only_alert_headline_names_the_play():
    payload = slack_payload(make_alert(events=()))
    assert payload["blocks"][0]["text"]["text"] == "Acme Corp: play started: Save the account"


def test_slack_payload_digest_lists_at_risk_changes_and_held_alerts():
    payload = slack_payload(make_digest())
    assert payload["blocks"][0]["text"]["text"] == "Health digest for Maria Manager: 5 at-risk accounts"
    text = all_block_text(payload)
    assert "<https://hs/a/1|Beta GmbH>" in text
    assert "poor, 31 (-5.5 in 7 days, -12 in 30 days), ARR 50,000, renews 2025-08-01" in text
    assert "usage down" in text
    assert "... and 3 more" in text  # 5 at risk, 2 listed
    assert "Beta GmbH: " in text and "NPS fell" in text
    assert "Alerts held back by the daily budget (1)" in text
    assert "<https://hs/a/9|Held Inc>" in text
    assert payload["blocks"][-1]["elements"][0]["url"] == "https://hs.example.com/"


def test_slack_payload_escapes_mrkdwn_control_characters():
    payload = slack_payload(make_alert(account_name="<!channel> & <script>", events=(), plays=()))
    assert payload["blocks"][0]["text"]["text"] == "<!channel> & <script>: health alert"  # plain_text
    assert "&lt;!channel&gt; &amp; &lt;script&gt;" in payload["text"]
    assert "<!channel>" not in payload["text"]


def check_block_kit_limits(payload: dict) -> None:
    blocks = payload["blocks"]
    assert len(blocks) <= SLACK_MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= SLACK_MAX_HEADER_TEXT
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= SLACK_MAX_SECTION_TEXT
        for item in block.get("fields", ()):
            assert len(item["text"]) <= 2000


def test_slack_payload_truncates_to_block_kit_limits():
    events = tuple(
        EventLine(f"rule-{i}", f"Rule number {i} " + "x" * 150, "risk", "low", "2025-06-01", {"value": i})
        for i in range(3000)
    )
    plays = tuple(PlayLine(f"p{i}", f"Play {i}", (TaskLine("t" * 5000, "call", "2025-06-01"),)) for i in range(60))
    payload = slack_payload(make_alert(account_name="N" * 400, events=events, plays=plays))
    check_block_kit_limits(payload)
    text = all_block_text(payload)
    assert "... and " in text and " more" in text
    assert payload["blocks"][-1]["type"] == "actions"  # the links survive the cut
    assert len(payload["text"]) <= 3000


def test_slack_payload_digest_with_many_accounts_keeps_within_limits():
    accounts = tuple(
        DigestAccount(
            i, f"Account {i} " + "y" * 300, "poor", 20.0, -1.0, -2.0, 1000, None, None, f"https://hs/a/{i}", ("r",) * 5
        )
        for i in range(100)
    )
    payload = slack_payload(make_digest(at_risk=accounts, at_risk_total=400))
    check_block_kit_limits(payload)
    assert "... and 300 more" in all_block_text(payload)


# --- email ----------------------------------------------------------------------------------


def test_email_content_has_the_same_content_as_slack():
    content = email_content(make_alert())
    assert isinstance(content, EmailContent)
    assert content.subject == "Acme Corp: Usage dropped"
    for part in (content.text, content.html):
        assert "pre renewal" in part
        assert "42.1 (-8.3 in 7 days)" in part
        assert "120,000" in part
        assert "2025-09-01" in part
        assert "Usage dropped" in part
        assert "usage ratio 30d: 0.451" in part
        assert "Weekly logins: -12.3 points" in part
        assert "Call the sponsor (call, due 2025-06-03, owner dana@example.com)" in part
        assert "https://hs.example.com/accounts/7" in part
        assert "https://hs.example.com/alerts/ack/tok123" in part
    assert '<a href="https://hs.example.com/alerts/ack/tok123">Acknowledge</a>' in content.html


def test_email_content_escapes_html():
    alert = make_alert(
        account_name="<script>alert(1)</script>",
        account_url='https://hs/a/7?x="><script>',
        events=(EventLine("r", "<b>rule</b>", "risk", "high", "2025-06-01", {"note": "<img src=x onerror=1>"}),),
    )
    content = email_content(alert)
    assert "<script>" not in content.html
    assert "<img" not in content.html and "<b>rule" not in content.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content.html
    assert 'href="https://hs/a/7?x=&quot;&gt;&lt;script&gt;"' in content.html
    assert "<script>alert(1)</script>" in content.text  # plain text is not HTML


def test_email_content_subject_is_one_line():
    content = email_content(make_alert(account_name="Evil\r\nBcc: x@example.com"))
    assert "\n" not in content.subject and "\r" not in content.subject


def test_email_content_digest_counts_what_was_left_out():
    content = email_content(make_digest())
    assert content.subject == "Health digest for Maria Manager: 5 at-risk accounts"
    assert "... and 3 more" in content.text and "... and 3 more" in content.html
    assert '<a href="https://hs/a/1">Beta GmbH</a>' in content.html
    assert "Held Inc" in content.text


def test_email_content_escalation_mentions_hours():
    content = email_content(make_alert(kind=AlertKind.ESCALATION, unacknowledged_hours=6))
    assert "was not acknowledged for 6 hours" in content.text


# --- webhook --------------------------------------------------------------------------------


@pytest.mark.parametrize("message", [make_alert(), make_digest()], ids=["account", "digest"])
def test_webhook_body_carries_the_whole_message(message):
    body = webhook_body(message)
    assert body["type"] == message.kind.value
    assert body["version"] == 1
    assert body["summary"]
    decoded = json.loads(json.dumps(body))
    assert message_from_dict(decoded["message"]) == message


def test_webhook_body_account_links():
    body = webhook_body(make_alert())
    assert body["account_id"] == 7
    assert body["account_url"] == "https://hs.example.com/accounts/7"
    assert body["ack_url"] == "https://hs.example.com/alerts/ack/tok123"
    assert "ack_url" not in webhook_body(make_alert(ack_url=None))


# --- round trips and helpers ----------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        make_alert(),
        make_alert(kind=AlertKind.ESCALATION, escalated_alert_id=5, unacknowledged_hours=4.0, ack_url=None),
        make_alert(events=(), plays=(), drivers=(), band=None, score=None, change_7d=None),
        make_digest(),
        make_digest(at_risk=(), changes=(), held=(), at_risk_total=0, changes_total=0),
    ],
)
def test_messages_round_trip_through_json(message):
    data = json.loads(json.dumps(message.to_dict()))
    assert type(message).from_dict(data) == message
    assert message_from_dict(data) == message


@pytest.mark.parametrize(
    ("score", "change_7d", "change_30d", "expected"),
    [
        (42.14, -8.26, None, "42.1 (-8.3 in 7 days)"),
        (42.0, 3.0, None, "42 (+3 in 7 days)"),  # issue 17: no "40.0" for people
        (42.0, None, None, "42"),
        (None, -1.0, None, "no score"),
        (10.0, -1.0, -2.5, "10 (-1 in 7 days, -2.5 in 30 days)"),
        (40.0, -0.04, 0.04, "40 (0 in 7 days, 0 in 30 days)"),  # never "-0.0" or "+0.0"
        (1234.56, -0.05, None, "1,234.6 (-0.1 in 7 days)"),
    ],
)
def test_format_score(score, change_7d, change_30d, expected):
    assert format_score(score, change_7d, change_30d) == expected


def test_no_minus_zero_and_no_trailing_zero_anywhere_in_a_message():
    """Issue 17: messages showed ``40.0`` and ``-0.0``."""
    alert = replace(
        make_alert(),
        score=40.0,
        change_7d=-0.04,
        drivers=(DriverLine("Weekly logins", -0.04), DriverLine("Open P1 tickets", -4.0)),
        events=(EventLine("r", "Rule", "risk", "high", "2025-06-01", {"change": -0.0001, "score": 40.0}),),
    )
    for text in (email_content(alert).text, json.dumps(slack_payload(alert))):
        assert "40.0" not in text and "-0.0" not in text and "+0.0" not in text and "-0 " not in text
        assert "Score" in text and "40 (0 in 7 days)" in text
    assert render_detail({"change": -0.0001, "score": 40.0}) == "change: 0, score: 40"


def test_digest_times_are_shown_in_the_recipients_time_zone():
    """Issue 17: the digest said "Since 2025-06-01T08:00:00+00:00 until ..."."""
    text = email_content(make_digest(time_zone="Europe/Berlin")).text
    assert "Since Sun 1 Jun 2025, 10:00 CEST until Mon 2 Jun 2025, 10:00 CEST." in text
    assert "+00:00" not in text and "T08:00" not in text
    assert "Since Sun 1 Jun 2025, 08:00 UTC" in email_content(make_digest()).text
    assert "08:00 UTC" in email_content(make_digest(time_zone="Not/AZone")).text  # unknown: UTC


def test_a_digest_lists_the_first_held_alerts_and_links_to_all_of_them():
    held = tuple(make_alert(account_id=i, account_name=f"Held {i}") for i in range(3))
    digest = make_digest(held=held, held_total=40, held_url="https://hs.example.com/api/v1/alerts?digest=7")
    text = email_content(digest).text
    assert "Alerts held back by the daily budget (40)" in text and "... and 37 more" in text
    assert "All held alerts: https://hs.example.com/api/v1/alerts?digest=7" in text
    buttons = slack_payload(digest)["blocks"][-1]["elements"]
    assert [b["url"] for b in buttons][-1] == "https://hs.example.com/api/v1/alerts?digest=7"


def test_render_detail_is_short_and_readable():
    assert render_detail({"usage_ratio": 0.5, "days": 30, "ok": True, "tags": ["a", "b"]}) == (
        "usage ratio: 0.5, days: 30, ok: true, tags: [a, b]"
    )
    assert len(render_detail({"k": "v" * 1000})) <= 200
    assert render_detail({}) == ""


def test_no_score_renders():
    alert = replace(make_alert(), score=None, change_7d=None, band=None)
    assert "*Score*\nno score" in [f["text"] for f in slack_payload(alert)["blocks"][1]["fields"]]
