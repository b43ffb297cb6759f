"""Sparse candidate lists: each target's k nearest examples under a cheap kernel.

Neighbours come from the cosine similarity of sentence embeddings; a target that is itself among
the examples always keeps itself; ties go to the lower example index. Rows are processed in
chunks, so memory is O(chunk x examples + targets x k), never targets x examples. Selection
counts the entries that are not candidates as the value that scaling maps to 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CHUNK_ENTRIES = 1 << 23  # similarity entries per chunk of rows (64 MB in float64)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices [rows, min(k, m)] of each row's k largest scores, ties to the lower index,
    each row's indices sorted ascending. scores: [rows, m] (modified: not kept)."""
    rows, m = scores.shape
    keep = min(k, m)
    if keep == 0 or rows == 0:
        return np.zeros((rows, keep), np.int64)
    kth = -np.partition(-scores, keep - 1, axis=1)[:, keep - 1]  # the k-th largest per row
    above = scores > kth[:, None]
    tied = scores == kth[:, None]
    room = keep - above.sum(axis=1)  # how many of the tied values each row takes, lowest first
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= room[:, None]))
    return np.nonzero(chosen)[1].reshape(rows, keep).astype(np.int64)


def knn_candidates(
    ground: Sequence[str], examples: Sequence[str], similarity: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """(target_idx, example_idx) int64 arrays from a dense similarity [len(ground),
    len(examples)] (small inputs); see knn_from_vectors for the chunked form."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n, m = similarity.shape
    if (n, m) != (len(ground), len(examples)):
        raise ValueError("knn_candidates: similarity does not match ground x examples")
    scores = np.array(similarity, dtype=np.float64, copy=True)
    _self_first(scores, ground, {e: j for j, e in enumerate(examples)})
    picks = top_k(scores, k)
    return np.repeat(np.arange(n, dtype=np.int64), picks.shape[1]), picks.ravel()


def knn_from_vectors(ground: Sequence[str], examples: Sequence[str], ground_vectors: np.ndarray,
                     example_vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(target_idx, example_idx) int64 arrays [len(ground) x min(k, m)]: each target's k examples
    with the highest cosine similarity of unit-norm vectors [n, d] and [m, d], in row chunks.
    Ordered by target, then example."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n, m = len(ground), len(examples)
    ex = np.asarray(example_vectors, dtype=np.float64)
    column = {e: j for j, e in enumerate(examples)}
    chunk = max(1, CHUNK_ENTRIES // max(1, m))
    targets, picks = [], []
    for start in range(0, n, chunk):
        rows = np.asarray(ground_vectors[start : start + chunk], dtype=np.float64)
        scores = rows @ ex.T
        _self_first(scores, ground[start : start + chunk], column)
        chosen = top_k(scores, k)
        targets.append(np.repeat(np.arange(start, start + len(rows), dtype=np.int64), chosen.shape[1]))
        picks.append(chosen.ravel())
    if not targets:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(targets), np.concatenate(picks)


def _self_first(scores: np.ndarray, ground: Sequence[str], column: dict[str, int]) -> None:
    """Give each target that is also an example an infinite score for itself."""
    for i, target in enumerate(ground):
        j = column.get(target)
        if j is not None:
            scores[i, j] = np.inf
