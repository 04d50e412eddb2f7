"""``align`` and ``scatter``: the run's query results placed at their accounts' positions."""

from __future__ import annotations

import numpy as np
import pytest

from app.pipeline.arrays import align, scatter


def _reference(ids: np.ndarray, found: np.ndarray) -> np.ndarray:
    return np.isin(found, ids)


@pytest.mark.parametrize("seed", range(40))
def test_align_finds_each_present_id_and_only_those(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Dense ids (the table lookup), sparse ids (the binary search), negative and out-of-range ids.
    high = 10**9 if seed % 4 == 0 else int(rng.integers(1, 300))
    ids = np.unique(rng.integers(-3 if seed % 3 == 0 else 0, high, int(rng.integers(0, 80)))).astype(np.int64)
    found = np.concatenate([rng.choice(ids, min(ids.size, 10)) if ids.size else ids, rng.integers(-20, 400, 50)])
    pos, ok = align(ids, found)
    assert (ok == _reference(ids, found)).all()
    assert (ids[pos[ok]] == found[ok]).all()


def test_align_dense_and_searched_agree_at_scale() -> None:
    rng = np.random.default_rng(1)
    ids = np.sort(rng.choice(np.arange(1, 120_001), 100_000, replace=False)).astype(np.int64)
    found = rng.integers(0, 130_000, 90_000).astype(np.int64)
    pos, ok = align(ids, found)
    searched = np.minimum(np.searchsorted(ids, found), ids.size - 1)
    assert (ok == (ids[searched] == found)).all()
    assert (pos[ok] == searched[ok]).all()


def test_scatter_fills_accounts_without_a_value() -> None:
    ids = np.array([2, 3, 5, 8], dtype=np.int64)
    out = scatter(ids, np.array([8, 1, 2], dtype=np.int64), np.array([0.5, 9.0, 1.5]), fill=0.0)
    assert out.tolist() == [1.5, 0.0, 0.0, 0.5]


def test_align_of_nothing() -> None:
    pos, ok = align(np.array([], dtype=np.int64), np.array([1, 2], dtype=np.int64))
    assert not ok.any() and pos.size == 2
    pos, ok = align(np.array([1, 2], dtype=np.int64), np.array([], dtype=np.int64))
    assert pos.size == 0 and ok.size == 0
