"""The renewal dates billing terms imply (whole calendar months), vectorized over arrays of accounts.

``BillingTerm`` itself is defined with the stage rules (``scoring.stage``), whose pre-renewal
windows it selects; this module derives renewal dates for point-in-time account data.
"""

from __future__ import annotations

import numpy as np

from scoring.stage import BillingTerm

#: Months per term. A multi-year term has no fixed length (two, three or five years), so it has
#: no entry: a renewal date cannot be derived from it.
TERM_MONTHS: dict[BillingTerm, int] = {
    BillingTerm.MONTHLY: 1,
    BillingTerm.QUARTERLY: 3,
    BillingTerm.ANNUAL: 12,
}


def add_months(day: np.ndarray, months: np.ndarray) -> np.ndarray:
    """``day`` (datetime64[D]) moved by whole ``months``, keeping the day of the month where the
    target month has it and taking its last day where it does not (Jan 31 + 1 month = Feb 28)."""
    month = day.astype("datetime64[M]")
    day_of_month = (day - month.astype("datetime64[D]")).astype(np.int64)
    moved = month + months.astype("timedelta64[M]")
    month_length = ((moved + 1).astype("datetime64[D]") - moved.astype("datetime64[D]")).astype(np.int64)
    result: np.ndarray = moved.astype("datetime64[D]") + np.minimum(day_of_month, month_length - 1).astype(
        "timedelta64[D]"
    )
    return result


def next_term_boundary(contract_start: np.ndarray, day: np.ndarray, term_months: np.ndarray) -> np.ndarray:
    """The first renewal after ``day`` of contracts renewing every ``term_months`` months from
    ``contract_start``: the smallest ``contract_start + k * term`` (k >= 1) strictly after ``day``.

    Arrays of equal length (datetime64[D], datetime64[D], int64). NaT where the start is unknown
    or ``term_months`` is not positive (no known term). A day before the contract start gets the
    first renewal, ``contract_start + term``.
    """
    out = np.full(contract_start.shape, np.datetime64("NaT"), dtype="datetime64[D]")
    ok = ~np.isnat(contract_start) & ~np.isnat(day) & (term_months > 0)
    if not ok.any():
        return out
    start, when, term = contract_start[ok], day[ok], term_months[ok]
    elapsed = (when.astype("datetime64[M]") - start.astype("datetime64[M]")).astype(np.int64)
    k = np.maximum(elapsed // term, 1)
    boundary = add_months(start, k * term)
    # k * term months is at most the day's month: one more term passes the day when it does not.
    late = boundary <= when
    boundary[late] = add_months(start[late], (k[late] + 1) * term[late])
    out[ok] = boundary
    return out


def term_months(terms: np.ndarray) -> np.ndarray:
    """Months per term for an object array of term names (None or unknown: 0, no derivation)."""
    lengths = {term.value: months for term, months in TERM_MONTHS.items()}
    return np.array([lengths.get(t, 0) if t is not None else 0 for t in terms.tolist()], dtype=np.int64)
