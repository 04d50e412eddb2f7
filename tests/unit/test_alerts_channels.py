"""Channels against real servers on 127.0.0.1: Slack and webhook over HTTP, email over SMTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import pytest

from alerts.base import AccountAlert, AlertChannel, AlertDeliveryFailed, AlertKind, ChannelType, EventLine
from alerts.email import EmailChannel, SmtpSettings, message_id
from alerts.log import LogChannel
from alerts.memory import MemoryChannel
from alerts.render import email_content
from alerts.slack import SlackChannel
from alerts.webhook import WebhookChannel, sign, verify_signature
from tests.support import servers
from tests.support.servers import (
    SMTP_PASSWORD,
    SMTP_USER,
    ScriptedHTTPServer,
    SmtpTestServer,
    hang,
    ok,
    rate_limited,
    status,
)

pytestmark = pytest.mark.unit

# the shared server fixtures (tests/conftest.py is not ours to extend)
http_server = servers.http_server
smtp_server = servers.smtp_server
smtp_login_server = servers.smtp_login_server
tls_certificate = servers.tls_certificate

ALERT = AccountAlert(
    kind=AlertKind.IMMEDIATE,
    account_id=7,
    account_name="Acme <Corp>",
    stage="established",
    band="poor",
    score=38.5,
    change_7d=-9.0,
    arr=50000,
    owner="dana@example.com",
    segment="smb",
    renewal_date="2025-10-01",
    account_url="https://hs.example.com/accounts/7",
    events=(EventLine("usage-drop", "Usage dropped", "risk", "high", "2025-06-01", {"ratio": 0.5}),),
    ack_url="https://hs.example.com/ack/t",
)


def delivery_failure(channel: AlertChannel, **kwargs: object) -> AlertDeliveryFailed:
    with pytest.raises(AlertDeliveryFailed) as info:
        channel.send(ALERT, key=kwargs.pop("key", "k1"), **kwargs)  # type: ignore[arg-type]
    return info.value


# --- Slack ----------------------------------------------------------------------------------


def test_slack_posts_block_kit_payload(http_server):
    channel = SlackChannel(http_server.url_for("/services/T0/B0/secret"), allow_insecure=True)
    channel.send(ALERT, key="k1")
    (request,) = http_server.requests
    assert request.method == "POST"
    assert request.path == "/services/T0/B0/secret"
    assert request.header("Content-Type").startswith("application/json")
    body = request.json()
    assert body["blocks"][0]["text"]["text"] == "Acme <Corp>: Usage dropped"
    assert "Acme &lt;Corp&gt;" in body["text"]
    channel.close()


def test_slack_429_is_retryable_with_retry_after(http_server):
    http_server.script(rate_limited(retry_after=7))
    failure = delivery_failure(SlackChannel(http_server.url, allow_insecure=True))
    assert failure.retryable is True
    assert failure.retry_after == 7.0


@pytest.mark.parametrize(
    ("code", "retryable"),
    [(500, True), (502, True), (503, True), (400, False), (403, False), (404, False), (410, False)],
)
def test_slack_status_codes_map_to_retryable(http_server, code, retryable):
    http_server.script(status(code, b"invalid_payload"))
    failure = delivery_failure(SlackChannel(http_server.url, allow_insecure=True))
    assert failure.retryable is retryable
    assert failure.retry_after is None
    assert str(code) in str(failure)


def test_slack_hang_times_out_retryable(http_server):
    http_server.script(hang(5))
    started = time.monotonic()
    failure = delivery_failure(SlackChannel(http_server.url, timeout=0.3, allow_insecure=True))
    assert failure.retryable is True
    assert time.monotonic() - started < 3


def test_slack_server_down_is_retryable_then_delivered_when_back():
    with ScriptedHTTPServer() as server:
        channel = SlackChannel(server.url, timeout=1, allow_insecure=True)
        server.stop()
        assert delivery_failure(channel).retryable is True
        server.start()
        channel.send(ALERT, key="k1")
        assert len(server.requests) == 1


def test_slack_failure_message_does_not_leak_the_webhook_path(http_server):
    http_server.script(status(500))
    failure = delivery_failure(SlackChannel(http_server.url_for("/services/T0/B0/topsecret"), allow_insecure=True))
    assert "topsecret" not in str(failure)
    assert "topsecret" not in repr(SlackChannel("https://hooks.slack.com/services/T/B/topsecret"))


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "https://127.0.0.1:9/hook", "https://10.1.2.3/hook"])
def test_slack_refuses_unsafe_urls_at_send_time_without_allow_insecure(url):
    failure = delivery_failure(SlackChannel(url))
    assert failure.retryable is False


# --- webhook --------------------------------------------------------------------------------

SECRET = "whsec-test-secret"


def test_webhook_signs_the_body_and_sends_the_idempotency_key(http_server):
    channel = WebhookChannel(http_server.url_for("/hooks/hs"), SECRET, allow_insecure=True)
    channel.send(ALERT, key="acct-7:usage-drop:2025-06-01")
    channel.close()
    (request,) = http_server.requests
    assert request.header("Content-Type") == "application/json"
    assert request.header("Idempotency-Key") == "acct-7:usage-drop:2025-06-01"
    timestamp = request.header("X-HS-Timestamp")
    signature = request.header("X-HS-Signature")
    assert signature.startswith("sha256=")
    assert abs(int(timestamp) - time.time()) < 60
    assert verify_signature(SECRET, timestamp, request.body, signature, now=time.time())
    body = request.json()
    assert body["type"] == "immediate"
    assert body["message"]["account_id"] == 7


def test_webhook_signature_fails_for_an_altered_body_secret_or_old_timestamp(http_server):
    channel = WebhookChannel(http_server.url, SECRET, allow_insecure=True)
    channel.send(ALERT, key="k1")
    channel.close()
    (request,) = http_server.requests
    timestamp, signature = request.header("X-HS-Timestamp"), request.header("X-HS-Signature")
    now = int(timestamp)
    assert verify_signature(SECRET, timestamp, request.body, signature, now=now)
    altered = request.body.replace(b"Acme", b"Acne")
    assert not verify_signature(SECRET, timestamp, altered, signature, now=now)
    assert not verify_signature("other-secret", timestamp, request.body, signature, now=now)
    assert not verify_signature(SECRET, str(now + 1), request.body, signature, now=now)
    assert not verify_signature(SECRET, timestamp, request.body, signature, now=now + 301)
    assert verify_signature(SECRET, timestamp, request.body, signature, now=now + 299)
    assert not verify_signature(SECRET, "not-a-number", request.body, signature, now=now)
    assert not verify_signature(SECRET, timestamp, request.body, "sha256=00", now=now)


def test_sign_matches_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(b"s", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("s", 1700000000, b"{}") == f"sha256={expected}"
    assert verify_signature("s", "1700000000", "{}", f"sha256={expected}", now=1700000000)


def test_webhook_uses_the_injected_clock(http_server):
    channel = WebhookChannel(http_server.url, SECRET, allow_insecure=True, clock=lambda: 1700000000.9)
    channel.send(ALERT, key="k1")
    channel.close()
    assert http_server.requests[0].header("X-HS-Timestamp") == "1700000000"


@pytest.mark.parametrize(
    ("reply", "retryable", "retry_after"),
    [
        (rate_limited(retry_after=30), True, 30.0),
        (status(500), True, None),
        (status(503), True, None),
        (status(408), True, None),
        (status(400), False, None),
        (status(401), False, None),
        (status(301), False, None),
    ],
)
def test_webhook_error_mapping(http_server, reply, retryable, retry_after):
    http_server.script(reply)
    channel = WebhookChannel(http_server.url, SECRET, allow_insecure=True)
    failure = delivery_failure(channel)
    channel.close()
    assert failure.retryable is retryable
    assert failure.retry_after == retry_after


def test_webhook_timeout_and_server_down_are_retryable():
    with ScriptedHTTPServer() as server:
        server.script(hang(5))
        channel = WebhookChannel(server.url, SECRET, timeout=0.3, allow_insecure=True)
        assert delivery_failure(channel).retryable is True
        server.stop()
        assert delivery_failure(channel).retryable is True
        server.start()
        channel.send(ALERT, key="k1")
        channel.close()
        assert server.requests[-1].header("Idempotency-Key") == "k1"


def test_webhook_keeps_its_connection_and_is_fast(http_server):
    channel = WebhookChannel(http_server.url, SECRET, allow_insecure=True)
    started = time.monotonic()
    for i in range(200):
        channel.send(ALERT, key=f"k{i}")
    elapsed = time.monotonic() - started
    channel.close()
    assert len(http_server.requests) == 200
    # 200 sends a second is the target for one dispatcher; keep-alive gives far more locally
    assert elapsed < 1.0 * 3  # generous: the machine is shared


def test_webhook_needs_a_secret():
    with pytest.raises(ValueError):
        WebhookChannel("https://example.com/hook", "")


# --- email ----------------------------------------------------------------------------------


def settings_for(server: SmtpTestServer, **overrides: object) -> SmtpSettings:
    values: dict[str, object] = {
        "port": server.port,
        "security": server.security,
        "sender": "alerts@healthscore.example",
        "ca_file": server.ca_file,
        "timeout": 5.0,
    }
    if server.username:
        values.update(username=server.username, password=server.password)
    values.update(overrides)
    return SmtpSettings(server.host, **values)  # type: ignore[arg-type]


def test_email_login_and_multipart_content(smtp_login_server):
    server = smtp_login_server
    channel = EmailChannel(settings_for(server))
    channel.send(ALERT, key="acct-7:usage-drop", to="manager@example.com")
    channel.close()
    (mail,) = server.received
    assert server.logins == [f"LOGIN:{SMTP_USER}"]
    assert mail.mail_from == "alerts@healthscore.example"
    assert mail.rcpt_tos == ["manager@example.com"]
    message = mail.message
    assert message["To"] == "manager@example.com"
    assert message["From"] == "alerts@healthscore.example"
    assert message["Subject"] == "Acme <Corp>: Usage dropped"
    assert message["Message-ID"] == message_id("acct-7:usage-drop")
    assert message.get_content_type() == "multipart/alternative"
    expected = email_content(ALERT)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    # SMTP carries CRLF line ends
    assert text.get_content().replace("\r\n", "\n") == expected.text
    assert html.get_content().replace("\r\n", "\n") == expected.html
    assert "Acme &lt;Corp&gt;" in html.get_content()


def test_email_message_id_is_stable_for_a_key(smtp_server):
    channel = EmailChannel(settings_for(smtp_server))
    channel.send(ALERT, key="same-key", to="a@example.com")
    channel.send(ALERT, key="same-key", to="a@example.com")
    channel.send(ALERT, key="other-key", to="a@example.com")
    channel.close()
    ids = [m.message["Message-ID"] for m in smtp_server.received]
    digest = hashlib.sha256(b"same-key").hexdigest()[:32]
    assert ids[0] == ids[1] == f"<{digest}@healthscore>"
    assert ids[2] != ids[0]


def test_email_keeps_one_connection_across_sends(smtp_login_server):
    channel = EmailChannel(settings_for(smtp_login_server))
    for i in range(3):
        channel.send(ALERT, key=f"k{i}", to="a@example.com")
    channel.close()
    assert len(smtp_login_server.received) == 3
    assert len(smtp_login_server.logins) == 1


def test_email_reconnects_after_the_server_dropped_the_connection(smtp_login_server):
    channel = EmailChannel(settings_for(smtp_login_server))
    channel.send(ALERT, key="k1", to="a@example.com")
    smtp_login_server.drop_connections()
    channel.send(ALERT, key="k2", to="a@example.com")
    channel.close()
    assert len(smtp_login_server.received) == 2
    assert len(smtp_login_server.logins) == 2


def test_email_550_recipient_refused_is_not_retryable_and_the_connection_survives(smtp_server):
    smtp_server.refuse("nobody@example.com", 550)
    channel = EmailChannel(settings_for(smtp_server))
    failure = delivery_failure(channel, to="nobody@example.com")
    assert failure.retryable is False
    assert "550" in str(failure)
    channel.send(ALERT, key="k2", to="someone@example.com")
    channel.close()
    assert [m.rcpt_tos for m in smtp_server.received] == [["someone@example.com"]]


def test_email_451_is_retryable(smtp_server):
    smtp_server.fail_next(451)
    channel = EmailChannel(settings_for(smtp_server))
    failure = delivery_failure(channel, to="a@example.com")
    assert failure.retryable is True
    channel.send(ALERT, key="k1", to="a@example.com")
    channel.close()
    assert len(smtp_server.received) == 1


def test_email_without_recipient_is_not_retryable(smtp_server):
    channel = EmailChannel(settings_for(smtp_server))
    assert delivery_failure(channel, to=None).retryable is False
    assert delivery_failure(channel, to="").retryable is False
    channel.close()


def test_email_server_down_is_retryable():
    server = SmtpTestServer()
    settings = settings_for(server)  # never started: nothing listens on its port
    channel = EmailChannel(settings)
    assert delivery_failure(channel, to="a@example.com").retryable is True
    with server:
        channel.send(ALERT, key="k1", to="a@example.com")
        channel.close()
        assert len(server.received) == 1


def test_email_wrong_password_is_not_retryable(tls_certificate):
    with SmtpTestServer(
        security="starttls", username=SMTP_USER, password=SMTP_PASSWORD, certificate=tls_certificate
    ) as server:
        channel = EmailChannel(settings_for(server, password="wrong"))
        failure = delivery_failure(channel, to="a@example.com")
        channel.close()
    assert failure.retryable is False
    assert "535" in str(failure)


def test_email_tls_refuses_an_untrusted_certificate(tls_certificate):
    with SmtpTestServer(security="ssl", certificate=tls_certificate) as server:
        channel = EmailChannel(settings_for(server, ca_file=None))
        failure = delivery_failure(channel, to="a@example.com")
        channel.close()
    assert failure.retryable is True
    assert not server.received


def test_email_password_never_in_repr_or_logs(smtp_login_server, caplog):
    settings = settings_for(smtp_login_server)
    assert SMTP_PASSWORD not in repr(settings)
    assert "password='***'" in repr(settings)
    assert SMTP_PASSWORD not in str(settings)
    channel = EmailChannel(settings)
    assert SMTP_PASSWORD not in repr(channel)
    with caplog.at_level(logging.DEBUG):
        channel.send(ALERT, key="k1", to="a@example.com")
        smtp_login_server.refuse("x@example.com")
        failure = delivery_failure(channel, to="x@example.com")
        channel.close()
    assert SMTP_PASSWORD not in caplog.text
    assert SMTP_PASSWORD not in str(failure)


def test_smtp_settings_validate():
    with pytest.raises(ValueError):
        SmtpSettings("mail.example.com", sender="a@example.com", security="tls")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        SmtpSettings("mail.example.com", sender="")
    assert SmtpSettings("mail.example.com", sender="a@example.com").port == 587


# --- log and memory -------------------------------------------------------------------------


def test_log_channel_logs_one_line_and_never_fails(caplog):
    channel = LogChannel()
    assert channel.type == ChannelType.LOG
    with caplog.at_level(logging.INFO, logger="alerts.log"):
        channel.send(ALERT, key="key-1", to="dana@example.com")
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert "immediate" in record.getMessage()
    assert "account=7" in record.getMessage()
    assert "recipient=dana@example.com" in record.getMessage()
    assert "key=key-1" in record.getMessage()
    assert record.account_id == 7  # type: ignore[attr-defined]
    channel.close()


def test_memory_channel_records_and_fails_as_scripted():
    channel = MemoryChannel(ChannelType.EMAIL)
    assert channel.type == ChannelType.EMAIL
    channel.fail_next(2, retryable=True, retry_after=5)
    for _ in range(2):
        with pytest.raises(AlertDeliveryFailed) as info:
            channel.send(ALERT, key="k1", to="a@example.com")
        assert info.value.retryable is True and info.value.retry_after == 5
    channel.fail_next(retryable=False)
    with pytest.raises(AlertDeliveryFailed) as info:
        channel.send(ALERT, key="k1")
    assert info.value.retryable is False
    channel.send(ALERT, key="k1", to="a@example.com")
    assert channel.sent == [(ALERT, "k1", "a@example.com")]
    assert channel.attempts == 4
    assert channel.keys == ["k1"]
    channel.close()
    assert channel.closed


def test_channels_satisfy_the_protocol():
    channels: list[AlertChannel] = [
        MemoryChannel(),
        LogChannel(),
        SlackChannel("https://hooks.slack.com/services/x"),
        WebhookChannel("https://example.com/h", "s"),
        EmailChannel(SmtpSettings("mail.example.com", sender="a@example.com")),
    ]
    assert [c.type for c in channels] == [
        ChannelType.SLACK,
        ChannelType.LOG,
        ChannelType.SLACK,
        ChannelType.WEBHOOK,
        ChannelType.EMAIL,
    ]
    for channel in channels:
        channel.close()


def test_http_server_script_then_default(http_server):
    http_server.script(status(500), ok())
    channel = WebhookChannel(http_server.url, SECRET, allow_insecure=True)
    assert delivery_failure(channel).retryable
    channel.send(ALERT, key="a")
    channel.send(ALERT, key="b")
    channel.close()
    assert [json.loads(r.body)["type"] for r in http_server.requests] == ["immediate"] * 3
