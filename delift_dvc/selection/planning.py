"""The incremental rule: which ground set, objective and conditioning set a selection uses.

First version (or `mode: refresh`): facility location over all data (FLMI when a target set is
given). A later version: kept = previous subset still present, new = samples not in the previous
version; new subset = kept + FLCG over new conditioned on kept. How many are picked follows the
one budget rule of :mod:`delift_dvc.selection.budget`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from delift_dvc.selection.budget import continual_budget, resolve_budget
from delift_dvc.selection.methods import (Subset, continual, full_set, instruction_tuning, random_subset,
                                          task_specific)
from delift_dvc.selection.spec import SelectionSpec
from delift_dvc.selection.sparse import SparseKernel
from delift_dvc.selection.strata import stratified_random
from delift_dvc.selection.stratified import select_stratified

MODES = ("incremental", "refresh")  # selection.mode


@dataclass(frozen=True)
class Plan:
    """What one selection reads and does. `examples` = ground + extra, sorted."""

    mode: str  # "initial", "continual" or "refresh"
    objective: str  # "fl", "flmi" or "flcg"
    ground: list[str]  # ground set V (sorted ids): the targets
    extra: list[str]  # Q for flmi, P (kept) for flcg, [] for fl (sorted)
    kept: list[str]  # carried over from the previous subset, in its order
    budget: int  # how many to pick over `ground` (the budget rule already applied)
    counts: dict = field(default_factory=dict)

    @property
    def examples(self) -> list[str]:
        return sorted(set(self.ground) | set(self.extra))


def plan_selection(
    data_ids: Sequence[str],
    budget: int | float,
    *,
    previous: tuple[Sequence[str], Sequence[str]] | None = None,
    target_ids: Sequence[str] = (),
    refresh: bool = False,
) -> Plan:
    """Plan a selection over `data_ids`. previous = (previous version's ids, its subset in rank
    order) or None for a first version; target_ids = target set (task-specific, FLMI).
    `budget` is the user's fraction or count; BudgetError when it breaks the budget rule."""
    data = sorted(set(data_ids))
    if previous is None or refresh or target_ids:
        mode = "initial" if previous is None else "refresh"
        objective = "flmi" if target_ids else "fl"
        counts = {"n_samples": len(data), "n_new": len(data), "n_kept": 0, "n_removed": 0}
        if previous is not None:
            counts.update(_diff_counts(data, previous))
        n_pick = resolve_budget(budget, len(data))
        return Plan(mode, objective, data, sorted(set(target_ids)), [], n_pick, counts)
    prev_ids, prev_subset = set(previous[0]), list(previous[1])
    present = set(data)
    kept = [i for i in prev_subset if i in present]
    new = [i for i in data if i not in prev_ids]
    n_pick = continual_budget(budget, len(new), len(kept), len(data))
    counts = {"n_samples": len(data), "n_kept": len(kept), **_diff_counts(data, previous)}
    return Plan("continual", "flcg", new, sorted(kept), kept, n_pick, counts)


def _diff_counts(data: Sequence[str], previous: tuple[Sequence[str], Sequence[str]]) -> dict:
    prev_ids = set(previous[0])
    present = set(data)
    return {
        "n_new": len(present - prev_ids),
        "n_removed": len(prev_ids - present),
        "n_unchanged": len(present & prev_ids),
    }


def plan_files(data_ids: Sequence[str], extra_ids: Sequence[str], budget: int | float, *,
               target_set: bool = False, existing: bool = False) -> Plan:
    """Plan a selection over files: facility location over `data_ids`; FLMI against the target
    set `extra_ids` (`target_set`); or FLCG over data minus `extra_ids`, the samples already
    used, conditioned on them (`existing`). BudgetError when `budget` breaks the rule."""
    ids, extra = sorted(set(data_ids)), sorted(set(extra_ids))
    counts = {"n_samples": len(ids)}
    if existing:
        ground = sorted(set(ids) - set(extra))
        counts.update(n_existing=len(extra), n_candidates=len(ground))
        mode, objective = "continual", "flcg"
    else:
        ground = ids
        if target_set:
            counts["n_target_set"] = len(extra)
        mode, objective = "initial", ("flmi" if target_set else "fl")
    n_pick = resolve_budget(budget, len(ground))
    return Plan(mode, objective, ground, extra if (existing or target_set) else [], [], n_pick, counts)


