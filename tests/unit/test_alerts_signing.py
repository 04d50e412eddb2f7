"""Signed acknowledge links."""

from __future__ import annotations

import urllib.parse

import pytest

from alerts.signing import InvalidAckToken, sign_ack, verify_ack

pytestmark = pytest.mark.unit

SECRET = "ack-secret"
NOW = 1_750_000_000


def test_sign_and_verify_round_trip():
    token = sign_ack(SECRET, 42, NOW + 3600)
    assert verify_ack(SECRET, token, now=NOW) == 42
    assert verify_ack(SECRET, token, now=NOW + 3600) == 42


def test_token_is_url_safe():
    token = sign_ack(SECRET, 123456789, NOW)
    assert urllib.parse.quote(token, safe="") == token.replace("~", "%7E")
    assert "/" not in token and "+" not in token and "=" not in token


def reason(token: str, secret: str = SECRET, now: int = NOW) -> str:
    with pytest.raises(InvalidAckToken) as info:
        verify_ack(secret, token, now=now)
    return info.value.reason


def test_expired_token_is_refused():
    assert reason(sign_ack(SECRET, 42, NOW - 1)) == "expired"


def test_wrong_secret_is_refused():
    assert reason(sign_ack("other", 42, NOW + 60)) == "bad signature"


@pytest.mark.parametrize("part", [1, 2])
def test_tampered_id_or_expiry_is_refused(part):
    parts = sign_ack(SECRET, 42, NOW + 60).split(".")
    parts[part] = str(int(parts[part]) + 1)
    assert reason(".".join(parts)) == "bad signature"


def test_tampered_signature_is_refused():
    token = sign_ack(SECRET, 42, NOW + 60)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert reason(flipped) == "bad signature"


@pytest.mark.parametrize(
    "token", ["", "abc", "1.2.3", "2.42.1750000060.x", "1.-4.1750000060.x", "1.42.soon.x", "1.42.1.x.y"]
)
def test_malformed_tokens_are_refused(token):
    assert reason(token) == "malformed token"


def test_empty_secret_is_refused():
    with pytest.raises(ValueError):
        sign_ack("", 1, NOW)
    with pytest.raises(InvalidAckToken):
        verify_ack("", sign_ack(SECRET, 1, NOW), now=NOW)
