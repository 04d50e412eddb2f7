"""The Slack and webhook channels' HTTP client against real servers on 127.x: kept-alive connections,
reconnecting after the receiver closed one, and connections pinned to the address the send-time
check approved (DNS rebinding), with the host name in ``Host``, SNI and the certificate check."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, Sequence

import pytest

from alerts.base import AccountAlert, AlertChannel, AlertDeliveryFailed, AlertKind, EventLine
from alerts.slack import SlackChannel
from alerts.webhook import WebhookChannel
from tests.support import servers
from tests.support.servers import Certificate, ScriptedHTTPServer, make_certificate, status

pytestmark = pytest.mark.unit

http_server = servers.http_server

NAME = "hooks.test.example"  # resolved by the tests' resolvers only
SECRET_PATH = "/services/T0/B0/topsecret"

ALERT = AccountAlert(
    kind=AlertKind.IMMEDIATE,
    account_id=7,
    account_name="Acme",
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
)


class StubResolver:
    """Answers the n-th lookup with ``answers[n]`` (the last answer repeats) and records lookups:
    a DNS server that can change its answer between two lookups of the same name."""

    def __init__(self, *answers: Sequence[str]) -> None:
        self.answers = answers
        self.lookups: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        return list(self.answers[min(len(self.lookups), len(self.answers)) - 1])


Make = Callable[..., AlertChannel]


def make_slack(url: str, **kwargs: object) -> AlertChannel:
    return SlackChannel(url, **kwargs)  # type: ignore[arg-type]


def make_webhook(url: str, **kwargs: object) -> AlertChannel:
    return WebhookChannel(url, "whsec-test", **kwargs)  # type: ignore[arg-type]


both_channels = pytest.mark.parametrize("make", [make_slack, make_webhook], ids=["slack", "webhook"])


@pytest.fixture
def no_system_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fails any system lookup of ``NAME``: proves the HTTP client never resolves it itself."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
        if isinstance(host, str | bytes) and NAME in (host.decode() if isinstance(host, bytes) else host):
            looked_up.append(str(host))
            return real("127.0.0.2", *args, **kwargs)  # type: ignore[arg-type]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def failure_of(channel: AlertChannel, key: str = "k") -> AlertDeliveryFailed:
    with pytest.raises(AlertDeliveryFailed) as info:
        channel.send(ALERT, key=key)
    return info.value


# --- keep-alive -----------------------------------------------------------------------------


@both_channels
def test_channel_sends_a_batch_over_one_connection(http_server, make):
    channel = make(http_server.url_for(SECRET_PATH), allow_insecure=True)
    for i in range(5):
        channel.send(ALERT, key=f"k{i}")
    channel.close()
    assert len(http_server.requests) == 5
    assert http_server.connections == 1


def test_slack_request_is_what_the_sdk_sent(http_server):
    channel = SlackChannel(http_server.url_for(SECRET_PATH), allow_insecure=True)
    channel.send(ALERT, key="k1")
    channel.close()
    (request,) = http_server.requests
    assert request.method == "POST"
    assert request.path == SECRET_PATH
    assert request.header("Content-Type") == "application/json;charset=utf-8"
    assert request.header("Host") == f"127.0.0.1:{http_server.port}"
    # json.dumps with its defaults (ASCII escapes, ", " and ": "), as slack_sdk's WebhookClient wrote it
    assert request.body.startswith(b'{"text": ')
    assert request.body.isascii()


@both_channels
def test_channel_reconnects_after_the_receiver_closed_the_idle_connection(http_server, make):
    channel = make(http_server.url_for(SECRET_PATH), allow_insecure=True)
    channel.send(ALERT, key="k1")
    http_server.drop_connections()  # the receiver's idle timeout, between two sends
    channel.send(ALERT, key="k2")
    channel.send(ALERT, key="k3")
    channel.close()
    assert len(http_server.requests) == 3  # no failure, no duplicate
    assert http_server.connections == 2


@both_channels
def test_channel_reconnects_after_the_receiver_restarted(make):
    with ScriptedHTTPServer() as server:
        channel = make(server.url, allow_insecure=True, timeout=1)
        channel.send(ALERT, key="k1")
        server.stop()
        assert failure_of(channel).retryable is True
        server.start()
        channel.send(ALERT, key="k2")
        channel.close()
    assert len(server.requests) == 2


# --- pinned to the checked address ------------------------------------------------------------


@both_channels
def test_request_goes_to_the_address_the_check_approved(http_server, make, no_system_dns):
    # the same port on another loopback address: where a second lookup would send the request
    with ScriptedHTTPServer(host="127.0.0.2", port=http_server.port) as elsewhere:
        resolver = StubResolver(["127.0.0.1"], ["127.0.0.2"])
        channel = make(http_server.url_for(SECRET_PATH, host=NAME), allow_insecure=True, resolver=resolver)
        channel.send(ALERT, key="k1")
        channel.close()
    assert resolver.lookups == [(NAME, http_server.port)]  # one lookup: the check's
    assert no_system_dns == []  # the HTTP client resolved nothing itself
    (request,) = http_server.requests
    assert request.header("Host") == f"{NAME}:{http_server.port}"
    assert elsewhere.requests == [] and elsewhere.connections == 0


@both_channels
def test_every_send_is_checked_even_with_a_connection_open(http_server, make):
    resolver = StubResolver(["127.0.0.1"], ["10.0.0.7"])
    channel = make(http_server.url_for(SECRET_PATH, host=NAME), allow_insecure=True, resolver=resolver)
    channel.send(ALERT, key="k1")
    failure = failure_of(channel, "k2")  # the name now rebinds to a private address
    channel.close()
    assert failure.retryable is False
    assert "10.0.0.7" in str(failure)
    assert len(http_server.requests) == 1


@both_channels
@pytest.mark.parametrize(
    "answer",
    [["127.0.0.1"], ["10.1.2.3"], ["169.254.169.254"], ["::ffff:127.0.0.1"], ["93.184.216.34", "127.0.0.1"]],
    ids=["loopback", "private", "metadata", "mapped-loopback", "public-and-loopback"],
)
def test_name_resolving_to_a_private_address_is_refused_before_connecting(http_server, make, answer):
    # the insecure flag is off: https, and only public addresses
    resolver = StubResolver(answer)
    channel = make(f"https://{NAME}:{http_server.port}{SECRET_PATH}", resolver=resolver, timeout=1)
    failure = failure_of(channel)
    channel.close()
    assert failure.retryable is False
    assert "non-public address" in str(failure)
    assert http_server.connections == 0 and http_server.requests == []


@both_channels
def test_next_approved_address_is_tried_when_one_refuses_connections(http_server, make):
    # nothing listens on 127.0.0.2 at this port: the connection is refused, nothing was sent
    resolver = StubResolver(["127.0.0.2", "127.0.0.1"])
    channel = make(http_server.url_for(SECRET_PATH, host=NAME), allow_insecure=True, resolver=resolver, timeout=1)
    channel.send(ALERT, key="k1")
    channel.send(ALERT, key="k2")  # the address that worked comes first while it is still approved
    channel.close()
    assert len(http_server.requests) == 2
    assert http_server.connections == 1


def test_unresolvable_name_is_retryable(http_server):
    def fail(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "temporary failure in name resolution")

    channel = SlackChannel(http_server.url_for("/x", host=NAME), allow_insecure=True, resolver=fail)
    failure = failure_of(channel)
    channel.close()
    assert failure.retryable is True
    assert http_server.connections == 0


# --- https: SNI and the certificate checked against the name --------------------------------


@pytest.fixture(scope="module")
def name_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for ``NAME`` only: no IP address, so only a client that checks
    it against the name (not the 127.0.0.1 it connects to) accepts it."""
    return make_certificate(tmp_path_factory.mktemp("tls-name"), names=(NAME,), addresses=())


