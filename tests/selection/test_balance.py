"""The format-balanced budget: quotas by hand, the partition-matroid greedy against a brute-force
greedy written from the objective definitions, and the clusters it is built on."""

from __future__ import annotations

import numpy as np
import pytest

from delift_dvc.selection.balance import embedding_clusters, quotas
from delift_dvc.selection.sparse import SparseKernel, maximize_sparse
from delift_dvc.selection.methods import select_submodular
from delift_dvc.selection.submodular import maximize


def objective_value(K, S, objective, extra=None, eta=1.0, nu=1.0) -> float:
    """f(S) from the definitions, one target at a time."""
    total = 0.0
    for i in range(K.shape[0]):
        best = max((K[i, j] for j in S), default=0.0)
        if objective == "fl":
            total += max(0.0, best)
        elif objective == "flmi":
            total += max(0.0, min(best, eta * max(extra[i])))
        else:
            total += max(best - nu * max(extra[i]), 0.0)
    return total


def brute_partition_greedy(K, n_pick, labels, quota, objective="fl", extra=None):
    """Each step: the feasible candidate (not picked, its part below quota) with the largest
    f(S + j) - f(S), ties to the lowest index."""
    picks, left = [], list(quota)
    for _ in range(n_pick):
        base = objective_value(K, picks, objective, extra)
        best, best_gain = None, -np.inf
        for j in range(K.shape[1]):
            if j in picks or left[labels[j]] == 0:
                continue
            gain = objective_value(K, picks + [j], objective, extra) - base
            if gain > best_gain + 1e-12:
                best, best_gain = j, gain
        if best is None:
            break
        picks.append(best)
        left[labels[best]] -= 1
    return picks


def test_quotas_by_hand():
    # sizes 5, 7, 2 and 5 picks: 25/14, 35/14, 10/14 -> floors 1, 2, 0; remainders 11, 7, 10 (/14)
    labels = np.array([0] * 5 + [1] * 7 + [2] * 2)
    assert quotas(labels, 5).tolist() == [2, 2, 1]
    assert quotas(labels, 0).tolist() == [0, 0, 0]
    assert quotas(labels, 14).tolist() == [5, 7, 2]
    assert quotas(np.array([0, 0, 1, 1]), 1).tolist() == [1, 0]  # equal remainders: lower label
    for n_pick in range(15):
        q = quotas(labels, n_pick)
        assert q.sum() == n_pick and (q <= np.bincount(labels)).all()
    with pytest.raises(ValueError, match="15 picks from 14"):
        quotas(labels, 15)


@pytest.mark.parametrize("objective", ["fl", "flmi", "flcg"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partition_greedy_matches_brute_force(objective, seed):
    rng = np.random.default_rng(seed)
    n = 14
    K = rng.random((n, n))
    extra = rng.random((n, 3)) * 0.6 if objective != "fl" else None
    labels = rng.integers(0, 4, n)
    labels[:4] = np.arange(4)  # every part present
    n_pick = 6
    quota = quotas(labels, n_pick)
    expected = brute_partition_greedy(K, n_pick, labels.tolist(), quota.tolist(), objective, extra)
    kw = {"query_kernel": extra} if objective == "flmi" else {"private_kernel": extra} if objective == "flcg" else {}
    for optimizer in ("lazy", "naive"):
        got = maximize(K, n_pick, objective, optimizer=optimizer, partition=(labels, quota), **kw)
        assert got.indices.tolist() == expected, optimizer
        assert got.objective == pytest.approx(objective_value(K, expected, objective, extra))
    sparse_kw = {k: SparseKernel.from_dense(v) for k, v in kw.items()}
    got = maximize_sparse(SparseKernel.from_dense(K), n_pick, objective, partition=(labels, quota), **sparse_kw)
    assert got.indices.tolist() == expected
    counts = np.bincount(labels[expected], minlength=quota.size)
    assert (counts <= quota).all() and counts.sum() == n_pick


def test_a_part_with_zero_quota_is_never_picked_and_the_constraint_binds():
    K = np.zeros((6, 6))
    K[:, :3] = 1.0  # part 0 (columns 0-2) helps every target; part 1 helps none
    labels = np.array([0, 0, 0, 1, 1, 1])
    plain = maximize(K, 4, "fl")
    assert plain.indices.tolist()[0] in (0, 1, 2) and plain.objective == 6.0
    got = maximize(K, 4, "fl", partition=(labels, np.array([2, 2])))
    assert np.bincount(labels[got.indices], minlength=2).tolist() == [2, 2]
    none = maximize(K, 3, "fl", partition=(labels, np.array([0, 3])))
    assert sorted(none.indices.tolist()) == [3, 4, 5]
    with pytest.raises(ValueError, match="quota"):
        maximize(K, 3, "fl", partition=(labels, np.array([1])))
    with pytest.raises(ValueError, match="parts has 5 labels"):
        maximize(K, 3, "fl", partition=(labels[:5], np.array([1, 1])))


def two_format_kernel():
    """12 samples: format A (ids a0..a5) teaches every target in context, format B (b0..b5) only
    itself, weakly; plain facility location spends a small budget on A."""
    ids = [f"a{k}" for k in range(6)] + [f"b{k}" for k in range(6)]
    uf = np.full((12, 12), 0.05)
    uf[:, :6] = 0.6 + 0.01 * np.arange(6)
    uf[6:, 6:] = 0.2
    np.fill_diagonal(uf, 0.0)
    return ids, uf


def test_balance_splits_the_budget_by_part_size_where_plain_delift_takes_one_format():
    ids, uf = two_format_kernel()
    plain = select_submodular(ids, uf, 4)
    assert sum(i.startswith("a") for i in plain.ids) == 4
    labels = [0] * 6 + [1] * 6
    balanced = select_submodular(ids, uf, 4, balance=labels)
    assert sorted(i[0] for i in balanced.ids) == ["a", "a", "b", "b"]
    assert balanced.params["balance_parts"] == 2
    sparse = select_submodular(ids, SparseKernel.from_dense(uf), 4, balance=labels)
    assert sparse.ids == balanced.ids
    # labels follow the ids, not the (sorted) kernel order
    shuffled = [5, 11, 0, 7, 3, 9, 1, 2, 4, 6, 8, 10]
    again = select_submodular([ids[k] for k in shuffled], uf[np.ix_(shuffled, shuffled)], 4,
                              balance=[labels[k] for k in shuffled])
    assert again.ids == balanced.ids


def test_embedding_clusters_find_separated_groups_deterministically():
    rng = np.random.default_rng(0)
    centres = np.eye(4)[:3] * 3
    x = np.vstack([c + rng.normal(0, 0.1, (n, 4)) for c, n in zip(centres, (5, 7, 2))])
    order = rng.permutation(len(x))
    labels = embedding_clusters(x[order], 3, seed=0)
    truth = np.repeat([0, 1, 2], (5, 7, 2))[order]
    assert labels[0] == 0  # numbered by first member
    for part in range(3):
        assert len(set(truth[labels == part])) == 1  # each cluster is one group
    assert len(set(labels.tolist())) == 3
    assert (embedding_clusters(x[order], 3, seed=0) == labels).all()
    assert embedding_clusters(x[:2], 5).tolist() == [0, 1]  # at most one cluster per row
    assert embedding_clusters(x, 1).tolist() == [0] * len(x)
