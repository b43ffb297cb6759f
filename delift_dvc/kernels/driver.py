"""The scoring driver: score the d0 and pairs a plan needs that the store lacks.

It plans blocks (:mod:`delift_dvc.utility.blocks`), hands them to an executor, and writes each
finished block as one segment: the store keeps one writer.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np

from delift_dvc.progress import Reporter
from delift_dvc.store import Store
from delift_dvc.utility.blocks import ScoreWorker, block_texts, plan_blocks
from delift_dvc.utility.scorer import Scorer, ScorerSpec

__all__ = ["ScoreCounts", "score_missing", "store_samples"]


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

    def add(self, other: "ScoreCounts") -> None:
        """Add `other`'s counts to these."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


def score_missing(
    store: Store,
    scorer: Scorer,
    samples: Mapping[str, object],
    baseline_ids: Sequence[str],
    targets: Sequence[str],
    examples: Sequence[str],
    *,
    candidates: tuple[np.ndarray, np.ndarray] | None = None,
    segment_pairs: int = 2048,
    executor=None,
    spec: ScorerSpec | None = None,
    reporter: Reporter | None = None,
) -> ScoreCounts:
    """Score the d0 of `baseline_ids` and the pairs targets x examples (or only `candidates`,
    (target idx, example idx)) that the store lacks for `scorer`, one segment per finished
    block. `samples` maps every id involved to an object with prompt and response. With an
    executor other than the local one, `spec` says how each worker builds its scorer."""
    from delift_dvc.executors.local import LocalExecutor

    reporter = reporter or Reporter("score", quiet=True)
    executor = executor or LocalExecutor()
    fp = scorer.fingerprint
    plan = _missing_blocks(store, fp, list(baseline_ids), targets, examples, candidates, segment_pairs)
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


def _missing_blocks(store: Store, fp: str, baseline_ids: list[str], targets: Sequence[str],
                    examples: Sequence[str], candidates, segment_pairs: int):
    """The BlockPlan of what the store lacks among the d0 of `baseline_ids` and the wanted pairs."""
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
    return plan_blocks(fp, baseline_ids, d0_missing, targets, examples, (t_idx, e_idx), pair_missing, segment_pairs)


def store_samples(store: Store, samples: Mapping[str, object]) -> int:
    """Record the text of every sample (id -> Sample) in the store; returns how many were new."""
    values = list(samples.values())
    return store.add_samples(list(samples), [s.prompt for s in values], [s.response for s in values],
                             [s.source for s in values])
