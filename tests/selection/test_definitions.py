"""The continual (FLCG) and task-specific (FLMI) selections of a plan, and both scalings, against a
brute-force greedy written from the definitions (not from the code under test)."""

from __future__ import annotations

import numpy as np
import pytest

from delift_dvc.selection.planning import plan_selection, run_plan
from delift_dvc.selection.spec import SelectionSpec

IDS = [f"{k:02d}" for k in range(14)]


def scale(blocks, mode):
    """Min-max to [0, 1]: one range over all blocks (joint) or each block its own (separate)."""
    if mode == "joint":
        lo, hi = min(b.min() for b in blocks), max(b.max() for b in blocks)
        return [(b - lo) / (hi - lo) for b in blocks]
    return [(b - b.min()) / (b.max() - b.min()) for b in blocks]


def brute_greedy(ground, k, kx, budget, objective, eta=1.0, nu=1.0):
    """Greedy by exhaustive gain evaluation; ties to the smallest id."""
    extra = kx.max(axis=1) if kx.shape[1] else np.zeros(len(ground))

    def f(chosen):
        best = k[:, chosen].max(axis=1) if chosen else np.zeros(len(ground))
        if objective == "flcg":
            return np.maximum(best - nu * extra, 0).sum()
        if objective == "flmi":
            return np.maximum(np.minimum(best, eta * extra), 0).sum()
        return np.maximum(best, 0).sum()

    chosen = []
    for _ in range(budget):
        gains = [(f(chosen + [j]) - f(chosen), -j) for j in range(len(ground)) if j not in chosen]
        chosen.append(-max(gains)[1])
    return [ground[j] for j in chosen]


@pytest.mark.parametrize("scaling", ["joint", "separate"])
@pytest.mark.parametrize("nu", [1.0, 0.4])
def test_flcg_update_is_kept_plus_the_conditioned_greedy(scaling, nu):
    rng = np.random.default_rng(5)
    previous = (IDS[:8], [IDS[6], IDS[1], IDS[3]])  # v1: 8 samples, subset of 3
    plan = plan_selection(IDS, 0.5, previous=previous)
    assert plan.objective == "flcg" and plan.ground == IDS[8:] and plan.extra == sorted([IDS[1], IDS[3], IDS[6]])
    block = rng.normal(0.0, 0.01, (len(plan.ground), len(plan.examples)))
    col = {e: j for j, e in enumerate(plan.examples)}
    # targets 0-2 are covered by the kept samples and by candidate 0; targets 3-5 only by candidate 3:
    # FL takes candidate 0 first, FLCG (covered rows discounted by nu * their kept coverage) candidate 3
    block[:3, [col[i] for i in plan.extra]] = 0.9
    block[:3, col[plan.ground[0]]] = 1.0
    block[3:6, col[plan.ground[3]]] = 0.7
    subset = run_plan(plan, SelectionSpec(scaling=scaling, nu=nu), block)
    k, kp = scale([block[:, [col[i] for i in plan.ground]], block[:, [col[i] for i in plan.extra]]], scaling)
    expected = brute_greedy(plan.ground, k, kp, plan.budget, "flcg", nu=nu)
    assert subset.ids == [IDS[6], IDS[1], IDS[3]] + expected
    unconditioned = brute_greedy(plan.ground, k, kp[:, :0], plan.budget, "fl")
    assert expected != unconditioned  # this data tells FLCG from FL: dropping P would fail


@pytest.mark.parametrize("scaling", ["joint", "separate"])
def test_flmi_against_a_target_set(scaling):
    rng = np.random.default_rng(9)
    plan = plan_selection(IDS[:10], 4, target_ids=IDS[10:])
    block = rng.normal(0.0, 0.1, (len(plan.ground), len(plan.examples)))
    subset = run_plan(plan, SelectionSpec(scaling=scaling, eta=0.6), block)
    col = {e: j for j, e in enumerate(plan.examples)}
    k, kq = scale([block[:, [col[i] for i in plan.ground]], block[:, [col[i] for i in plan.extra]]], scaling)
    assert subset.ids == brute_greedy(plan.ground, k, kq, 4, "flmi", eta=0.6)
