"""Utility blocks backed by the store: score what is missing, read UF = d0 - d back.

This is where the scorer meets the store; neither knows the other.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .errors import InputError
from .store import Store

Block = tuple[Sequence[str], Sequence[str]]  # (target ids, example ids)
Candidates = tuple[np.ndarray, np.ndarray]  # (target idx, example idx) pairs of a sparse block


@dataclass
class ScoreCounts:
    """What one scoring run needed, computed and found already stored."""

    baselines_scored: int = 0
    baselines_reused: int = 0
    pairs_scored: int = 0
    pairs_reused: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def ensure_scores(
    store: Store,
    scorer,
    samples: Mapping[str, object],
    baseline_ids: Sequence[str],
    blocks: Sequence[Block],
    *,
    segment_pairs: int = 2048,
    progress: bool = True,
    candidates: Sequence[Candidates | None] | None = None,
) -> ScoreCounts:
    """Score the d0 of `baseline_ids` and every pair of each block (targets x examples) that
    the store lacks for this scorer, writing one segment per `segment_pairs` values.
    `samples` maps id -> Sample for every id involved. candidates[b], when given, restricts
    block b to those (target idx, example idx) pairs (sparse mode)."""
    from tqdm import tqdm

    start = time.perf_counter()
    fp = scorer.fingerprint
    counts = ScoreCounts()
    missing_d0 = store.missing_baselines(fp, list(baseline_ids))
    counts.baselines_reused = len(baseline_ids) - len(missing_d0)
    plans = []
    for b, (targets, examples) in enumerate(blocks):
        subset = candidates[b] if candidates else None
        t_idx, e_idx = store.missing_pairs(fp, list(targets), list(examples), candidates=subset)
        by_example = np.lexsort((t_idx, e_idx))  # a segment's pairs share few examples: the
        t_idx, e_idx = t_idx[by_example], e_idx[by_example]  # scorer reuses their prefixes
        wanted = len(targets) * len(examples) if subset is None else len(subset[0])
        counts.pairs_reused += wanted - len(t_idx)
        plans.append((targets, examples, t_idx, e_idx))
    total = len(missing_d0) + sum(len(p[2]) for p in plans)
    bar = tqdm(total=total, disable=not progress or total == 0, unit="seq", desc="scoring")
    for chunk in _chunks(len(missing_d0), segment_pairs):
        ids = [missing_d0[k] for k in chunk]
        d0 = scorer.baseline([samples[i] for i in ids])
        store.write_baselines(fp, ids, d0)
        counts.baselines_scored += len(ids)
        bar.update(len(ids))
    for targets, examples, t_idx, e_idx in plans:
        target_objs = [samples[i] for i in targets]
        example_objs = [samples[i] for i in examples]
        for chunk in _chunks(len(t_idx), segment_pairs):
            pairs = list(zip(t_idx[chunk].tolist(), e_idx[chunk].tolist()))
            d = scorer.score_pairs(target_objs, example_objs, pairs)
            store.write_pairs(fp, [targets[t] for t, _ in pairs], [examples[e] for _, e in pairs], d)
            counts.pairs_scored += len(pairs)
            bar.update(len(pairs))
    bar.close()
    counts.seconds = round(time.perf_counter() - start, 3)
    return counts


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield np.arange(start, min(n, start + size))


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


def store_samples(store: Store, samples: Mapping[str, object]) -> int:
    """Record the text of every sample (id -> Sample) in the store; returns how many were new."""
    values = list(samples.values())
    return store.add_samples(list(samples), [s.prompt for s in values], [s.response for s in values],
                             [s.source for s in values])