def run_plan(plan: Plan, spec: SelectionSpec, block: np.ndarray | SparseKernel | None, *,
             coverage_block: np.ndarray | SparseKernel | None = None,
             balance: Sequence[int] | None = None, groups: Sequence[str] | None = None,
             strata: Sequence[str] | None = None, strata_groups: Sequence[str] | None = None) -> Subset:
    """Select per `plan` with `spec`. block [|ground|, |examples|] (dense array or
    SparseKernel): utility (delift) or similarity (delift_se) of each ground target with each
    example; None for random/full. coverage_block: a second kernel of the same shape
    (sentence-embedding similarity) whose objective, times spec.coverage_weight, is added (see
    select_submodular). balance: a part label per ground sample (in plan.ground's order): the
    picks are split across the parts in proportion to their size (see select_submodular).
    groups: the group of each ground sample (plan.ground's order), read by stratified_random.
    strata: the stratum of each ground sample (plan.ground's order), read when spec.stratifies
    (see selection.stratified); strata_groups: the group of each (read by a balanced
    allocation: the data's groups, or the clusters that stand in for them).
    The returned subset is kept + picks, with gain 0.0 for the kept samples."""
    if plan.budget == 0 or not plan.ground:
        picks = Subset([], [], 0.0, spec.method, plan.objective, {"budget": plan.budget})
    elif spec.method in BASELINES:
        picks = BASELINES[spec.method](plan, spec, groups)
    else:
        picks = _submodular(plan, spec, block, coverage_block, balance, strata, strata_groups)
    return Subset(
        plan.kept + picks.ids,
        [0.0] * len(plan.kept) + picks.gains,
        picks.objective,
        picks.method,
        picks.objective_name,
        picks.params,
    )


# methods that read no kernel: the subset of a plan from the spec alone
BASELINES = {
    "random": lambda plan, spec, groups: random_subset(plan.ground, plan.budget, spec.seed),
    "stratified_random": lambda plan, spec, groups: stratified_random(plan.ground, _groups(plan, groups),
                                                                      plan.budget, spec.seed, spec.allocation),
    "full": lambda plan, spec, groups: full_set(plan.ground),
}


def _groups(plan: Plan, groups: Sequence[str] | None) -> Sequence[str]:
    if groups is None or len(groups) != len(plan.ground):
        raise ValueError("run_plan: stratified_random needs the group of every ground sample")
    return groups


def _split(plan: Plan, block) -> tuple:
    """(ground columns [|ground|, |ground|], extra columns [|ground|, |extra|]) of a plan's block."""
    if block is None or block.shape != (len(plan.ground), len(plan.examples)):
        raise ValueError("run_plan: the kernel block does not match the plan")
    column = {e: k for k, e in enumerate(plan.examples)}
    ground_cols = [column[i] for i in plan.ground]
    extra_cols = [column[i] for i in plan.extra]
    if isinstance(block, SparseKernel):
        rows = np.arange(len(plan.ground))
        return block.take(rows, ground_cols), block.take(rows, extra_cols)
    return block[:, ground_cols], block[:, extra_cols]


def _submodular(plan: Plan, spec: SelectionSpec, block, coverage_block, balance, strata, strata_groups) -> Subset:
    kernel, extra = _split(plan, block)
    if spec.stratifies:
        if strata is None or len(strata) != len(plan.ground):
            raise ValueError("run_plan: a stratified selection needs the stratum of every ground sample")
        return select_stratified(plan.ground, kernel, plan.budget, strata, objective=plan.objective,
                                 extra=None if plan.objective == "fl" else extra, eta=spec.eta, nu=spec.nu,
                                 scaling=spec.scaling, temperature=spec.temperature, seed=spec.seed,
                                 stop_at_zero_gain=spec.stop_at_zero_gain, method=spec.method, draw=spec.draw,
                                 allocation=spec.allocation, groups=strata_groups)
    common = {"scaling": spec.scaling, "stop_at_zero_gain": spec.stop_at_zero_gain, "method": spec.method,
              "balance": balance}
    if spec.coverage_weight:
        cover_kernel, cover_extra = _split(plan, coverage_block)
        common.update(coverage=(cover_kernel, cover_extra), coverage_weight=spec.coverage_weight)
    if plan.objective == "fl":
        return instruction_tuning(plan.ground, kernel, plan.budget, **common)
    if plan.objective == "flmi":
        return task_specific(plan.ground, kernel, extra, plan.budget, eta=spec.eta, **common)
    return continual(plan.ground, kernel, extra, plan.budget, nu=spec.nu, **common)
