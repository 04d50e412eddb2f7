"""Billing terms: the renewal date a term implies, at month ends, on boundaries and before the start."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.terms import BillingTerm, add_months, next_term_boundary, term_months

pytestmark = pytest.mark.unit


def d(value: str) -> np.datetime64:
    return np.datetime64(value, "D")


@pytest.mark.parametrize(
    ("start", "day", "months", "expected"),
    [
        ("2025-03-15", "2025-06-01", 12, "2026-03-15"),  # within the first term
        ("2025-03-15", "2026-03-14", 12, "2026-03-15"),  # the day before the renewal
        ("2025-03-15", "2026-03-15", 12, "2027-03-15"),  # on the renewal day: the next one
        ("2025-03-15", "2024-01-01", 12, "2026-03-15"),  # before the start: the first renewal
        ("2025-03-15", "2025-03-15", 12, "2026-03-15"),  # the start day itself is no renewal
        ("2025-01-31", "2025-02-01", 1, "2025-02-28"),  # month end: the shorter month's last day
        ("2025-01-31", "2025-02-28", 1, "2025-03-31"),  # ...and back to the 31st after it
        ("2024-02-29", "2025-01-01", 12, "2025-02-28"),  # leap day
        ("2025-01-10", "2025-11-30", 3, "2026-01-10"),  # quarterly
    ],
)
def test_next_term_boundary_is_the_first_renewal_strictly_after_the_day(
    start: str, day: str, months: int, expected: str
) -> None:
    got = next_term_boundary(np.array([d(start)]), np.array([d(day)]), np.array([months]))
    assert got[0] == d(expected)


def test_next_term_boundary_is_unknown_without_a_term_of_fixed_length_or_a_start() -> None:
    start = np.array([d("2025-01-01"), np.datetime64("NaT", "D"), d("2025-01-01")])
    day = np.full(3, d("2025-06-01"))
    got = next_term_boundary(start, day, np.array([0, 12, -1]))
    assert np.isnat(got).all()


def test_next_term_boundary_never_drifts_counting_whole_terms_from_the_start() -> None:
    # Monthly from Jan 31 over two years: every boundary is the month's last day or the 31st.
    days = np.arange(d("2025-01-31"), d("2027-01-31"))
    got = next_term_boundary(np.full(days.size, d("2025-01-31")), days, np.full(days.size, 1))
    assert (got > days).all()
    assert ((got - days).astype(int) <= 31).all()
    month_end = (got + 1).astype("datetime64[M]") != got.astype("datetime64[M]")
    assert month_end.all()  # Feb 28, Mar 31, Apr 30...: never Mar 28 after a short February


def test_add_months_keeps_the_day_or_takes_the_month_end() -> None:
    got = add_months(np.array([d("2025-01-31"), d("2025-05-15")]), np.array([1, -5]))
    assert got.tolist() == [d("2025-02-28").item(), d("2024-12-15").item()]


def test_term_months_of_names_and_unknowns() -> None:
    names = np.array(["monthly", "quarterly", "annual", "multi_year", None, "weekly"], dtype=object)
    assert term_months(names).tolist() == [1, 3, 12, 0, 0, 0]
    assert {t.value for t in BillingTerm} == {"monthly", "quarterly", "annual", "multi_year"}


def test_day_column_reads_date_objects_iso_strings_and_nulls() -> None:
    import datetime as dt

    from app.pipeline.arrays import day_column

    as_dates = day_column([(dt.date(2026, 1, 2),), (None,), (dt.date(1969, 12, 31),)], 0)
    assert as_dates.astype(str).tolist() == ["2026-01-02", "NaT", "1969-12-31"]
    assert day_column([(None,), (dt.date(2026, 1, 2),)], 0).astype(str).tolist() == ["NaT", "2026-01-02"]
    assert day_column([("2026-01-02",), (None,)], 0).astype(str).tolist() == ["2026-01-02", "NaT"]
    assert day_column([], 0).dtype == np.dtype("datetime64[D]")
