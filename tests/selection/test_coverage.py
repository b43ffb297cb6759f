"""`selection.embedding_coverage`: f(S; utility) + w * f(S; similarity), checked against a
brute-force greedy written from the definition (explicit min-max, explicit objective sums)."""

from __future__ import annotations

import numpy as np
import pytest

from delift_dvc.errors import InputError
from delift_dvc.selection.planning import plan_selection, run_plan
from delift_dvc.selection.sparse import SparseKernel
from delift_dvc.selection.spec import SelectionSpec
from delift_dvc.selection.methods import continual, instruction_tuning, task_specific

IDS = [f"{k:016x}" for k in range(9)]


def minmax(*blocks: np.ndarray) -> list[np.ndarray]:
    lo = min(float(b.min()) for b in blocks)
    hi = max(float(b.max()) for b in blocks)
    return [(b - lo) / (hi - lo) for b in blocks]


def objective(kernel, chosen, objective_name, extra, eta=1.0, nu=1.0) -> float:
    """The definitions: fl sum_i max_S K; flmi sum_i min(max_S K, eta max_Q Kq);
    flcg sum_i max(max_S K - nu max_P Kp, 0); an empty S counts 0 per target."""
    total = 0.0
    for i in range(kernel.shape[0]):
        best = max([kernel[i, j] for j in chosen], default=0.0)
        best = max(best, 0.0)
        if objective_name == "flmi":
            best = min(best, eta * max(extra[i]))
        if objective_name == "flcg":
            best = max(best - nu * (max(extra[i]) if extra.shape[1] else 0.0), 0.0)
        total += best
    return total


def brute_greedy(uf, sim, weight, budget, objective_name="fl", uf_extra=None, sim_extra=None):
    """Plain greedy over f = f(.; scaled uf) + weight * f(.; scaled sim), ties to the lowest index."""
    scaled_uf = minmax(uf, uf_extra) if uf_extra is not None else minmax(uf)
    scaled_sim = minmax(sim, sim_extra) if sim_extra is not None else minmax(sim)

    def f(chosen):
        a = objective(scaled_uf[0], chosen, objective_name, scaled_uf[-1])
        b = objective(scaled_sim[0], chosen, objective_name, scaled_sim[-1])
        return a + weight * b

    chosen = []
    for _ in range(budget):
        gains = [(f(chosen + [j]) - f(chosen), -j) for j in range(uf.shape[1]) if j not in chosen]
        chosen.append(-max(gains)[1])
    return chosen, f(chosen)


@pytest.fixture
def kernels():
    rng = np.random.default_rng(7)
    n = len(IDS)
    uf = rng.normal(0.05, 0.1, (n, n))
    vectors = rng.normal(size=(n, 5))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return uf, vectors @ vectors.T


@pytest.mark.parametrize("weight", [0.25, 1.0, 4.0])
def test_facility_location_with_coverage_is_the_sum_of_both_objectives(kernels, weight):
    uf, sim = kernels
    subset = instruction_tuning(IDS, uf, 4, coverage=(sim, None), coverage_weight=weight)
    picks, value = brute_greedy(uf, sim, weight, 4)
    assert subset.ids == [IDS[j] for j in picks]
    assert subset.objective == pytest.approx(value, rel=1e-9)
    assert subset.params["embedding_coverage"] == weight


def test_zero_weight_is_plain_delift(kernels):
    uf, sim = kernels
    plain = instruction_tuning(IDS, uf, 4)
    zero = instruction_tuning(IDS, uf, 4, coverage=(sim, None), coverage_weight=0.0)
    assert zero == plain and "embedding_coverage" not in zero.params


