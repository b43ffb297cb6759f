"""selection.maximize / evaluate: one entry for dense and sparse kernels, the same answers."""

from __future__ import annotations

import numpy as np
import pytest

import delift_dvc
from delift_dvc.selection import evaluate, maximize
from delift_dvc.selection.sparse import SparseKernel


@pytest.mark.parametrize("objective", ["fl", "flmi", "flcg"])
def test_dense_and_sparse_kernels_give_the_same_picks_gains_and_value(objective):
    rng = np.random.default_rng(3)
    k, extra = rng.random((12, 12)), rng.random((12, 4))
    kw = {"flmi": {"query_kernel": extra, "eta": 0.7}, "flcg": {"private_kernel": extra, "nu": 0.8}}.get(objective, {})
    sparse_kw = {key: SparseKernel.from_dense(v) if key.endswith("kernel") else v for key, v in kw.items()}
    dense = maximize(k, 5, objective, **kw)
    sparse = maximize(SparseKernel.from_dense(k), 5, objective, **sparse_kw)
    assert dense.indices.tolist() == sparse.indices.tolist()
    np.testing.assert_array_equal(dense.gains, sparse.gains)
    assert evaluate(k, dense.indices, objective, **kw) == pytest.approx(
        evaluate(SparseKernel.from_dense(k), dense.indices, objective, **sparse_kw), rel=1e-12)
    # brute force of f(S) from the definition, S = the picks
    best = k[:, dense.indices].max(axis=1)
    if objective == "fl":
        value = best.sum()
    elif objective == "flmi":
        value = np.minimum(best, 0.7 * extra.max(axis=1)).sum()
    else:
        value = np.maximum(best - 0.8 * extra.max(axis=1), 0).sum()
    assert dense.objective == pytest.approx(value, rel=1e-12)
    assert delift_dvc.maximize is maximize
