"""Blocks of scoring work: the unit that executors run and the store keeps as one segment.

The planner is pure. It cuts the values one selection wants (d0 of the ground targets, then the
pairs, ordered by example then target so that a block shares few example prefixes) into
consecutive blocks of at most `segment_pairs` values. A block's id hashes the scorer fingerprint
and every key it covers, so the same plan always gives the same blocks. What a block still has
to score is its wanted values minus those already stored: a block stored completely is skipped,
so a rerun after a kill resumes with exactly the blocks that were not written, and writes the
segments an uninterrupted run would have written.

The worker step `score_block` needs only a scorer and the texts of the block's samples.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Block", "BlockPlan", "ScoreWorker", "plan_blocks", "score_block", "block_texts"]

KINDS = ("baselines", "pairs")


@dataclass(frozen=True)
class Block:
    """Values to score: `targets[k]` (and `examples[k]` for pairs) for k in range(len(targets)).
    `id`: 16 hex digits, a pure function of the scorer and all the block's wanted keys;
    `wanted`: how many values the block covers (stored ones included)."""

    id: str
    kind: str  # "baselines" (d0) or "pairs" (d)
    targets: tuple[str, ...]
    examples: tuple[str, ...] | None
    wanted: int

    def __len__(self) -> int:
        return len(self.targets)

    def sample_ids(self) -> list[str]:
        """Every sample id the block's sequences read, sorted."""
        return sorted(set(self.targets) | set(self.examples or ()))


@dataclass(frozen=True)
class BlockPlan:
    """All blocks of one plan that still have work, with the totals of what was wanted."""

    blocks: list[Block]
    wanted_baselines: int
    wanted_pairs: int
    missing_baselines: int
    missing_pairs: int


def _block_id(fingerprint: str, kind: str, keys: Sequence[str]) -> str:
    digest = hashlib.sha256(f"{fingerprint}\n{kind}\n".encode())
    for key in keys:
        digest.update(key.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]


def plan_blocks(
    fingerprint: str,
    baseline_ids: Sequence[str],
    baseline_missing: np.ndarray,
    targets: Sequence[str],
    examples: Sequence[str],
    pair_idx: tuple[np.ndarray, np.ndarray],
    pair_missing: np.ndarray,
    segment_pairs: int,
) -> BlockPlan:
    """Blocks for the d0 of `baseline_ids` and the pairs (targets[t], examples[e]) for
    (t, e) in `pair_idx` (int arrays [m]); `baseline_missing` [len(baseline_ids)] and
    `pair_missing` [m] (bool) say what the store lacks. Blocks of d0 come first."""
    if segment_pairs < 1:
        raise ValueError(f"segment_pairs must be >= 1, got {segment_pairs}")
    blocks: list[Block] = []
    order = np.argsort(np.asarray(baseline_ids, dtype=object), kind="stable") if len(baseline_ids) else []
    ids = [baseline_ids[k] for k in order]
    missing = np.asarray(baseline_missing, dtype=bool)[order] if len(ids) else np.zeros(0, bool)
    for start in range(0, len(ids), segment_pairs):
        chunk = ids[start : start + segment_pairs]
        todo = missing[start : start + segment_pairs]
        if todo.any():
            keep = tuple(i for i, m in zip(chunk, todo) if m)
            blocks.append(Block(_block_id(fingerprint, "baselines", chunk), "baselines", keep, None, len(chunk)))
    t_idx, e_idx = (np.asarray(a, dtype=np.int64) for a in pair_idx)
    by_example = np.lexsort((t_idx, e_idx))
    t_idx, e_idx = t_idx[by_example], e_idx[by_example]
    pair_missing = np.asarray(pair_missing, dtype=bool)[by_example]
    for start in range(0, len(t_idx), segment_pairs):
        todo = pair_missing[start : start + segment_pairs]
        if not todo.any():
            continue
        ts, es = t_idx[start : start + segment_pairs], e_idx[start : start + segment_pairs]
        keys = [f"{targets[t]}:{examples[e]}" for t, e in zip(ts.tolist(), es.tolist())]
        blocks.append(Block(_block_id(fingerprint, "pairs", keys), "pairs",
                            tuple(targets[t] for t in ts[todo].tolist()),
                            tuple(examples[e] for e in es[todo].tolist()), len(keys)))
    return BlockPlan(blocks, len(ids), len(t_idx), int(missing.sum()), int(pair_missing.sum()))


@dataclass(frozen=True)
class _Text:
    id: str
    prompt: str
    response: str


def block_texts(block: Block, samples: Mapping[str, object]) -> dict[str, tuple[str, str]]:
    """{id: (prompt, response)} of every sample the block reads (what a worker needs)."""
    return {i: (samples[i].prompt, samples[i].response) for i in block.sample_ids()}


def score_block(scorer, block: Block, texts: Mapping[str, tuple[str, str]],
                progress: Callable[[int], None] | None = None) -> np.ndarray:
    """The worker step: distances [len(block)] (float64) of one block with `scorer` (anything
    with `score_pairs`); texts = block_texts(block, ...)."""
    objects = {i: _Text(i, *texts[i]) for i in block.sample_ids()}
    if block.kind == "baselines":
        targets = [objects[i] for i in block.targets]
        return scorer.score_pairs(targets, [], [(k, None) for k in range(len(targets))], progress)
    target_ids = sorted(set(block.targets))
    example_ids = sorted(set(block.examples))
    t_pos = {i: k for k, i in enumerate(target_ids)}
    e_pos = {i: k for k, i in enumerate(example_ids)}
    pairs = [(t_pos[t], e_pos[e]) for t, e in zip(block.targets, block.examples)]
    return scorer.score_pairs([objects[i] for i in target_ids], [objects[i] for i in example_ids],
                              pairs, progress)


class ScoreWorker:
    """An executor worker that scores blocks: built once per process from a ScorerSpec (or
    around an existing scorer), called with (block, texts) items."""

    def __init__(self, spec=None, scorer=None) -> None:
        self.scorer = scorer if scorer is not None else spec.build()

    def __call__(self, item: tuple[Block, Mapping[str, tuple[str, str]]],
                 progress: Callable[[int], None] | None = None) -> np.ndarray:
        block, texts = item
        return score_block(self.scorer, block, texts, progress)
