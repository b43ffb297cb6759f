"""The utility surrogate: features, deterministic fits, the pair-choosing strategies."""

from __future__ import annotations

import numpy as np
import pytest

from delift_dvc.kernels.surrogate import round_sizes
from delift_dvc.utility.surrogate import SurrogateConfig, choose_pairs, features, fit


def unit(rng, n, d=16):
    v = rng.standard_normal((n, d))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def synthetic(rng, n=80, per=20):
    """Pairs whose UF depends on cosine and d0, with noise."""
    vectors = unit(rng, n)
    d0 = rng.uniform(0.3, 0.9, n)
    t = np.repeat(np.arange(n), per)
    e = rng.integers(0, n, n * per)
    cos = np.einsum("ij,ij->i", vectors[t], vectors[e])
    y = 0.2 * d0[t] * (cos + 1) + rng.normal(0, 0.02, len(t))
    return vectors, d0, t, e, y


def test_features_shape_and_meaning():
    rng = np.random.default_rng(0)
    vectors, d0, t, e, _ = synthetic(rng, n=10, per=3)
    config = SurrogateConfig(dims=8)
    x = features(vectors, d0, t, e, config)
    assert x.shape == (30, 2 + 3 * 8)
    np.testing.assert_allclose(x[:, 0], np.einsum("ij,ij->i", vectors[t], vectors[e]))
    np.testing.assert_array_equal(x[:, 1], d0[t])


def test_fit_is_deterministic_order_free_and_learns():
    rng = np.random.default_rng(1)
    vectors, d0, t, e, y = synthetic(rng)
    config = SurrogateConfig(dims=8, trees=80)
    x = features(vectors, d0, t, e, config)
    keys = t * 1000 + e
    _, first = np.unique(keys, return_index=True)
    x, y, keys = x[first], y[first], keys[first]
    a = fit(x, y, keys, config)
    perm = rng.permutation(len(y))
    b = fit(x[perm], y[perm], keys[perm], config)
    assert a.fingerprint == b.fingerprint
    assert np.array_equal(a.predict(x), b.predict(x))
    assert a.spearman > 0.8 and a.r2 > 0.5 and a.n_heldout > 10
    c = fit(x, y, keys, SurrogateConfig(dims=8, trees=80, seed=1))
    assert c.fingerprint != a.fingerprint


def test_choose_pairs_random_and_active():
    cands = [np.array([0, 2, 4, 6, 8]), np.array([1, 3]), np.array([5])]
    measured = [np.array([2]), np.zeros(0, np.int64), np.array([5])]
    keys = ["a", "b", "c"]
    r1 = choose_pairs(cands, measured, np.array([2, 5, 1]), "random", 0, keys)
    r2 = choose_pairs(cands, measured, np.array([2, 5, 1]), "random", 0, keys)
    assert [x.tolist() for x in r1] == [x.tolist() for x in r2]
    assert len(r1[0]) == 2 and 2 not in r1[0] and set(r1[0]) <= {0, 4, 6, 8}
    assert r1[1].tolist() == [1, 3] and r1[2].tolist() == []
    scores = [np.array([0.1, 0.9, 0.5, 0.5, 0.2]), np.array([0.3, 0.3]), np.array([1.0])]
    act = choose_pairs(cands, measured, np.array([2, 1, 1]), "active", 0, keys, scores)
    assert act[0].tolist() == [4, 6]  # 0.5 and 0.5 (column 2 is measured already); ties to the lower
    assert act[1].tolist() == [1]


@pytest.mark.parametrize("lm, rounds, strategy, sizes", [
    (8, 3, "active", [4, 2, 2]), (9, 3, "active", [3, 3, 3]), (2, 3, "active", [1, 1]),
    (8, 3, "random", [8]), (5, 1, "active", [5]),
])
def test_round_sizes(lm, rounds, strategy, sizes):
    assert round_sizes(lm, rounds, strategy) == sizes and sum(sizes) == lm