def test_flmi_and_flcg_add_the_same_objective_on_the_similarity(kernels):
    uf, sim = kernels
    rng = np.random.default_rng(3)
    uf_extra, sim_extra = rng.normal(0.1, 0.1, (len(IDS), 3)), rng.uniform(-1, 1, (len(IDS), 3))
    flcg = continual(IDS, uf, uf_extra, 3, coverage=(sim, sim_extra), coverage_weight=0.5)
    picks, value = brute_greedy(uf, sim, 0.5, 3, "flcg", uf_extra, sim_extra)
    assert flcg.ids == [IDS[j] for j in picks] and flcg.objective == pytest.approx(value, rel=1e-9)
    flmi = task_specific(IDS, uf, uf_extra, 3, coverage=(sim, sim_extra), coverage_weight=0.5)
    picks, value = brute_greedy(uf, sim, 0.5, 3, "flmi", uf_extra, sim_extra)
    assert flmi.ids == [IDS[j] for j in picks] and flmi.objective == pytest.approx(value, rel=1e-9)


def test_sparse_kernels_give_the_dense_subset(kernels):
    uf, sim = kernels
    dense = instruction_tuning(IDS, uf, 5, coverage=(sim, None), coverage_weight=0.5)
    sparse = instruction_tuning(IDS, SparseKernel.from_dense(uf), 5,
                                coverage=(SparseKernel.from_dense(sim), None), coverage_weight=0.5)
    assert sparse.ids == dense.ids and sparse.gains == pytest.approx(dense.gains, rel=1e-12)


def test_coverage_picks_a_format_the_utility_never_picks():
    # two formats: every example of format A helps every target a little more than format B's
    # examples do, so plain facility location takes only A; in embedding space the formats are
    # two tight clusters, and the coverage term wants one pick in each
    fmt = np.array([0] * 6 + [1] * 3)
    uf = np.tile(np.where(fmt == 0, 0.30, 0.10) + 0.01 * np.arange(9) / 9, (9, 1))
    vectors = np.stack([[1.0, 0.0] if f == 0 else [0.0, 1.0] for f in fmt])
    sim = vectors @ vectors.T
    plain = instruction_tuning(IDS, uf, 3)
    covered = instruction_tuning(IDS, uf, 3, coverage=(sim, None), coverage_weight=0.5)
    assert {fmt[IDS.index(i)] for i in plain.ids} == {0}
    assert {fmt[IDS.index(i)] for i in covered.ids} == {0, 1}


def test_run_plan_passes_the_coverage_block_through_flcg():
    rng = np.random.default_rng(1)
    plan = plan_selection(IDS, 0.5, previous=(IDS[:5], [IDS[3], IDS[0]]))
    shape = (len(plan.ground), len(plan.examples))
    block, cover = rng.normal(0.05, 0.1, shape), rng.uniform(-1, 1, shape)
    subset = run_plan(plan, SelectionSpec(coverage_weight=2.0), block, coverage_block=cover)
    col = {e: k for k, e in enumerate(plan.examples)}
    g, p = [col[i] for i in plan.ground], [col[i] for i in plan.extra]
    picks, value = brute_greedy(block[:, g], cover[:, g], 2.0, plan.budget, "flcg", block[:, p], cover[:, p])
    assert subset.ids == plan.kept + [plan.ground[j] for j in picks]
    assert subset.objective == pytest.approx(value, rel=1e-9)


@pytest.mark.parametrize("weight", [-0.5, float("nan"), True, "x"])
def test_a_bad_weight_names_the_argument_and_the_stage_layer_names_the_key(kernels, weight):
    from delift_dvc.config import named_as_params

    uf, sim = kernels
    with pytest.raises(InputError, match=r"^coverage_weight "):
        instruction_tuning(IDS, uf, 3, coverage=(sim, None), coverage_weight=weight)
    with pytest.raises(InputError, match=r"^selection\.embedding_coverage "), named_as_params():
        instruction_tuning(IDS, uf, 3, coverage=(sim, None), coverage_weight=weight)
    with pytest.raises(InputError, match=r"^--embedding-coverage "), named_as_params(options=True):
        instruction_tuning(IDS, uf, 3, coverage=(sim, None), coverage_weight=weight)


def test_mismatched_coverage_blocks_are_refused(kernels):
    uf, sim = kernels
    with pytest.raises(ValueError, match="coverage"):
        instruction_tuning(IDS, uf, 3, coverage=(sim[:4, :4], None), coverage_weight=1.0)
    with pytest.raises(ValueError, match="coverage"):
        instruction_tuning(IDS, uf, 3, coverage_weight=1.0)
