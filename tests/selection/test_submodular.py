"""Greedy facility-location maximisation: exactness (lazy == naive), objective values,
approximation guarantee, hand-computed cases, submodlib agreement, validation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from delift_dvc.selection import submodular as sm
from delift_dvc.selection.submodular import SelectionResult, evaluate, maximize

OBJECTIVES = ("fl", "flmi", "flcg")

# the same 3 x 3 kernel for all hand-computed cases: rows are targets, columns candidates
K3 = np.array([[1.0, 0.5, 0.0], [0.2, 1.0, 0.4], [0.0, 0.3, 1.0]])


def extras(objective: str, n_rows: int, rng: np.random.Generator, width: int = 3) -> dict:
    """Keyword arguments that ``objective`` needs, random but seeded."""
    if objective == "flmi":
        return {"query_kernel": rng.random((n_rows, width)), "eta": 0.8}
    if objective == "flcg":
        return {"private_kernel": 0.7 * rng.random((n_rows, width)), "nu": 0.9}
    return {}


def kernels(rng: np.random.Generator):
    """(name, kernel) cases: continuous, heavy ties, all equal, zero columns, rectangular."""
    yield "uniform", rng.random((120, 120))
    yield "float32", rng.random((90, 90)).astype(np.float32)
    yield "rounded", np.round(rng.random((150, 150)), 1)
    yield "coarse", np.round(rng.random((500, 500)), 1).astype(np.float32)
    yield "equal", np.full((40, 40), 0.5)
    z = rng.random((60, 60))
    z[:, ::3] = 0.0
    yield "zero_cols", z
    yield "tall", rng.random((200, 37))
    yield "wide", np.round(rng.random((23, 300)), 2)
    yield "with_negatives", rng.random((50, 50)) - 0.3
    yield "subnormal", rng.random((60, 60)) * 1e-310
    yield "huge", rng.random((60, 60)) * 1e290
    yield "large", rng.random((500, 500)).astype(np.float32)


def assert_same(a: SelectionResult, b: SelectionResult) -> None:
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.gains.tobytes() == b.gains.tobytes()  # bit-identical
    assert a.objective == b.objective


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_lazy_equals_naive(objective):
    rng = np.random.default_rng(1)
    for name, k in kernels(rng):
        kw = extras(objective, k.shape[0], rng)
        budget = k.shape[1] if k.shape[1] <= 60 else k.shape[1] // 3
        lazy = maximize(k, budget, objective, **kw)
        naive = maximize(k, budget, objective, optimizer="naive", **kw)
        assert len(lazy.indices) == budget, name
        assert_same(lazy, naive)
        assert lazy.indices.dtype == np.int64 and lazy.gains.dtype == np.float64
        assert len(set(lazy.indices.tolist())) == budget
        ev = evaluate(k, lazy.indices, objective, **kw)
        assert abs(ev - lazy.objective) <= 1e-9 * max(1.0, abs(ev)), name
        assert lazy.objective == pytest.approx(math.fsum(lazy.gains), rel=1e-12, abs=1e-12)
        assert np.all(np.diff(lazy.gains) <= 1e-12)  # greedy gains never increase


@pytest.mark.parametrize(
    "tuning",
    [
        {"_SPARSE_MIN_SIZE": 0, "_SPARSE_MAX_DENSITY": 1.0},  # sparse residual from pick 1
        {"_SPARSE_MIN_SIZE": 0, "_SPARSE_MAX_DENSITY": 0.3, "_ENTRY_CHUNK": 7, "_SHRINK_MIN": 0},
        {"_SPARSE_MAX_DENSITY": -1.0, "_REFRESH_ROWS": 2.0},  # dense patches only
        {"_REFRESH_COLS": 0.0, "_COL_CHUNK": 3},  # full refreshes, tiny batches
        {"_PAR_MIN": 0, "_THREADS": 3, "_SPARSE_MIN_SIZE": 0, "_SPARSE_MAX_DENSITY": 0.5},
    ],
)
def test_lazy_code_paths_stay_exact(monkeypatch, tuning):
    for attr, value in tuning.items():
        monkeypatch.setattr(sm, attr, value)
    rng = np.random.default_rng(2)
    cases = [rng.random((80, 800)).astype(np.float32), np.round(rng.random((300, 300)), 1),
             np.round(rng.random((120, 90)), 2)]
    for k in cases:
        for objective in OBJECTIVES:
            kw = extras(objective, k.shape[0], rng)
            lazy = maximize(k, k.shape[1] // 2, objective, **kw)
            naive = maximize(k, k.shape[1] // 2, objective, optimizer="naive", **kw)
            assert_same(lazy, naive)


def test_layout_and_dtype_do_not_change_the_result():
    rng = np.random.default_rng(3)
    k = rng.random((70, 110)).astype(np.float32)
    ref = maximize(k, 40)
    assert_same(maximize(np.asfortranarray(k), 40), ref)
    assert_same(maximize(k.astype(np.float64), 40), ref)  # float32 values are exact in float64
    big = np.zeros((140, 220), np.float32)
    big[::2, ::2] = k
    assert_same(maximize(big[::2, ::2], 40), ref)  # strided view


def test_canonical_sums_agree_on_every_path():
    rng = np.random.default_rng(4)
    for n_t in (1, 15, 16, 17, 203):
        k = rng.random((n_t, 50))
        cur = rng.random(n_t) * 0.5
        for cap in (None, rng.random(n_t) + 0.2):
            full = sm._full_gains(k, cur, cap)
            batch, _ = sm._column_gains(k, np.arange(50), cur, cap)
            single = np.array([sm._column_gains(k, np.array([j]), cur, cap)[0][0]
                               for j in range(50)])
            assert full.tobytes() == batch.tobytes() == single.tobytes()
            for j in (0, 7, 49):  # the documented order, in plain Python
                v = k[:, j] if cap is None else np.minimum(k[:, j], cap)
                lanes = [0.0] * sm._LANES
                for i in range(n_t):
                    lanes[i % sm._LANES] += max(float(v[i]) - float(cur[i]), 0.0)
                total = 0.0
                for x in lanes:
                    total += x
                assert full[j] == total


def brute_optimum(k, budget, objective, kw):
    return max(evaluate(k, np.array(s, dtype=np.int64), objective, **kw)
               for s in itertools.combinations(range(k.shape[1]), budget))


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_greedy_within_1_minus_1_over_e_of_brute_force(objective):
    rng = np.random.default_rng(5)
    for trial in range(25):
        n = int(rng.integers(3, 11))
        k = rng.random((n, n))
        if trial % 3 == 0:
            k = np.round(k, 1)
        kw = extras(objective, n, rng, width=2)
        for budget in range(1, min(4, n) + 1):
            res = maximize(k, budget, objective, **kw)
            opt = brute_optimum(k, budget, objective, kw)
            assert res.objective >= (1 - 1 / math.e) * opt - 1e-12
            assert res.objective <= opt + 1e-12
            if budget == 1:
                assert res.objective == pytest.approx(opt, abs=1e-12)


def test_hand_computed_fl():
    res = maximize(K3, 3, "fl")
    # gains of the columns: 1.2, 1.8, 1.4 -> pick 1; cur = [.5, 1, .3]: 0.5, -, 0.7 -> pick 2
    assert res.indices.tolist() == [1, 2, 0]
    np.testing.assert_allclose(res.gains, [1.8, 0.7, 0.5], rtol=0, atol=1e-15)
    assert res.objective == pytest.approx(3.0, abs=1e-15)
    assert evaluate(K3, np.array([1]), "fl") == pytest.approx(1.8, abs=1e-15)
    assert evaluate(K3, np.array([], dtype=np.int64), "fl") == 0.0


def test_hand_computed_flmi_with_tie_to_lowest_index():
    kq = np.array([[0.6], [0.1], [0.9]])
    res = maximize(K3, 3, "flmi", query_kernel=kq, eta=1.0)
    # caps 0.6, 0.1, 0.9: gains 0.7, 0.9, 1.0 -> 2; then 0.6, 0.5 -> 0; then 0
    assert res.indices.tolist() == [2, 0, 1]
    np.testing.assert_allclose(res.gains, [1.0, 0.6, 0.0], atol=1e-15)
    assert res.objective == pytest.approx(1.6, abs=1e-15)  # = sum of the caps
    res = maximize(K3, 3, "flmi", query_kernel=kq, eta=2.0)
    # caps 1.2, 0.2, 1.8: gains 1.2, 1.0, 1.2 -> tie, lowest index 0; then 0.3, 1.0 -> 2
    assert res.indices.tolist() == [0, 2, 1]
    np.testing.assert_allclose(res.gains, [1.2, 1.0, 0.0], atol=1e-15)
    with_stop = maximize(K3, 3, "flmi", query_kernel=kq, eta=2.0, stop_at_zero_gain=True)
    assert with_stop.indices.tolist() == [0, 2]


def test_hand_computed_flcg():
    kp = np.array([[0.9, 0.1], [0.0, 0.0], [0.2, 0.5]])
    res = maximize(K3, 3, "flcg", private_kernel=kp, nu=1.0)
    # warm start 0.9, 0, 0.5: gains 0.3, 1.0, 0.9 -> 1; then 0.1, 0.5 -> 2; then 0.1
    assert res.indices.tolist() == [1, 2, 0]
    np.testing.assert_allclose(res.gains, [1.0, 0.5, 0.1], atol=1e-15)
    assert evaluate(K3, res.indices, "flcg", private_kernel=kp) == pytest.approx(1.6, abs=1e-15)
    res = maximize(K3, 1, "flcg", private_kernel=kp, nu=0.5)  # warm start 0.45, 0, 0.25
    # gains 0.55 + 0.2 = 0.75, 0.05 + 1 + 0.05 = 1.1, 0.4 + 0.75 = 1.15
    assert res.indices.tolist() == [2] and res.gains[0] == pytest.approx(1.15, abs=1e-15)
    assert_same(maximize(K3, 3, "flcg"), maximize(K3, 3, "fl"))  # no private set -> FL
    assert_same(maximize(K3, 3, "flcg", private_kernel=np.zeros((3, 0))), maximize(K3, 3, "fl"))


def test_zero_gains_and_stop_at_zero_gain():
    k = np.zeros((5, 6))
    k[0, 4] = 1.0
    res = maximize(k, 4)
    assert res.indices.tolist() == [4, 0, 1, 2]  # then zero gains, lowest index first
    assert res.gains.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert maximize(k, 4, stop_at_zero_gain=True).indices.tolist() == [4]
    assert maximize(k, 4, optimizer="naive", stop_at_zero_gain=True).indices.tolist() == [4]
    assert maximize(np.zeros((3, 3)), 3, stop_at_zero_gain=True).indices.size == 0
    assert maximize(k, 0).indices.size == 0
    assert maximize(k, 1.0).indices.size == 6
    assert maximize(np.zeros((0, 4)), 2).indices.tolist() == [0, 1]  # no targets: all gains 0


def test_maximize_applies_the_budget_rule():
    assert maximize(K3, 2).indices.size == 2
    for bad in (True, -1, 0.0, 1.5, float("nan"), "3", None, 4):  # 4 > the 3 candidates
        with pytest.raises(ValueError):
            maximize(K3, bad)


def test_validation_errors():
    nan = K3.copy()
    nan[1, 1] = np.nan
    inf = K3.copy()
    inf[0, 2] = -np.inf
    cases = [
        (lambda: maximize(nan, 2), "kernel"),
        (lambda: maximize(inf, 2), "kernel"),
        (lambda: evaluate(nan, np.array([0])), "kernel"),
        (lambda: maximize(np.ones(3), 1), "kernel"),
        (lambda: maximize(np.full((3, 3), 1e300), 1), "kernel"),
        (lambda: maximize(np.ones((2, 2, 2)), 1), "kernel"),
        (lambda: maximize(K3, 2, "gc"), "objective"),
        (lambda: maximize(K3, 2, optimizer="stochastic"), "optimizer"),
        (lambda: maximize(K3, 2, "flmi"), "query_kernel"),
        (lambda: maximize(K3, 2, "flmi", query_kernel=np.ones((2, 1))), "query_kernel"),
        (lambda: maximize(K3, 2, "flmi", query_kernel=np.full((3, 1), np.nan)), "query_kernel"),
        (lambda: maximize(K3, 2, "flmi", query_kernel=np.ones((3, 1)), eta=np.nan), "eta"),
        (lambda: maximize(K3, 2, "flcg", private_kernel=np.ones((4, 2))), "private_kernel"),
        (lambda: maximize(K3, 2, "flcg", private_kernel=np.ones((3, 2)), nu=np.inf), "nu"),
        (lambda: maximize(K3, 2, "fl", query_kernel=np.ones((3, 1))), "query_kernel"),
        (lambda: evaluate(K3, np.array([3])), "indices"),
        (lambda: evaluate(K3, np.array([0.5])), "indices"),
    ]
    for call, word in cases:
        with pytest.raises(ValueError, match=word) as info:
            call()
        assert "\n" not in str(info.value)


def test_inputs_untouched_and_float32_not_widened(monkeypatch):
    rng = np.random.default_rng(6)
    k = rng.random((40, 40)).astype(np.float32)
    before = k.copy()
    maximize(k, 10)
    np.testing.assert_array_equal(k, before)
    seen = []
    real = sm._full_gains
    monkeypatch.setattr(sm, "_full_gains",
                        lambda kk, cur, cap: seen.append(kk) or real(kk, cur, cap))
    maximize(k, 10)
    assert seen and all(s.dtype == np.float32 and np.shares_memory(s, k) for s in seen)


def _submodlib_picks(submodlib, k, budget, objective, kw):
    """Gains list of submodlib's LazyGreedy for our objective (installed 0.0.3 API).

    Orientation (checked on asymmetric kernels against hand sums): submodlib's f sums over
    the ROWS of sijs / data_sijs and takes the max over the selected COLUMNS, exactly as we
    do, so kernels are passed untransposed.  The installed 0.0.3 names the MI/CG kernels
    data_sijs / query_sijs / private_sijs (not data_sharedkernel / query_sharedkernel).
    """
    n = k.shape[0]
    if objective == "fl":
        f = submodlib.FacilityLocationFunction(n=n, mode="dense", sijs=k.astype(np.float32),
                                               separate_rep=False)
    elif objective == "flmi":
        q = kw["query_kernel"]
        f = submodlib.FacilityLocationMutualInformationFunction(
            n=n, num_queries=q.shape[1], data_sijs=k, query_sijs=q, magnificationEta=kw["eta"])
    else:
        p = kw["private_kernel"]
        f = submodlib.FacilityLocationConditionalGainFunction(
            n=n, num_privates=p.shape[1], data_sijs=k, private_sijs=p, privacyHardness=kw["nu"])
    out = f.maximize(budget, optimizer="LazyGreedy", stopIfZeroGain=False,
                     stopIfNegativeGain=False, verbose=False, show_progress=False)
    return np.array([g for _, g in out])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # submodlib's own scipy import
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_matches_submodlib_lazy_greedy(objective):
    import importlib.util

    from tests.conftest import require

    require(importlib.util.find_spec("submodlib") is not None, "submodlib-py is not installed (the test extra)")
    import submodlib
    rng = np.random.default_rng(7)
    for n, budget in ((30, 10), (80, 25), (150, 40)):
        k = rng.random((n, n)).astype(np.float32).astype(np.float64)
        kw = extras(objective, n, rng)
        ours = maximize(k, budget, objective, **kw)
        theirs = _submodlib_picks(submodlib, k, budget, objective, kw)
        # submodlib sums in float32 and breaks ties toward the highest index: compare values
        np.testing.assert_allclose(ours.gains, theirs, rtol=1e-5, atol=1e-5 * ours.gains[0])
        assert ours.objective == pytest.approx(float(theirs.sum()), rel=1e-5)
