"""`utility.pairs: surrogate`: measure with the LM where facility location looks, predict the rest.

For a plan's ground targets: the LM measures every target's `d0` and `utility.lm_pairs` pairs
among its `utility.k` candidates (its nearest examples under all-MiniLM-L6-v2, itself included),
chosen by `utility.strategy` over `utility.rounds` rounds; a LightGBM surrogate, refit after each
round on the measured pairs, predicts UF for the other candidates; measured values override
predictions; selection runs on that sparse kernel.

Resumable and deterministic: each round's choice depends only on the measured values of the
rounds before it (and on stored pairs of targets outside the plan, which this run never
writes), so a rerun after a kill replays the same rounds, scores only what is missing, and ends
with the same kernel. The store keeps only LM-measured values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from delift_dvc.errors import InputError
from delift_dvc.kernels.base import Block, PlanContext, Scored
from delift_dvc.kernels.driver import ScoreCounts, score_missing
from delift_dvc.kernels.lm import LMScoring
from delift_dvc.kernels.utility import uf
from delift_dvc.progress import Reporter
from delift_dvc.selection.sparse import SparseKernel
from delift_dvc.store import Store
from delift_dvc.utility.knn import knn_from_vectors
from delift_dvc.utility.surrogate import SurrogateConfig, choose_pairs, features, fit

__all__ = ["SurrogateOptions", "SurrogateRun", "SurrogateSource", "round_sizes", "surrogate_kernel"]

PREDICT_CHUNK = 200_000  # pairs per prediction chunk (features of a chunk: ~160 MB)


@dataclass(frozen=True)
class SurrogateOptions:
    """`k` candidates per target, `lm_pairs` of them LM-measured, chosen by `strategy` over
    `rounds`; LightGBM with `trees` boosting rounds; `seed` of random pairs and the model."""

    k: int = 32
    lm_pairs: int = 8
    strategy: str = "active"
    rounds: int = 3
    trees: int = 300
    seed: int = 0

    @classmethod
    def from_params(cls, utility) -> "SurrogateOptions":
        return cls(utility.k, utility.lm_pairs, utility.strategy, utility.rounds, utility.trees, utility.seed)


class SurrogateSource:
    """Measures d0 and options.lm_pairs pairs per target with the LM, predicts the rest of each
    target's k candidates; the kernel is sparse. The store keeps only measured values."""

    def __init__(self, scoring: LMScoring, options: SurrogateOptions) -> None:
        self.scoring, self.options = scoring, options

    @classmethod
    def from_params(cls, params) -> "SurrogateSource":
        return cls(LMScoring.from_params(params), SurrogateOptions.from_params(params.utility))

    def score(self, ctx: PlanContext, reporter: Reporter) -> Scored:
        spec, plan = self.scoring.spec, ctx.plan
        scorer = spec.build()
        counts = ScoreCounts()
        with self.scoring.running(reporter) as executor:
            def score(t_idx, e_idx):
                baseline = plan.ground if len(t_idx) == 0 else []
                counts.add(score_missing(ctx.store, scorer, ctx.samples, baseline, plan.ground, plan.examples,
                                         candidates=(t_idx, e_idx), segment_pairs=self.scoring.segment_pairs,
                                         executor=executor, spec=spec, reporter=reporter))

            run = surrogate_kernel(ctx, self.options, scorer.fingerprint, score=score, reporter=reporter)
        return Scored(counts, scorer.fingerprint, kernel=run.kernel, metrics=run.metrics)

    def read(self, ctx: PlanContext, scored: Scored | None = None) -> tuple[Block, str]:
        if scored is not None and scored.kernel is not None:
            return scored.kernel, scored.identity
        fingerprint = self.scoring.fingerprint
        return surrogate_kernel(ctx, self.options, fingerprint).kernel, fingerprint


@dataclass
class SurrogateRun:
    """The sparse UF kernel of a plan and how it was made."""

    kernel: SparseKernel
    metrics: dict = field(default_factory=dict)
    fingerprint: str | None = None  # the last surrogate's


def round_sizes(lm_pairs: int, rounds: int, strategy: str) -> list[int]:
    """LM pairs per target in each round: `random` measures all at once; `active` splits them
    over the rounds, the first round getting the remainder."""
    if strategy == "random" or rounds <= 1:
        return [lm_pairs]
    rounds = min(rounds, lm_pairs)
    base = lm_pairs // rounds
    return [base + lm_pairs - base * rounds] + [base] * (rounds - 1)


