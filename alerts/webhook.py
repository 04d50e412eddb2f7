"""Generic JSON webhook channel, signed with HMAC-SHA256 so the receiver can trust the body.

Signature scheme (what a receiver checks; ``verify_signature`` implements it):
``X-HS-Signature: sha256=<hex HMAC-SHA256(secret, "<X-HS-Timestamp>.<raw body>")>``. The timestamp
is part of what is signed, so a captured request cannot be replayed later than the receiver's
tolerance. ``Idempotency-Key`` carries the alert's dedupe key: a retry after a lost response has
the same key, and the receiver can drop the duplicate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable

import requests

from alerts.base import AlertDeliveryFailed, ChannelType, Message
from alerts.render import webhook_body
from alerts.safety import Resolver, redact_url
from alerts.transport import PinnedHTTP, raise_unless_delivered

SIGNATURE_PREFIX = "sha256="


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """``sha256=<hex>``: the ``X-HS-Signature`` header for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return SIGNATURE_PREFIX + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature: str,
    *,
    now: float,
    tolerance: float = 300,
) -> bool:
    """True when ``signature`` (the ``X-HS-Signature`` header) signs ``body`` at ``timestamp``
    (``X-HS-Timestamp``) with ``secret``, and the timestamp is within ``tolerance`` seconds of
    ``now`` (Unix seconds). Compares in constant time."""
    try:
        sent_at = int(str(timestamp))
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance or not isinstance(signature, str):
        return False
    raw = body.encode("utf-8") if isinstance(body, str) else body
    expected = sign(secret, sent_at, raw)
    return hmac.compare_digest(expected.encode("ascii"), signature.encode("ascii", "replace"))


class WebhookChannel:
    """POSTs ``webhook_body(message)`` as JSON to ``url``, signed with ``secret``.

    Connections are kept open across sends (``PinnedHTTP``), so a dispatcher pays one TCP (and
    TLS) handshake per batch, not per alert, and they go only to addresses the send-time check
    approved. Redirects are not followed: a redirect could lead to an address the URL checks never
    saw. Errors map as for Slack: 429 (``retry_after``), 408, 5xx, timeouts and connection errors
    are retryable; other 4xx and 3xx are not. ``clock`` (Unix seconds), ``resolver`` and
    ``ca_file`` are for tests.
    """

    type = ChannelType.WEBHOOK

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout: float = 5.0,
        allow_insecure: bool = False,
        clock: Callable[[], float] = time.time,
        resolver: Resolver | None = None,
        ca_file: str | None = None,
    ) -> None:
        if not secret:
            raise ValueError("a webhook needs a signing secret")
        self._url = url
        self._secret = secret
        self._clock = clock
        self._http = PinnedHTTP(url, timeout=timeout, allow_insecure=allow_insecure, resolver=resolver, ca_file=ca_file)

    def __repr__(self) -> str:
        return f"WebhookChannel({redact_url(self._url)})"

    def send(self, message: Message, *, key: str, to: str | None = None) -> None:
        """Deliver ``message`` with ``Idempotency-Key: key``; ``to`` is not used."""
        target = redact_url(self._url)
        body = json.dumps(webhook_body(message), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": key,
            "X-HS-Timestamp": str(timestamp),
            "X-HS-Signature": sign(self._secret, timestamp, body),
        }
        try:
            response = self._http.post(body, headers)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise AlertDeliveryFailed(f"webhook {target}: {type(exc).__name__}", retryable=True) from exc
        except requests.RequestException as exc:
            raise AlertDeliveryFailed(f"webhook {target}: {type(exc).__name__}", retryable=False) from exc
        raise_unless_delivered(response, f"webhook {target}", also_retryable=(408,))

    def close(self) -> None:
        self._http.close()
