"""The HTTP client of the Slack and webhook channels: kept-alive connections, made only to the
addresses the send-time check approved, and what a receiver's answer means for delivery.

``check_url_at_send`` resolves the URL's host and refuses private addresses. If the client then
resolved the name again itself, a hostile DNS server could answer a public address to the check
and a private one to the connection (DNS rebinding). So the request goes to a URL with the checked
IP address in place of the name, while the ``Host`` header carries the name and, for https, so do
SNI and the certificate check (urllib3's ``server_hostname``). Nothing in the client resolves.

One ``requests.Session`` per channel keeps its connections open across sends: a batch of alerts
pays one TCP (and TLS) handshake, not one per alert. A connection the receiver closed while idle
is noticed before the next request (urllib3 checks a pooled connection before using it) and a
new one is opened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.cookiejar
import logging
import threading
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import requote_uri
from urllib3.exceptions import NewConnectionError

from alerts.base import AlertDeliveryFailed
from alerts.retry import parse_retry_after
from alerts.safety import Destination, IPAddress, Resolver, check_url_at_send


class PinnedHTTP:
    """POSTs to one webhook ``url``, connecting only to addresses that passed the send-time check.

    ``timeout`` (seconds) applies to connecting and to each wait for the receiver, as a socket
    timeout does. Redirects are never followed (a redirect could lead anywhere), environment
    proxy settings are ignored (a proxy would resolve the name itself) and cookies are neither
    kept nor sent. ``allow_insecure`` (tests only) accepts http and loopback addresses;
    ``resolver`` and ``ca_file`` (a CA bundle to trust instead of the system's) are for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float,
        allow_insecure: bool = False,
        resolver: Resolver | None = None,
        ca_file: str | None = None,
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._allow_insecure = allow_insecure
        self._resolver = resolver
        self._verify: bool | str = ca_file or True
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        adapter = _PinnedAdapter()
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._last_address: IPAddress | None = None
        _install_log_redaction()

    def post(self, body: bytes, headers: Mapping[str, str]) -> requests.Response:
        """Check the URL (``check_url_at_send``), then POST ``body`` to the first approved address
        that accepts a connection. The address used last comes first while it is still approved,
        so the open connection to it is reused; the next one is tried only when a connection could
        not be made at all (nothing was sent).

        Raises ``AlertDeliveryFailed`` from the check, and ``requests.RequestException`` when the
        request fails. The response is read in full.
        """
        destination = check_url_at_send(self._url, allow_insecure=self._allow_insecure, resolver=self._resolver)
        addresses = list(destination.addresses)
        if self._last_address in addresses:
            addresses.remove(self._last_address)
            addresses.insert(0, self._last_address)
        request_headers = {**headers, "Host": destination.host_header}
        failure: requests.ConnectionError | None = None
        with _redacting(destination):
            for address in addresses:
                try:
                    response = self._session.post(
                        destination.url_for(address),
                        data=body,
                        headers=request_headers,
                        timeout=self._timeout,
                        allow_redirects=False,
                        verify=self._verify,
                    )
                except requests.ConnectionError as exc:
                    if not _never_connected(exc):
                        raise
                    failure = exc
                    continue
                self._last_address = address
                return response
        assert failure is not None  # there is at least one address, and each one failed
        raise failure

    def close(self) -> None:
        self._session.close()


def raise_unless_delivered(
    response: requests.Response, where: str, *, also_retryable: Collection[int] = (), quote_body: bool = False
) -> None:
    """Return when the receiver answered 2xx; otherwise raise ``AlertDeliveryFailed`` starting
    with ``where`` (the channel and its redacted URL). 429 is retryable after its ``Retry-After``;
    5xx and the ``also_retryable`` statuses are retryable; any other status is not (other 4xx,
    and 3xx since redirects are not followed). ``quote_body`` adds the start of the answer's body
    to the message. Closes ``response``."""
    with response:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=dt.datetime.now(dt.UTC))
            raise AlertDeliveryFailed(f"{where}: rate limited (429)", retryable=True, retry_after=retry_after)
        detail = f"HTTP {status}"
        if quote_body:
            detail = f"{detail} {_clip(response.content.decode('utf-8', 'replace'))}".rstrip()
        raise AlertDeliveryFailed(f"{where}: {detail}", retryable=status >= 500 or status in also_retryable)


def _clip(text: str | None, limit: int = 200) -> str:
    return " ".join((text or "").split())[:limit]


class _PinnedAdapter(HTTPAdapter):
    """Sets urllib3's ``server_hostname`` (SNI and the certificate's name) to the ``Host`` header's
    name for https, since the URL itself holds an IP address. Pools are keyed on it too, so a
    connection is reused only for the same address and name."""

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if host_params.get("scheme") == "https":
            pool_kwargs["server_hostname"] = _name_of(str(request.headers["Host"]))
        return host_params, pool_kwargs


def _name_of(host_header: str) -> str:
    """``hooks.slack.com:8443`` -> ``hooks.slack.com``; ``[::1]:8443`` -> ``::1``."""
    if host_header.startswith("["):
        return host_header[1 : host_header.index("]")]
    return host_header.rsplit(":", 1)[0] if ":" in host_header else host_header


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when no connection was made, so the request cannot have reached the receiver and
    another approved address may be tried without risking a duplicate."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


# --- keeping the URL's path out of urllib3's log ---------------------------------------------

_IN_FLIGHT = threading.local()


class _RedactTarget(logging.Filter):
    """urllib3 logs every request line at DEBUG, path included, and a webhook's path is its
    secret (a Slack webhook's path is the credential). While a channel sends on this thread,
    the path is replaced by ``/…`` in urllib3's records; other records pass unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets: tuple[str, ...] = getattr(_IN_FLIGHT, "secrets", ())
        for secret in secrets:
            if isinstance(record.msg, str) and secret in record.msg:
                record.msg = record.msg.replace(secret, "/…")
            if isinstance(record.args, tuple):
                record.args = tuple(_redacted(arg, secret) for arg in record.args)
        return True


def _redacted(value: object, secret: str) -> object:
    text = value if isinstance(value, str) else repr(value)
    return text.replace(secret, "/…") if secret in text else value


_REDACT_TARGET = _RedactTarget()
#: the urllib3 loggers whose records can carry a request's path
_URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager")


def _install_log_redaction() -> None:
    """Add the filter once (when the first channel is built, never at import)."""
    for name in _URLLIB3_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACT_TARGET not in logger.filters:
            logger.addFilter(_REDACT_TARGET)


@contextlib.contextmanager
def _redacting(destination: Destination) -> Iterator[None]:
    """Redact ``destination``'s path and query in urllib3's records on this thread meanwhile."""
    target = destination.target
    # "/" says nothing; a longer path or a query string may be a secret. requests may re-quote it.
    secrets = tuple({target, requote_uri(target)}) if target != "/" else ()
    previous = getattr(_IN_FLIGHT, "secrets", ())
    _IN_FLIGHT.secrets = secrets
    try:
        yield
    finally:
        _IN_FLIGHT.secrets = previous
