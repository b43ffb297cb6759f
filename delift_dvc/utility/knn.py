"""Sparse utility mode: score each target only against its k nearest examples.

Neighbours come from a cheap kernel (cosine similarity of sentence embeddings); a target that is
itself among the examples always keeps itself. Selection counts the unscored entries as the
value that scaling maps to 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAIR_MODES = ("dense", "knn")  # utility.pairs: every pair, or each target's k nearest examples


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
