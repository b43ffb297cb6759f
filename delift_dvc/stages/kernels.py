"""Where the scorer meets the store: score the values a plan needs that the store lacks (the
driver), and read a plan's kernel back (LM utility, or sentence-embedding similarity).

The driver plans blocks (:mod:`delift_dvc.utility.blocks`), hands them to an executor, and writes
each finished block as one segment: the store keeps one writer.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from delift_dvc.errors import InputError
from delift_dvc.selection.planning import Plan
from delift_dvc.selection.sparse import SparseKernel
from delift_dvc.stages.progress import Reporter
from delift_dvc.store import Store
from delift_dvc.utility.blocks import ScoreWorker, block_texts, plan_blocks
from delift_dvc.utility.scorer import Scorer, ScorerSpec

Candidates = tuple[np.ndarray, np.ndarray]  # (target idx, example idx) of a sparse block

SE_KERNEL = "all-MiniLM-L6-v2"


@dataclass
class ScoreCounts:
    """What one scoring run needed, computed and found already stored."""

    baselines_scored: int = 0
    baselines_reused: int = 0
    pairs_scored: int = 0
    pairs_reused: int = 0
    blocks: int = 0  # blocks scored (each stored as one segment)
    seconds: float = 0.0  # wall time of scoring (kept out of metrics files)

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_threads(scoring) -> int:
    """Torch threads per scoring process: scoring.threads, or for `auto` the cores this process
    may use (local) or those cores divided among the Ray workers (at least 1)."""
    if scoring.threads != "auto":
        return int(scoring.threads)
    if scoring.executor == "ray":
        return max(1, cpu_count() // scoring.workers)
    return cpu_count()


def scorer_spec(params) -> ScorerSpec:
    """How every scoring process builds its scorer from params.scoring."""
    return replace(ScorerSpec.from_params(params.scoring), threads=resolve_threads(params.scoring))


def _block_name(item) -> str:
    return f"block {item[0].id}"


def make_executor(params, on_start=lambda line: None):
    """The executor of params.scoring.executor (local, or a Ray actor pool)."""
    scoring = params.scoring
    if scoring.executor == "ray":
        from delift_dvc.executors.ray import RayExecutor

        return RayExecutor(scoring.workers, threads=resolve_threads(scoring), address=scoring.ray_address,
                           use_gpu=scoring.device != "cpu", name=_block_name, on_start=on_start)
    from delift_dvc.executors.local import LocalExecutor

    return LocalExecutor()


def score_missing(
    store: Store,
    scorer: Scorer,
    samples: Mapping[str, object],
    baseline_ids: Sequence[str],
    targets: Sequence[str],
    examples: Sequence[str],
    *,
    candidates: Candidates | None = None,
    segment_pairs: int = 2048,
    executor=None,
    spec: ScorerSpec | None = None,
    reporter: Reporter | None = None,
) -> ScoreCounts:
    """Score the d0 of `baseline_ids` and the pairs targets x examples (or only `candidates`)
    that the store lacks for `scorer`, one segment per finished block. `samples` maps every id
    involved to an object with prompt and response. With an executor other than the local one,
    `spec` says how each worker builds its scorer."""
    from delift_dvc.executors.local import LocalExecutor

    reporter = reporter or Reporter("score", quiet=True)
    executor = executor or LocalExecutor()
    fp = scorer.fingerprint
    baseline_ids = list(baseline_ids)
    missing_d0 = set(store.missing_baselines(fp, baseline_ids))
    d0_missing = np.array([i in missing_d0 for i in baseline_ids], dtype=bool)
    nt, ne = len(targets), len(examples)
    if candidates is None:
        t_idx = np.repeat(np.arange(nt, dtype=np.int64), ne)
        e_idx = np.tile(np.arange(ne, dtype=np.int64), nt)
    else:
        flat = np.unique(np.asarray(candidates[0], np.int64) * ne + np.asarray(candidates[1], np.int64))
        t_idx, e_idx = (flat // ne, flat % ne) if ne else (flat, flat)
    mt, me = store.missing_pairs(fp, list(targets), list(examples), candidates=(t_idx, e_idx))
    pair_missing = np.isin(t_idx * ne + e_idx, mt * ne + me)
    plan = plan_blocks(fp, baseline_ids, d0_missing, targets, examples, (t_idx, e_idx), pair_missing,
                       segment_pairs)
    counts = ScoreCounts(baselines_reused=plan.wanted_baselines - plan.missing_baselines,
                         pairs_reused=plan.wanted_pairs - plan.missing_pairs)
    total = plan.missing_baselines + plan.missing_pairs
    if total == 0:
        return counts
    reporter.phase(f"{plan.missing_baselines:,} d0 and {plan.missing_pairs:,} pairs to score in "
                   f"{len(plan.blocks)} blocks ({counts.baselines_reused + counts.pairs_reused:,} "
                   f"already stored), on {executor.describe()}")
    if isinstance(executor, LocalExecutor) or spec is None:
        make_worker = functools.partial(ScoreWorker, scorer=scorer)
    else:
        make_worker = functools.partial(ScoreWorker, spec)
    items = ((block, block_texts(block, samples)) for block in plan.blocks)
    reporter.start(total, "pair")
    try:
        for (block, _), values in executor.run(make_worker, items, reporter.update):
            if block.kind == "baselines":
                store.write_baselines(fp, list(block.targets), values)
                counts.baselines_scored += len(block)
            else:
                store.write_pairs(fp, list(block.targets), list(block.examples), values)
                counts.pairs_scored += len(block)
            counts.blocks += 1
    finally:
        seconds = reporter.finish()
    counts.seconds = round(seconds, 3)
    rate = total / seconds if seconds > 0 else 0.0
    reporter.phase(f"scored {total:,} values in {seconds:.0f} s ({rate:.2f}/s)")
    return counts


def utility_block(store: Store, fingerprint: str, targets: Sequence[str], examples: Sequence[str],
                  candidates: Candidates | None = None) -> np.ndarray:
    """UF [len(targets), len(examples)] = d0[target] - d[target, example] (float64) from the
    store; an InputError names how many values are missing when the block is incomplete. With
    `candidates` (sparse mode) only those pairs are required and every other entry is NaN."""
    d0 = store.read_baselines(fingerprint, list(targets))
    d = store.read_pairs(fingerprint, list(targets), list(examples))
    if candidates is not None:
        wanted = np.zeros(d.shape, dtype=bool)
        wanted[candidates] = True
        d[~wanted] = np.nan
        missing = int(np.isnan(d0).sum()) + int(np.isnan(d[wanted]).sum())
    else:
        missing = int(np.isnan(d0).sum()) + int(np.isnan(d).sum())
    if missing:
        raise InputError(
            f"{store.root}: {missing} utility values are not scored yet for this scorer "
            f"(run `delift-dvc score` first)"
        )
    return d0[:, None] - d


def sparse_utility_block(store: Store, fingerprint: str, targets: Sequence[str], examples: Sequence[str],
                         candidates: Candidates) -> SparseKernel:
    """UF = d0[target] - d[target, example] over exactly the `candidates` (target idx, example
    idx), as a SparseKernel [len(targets), len(examples)] read from the store without any dense
    array; an InputError names how many values are missing."""
    d0 = store.read_baselines(fingerprint, list(targets))
    t_idx, e_idx, d = store.read_pairs_sparse(fingerprint, list(targets), list(examples))
    ne = max(1, len(examples))
    wanted = np.unique(np.asarray(candidates[0], np.int64) * ne + np.asarray(candidates[1], np.int64))
    flat = t_idx * ne + e_idx
    keep = np.isin(flat, wanted)
    missing = int(np.isnan(d0).sum()) + len(wanted) - int(keep.sum())
    if missing:
        raise InputError(f"{store.root}: {missing} utility values are not scored yet for this scorer "
                         f"(run `delift-dvc score` first)")
    t_idx, e_idx, d = t_idx[keep], e_idx[keep], d[keep]
    return SparseKernel.from_pairs(t_idx, e_idx, d0[t_idx] - d, (len(targets), len(examples)))


def store_samples(store: Store, samples: Mapping[str, object]) -> int:
    """Record the text of every sample (id -> Sample) in the store; returns how many were new."""
    values = list(samples.values())
    return store.add_samples(list(samples), [s.prompt for s in values], [s.response for s in values],
                             [s.source for s in values])


def similarity_block(plan: Plan, by_id: Mapping[str, object], device: str) -> np.ndarray:
    """Cosine similarity [|ground|, |examples|] of all-MiniLM-L6-v2 sentence embeddings."""
    from delift_dvc.utility.embeddings import cosine_kernel, embed_samples

    vectors = embed_samples(plan.examples, by_id, device)
    return cosine_kernel(ground_rows(plan, vectors), vectors)


def ground_rows(plan: Plan, vectors: np.ndarray) -> np.ndarray:
    """The rows of `vectors` [|examples|, d] (one per plan.examples) of the ground samples, in
    plan.ground's order: [|ground|, d]."""
    position = {e: k for k, e in enumerate(plan.examples)}
    return vectors[[position[i] for i in plan.ground]]


