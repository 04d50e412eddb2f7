"""Slack incoming webhook channel: a JSON POST over a kept-alive connection.

A retry is the outbox's decision (with backoff and ``Retry-After``), never this channel's: a retry
inside ``send`` would hold a dispatcher slot for minutes. The request is what Slack's SDK
(``slack_sdk.webhook.WebhookClient``) sent before: the payload as ``json.dumps`` writes it, with
``Content-Type: application/json;charset=utf-8``. The SDK opened a new connection per message
through urllib; ``PinnedHTTP`` keeps one open for a whole batch and connects only to the addresses
the send-time check approved.
"""

from __future__ import annotations

import json

import requests

from alerts.base import AlertDeliveryFailed, ChannelType, Message
from alerts.render import slack_payload
from alerts.safety import Resolver, redact_url
from alerts.transport import PinnedHTTP, raise_unless_delivered

_HEADERS = {"Content-Type": "application/json;charset=utf-8"}


class SlackChannel:
    """Posts ``slack_payload(message)`` to a Slack incoming webhook ``url``.

    2xx is delivered. ``AlertDeliveryFailed`` otherwise: retryable for 429 (with ``retry_after``
    from its ``Retry-After``), 5xx, timeouts and connection errors; not retryable for other 4xx
    (a deleted webhook, an archived channel, a payload Slack refuses) and 3xx (redirects are not
    followed). Every send first checks the URL and where its host resolves (https and public
    addresses only, unless ``allow_insecure``, which tests use for http on loopback) and connects
    to an address that passed. ``resolver`` and ``ca_file`` are for tests. The URL's path is the
    webhook's secret: failures and logs show ``redact_url(url)`` only.
    """

    type = ChannelType.SLACK

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        allow_insecure: bool = False,
        resolver: Resolver | None = None,
        ca_file: str | None = None,
    ) -> None:
        self._url = url
        self._http = PinnedHTTP(url, timeout=timeout, allow_insecure=allow_insecure, resolver=resolver, ca_file=ca_file)

    def __repr__(self) -> str:
        return f"SlackChannel({redact_url(self._url)})"

    def send(self, message: Message, *, key: str, to: str | None = None) -> None:
        """Deliver ``message``; ``key`` and ``to`` are not used (Slack has no idempotency key)."""
        target = redact_url(self._url)
        body = json.dumps(slack_payload(message)).encode("utf-8")
        try:
            response = self._http.post(body, _HEADERS)
        except requests.Timeout as exc:
            raise AlertDeliveryFailed(f"Slack {target}: timed out", retryable=True) from exc
        except requests.RequestException as exc:
            raise AlertDeliveryFailed(f"Slack {target}: {_reason(exc)}", retryable=True) from exc
        raise_unless_delivered(response, f"Slack {target}", quote_body=True)

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._http.close()


def _reason(exc: BaseException) -> str:
    """The innermost cause, e.g. ``ConnectionRefusedError: [Errno 111] Connection refused``.
    requests' own messages are not used: they quote the request's URL, and its path is secret."""
    cause = exc
    for _ in range(10):  # requests wraps urllib3's MaxRetryError, which wraps the socket's error
        inner = getattr(cause, "reason", None)
        if not isinstance(inner, BaseException):
            inner = next((a for a in cause.args if isinstance(a, BaseException)), None)
        if not isinstance(inner, BaseException):
            inner = cause.__cause__ or cause.__context__
        if inner is None:
            break
        cause = inner
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, OSError) and cause.strerror:
        return f"{type(cause).__name__}: {cause.strerror}"
    return type(cause).__name__
