"""Signed acknowledge links: a token in the alert's URL that proves which alert it acknowledges.

The link in a Slack message or email lets a manager acknowledge without logging in, so the token
itself is the credential: it names one alert and an expiry, and an HMAC-SHA256 over both with the
server's secret stops anyone from forging or altering it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

#: Token format version: lets the format change without old links verifying by accident.
_VERSION = "1"


class InvalidAckToken(Exception):
    """The token is malformed, its signature does not match, or it has expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), payload.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def sign_ack(secret: str, alert_id: int, expires_at: int) -> str:
    """A URL-safe token ``1.<alert_id>.<expires_at>.<mac>`` (``expires_at`` in Unix seconds).

    Raises ``ValueError`` for an empty secret: a token signed with "" would be forgeable.
    """
    if not secret:
        raise ValueError("an acknowledge secret is required")
    payload = f"{_VERSION}.{int(alert_id)}.{int(expires_at)}"
    return f"{payload}.{_mac(secret, payload)}"


#: Clock difference allowed between the process that signed a link and the one checking it.
CLOCK_SKEW_SECONDS = 300


def verify_ack(secret: str, token: str, *, now: int, max_age: int | None = None) -> int:
    """The alert id ``token`` acknowledges; raises ``InvalidAckToken`` when it is malformed, its
    signature is wrong, ``now`` (Unix seconds) is past its expiry, or (with ``max_age``, in
    seconds) its expiry is further than ``max_age`` from now: a link's life is capped however
    it was signed."""
    if not secret:
        raise InvalidAckToken("no acknowledge secret configured")
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit() or not parts[2].isdigit():
        raise InvalidAckToken("malformed token")
    payload = ".".join(parts[:3])
    # compare_digest: the time taken must not reveal how much of a guessed signature was right
    if not hmac.compare_digest(_mac(secret, payload).encode("ascii"), parts[3].encode("ascii", "replace")):
        raise InvalidAckToken("bad signature")
    if now > int(parts[2]):
        raise InvalidAckToken("expired")
    if max_age is not None and int(parts[2]) - now > max_age + CLOCK_SKEW_SECONDS:
        raise InvalidAckToken("its expiry is further away than links may live")
    return int(parts[1])
