"""How API tests authenticate: the bearer header a client sends with a token."""

from __future__ import annotations


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header that sends ``token``."""
    return {"Authorization": f"Bearer {token}"}
