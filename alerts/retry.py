"""When to try a failed delivery again: exponential backoff with full jitter, and ``Retry-After``."""

from __future__ import annotations

import datetime as dt
import email.utils
import random

#: No retry sooner than this (seconds), even when the jitter draws close to zero.
MIN_DELAY_SECONDS = 1.0


def next_delay(
    attempt: int,
    *,
    base: float = 5.0,
    cap: float = 3600.0,
    retry_after: float | None = None,
    rng: random.Random,
) -> float:
    """Seconds to wait before the next try after failed try number ``attempt`` (1 = the first).

    Full jitter (a uniform draw between 0 and ``min(cap, base * 2**(attempt-1))``) spreads the
    retries of many alerts that failed together, so a receiver coming back is not hit by all of
    them at once; the result is at least ``MIN_DELAY_SECONDS``. ``retry_after`` (seconds the
    receiver asked for, e.g. Slack's 429) is a floor, honoured even above ``cap``: retrying
    sooner would only be refused again. Pure: the randomness comes from ``rng``.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    # 2**exponent overflows a float long before attempt could matter; the cap is reached by then
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    delay = max(MIN_DELAY_SECONDS, rng.uniform(0.0, ceiling))
    if retry_after is not None and retry_after > delay:
        delay = float(retry_after)
    return delay


def parse_retry_after(value: str | None, *, now: dt.datetime) -> float | None:
    """Seconds from a ``Retry-After`` header: delta seconds or an HTTP date (relative to ``now``,
    an aware datetime). None when absent or unreadable; never negative."""
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())