def surrogate_kernel(ctx: PlanContext, u: SurrogateOptions, fp: str, *,
                     score: Callable[[np.ndarray, np.ndarray], None] | None = None,
                     reporter: Reporter | None = None, all_stored: bool = True) -> SurrogateRun:
    """Run the rounds for ctx.plan (ground targets x examples) with the values of scorer `fp`.
    `score(t_idx, e_idx)` scores the given pairs (indices into plan.ground, plan.examples) and
    their targets' d0 into the store; None means score nothing (every value must be stored
    already). all_stored: a candidate with any stored LM value takes it (free: measured
    before); False: only the pairs these rounds measured do (to count LM passes exactly, as
    the benchmarks do)."""
    reporter = reporter or Reporter("score", quiet=True)
    plan, store = ctx.plan, ctx.store
    if not plan.ground:
        empty = np.zeros(0, np.int64)
        return SurrogateRun(SparseKernel.from_pairs(empty, empty, np.zeros(0), (0, len(plan.examples))),
                            {"lm_pairs_measured": 0, "pairs_predicted": 0, "pairs_in_kernel": 0})
    config = SurrogateConfig(trees=u.trees, seed=u.seed)
    ground, examples = plan.ground, plan.examples
    position = {e: k for k, e in enumerate(examples)}
    g_cols = np.array([position[i] for i in ground], np.int64)  # each target's column as an example
    reporter.phase(f"surrogate: embedding {len(examples):,} samples")
    vectors = ctx.vectors()
    t_all, e_all = knn_from_vectors(ground, examples, vectors[g_cols], vectors, u.k)
    bounds = np.searchsorted(t_all, np.arange(len(ground) + 1))
    candidates = [e_all[bounds[t]:bounds[t + 1]] for t in range(len(ground))]
    if score is not None:
        score(np.zeros(0, np.int64), np.zeros(0, np.int64))  # every target's d0 first
    d0_ex = _examples_d0(store, fp, examples, g_cols)
    context = _context_pairs(store, fp, ground, examples, position, d0_ex)
    measured = [np.zeros(0, np.int64) for _ in ground]
    scores = None
    surrogate = None
    sizes = round_sizes(u.lm_pairs, u.rounds, u.strategy)
    for r, size in enumerate(sizes):
        want = np.full(len(ground), size)
        chosen = choose_pairs(candidates, measured, want, u.strategy, u.seed, list(ground),
                              scores if r > 0 else None)
        t_idx = np.repeat(np.arange(len(ground), dtype=np.int64), [len(c) for c in chosen])
        e_idx = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
        if score is not None:
            reporter.phase(f"surrogate round {r + 1}/{len(sizes)}: {len(t_idx):,} LM pairs")
            score(t_idx, e_idx)
        measured = [np.union1d(m, c) for m, c in zip(measured, chosen)]
        train_t, train_e, train_y = _measured_values(store, fp, ground, examples, g_cols, measured, d0_ex)
        tt = np.concatenate([context[0], train_t])
        ee = np.concatenate([context[1], train_e])
        yy = np.concatenate([context[2], train_y])
        surrogate = fit(features(vectors, d0_ex, tt, ee, config), yy, tt * len(examples) + ee, config)
        reporter.phase(f"surrogate fit on {surrogate.n_train:,} pairs: held-out Spearman "
                       f"{surrogate.spearman:.3f}, R^2 {surrogate.r2:.3f}")
        if r + 1 < len(sizes):
            scores = _predict_per_target(surrogate, vectors, d0_ex, g_cols, candidates, config)
    only = None if all_stored else measured
    kernel, n_measured = _kernel(store, fp, surrogate, vectors, d0_ex, ground, examples, g_cols, t_all, e_all,
                                 config, only)
    metrics = {"lm_pairs_measured": int(sum(len(m) for m in measured)), "pairs_predicted": int(len(t_all) - n_measured),
               "pairs_in_kernel": int(len(t_all)), "surrogate_spearman": _round(surrogate.spearman),
               "surrogate_r2": _round(surrogate.r2), "surrogate_heldout_pairs": surrogate.n_heldout,
               "surrogate": surrogate.fingerprint, "rounds": len(sizes), "strategy": u.strategy}
    return SurrogateRun(kernel, metrics, surrogate.fingerprint)


