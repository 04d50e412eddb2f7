"""Webhook URL safety (SSRF), redaction, retry backoff."""

from __future__ import annotations

import datetime as dt
import random
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.base import AccountAlert, AlertDeliveryFailed, AlertKind
from alerts.retry import MIN_DELAY_SECONDS, next_delay, parse_retry_after
from alerts.safety import check_resolved, check_url_at_send, check_webhook_url, redact_url
from alerts.slack import SlackChannel
from alerts.webhook import WebhookChannel

pytestmark = pytest.mark.unit

SLACK = ("hooks.slack.com",)


@pytest.mark.parametrize(
    ("url", "allowed", "problem"),
    [
        ("https://hooks.slack.com/services/T0/B0/x", SLACK, None),
        ("https://hooks.slack.com:443/services/x", SLACK, None),
        ("https://example.com/hook", (), None),
        ("https://8.8.8.8/hook", (), None),
        ("https://[2001:4860:4860::8888]/hook", (), None),
        ("https://api.partner.example.com/hook", ("*.example.com",), None),
        ("https://a.b.example.com/hook", ("*.example.com",), None),
        ("https://HOOKS.SLACK.COM/x", SLACK, None),
        ("http://hooks.slack.com/services/x", SLACK, "must use https"),
        ("ftp://hooks.slack.com/x", SLACK, "must use https"),
        ("https://evil.example.org/x", SLACK, "not on the allowed hosts list"),
        ("https://example.com/x", ("*.example.com",), "not on the allowed hosts list"),
        ("https://evilexample.com/x", ("*.example.com",), "not on the allowed hosts list"),
        ("https://hooks.slack.com.evil.com/x", SLACK, "not on the allowed hosts list"),
        ("https://user:pass@hooks.slack.com/x", SLACK, "user name or password"),
        ("https://user@hooks.slack.com/x", SLACK, "user name or password"),
        ("https://127.0.0.1/x", (), "not a public address"),
        ("https://127.1.2.3/x", (), "not a public address"),
        ("https://10.0.0.1/x", (), "not a public address"),
        ("https://172.16.5.4/x", (), "not a public address"),
        ("https://192.168.1.1/x", (), "not a public address"),
        ("https://169.254.169.254/latest/meta-data", (), "not a public address"),
        ("https://100.64.0.1/x", (), "not a public address"),
        ("https://0.0.0.0/x", (), "not a public address"),
        ("https://224.0.0.1/x", (), "not a public address"),
        ("https://240.0.0.1/x", (), "not a public address"),
        ("https://[::1]/x", (), "not a public address"),
        ("https://[::]/x", (), "not a public address"),
        ("https://[fe80::1]/x", (), "not a public address"),
        ("https://[fc00::1]/x", (), "not a public address"),
        ("https://[::ffff:127.0.0.1]/x", (), "not a public address"),
        ("https://[::ffff:10.0.0.1]/x", (), "not a public address"),
        ("https://[::ffff:169.254.169.254]/x", (), "not a public address"),
        ("https://localhost/x", (), "not a public address"),
        ("https://api.localhost/x", (), "not a public address"),
        ("https://2130706433/x", (), "numeric address"),
        ("http://2130706433/", (), "must use https"),
        ("https://0x7f000001/x", (), "numeric address"),
        ("https://0177.0.0.1/x", (), "numeric address"),
        ("https://127.1/x", (), "numeric address"),
        ("https:///x", (), "must have a host"),
        ("https://host:99999/x", (), "not a valid URL"),
        ("https://exa mple.com/x", (), "spaces"),
        ("", (), "must be a URL"),
        ("hooks.slack.com/services/x", SLACK, "must use https"),
    ],
)
def test_check_webhook_url(url, allowed, problem):
    reason = check_webhook_url(url, allowed_hosts=allowed)
    if problem is None:
        assert reason is None
    else:
        assert reason is not None and problem in reason


def test_check_webhook_url_allow_insecure_allows_http_and_loopback_only():
    assert check_webhook_url("http://127.0.0.1:8080/hook", allowed_hosts=(), allow_insecure=True) is None
    assert check_webhook_url("http://localhost:8080/hook", allowed_hosts=(), allow_insecure=True) is None
    assert check_webhook_url("http://[::1]:8080/hook", allowed_hosts=(), allow_insecure=True) is None
    assert check_webhook_url("http://10.0.0.1/hook", allowed_hosts=(), allow_insecure=True) is not None
    assert check_webhook_url("http://169.254.169.254/", allowed_hosts=(), allow_insecure=True) is not None
    assert check_webhook_url("http://127.0.0.1/", allowed_hosts=(), allow_insecure=False) is not None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://hooks.slack.com/services/T0/B0/secret", "https://hooks.slack.com/…"),
        ("https://hooks.slack.com/services/x?token=abc#frag", "https://hooks.slack.com/…"),
        ("https://user:pw@example.com:8443/path", "https://example.com:8443/…"),
        ("http://[::1]:80/x", "http://[::1]:80/…"),
        ("not a url", "<invalid url>"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def fake_resolver(address: str):
    def getaddrinfo(host, port, *args, **kwargs):
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    return getaddrinfo


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.5", "169.254.169.254", "::1", "::ffff:10.0.0.1", "0.0.0.0"])
def test_check_resolved_refuses_private_addresses(monkeypatch, address):
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver(address))
    with pytest.raises(AlertDeliveryFailed) as info:
        check_resolved("hooks.example.com", 443)
    assert info.value.retryable is False


def test_check_resolved_allows_public_addresses(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver("93.184.216.34"))
    check_resolved("hooks.example.com", 443)


