"""What every demo generator shares: the source name, epoch-day conversions and vectorized draws."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np

SOURCE = "demo"

_EPOCH = dt.date(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_day(day: dt.date) -> int:
    return (day - _EPOCH).days


def dates(days: np.ndarray) -> list[Any]:
    """Epoch days to ``datetime.date`` objects (``None`` for -1)."""
    values = np.asarray(days, dtype=np.int64)
    out = values.astype("datetime64[D]").astype(object)
    out[values < 0] = None
    return out.tolist()  # type: ignore[no-any-return]


def datetimes(seconds: np.ndarray) -> list[Any]:
    """Epoch seconds to tz-aware UTC datetimes (``None`` for -1)."""
    return [None if s < 0 else _EPOCH_UTC + dt.timedelta(seconds=s) for s in seconds.tolist()]


def uniform(rng: np.random.Generator, ranges: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """One uniform draw per row in ``ranges[code]`` = (low, high)."""
    low, high = ranges[codes, 0], ranges[codes, 1]
    return low + (high - low) * rng.random(codes.size)


def between(rng: np.random.Generator, low: np.ndarray | int, high: np.ndarray | int, size: int) -> np.ndarray:
    """Integers uniform in [low, high] (inclusive, elementwise)."""
    low_a = np.broadcast_to(np.asarray(low, dtype=np.int64), (size,))
    high_a = np.broadcast_to(np.asarray(high, dtype=np.int64), (size,))
    return low_a + np.floor(rng.random(size) * (np.maximum(high_a - low_a, 0) + 1)).astype(np.int64)


def categorical(rng: np.random.Generator, table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """One category per row, drawn from ``table[code]`` (rows of probabilities)."""
    cumulative = np.cumsum(table, axis=1)[codes]
    draws = rng.random(codes.size)[:, None]
    return np.minimum((draws >= cumulative).sum(axis=1), table.shape[1] - 1)


def add_years(days: np.ndarray, years: np.ndarray | int) -> np.ndarray:
    """Epoch days moved by whole years, keeping the day of month (Feb 29 becomes Feb 28)."""
    day = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    day_of_month = (day - month.astype("datetime64[D]")).astype(np.int64)
    moved = month + (np.asarray(years, dtype=np.int64) * 12).astype("timedelta64[M]")
    month_length = ((moved + 1).astype("datetime64[D]") - moved.astype("datetime64[D]")).astype(np.int64)
    result = moved.astype("datetime64[D]") + np.minimum(day_of_month, month_length - 1).astype("timedelta64[D]")
    return result.astype(np.int64)


def words(word_list: Sequence[str], tail: str = "", *, lower: bool = False) -> np.ndarray:
    """A word list as a string array, each non-empty word followed by ``tail`` (and lower-cased)."""
    return np.asarray([(w.lower() if lower else w) + tail if w else "" for w in word_list])


def join(*parts: np.ndarray | str) -> np.ndarray:
    out = np.asarray(parts[0])
    for part in parts[1:]:
        out = np.char.add(out, part)
    return out


def numbered(prefix: str, count: int, width: int = 7) -> list[str]:
    """``prefix`` + 1..count zero-padded, e.g. ``demo-ticket-0000001``."""
    if count == 0:
        return []
    numbers = np.char.zfill(np.arange(1, count + 1).astype(str), width)
    return np.char.add(prefix, numbers).tolist()  # type: ignore[no-any-return]


def offsets(counts: np.ndarray) -> np.ndarray:
    """Start index of each group in a ``np.repeat`` by ``counts``."""
    return np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