def _examples_d0(store: Store, fp: str, examples, g_cols: np.ndarray) -> np.ndarray:
    """d0 [|examples|] (NaN where not stored); an InputError when a ground target's is missing."""
    d0_ex = store.read_baselines(fp, examples)
    if np.isnan(d0_ex[g_cols]).any():
        raise InputError(f"{store.root}: {int(np.isnan(d0_ex[g_cols]).sum())} d0 values are not scored "
                         "yet for this scorer (run `delift-dvc score` first)")
    return d0_ex


def _round(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 6)


def _context_pairs(store: Store, fp: str, ground, examples, position, d0_ex):
    """Stored pairs whose target is an example outside the plan's ground set: (target idx,
    example idx, UF), indices into `examples`. This run never writes them, so they are fixed."""
    others = sorted(set(examples) - set(ground))
    if not others:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    t, e, d = store.read_pairs_sparse(fp, others, list(examples))
    t_ex = np.array([position[others[i]] for i in t.tolist()], np.int64)
    keep = ~np.isnan(d0_ex[t_ex])
    return t_ex[keep], e[keep], uf(d0_ex[t_ex], d)[keep]


def _measured_values(store: Store, fp: str, ground, examples, g_cols, measured, d0_ex):
    """(target idx into examples, example idx, UF) of the pairs measured in the rounds so far."""
    t, e, d = store.read_pairs_sparse(fp, list(ground), list(examples))
    ne = len(examples)
    wanted = np.concatenate([t_ * ne + m for t_, m in enumerate(measured) if len(m)]) if any(len(m) for m in measured) \
        else np.zeros(0, np.int64)
    keep = np.isin(t * ne + e, wanted)
    if keep.sum() != len(wanted):
        raise InputError(f"{store.root}: {len(wanted) - int(keep.sum())} surrogate pairs are not scored yet "
                         "for this scorer (run `delift-dvc score` first)")
    t_ex = g_cols[t[keep]]
    return t_ex, e[keep], uf(d0_ex[t_ex], d[keep])


def _predict_per_target(surrogate, vectors, d0_ex, g_cols, candidates, config) -> list[np.ndarray]:
    t = np.repeat(np.arange(len(candidates)), [len(c) for c in candidates])
    e = np.concatenate(candidates) if candidates else np.zeros(0, np.int64)
    pred = _predict(surrogate, vectors, d0_ex, g_cols[t], e, config)
    bounds = np.concatenate([[0], np.cumsum([len(c) for c in candidates])])
    return [pred[bounds[k]:bounds[k + 1]] for k in range(len(candidates))]


def _predict(surrogate, vectors, d0_ex, t_ex, e, config) -> np.ndarray:
    out = np.empty(len(t_ex))
    for start in range(0, len(t_ex), PREDICT_CHUNK):
        s = slice(start, start + PREDICT_CHUNK)
        out[s] = surrogate.predict(features(vectors, d0_ex, t_ex[s], e[s], config))
    return out


def _kernel(store, fp, surrogate, vectors, d0_ex, ground, examples, g_cols, t_all, e_all, config, only=None):
    """UF over every candidate: the LM's value where one is stored (only those in `only`, the
    measured columns per target, when given), else the prediction."""
    values = _predict(surrogate, vectors, d0_ex, g_cols[t_all], e_all, config)
    t, e, d = store.read_pairs_sparse(fp, list(ground), list(examples))  # sorted by (t, e)
    ne = len(examples)
    flat_c, flat_s = t_all * ne + e_all, t * ne + e
    if only is not None:
        allowed = np.concatenate([k * ne + m for k, m in enumerate(only)] or [np.zeros(0, np.int64)])
        keep = np.isin(flat_s, allowed)
        flat_s, d = flat_s[keep], d[keep]
    pos = np.minimum(np.searchsorted(flat_s, flat_c), max(0, len(flat_s) - 1))
    hit = (flat_s[pos] == flat_c) if len(flat_s) else np.zeros(len(flat_c), bool)
    values[hit] = uf(d0_ex[g_cols[t_all[hit]]], d[pos[hit]])
    return SparseKernel.from_pairs(t_all, e_all, values, (len(ground), len(examples))), int(hit.sum())