def test_check_resolved_unresolvable_is_retryable(monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "temporary failure")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(AlertDeliveryFailed) as info:
        check_resolved("hooks.example.com", 443)
    assert info.value.retryable is True


def test_check_resolved_uses_the_injected_resolver_and_returns_the_addresses():
    lookups = []

    def resolver(host, port):
        lookups.append((host, port))
        return ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]

    addresses = check_resolved("hooks.example.com", 443, resolver=resolver)
    assert [str(a) for a in addresses] == ["93.184.216.34", "2606:2800:220:1::1"]
    assert lookups == [("hooks.example.com", 443)]


@pytest.mark.parametrize(
    ("url", "answer", "host_header", "pinned"),
    [
        ("https://hooks.example.com/services/T/B/x", ["93.184.216.34"], "hooks.example.com",
         "https://93.184.216.34:443/services/T/B/x"),
        ("https://Hooks.Example.com.:443/a?b=c#frag", ["2606:2800:220:1::1"], "hooks.example.com",
         "https://[2606:2800:220:1::1]:443/a?b=c"),
        ("https://hooks.example.com:8443", ["93.184.216.34"], "hooks.example.com:8443",
         "https://93.184.216.34:8443/"),
        ("https://8.8.8.8/h", [], "8.8.8.8", "https://8.8.8.8:443/h"),
    ],
)  # fmt: skip
def test_check_url_at_send_pins_the_checked_address(url, answer, host_header, pinned):
    def resolver(host, port):
        return answer

    destination = check_url_at_send(url, resolver=resolver)
    assert destination.host_header == host_header
    assert destination.url_for(destination.addresses[0]) == pinned


@pytest.mark.parametrize(
    ("url", "answer", "refused"),
    [
        ("http://localhost:8080/h", ["127.0.0.1", "::1"], False),
        ("http://hooks.test.example:8080/h", ["127.0.0.1"], False),
        ("http://hooks.test.example:8080/h", ["10.0.0.1"], True),
        ("http://hooks.test.example:8080/h", ["127.0.0.1", "169.254.169.254"], True),
        ("http://127.0.0.1:8080/h", [], False),
    ],
)
def test_check_url_at_send_insecure_allows_loopback_only(url, answer, refused):
    def resolver(host, port):
        return answer

    if refused:
        with pytest.raises(AlertDeliveryFailed) as info:
            check_url_at_send(url, allow_insecure=True, resolver=resolver)
        assert info.value.retryable is False
    else:
        assert check_url_at_send(url, allow_insecure=True, resolver=resolver).addresses


ALERT = AccountAlert(
    kind=AlertKind.IMMEDIATE,
    account_id=1,
    account_name="A",
    stage="established",
    band="poor",
    score=1.0,
    change_7d=None,
    arr=0,
    owner=None,
    segment=None,
    renewal_date=None,
    account_url="https://hs/a/1",
)


@pytest.mark.parametrize("make", [SlackChannel, lambda u: WebhookChannel(u, "s")], ids=["slack", "webhook"])
def test_channels_refuse_a_host_that_rebinds_to_a_private_address(monkeypatch, make):
    # the name passed the configuration check; at send time it resolves to the metadata service
    monkeypatch.setattr(socket, "getaddrinfo", fake_resolver("169.254.169.254"))
    channel = make("https://hooks.example.com/x")
    with pytest.raises(AlertDeliveryFailed) as info:
        channel.send(ALERT, key="k")
    channel.close()
    assert info.value.retryable is False
    assert "169.254.169.254" in str(info.value)


# --- retry ----------------------------------------------------------------------------------


def test_next_delay_grows_exponentially_within_its_cap():
    rng = random.Random(1)
    for attempt in range(1, 20):
        ceiling = min(3600.0, 5.0 * 2 ** (attempt - 1))
        for _ in range(50):
            delay = next_delay(attempt, rng=rng)
            assert max(MIN_DELAY_SECONDS, 0) <= delay <= max(ceiling, MIN_DELAY_SECONDS)


def test_next_delay_jitter_spreads_over_the_whole_range():
    rng = random.Random(42)
    delays = [next_delay(5, rng=rng) for _ in range(2000)]  # ceiling 80 s
    assert min(delays) < 5 and max(delays) > 75
    assert 30 < sum(delays) / len(delays) < 50


def test_next_delay_is_reproducible_with_a_seed():
    assert [next_delay(3, rng=random.Random(7)) for _ in range(3)] == [next_delay(3, rng=random.Random(7))] * 3


def test_next_delay_honours_retry_after_even_above_the_cap():
    rng = random.Random(0)
    assert next_delay(1, retry_after=30, rng=rng) == 30
    assert next_delay(1, cap=10, retry_after=7200, rng=rng) == 7200
    assert next_delay(30, retry_after=0.5, rng=rng) >= MIN_DELAY_SECONDS


def test_next_delay_rejects_attempt_zero():
    with pytest.raises(ValueError):
        next_delay(0, rng=random.Random(0))


@given(
    attempt=st.integers(min_value=1, max_value=10_000),
    base=st.floats(min_value=0.1, max_value=600),
    cap=st.floats(min_value=1, max_value=86_400),
    retry_after=st.none() | st.floats(min_value=0, max_value=100_000),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_next_delay_properties(attempt, base, cap, retry_after, seed):
    delay = next_delay(attempt, base=base, cap=cap, retry_after=retry_after, rng=random.Random(seed))
    assert delay >= MIN_DELAY_SECONDS
    assert delay <= max(cap, MIN_DELAY_SECONDS, retry_after or 0)
    if retry_after is not None:
        assert delay >= retry_after


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 2 ", 2.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after(value, expected):
    now = dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.UTC)
    assert parse_retry_after(value, now=now) == expected
