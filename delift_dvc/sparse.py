"""Sparse utility mode: score each target only against its k nearest examples.

Neighbours come from a cheap kernel (cosine similarity of sentence embeddings); a target that is
itself among the examples always keeps itself. The kernel built from the scored pairs leaves the
other entries missing (NaN), which selection counts as 0 after scaling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def knn_candidates(
    ground: Sequence[str], examples: Sequence[str], similarity: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(target_idx, example_idx) int64 arrays: for each ground target i, the k examples with the
    highest similarity[i, :] (ties to the lower index), always including i itself when it is
    an example. similarity: [len(ground), len(examples)]. Ordered by target, then example."""
    if k < 1:
        raise ValueError(f"utility.k must be >= 1, got {k}")
    n, m = similarity.shape
    if (n, m) != (len(ground), len(examples)):
        raise ValueError("knn_candidates: similarity does not match ground x examples")
    column = {e: j for j, e in enumerate(examples)}
    scores = np.array(similarity, dtype=np.float64, copy=True)
    for i, target in enumerate(ground):
        if target in column:
            scores[i, column[target]] = np.inf  # itself first
    keep = min(k, m)
    targets, picks = [], []
    for i in range(n):
        order = np.lexsort((np.arange(m), -scores[i]))[:keep]  # best first, lower index on ties
        targets.append(np.full(keep, i, dtype=np.int64))
        picks.append(np.sort(order).astype(np.int64))
    if not targets:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(targets), np.concatenate(picks)


def fill_missing(blocks: Sequence[np.ndarray], scaling: str) -> list[np.ndarray]:
    """Replace NaN (unscored) entries by the value that min-max `scaling` maps to 0: the
    minimum over all blocks (joint) or over the block itself (separate)."""
    blocks = [np.asarray(b) for b in blocks]
    if not any(b.size and np.isnan(b).any() for b in blocks):
        return blocks
    lows = [float(np.nanmin(b)) if b.size and not np.isnan(b).all() else np.inf for b in blocks]
    joint = min(lows) if np.isfinite(min(lows)) else 0.0
    filled = []
    for b, low in zip(blocks, lows):
        value = joint if scaling == "joint" or not np.isfinite(low) else low
        filled.append(np.where(np.isnan(b), value, b) if b.size else b)
    return filled