def coverage_block(plan: Plan, vectors: np.ndarray, block) -> np.ndarray | SparseKernel:
    """The sentence-embedding similarity that `selection.embedding_coverage` adds to a delift
    selection, in the shape of the utility `block` [|ground|, |examples|]: dense cosine for a
    dense block, cosine at the block's stored entries for a sparse one (memory O(nnz)).
    vectors [|examples|, 384]: unit-norm MiniLM embeddings of plan.examples."""
    from delift_dvc.utility.embeddings import cosine_kernel

    ground = ground_rows(plan, vectors)
    if not isinstance(block, SparseKernel):
        return cosine_kernel(ground, vectors)
    rows, values = block.rows(), np.empty(block.nnz)
    for c0 in range(0, block.nnz, 1 << 16):
        r, c = rows[c0:c0 + (1 << 16)], block.indices[c0:c0 + (1 << 16)]
        values[c0:c0 + len(r)] = np.einsum("ij,ij->i", ground[r].astype(np.float64), vectors[c].astype(np.float64))
    return block.with_values(values)


def delift_args(params, plan: Plan, by_id: Mapping[str, object], block) -> dict:
    """run_plan's keywords for the delift options (`selection.embedding_coverage`: coverage
    block and weight; `selection.balance_clusters`: a MiniLM k-means cluster per ground sample);
    {} when neither applies. The examples are embedded once for both."""
    sel = params.selection
    if sel.method != "delift" or block is None or not (sel.embedding_coverage or sel.balance_clusters > 1):
        return {}
    from delift_dvc.selection.balance import embedding_clusters
    from delift_dvc.utility.embeddings import embed_samples

    vectors = embed_samples(plan.examples, by_id, params.scoring.device)
    args = {}
    if sel.embedding_coverage:
        args.update(coverage_block=coverage_block(plan, vectors, block), coverage_weight=sel.embedding_coverage)
    if sel.balance_clusters > 1:
        args["balance"] = embedding_clusters(ground_rows(plan, vectors), sel.balance_clusters, sel.seed)
    return args


