"""One selection, the same in stage and file mode: the plan's kernel source scores what the
store lacks, reads the kernel back, and the selection runs on it.

The kernel source of a method: `delift` reads the LM utility of `utility.pairs`, `delift_se`
the sentence-embedding similarity, `random` and `full` none.
"""

from __future__ import annotations

from dataclasses import replace

from delift_dvc.kernels import source_class
from delift_dvc.kernels.base import Block, KernelSource, PlanContext, Scored
from delift_dvc.kernels.similarity import coverage_block, embedding_parts
from delift_dvc.progress import Reporter
from delift_dvc.selection.methods import METHODS, Subset
from delift_dvc.selection.planning import run_plan
from delift_dvc.selection.balance import resolve_allocation
from delift_dvc.selection.spec import SelectionSpec
from delift_dvc.selection.stratified import cluster_count, resolve_temperature, stratum_labels

__all__ = ["kernel_source", "score_plan", "select_plan", "selection_spec"]

def kernel_source(params) -> KernelSource | None:
    """The KernelSource of params.selection.method (None: the method reads no kernel)."""
    kernel = METHODS[params.selection.method]
    if kernel is None:
        return None
    return source_class(params.utility.pairs if kernel == "utility" else kernel).from_params(params)


def selection_spec(selection) -> SelectionSpec:
    """The SelectionSpec of params.yaml's `selection` section (temperature auto resolved)."""
    return SelectionSpec(method=selection.method, eta=selection.eta, nu=selection.nu, scaling=selection.scaling,
                         stop_at_zero_gain=selection.stop_at_zero_gain, seed=selection.seed,
                         coverage_weight=selection.embedding_coverage, balance_clusters=selection.balance_clusters,
                         strata=selection.strata,
                         temperature=resolve_temperature(selection.temperature, selection.strata), draw=selection.draw,
                         strata_clusters=selection.strata_clusters, allocation=selection.allocation)


def score_plan(ctx: PlanContext, params, reporter: Reporter) -> Scored:
    """Score what the plan's kernel needs and ctx.store lacks."""
    source = kernel_source(params)
    return Scored() if source is None else source.score(ctx, reporter)


def select_plan(ctx: PlanContext, params, scored: Scored | None = None) -> tuple[Subset, str | None]:
    """(subset, kernel identity) of ctx.plan with params.selection, scoring nothing."""
    source = kernel_source(params)
    block, identity = (None, None) if source is None else source.read(ctx, scored)
    spec = selection_spec(params.selection)
    groups = None if ctx.groups is None else [ctx.groups[i] for i in ctx.plan.ground]
    options, note = _delift_options(ctx, spec, block, groups)
    spec = replace(spec, allocation=resolve_allocation(spec.allocation, note.get("strata_from") == "clusters"))
    subset = run_plan(ctx.plan, spec, block, groups=groups, **options)
    subset.params.update(note)
    return subset, identity


def _delift_options(ctx: PlanContext, spec: SelectionSpec, block: Block | None,
                    groups: list[str] | None) -> tuple[dict, dict]:
    """(run_plan's keywords for embedding coverage (its block), cluster balance (a MiniLM
    cluster per ground sample) and strata (a stratum per ground sample), what the subset's
    params record of them); ({}, {}) when none applies."""
    if block is None:
        return {}, {}
    options, note = {}, {}
    if spec.stratifies:
        options["strata"], options["strata_groups"], note["strata_from"] = _strata(ctx, spec, groups)
    if spec.adds_coverage:
        options["coverage_block"] = coverage_block(ctx, block)
    if spec.balances:
        options["balance"] = embedding_parts(ctx, spec.balance_clusters, spec.seed)
    return options, note


def _strata(ctx: PlanContext, spec: SelectionSpec, groups: list[str] | None) -> tuple[list[str], list[str], str]:
    """(the stratum of each ground sample, its group, where the group came from: "groups",
    "clusters" or "none"). With strata none (a temperature alone) the whole ground set is one stratum; a
    ground set of a single group is split into MiniLM k-means clusters (cluster_count of them)."""
    n = len(ctx.plan.ground)
    if spec.strata == "none":
        return ["all"] * n, ["all"] * n, "none"
    source = "groups"
    if groups is None or len(set(groups)) < 2:
        parts = embedding_parts(ctx, cluster_count(n, spec.strata_clusters), spec.seed)
        groups, source = [f"cluster_{int(p):03d}" for p in parts], "clusters"
    responses = [ctx.samples[i].response for i in ctx.plan.ground]
    return stratum_labels(groups, responses, spec.strata), groups, source