@pytest.fixture
def https_server(name_certificate: Certificate) -> Iterator[ScriptedHTTPServer]:
    with ScriptedHTTPServer(certificate=name_certificate) as server:
        yield server


@both_channels
def test_https_verifies_the_certificate_against_the_name_and_sends_sni(https_server, name_certificate, make):
    channel = make(
        https_server.url_for(SECRET_PATH, host=NAME),
        allow_insecure=True,  # for the loopback address the name resolves to
        resolver=StubResolver(["127.0.0.1"]),
        ca_file=name_certificate.ca_file,
    )
    for i in range(3):
        channel.send(ALERT, key=f"k{i}")
    channel.close()
    assert len(https_server.requests) == 3
    assert https_server.connections == 1  # one TLS handshake for the batch
    assert https_server.server_names == [NAME]
    assert https_server.requests[0].header("Host") == f"{NAME}:{https_server.port}"


@both_channels
def test_https_refuses_a_certificate_for_another_name(https_server, name_certificate, make):
    channel = make(
        https_server.url_for(SECRET_PATH, host="other.test.example"),
        allow_insecure=True,
        resolver=StubResolver(["127.0.0.1"]),
        ca_file=name_certificate.ca_file,
    )
    failure = failure_of(channel)
    channel.close()
    assert failure.retryable is True  # as before: a TLS failure may be a receiver's passing mistake
    assert https_server.requests == []
    assert https_server.server_names == ["other.test.example"]
    if isinstance(channel, SlackChannel):
        assert "certificate verify failed" in str(failure).lower()


@both_channels
def test_https_refuses_an_untrusted_certificate(https_server, make):
    channel = make(https_server.url_for("/x", host=NAME), allow_insecure=True, resolver=StubResolver(["127.0.0.1"]))
    failure = failure_of(channel)
    channel.close()
    assert failure.retryable is True
    assert https_server.requests == []


# --- the secret path ------------------------------------------------------------------------


@both_channels
def test_secret_path_is_neither_logged_nor_in_failures(http_server, make, caplog):
    http_server.script(status(500))
    failures = []
    with caplog.at_level(logging.DEBUG):
        channel = make(http_server.url_for(SECRET_PATH + "?token=abc"), allow_insecure=True, timeout=1)
        failures.append(failure_of(channel))
        channel.send(ALERT, key="k2")
        http_server.stop()
        failures.append(failure_of(channel))  # connection refused
        channel.close()
    assert "topsecret" not in caplog.text and "token=abc" not in caplog.text
    assert any("urllib3" in r.name for r in caplog.records)  # the records were there, redacted
    for failure in failures:
        assert "topsecret" not in str(failure) and "token" not in str(failure)