def plan_candidates(params, plan: Plan, by_id: Mapping[str, object]) -> Candidates | None:
    """The (target idx, example idx) pairs a plan scores in knn mode (each ground target's k
    nearest examples, chunked: no n x n array); None in dense mode."""
    if params.utility.pairs != "knn" or not plan.ground:
        return None
    from delift_dvc.utility.embeddings import embed_samples
    from delift_dvc.utility.knn import knn_from_vectors

    examples = plan.examples
    vectors = embed_samples(examples, by_id, params.scoring.device)
    return knn_from_vectors(plan.ground, examples, ground_rows(plan, vectors), vectors, params.utility.k)


@dataclass
class Utility:
    """What scoring a plan's LM utility did: counts, the scorer fingerprint, knn candidates,
    and in surrogate mode the kernel and the surrogate's metrics."""

    counts: ScoreCounts
    fingerprint: str | None = None
    candidates: Candidates | None = None
    kernel: SparseKernel | None = None
    surrogate: dict | None = None


def _add(total: ScoreCounts, part: ScoreCounts) -> None:
    for name in ("baselines_scored", "baselines_reused", "pairs_scored", "pairs_reused", "blocks", "seconds"):
        setattr(total, name, getattr(total, name) + getattr(part, name))


def ensure_utility(store: Store, params, plan: Plan, by_id: Mapping[str, object],
                   reporter: Reporter | None = None) -> Utility:
    """Score what the plan's LM utility needs and the store lacks (method delift only)."""
    if params.selection.method != "delift":
        return Utility(ScoreCounts())
    reporter = reporter or Reporter("score", quiet=True)
    spec = scorer_spec(params)
    scorer = spec.build()
    executor = make_executor(params, on_start=reporter.phase)
    common = dict(segment_pairs=params.scoring.segment_pairs, executor=executor, spec=spec, reporter=reporter)
    try:
        if params.utility.pairs == "surrogate":
            from delift_dvc.stages.surrogate import surrogate_utility

            counts = ScoreCounts()

            def score(t_idx, e_idx):
                baseline = plan.ground if len(t_idx) == 0 else []
                _add(counts, score_missing(store, scorer, by_id, baseline, plan.ground, plan.examples,
                                           candidates=(t_idx, e_idx), **common))

            run = surrogate_utility(store, params, plan, by_id, scorer, score=score, reporter=reporter)
            return Utility(counts, scorer.fingerprint, kernel=run.kernel, surrogate=run.metrics)
        candidates = plan_candidates(params, plan, by_id)
        counts = score_missing(store, scorer, by_id, plan.ground, plan.ground, plan.examples,
                               candidates=candidates, **common)
    finally:
        executor.close()
    return Utility(counts, scorer.fingerprint, candidates)


