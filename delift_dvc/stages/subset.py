"""One selection, the same in stage and file mode: the plan's kernel source scores what the
store lacks, reads the kernel back, and the selection runs on it.

The kernel source of a method: `delift` reads the LM utility of `utility.pairs`, `delift_se`
the sentence-embedding similarity, `random` and `full` none.
"""

from __future__ import annotations

from delift_dvc.kernels import source_class
from delift_dvc.kernels.base import Block, KernelSource, PlanContext, Scored
from delift_dvc.kernels.similarity import coverage_block, embedding_parts
from delift_dvc.progress import Reporter
from delift_dvc.selection.planning import run_plan
from delift_dvc.selection.stages import Subset

__all__ = ["kernel_source", "score_plan", "select_plan"]

METHOD_KERNELS = {"delift": "utility", "delift_se": "similarity", "random": None, "full": None}


def kernel_source(params) -> KernelSource | None:
    """The KernelSource of params.selection.method (None: the method reads no kernel)."""
    kernel = METHOD_KERNELS[params.selection.method]
    if kernel is None:
        return None
    return source_class(params.utility.pairs if kernel == "utility" else kernel).from_params(params)


def score_plan(ctx: PlanContext, params, reporter: Reporter) -> Scored:
    """Score what the plan's kernel needs and ctx.store lacks."""
    source = kernel_source(params)
    return Scored() if source is None else source.score(ctx, reporter)


def select_plan(ctx: PlanContext, params, scored: Scored | None = None) -> tuple[Subset, str | None]:
    """(subset, kernel identity) of ctx.plan with params.selection, scoring nothing."""
    source = kernel_source(params)
    block, identity = (None, None) if source is None else source.read(ctx, scored)
    sel = params.selection
    subset = run_plan(ctx.plan, sel.method, block, eta=sel.eta, nu=sel.nu, scaling=sel.scaling,
                      stop_at_zero_gain=sel.stop_at_zero_gain, seed=sel.seed,
                      **_delift_options(ctx, sel, block))
    return subset, identity


def _delift_options(ctx: PlanContext, sel, block: Block | None) -> dict:
    """run_plan's keywords for embedding coverage (block and weight) and cluster balance (a
    MiniLM cluster per ground sample); {} when neither applies."""
    if sel.method != "delift" or block is None or not (sel.embedding_coverage or sel.balance_clusters > 1):
        return {}
    options = {}
    if sel.embedding_coverage:
        options.update(coverage_block=coverage_block(ctx, block), coverage_weight=sel.embedding_coverage)
    if sel.balance_clusters > 1:
        options["balance"] = embedding_parts(ctx, sel.balance_clusters, sel.seed)
    return options
