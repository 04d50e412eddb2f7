"""Slack incoming webhook channel, through the Slack SDK's ``WebhookClient``.

The SDK's own retry handlers are switched off: a retry is the outbox's decision (with backoff and
``Retry-After``), and a retry inside ``send`` would hold a dispatcher slot for minutes.
"""

from __future__ import annotations

import datetime as dt
import logging
import urllib.error
from http.client import HTTPException

from slack_sdk.webhook import WebhookClient

from alerts.base import AlertDeliveryFailed, ChannelType, Message
from alerts.render import slack_payload
from alerts.retry import parse_retry_after
from alerts.safety import check_url_at_send, redact_url

#: The SDK logs the full webhook URL (a secret) at DEBUG and every failure at ERROR; give it a
#: logger outside the logging tree that drops everything. Failures reach the caller as
#: ``AlertDeliveryFailed`` with the URL redacted instead.
_SILENT_SDK_LOGGER = logging.Logger("alerts.slack.sdk", level=logging.CRITICAL + 1)


class SlackChannel:
    """Posts ``slack_payload(message)`` to a Slack incoming webhook ``url``.

    2xx is delivered. ``AlertDeliveryFailed`` otherwise: retryable for 429 (with ``retry_after``
    from its ``Retry-After``), 5xx, timeouts and connection errors; not retryable for other 4xx
    (a deleted webhook, an archived channel, a payload Slack refuses). Unless ``allow_insecure``
    (tests only), every send first checks that the URL is https and resolves to public addresses.
    """

    type = ChannelType.SLACK

    def __init__(self, url: str, *, timeout: float = 5.0, allow_insecure: bool = False) -> None:
        self._url = url
        self._allow_insecure = allow_insecure
        self._client = WebhookClient(
            url, timeout=int(max(1, round(timeout))), retry_handlers=[], logger=_SILENT_SDK_LOGGER
        )
        # WebhookClient types its timeout as int; urlopen takes a float, and tests use sub-second ones
        self._client.timeout = timeout  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SlackChannel({redact_url(self._url)})"

    def send(self, message: Message, *, key: str, to: str | None = None) -> None:
        """Deliver ``message``; ``key`` and ``to`` are not used (Slack has no idempotency key)."""
        target = redact_url(self._url)
        check_url_at_send(self._url, allow_insecure=self._allow_insecure)
        try:
            response = self._client.send_dict(slack_payload(message))
        except urllib.error.HTTPError as exc:  # pragma: no cover - the SDK turns these into responses
            raise AlertDeliveryFailed(f"Slack {target}: HTTP {exc.code}", retryable=exc.code >= 500) from exc
        except urllib.error.URLError as exc:
            raise AlertDeliveryFailed(f"Slack {target}: {_reason(exc.reason)}", retryable=True) from exc
        except (OSError, HTTPException) as exc:
            raise AlertDeliveryFailed(f"Slack {target}: {_reason(exc)}", retryable=True) from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        body = _clip(response.body)
        if status == 429:
            headers = {k.lower(): v for k, v in (response.headers or {}).items()}
            value = headers.get("retry-after")
            if isinstance(value, list):
                value = value[0] if value else None
            retry_after = parse_retry_after(value, now=dt.datetime.now(dt.UTC))
            raise AlertDeliveryFailed(f"Slack {target}: rate limited (429)", retryable=True, retry_after=retry_after)
        raise AlertDeliveryFailed(f"Slack {target}: HTTP {status} {body}".rstrip(), retryable=status >= 500)

    def close(self) -> None:
        """Nothing to release: the SDK opens a connection per request."""


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    return f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)


def _clip(text: str | None, limit: int = 200) -> str:
    return " ".join((text or "").split())[:limit]
