"""The API's sort names live with their schemas; the services map each to its SQL ordering."""

from __future__ import annotations

import pytest

from app.schemas.accounts import ACCOUNT_SORTS
from app.schemas.watchlist import SORT_NAMES
from app.services import accounts
from app.services.watchlist import listing

pytestmark = pytest.mark.unit


def test_every_account_sort_the_api_accepts_has_an_ordering():
    assert set(ACCOUNT_SORTS) == set(accounts.SORTS)


def test_every_watchlist_sort_the_api_accepts_has_a_key():
    assert tuple(listing.SORTS) == SORT_NAMES