def plan_kernel(store: Store | None, params, plan: Plan, by_id: Mapping[str, object],
                scored: Utility | None = None) -> tuple[np.ndarray | None, str | None]:
    """(block [|ground|, |examples|] or None, kernel identity) of a plan, scoring nothing: LM
    utilities from the store (delift), sentence-embedding similarities (delift_se), or None
    (random, full). `scored`: what ensure_utility returned for this plan, if it ran."""
    method = params.selection.method
    if method in ("random", "full"):
        return None, None
    if method == "delift_se":
        return similarity_block(plan, by_id, params.scoring.device), SE_KERNEL
    if scored is not None and scored.kernel is not None:
        return scored.kernel, scored.fingerprint
    if params.utility.pairs == "surrogate" and plan.ground:
        from delift_dvc.stages.surrogate import surrogate_utility

        scorer = scorer_spec(params).build()
        return surrogate_utility(store, params, plan, by_id, scorer).kernel, scorer.fingerprint
    if scored is not None and scored.fingerprint is not None:
        fingerprint, candidates = scored.fingerprint, scored.candidates
    else:
        fingerprint = scorer_spec(params).build().fingerprint
        candidates = plan_candidates(params, plan, by_id)
    if candidates is not None:  # sparse all the way: no n x n array
        return sparse_utility_block(store, fingerprint, plan.ground, plan.examples, candidates), fingerprint
    return utility_block(store, fingerprint, plan.ground, plan.examples), fingerprint
