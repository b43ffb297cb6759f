"""Sparse kernels: exact greedy equal to the dense path (picks, gains, objective) on random
sparse kernels, ties included; scaling; memory at 100,000 samples."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from delift_dvc.selection.sparse import SparseKernel, evaluate_sparse, maximize_sparse, scale_sparse
from delift_dvc.selection.submodular import evaluate, maximize


def random_sparse(rng, n_rows, n_cols, density, ties=False) -> SparseKernel:
    mask = rng.random((n_rows, n_cols)) < density
    values = rng.integers(1, 5, (n_rows, n_cols)) / 4.0 if ties else rng.random((n_rows, n_cols))
    return SparseKernel.from_dense(values, mask)


CASES = [(n, m, d, ties) for n, m in ((1, 1), (7, 5), (40, 40), (120, 90), (300, 300))
         for d in (0.02, 0.1, 0.5, 1.0) for ties in (False, True)]


@pytest.mark.parametrize("n, m, density, ties", CASES)
def test_sparse_equals_dense_for_every_objective(n, m, density, ties):
    rng = np.random.default_rng(n * 1000 + m + int(100 * density) + ties)
    k = random_sparse(rng, n, m, density, ties)
    q = random_sparse(rng, n, 6, density, ties)
    p = random_sparse(rng, n, 4, density, ties)
    dense = k.to_dense()
    for objective, kw, dense_kw in (
        ("fl", {}, {}),
        ("flmi", {"query_kernel": q, "eta": 0.7}, {"query_kernel": q.to_dense(), "eta": 0.7}),
        ("flcg", {"private_kernel": p, "nu": 0.9}, {"private_kernel": p.to_dense(), "nu": 0.9}),
    ):
        for budget in sorted({1, max(1, m // 3), m}):
            a = maximize_sparse(k, budget, objective, **kw)
            b = maximize(dense, budget, objective, **dense_kw)
            assert a.indices.tolist() == b.indices.tolist(), (objective, budget)
            assert a.gains.tobytes() == b.gains.tobytes() and a.objective == b.objective
            assert evaluate_sparse(k, a.indices, objective, **kw) == evaluate(dense, b.indices, objective, **dense_kw)
        stop_a = maximize_sparse(k, m, objective, stop_at_zero_gain=True, **kw)
        stop_b = maximize(dense, m, objective, stop_at_zero_gain=True, **dense_kw)
        assert stop_a.indices.tolist() == stop_b.indices.tolist()


def test_all_ties_and_empty_columns_go_to_the_lowest_index():
    k = SparseKernel.from_pairs(np.array([0, 1, 2]), np.array([3, 3, 5]), np.ones(3), (3, 8))
    res = maximize_sparse(k, 4)
    assert res.indices.tolist() == maximize(k.to_dense(), 4).indices.tolist() == [3, 5, 0, 1]


def test_scaling_maps_missing_to_zero_like_the_dense_fill():
    from delift_dvc.selection.scaling import fill_missing, minmax_scale

    rng = np.random.default_rng(3)
    raw = rng.normal(0.05, 0.1, (30, 30))
    present = rng.random((30, 30)) < 0.2
    extra = rng.normal(0.05, 0.1, (30, 4))
    for mode in ("joint", "separate"):
        sparse = scale_sparse([SparseKernel.from_dense(raw, present), SparseKernel.from_dense(extra)], mode)
        dense = minmax_scale(fill_missing([np.where(present, raw, np.nan), extra], mode), mode)
        np.testing.assert_array_equal(sparse[0].to_dense(), dense[0])
        np.testing.assert_array_equal(sparse[1].to_dense(), dense[1])


def test_take_reorders_rows_and_columns():
    rng = np.random.default_rng(5)
    k = random_sparse(rng, 12, 10, 0.4)
    rows, cols = rng.permutation(12), rng.permutation(10)
    np.testing.assert_array_equal(k.take(rows, cols).to_dense(), k.to_dense()[np.ix_(rows, cols)])


def test_bad_inputs():
    with pytest.raises(ValueError, match="twice"):
        SparseKernel.from_pairs(np.array([0, 0]), np.array([1, 1]), np.ones(2), (2, 2))
    with pytest.raises(ValueError, match="outside"):
        SparseKernel.from_pairs(np.array([2]), np.array([0]), np.ones(1), (2, 2))
    k = SparseKernel.from_pairs(np.array([0]), np.array([0]), np.array([np.nan]), (1, 1))
    with pytest.raises(ValueError, match="NaN"):
        maximize_sparse(k, 1)
    with pytest.raises(ValueError):
        maximize_sparse(SparseKernel.from_dense(np.ones((2, 2))), 3)  # count above the candidates


MEMORY_JOB = r"""
import json, sys, time
import numpy as np
from delift_dvc.selection.sparse import SparseKernel, maximize_sparse
n, k = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
rows = np.repeat(np.arange(n), k)
cols = (rows + rng.integers(0, n, n * k)) % n
cols[::k] = np.arange(n)  # itself among the candidates
pairs = np.unique(rows * n + cols)
kernel = SparseKernel.from_pairs(pairs // n, pairs % n, rng.random(len(pairs)), (n, n))
start = time.perf_counter()
res = maximize_sparse(kernel, 0.3)
# VmHWM: this process's own peak (ru_maxrss would also count the parent's memory at the fork)
peak_kb = int(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
print(json.dumps({"picked": len(res.indices), "seconds": time.perf_counter() - start, "max_rss_mb": peak_kb / 1024}))
"""


def test_100k_selection_on_a_sparse_kernel_stays_under_2_gb():
    """A 100,000-sample selection with k = 32 candidates per target, in a fresh process."""
    done = subprocess.run([sys.executable, "-c", MEMORY_JOB, "100000", "32"], capture_output=True, text=True,
                          timeout=1800, check=True)
    report = json.loads(done.stdout)
    assert report["picked"] == 30000
    assert report["max_rss_mb"] < 2048, report  # a dense float64 kernel alone would be 80 GB
