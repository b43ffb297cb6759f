"""The selection methods: the three DELIFT objectives and the baselines, over utility (or
similarity) blocks.

Pure: takes sample ids and float arrays, returns ids. Kernels are scaled here, over exactly the
blocks that one selection reads (joint min-max by default, `separate` as the DELIFT reference).
Candidates are ordered by sample id, so ties in the greedy go to the smallest id.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from delift_dvc.errors import ArgumentError
from delift_dvc.selection.balance import check_parts, quotas
from delift_dvc.selection.budget import resolve_budget
from delift_dvc.selection.scaling import SCALINGS, fill_missing, minmax_scale
from delift_dvc.selection.greedy import maximize
from delift_dvc.selection.objectives import OBJECTIVES
from delift_dvc.selection.sparse import SparseKernel, scale_sparse

# selection.method -> the kernel it reads: the LM utility, sentence-embedding similarity, or none
# (a method without a kernel is a baseline of selection.planning.BASELINES)
METHODS = {"delift": "utility", "delift_se": "similarity", "random": None, "stratified_random": None, "full": None}


@dataclass(frozen=True)
class Subset:
    """A selected subset: ids in selection order with each pick's marginal gain."""

    ids: list[str]
    gains: list[float]
    objective: float  # f(subset) on the scaled kernel; 0.0 for random/full
    method: str
    objective_name: str  # "fl", "flmi", "flcg" or "none"
    params: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-ready description (ids, gains, objective, parameters)."""
        return {
            "method": self.method,
            "objective_name": self.objective_name,
            "n_selected": len(self.ids),
            "objective": self.objective,
            "params": self.params,
            "ids": self.ids,
            "gains": self.gains,
        }


def select_submodular(ids: Sequence[str], kernel: np.ndarray, budget: int | float, *, objective: str = "fl",
                      query_kernel: np.ndarray | None = None, eta: float = 1.0,
                      private_kernel: np.ndarray | None = None, nu: float = 1.0, scaling: str = "joint",
                      stop_at_zero_gain: bool = False, method: str = "delift",
                      coverage: tuple[np.ndarray, np.ndarray | None] | None = None, coverage_weight: float = 0.0,
                      balance: Sequence[int] | None = None) -> Subset:
    """Greedy subset of `ids` (the ground set; kernel [n, n], rows targets, columns candidates,
    both in the order of `ids`). query_kernel [n, |Q|] for flmi, private_kernel [n, |P|] for
    flcg; raw values, scaled here by `scaling`. Dense kernels may mark an unscored entry with
    NaN; SparseKernels (all three sparse) simply leave it out: either way it counts as the
    value that scaling maps to 0, and both give the same subset.

    With `coverage_weight` w > 0, `coverage` = (similarity [n, n], its query/private block,
    read only by flmi/flcg) in the shapes of kernel and the extra block, e.g. sentence-embedding
    cosine: the objective becomes f(S; kernel) + w * f(S; similarity), the same objective on both
    kernels, each scaled on its own (a sum of submodular functions: the greedy keeps its guarantee).

    With `balance` (a part label >= 0 per id, e.g. its embedding cluster), the budget is split
    across the parts in proportion to their size (largest remainders) and the greedy picks the
    best candidate among the parts that still have room (a partition-matroid constraint)."""
    if objective not in OBJECTIVES:
        raise ArgumentError("objective", f"'{objective}': expected one of {', '.join(OBJECTIVES)}")
    if scaling not in SCALINGS:
        raise ArgumentError("scaling", f"'{scaling}': expected one of {', '.join(SCALINGS)}")
    n = len(ids)
    if kernel.shape != (n, n):
        raise ValueError(f"kernel shape {kernel.shape} does not match {n} ids")
    order = np.argsort(np.asarray(ids, dtype=object), kind="stable") if n else np.arange(0)
    sorted_ids = [ids[k] for k in order]
    extra = {"flmi": query_kernel, "flcg": private_kernel}.get(objective)
    if objective == "flmi" and extra is None:
        raise ValueError("flmi needs a query kernel (the target set)")
    if n == 0:
        return Subset([], [], 0.0, method, objective, {})
    scaled = scaled_blocks(kernel, extra, order, scaling)
    weight = _coverage_weight(coverage_weight)
    if weight > 0:
        scaled = _with_coverage(scaled, kernel, extra, coverage, weight, order, scaling)
    n_pick = _budget(budget, n)
    partition = None
    if balance is not None:
        labels = check_parts(balance, n)[order]
        partition = (labels, quotas(labels, n_pick))
    result = maximize(scaled[0], n_pick, objective=objective, query_kernel=scaled[1] if objective == "flmi" else None,
                      eta=eta, private_kernel=scaled[1] if objective == "flcg" else None, nu=nu,
                      stop_at_zero_gain=stop_at_zero_gain, partition=partition)
    params = {"budget": budget, "scaling": scaling, "stop_at_zero_gain": stop_at_zero_gain}
    if weight > 0:
        params["embedding_coverage"] = weight
    if partition is not None:
        params["balance_parts"] = int(np.count_nonzero(np.bincount(partition[0])))
    params.update({"flmi": {"eta": eta}, "flcg": {"nu": nu}}.get(objective, {}))
    return Subset([sorted_ids[k] for k in result.indices.tolist()], [float(g) for g in result.gains],
                  float(result.objective), method, objective, params)


def _with_coverage(scaled: list, kernel, extra, coverage, weight: float, order: np.ndarray, scaling: str) -> list:
    """The scaled blocks with the scaled coverage blocks, times `weight`, stacked below them."""
    if coverage is None:
        raise ValueError("coverage_weight > 0 needs a coverage kernel")
    cover_kernel, cover_extra = coverage
    if cover_kernel.shape != kernel.shape or (extra is not None and (
            cover_extra is None or cover_extra.shape != extra.shape)):
        raise ValueError("the coverage blocks do not match the kernel blocks")
    if isinstance(cover_kernel, SparseKernel) != isinstance(kernel, SparseKernel):
        raise ValueError("the coverage kernel must be sparse exactly when the kernel is")
    covered = scaled_blocks(cover_kernel, cover_extra if extra is not None else None, order, scaling)
    return [_stack(a, b, weight) for a, b in zip(scaled, covered)]


def scaled_blocks(kernel, extra, order: np.ndarray, scaling: str) -> list:
    """[kernel, extra] (extra if given) in the ground set's sorted order, min-max scaled."""
    if isinstance(kernel, SparseKernel):
        blocks = [kernel.take(order, order)]
        if extra is not None:
            blocks.append(extra.take(order, np.arange(extra.shape[1])))
        return scale_sparse(blocks, mode=scaling)
    blocks = [kernel[np.ix_(order, order)]]
    if extra is not None:
        blocks.append(extra[order])
    return minmax_scale(fill_missing(blocks, scaling), mode=scaling)


def _coverage_weight(weight: float) -> float:
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
        raise ArgumentError("coverage_weight", f"{weight!r}: expected a number >= 0")
    return float(weight)


def _stack(top, bottom, weight: float):
    """Rows of `bottom` times `weight` appended below `top` (dense or sparse alike)."""
    if isinstance(top, SparseKernel):
        return top.stack_rows(bottom, weight)
    return np.vstack([top, (weight * bottom).astype(top.dtype, copy=False)])


def instruction_tuning(ids: Sequence[str], uf: np.ndarray, budget: int | float, **kw) -> Subset:
    """Facility location over the pool: uf [n, n] = UF[target, example]."""
    return select_submodular(ids, uf, budget, objective="fl", **kw)


def task_specific(
    ids: Sequence[str], uf: np.ndarray, uf_query: np.ndarray, budget: int | float, eta: float = 1.0, **kw
) -> Subset:
    """FLMI with a target set Q: uf [n, n] over the pool, uf_query [n, |Q|] = UF[pool i, q]."""
    return select_submodular(ids, uf, budget, objective="flmi", query_kernel=uf_query, eta=eta, **kw)


def continual(
    ids: Sequence[str], uf: np.ndarray, uf_private: np.ndarray, budget: int | float, nu: float = 1.0, **kw
) -> Subset:
    """FLCG over new data conditioned on an existing set P: uf_private [n, |P|] = UF[new i, p]."""
    return select_submodular(ids, uf, budget, objective="flcg", private_kernel=uf_private, nu=nu, **kw)


def random_subset(ids: Sequence[str], budget: int | float, seed: int = 0) -> Subset:
    """A seeded uniform random subset (same ids and seed -> same subset on every machine)."""
    pool = sorted(ids)
    k = _budget(budget, len(pool)) if pool else 0
    picked = random.Random(seed).sample(pool, k)
    return Subset(picked, [0.0] * k, 0.0, "random", "none", {"budget": budget, "seed": seed})


def full_set(ids: Sequence[str]) -> Subset:
    """Every sample (the full-data baseline), in id order."""
    pool = sorted(ids)
    return Subset(pool, [0.0] * len(pool), 0.0, "full", "none", {})


def _budget(budget: int | float, n: int) -> int:
    return resolve_budget(budget, n)
