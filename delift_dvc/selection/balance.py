"""How a budget splits across parts, and a format-balanced budget for the greedy.

A budget splits across parts (groups, strata, clusters) in one of two ways
(`selection.allocation`): `proportional` to their size (largest remainders), which allocates like
the data, or `balanced`, as equal as the part sizes allow (water-filling: every part gets the same
count, a part smaller than that count all of its samples, and what they leave goes on being
shared equally by the others), which allocates like a target that weighs every part the same.

The format-balanced budget: the candidates are split into parts (clusters of their sentence
embeddings, found without any label), and the budget is split across the parts in proportion to
their size. The greedy then picks the best candidate among the parts that still have room: the
standard greedy for a monotone submodular function under a partition matroid (a 1/2
approximation).

Pure: vectors and labels in, labels and quotas out.
"""

from __future__ import annotations

import numpy as np

from delift_dvc.errors import ArgumentError

__all__ = ["Partition", "embedding_clusters", "quotas", "balanced_quotas", "allocate", "ALLOCATIONS",
           "AUTO_ALLOCATION", "resolve_allocation", "check_parts"]

ALLOCATIONS = ("proportional", "balanced")  # how allocate() splits a budget
AUTO_ALLOCATION = "auto"  # selection.allocation's default: balanced across groups, proportional across clusters


def embedding_clusters(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """k-means labels int64 [n] of the rows of `vectors` [n, d] (unit-norm sentence embeddings),
    numbered by their first member (label 0 holds row 0); min(k, n) clusters, k-means++ seeded
    by `seed`, run on one thread so the labels are the same on every machine."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"embedding_clusters: vectors must be 2-D, got shape {x.shape}")
    n = x.shape[0]
    k = min(int(k), n)
    if k <= 1:
        return np.zeros(n, dtype=np.int64)
    with threadpool_limits(limits=1):
        raw = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    found, first = np.unique(raw, return_index=True)
    relabel = np.zeros(int(found.max()) + 1, dtype=np.int64)
    relabel[found[np.argsort(first)]] = np.arange(found.size)  # by each cluster's first row
    return relabel[raw]


def quotas(labels: np.ndarray, n_pick: int) -> np.ndarray:
    """Picks per part, int64 [n_parts] (parts are labels 0..max): n_pick split in proportion to
    the part sizes by largest remainders (ties to the lower label), never above a part's size;
    the quotas sum to n_pick (ValueError when n_pick exceeds the number of candidates)."""
    labels = check_parts(labels, None)
    sizes = np.bincount(labels).astype(np.int64) if labels.size else np.zeros(0, np.int64)
    n = int(sizes.sum())
    if not 0 <= n_pick <= n:
        raise ValueError(f"quotas: {n_pick} picks from {n} candidates")
    if n == 0:
        return sizes
    exact = sizes * n_pick  # quota * n, in integers: no rounding before the remainders
    quota = exact // n
    remainder = exact - quota * n
    missing = n_pick - int(quota.sum())
    order = np.lexsort((np.arange(sizes.size), -remainder))  # largest remainder, then lower label
    quota[order[:missing]] += 1
    return quota


def balanced_quotas(labels: np.ndarray, n_pick: int) -> np.ndarray:
    """Picks per part, int64 [n_parts] (parts are labels 0..max): n_pick split as equally as the
    part sizes allow (the quota vector with the smallest sum of squares under quota <= size): every
    part not yet full gets the same count, round after round; the last picks, fewer than the parts
    left, go one each to the largest parts (ties to the lower label). ValueError when n_pick
    exceeds the number of candidates."""
    labels = check_parts(labels, None)
    sizes = np.bincount(labels).astype(np.int64) if labels.size else np.zeros(0, np.int64)
    n = int(sizes.sum())
    if not 0 <= n_pick <= n:
        raise ValueError(f"balanced_quotas: {n_pick} picks from {n} candidates")
    quota = np.zeros_like(sizes)
    left = int(n_pick)
    while left > 0:
        room = np.flatnonzero(quota < sizes)  # every part with room holds the same quota here
        level = left // room.size
        if level == 0:
            order = np.lexsort((room, -sizes[room]))  # largest part first, then lower label
            quota[room[order[:left]]] += 1
            break
        add = np.minimum(level, sizes[room] - quota[room])
        quota[room] += add
        left -= int(add.sum())
    return quota


def resolve_allocation(allocation: str, clusters: bool) -> str:
    """selection.allocation as a selection reads it: "auto" is "balanced" across the data's own
    groups (files, a group_by field) and "proportional" across the embedding clusters that stand
    in for groups (`clusters`): a cluster is no unit of a target, and balancing clusters would
    give outliers the weight of whole formats. ArgumentError for an unknown value."""
    if allocation == AUTO_ALLOCATION:
        return "proportional" if clusters else "balanced"
    if allocation not in ALLOCATIONS:
        raise ArgumentError("allocation", f"{allocation!r}: expected {AUTO_ALLOCATION} or one of "
                            f"{', '.join(ALLOCATIONS)}")
    return allocation


def allocate(labels: np.ndarray, n_pick: int, allocation: str = "proportional") -> np.ndarray:
    """Picks per part, int64 [n_parts], by `allocation` (ALLOCATIONS): :func:`quotas` or
    :func:`balanced_quotas`."""
    if allocation not in ALLOCATIONS:
        raise ArgumentError("allocation", f"{allocation!r}: expected one of {', '.join(ALLOCATIONS)}")
    return quotas(labels, n_pick) if allocation == "proportional" else balanced_quotas(labels, n_pick)


def check_parts(labels: object, n: int | None) -> np.ndarray:
    """labels as int64 [n] of values >= 0 (ValueError otherwise)."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or (arr.size and (arr.dtype.kind not in "iu" or arr.min() < 0)):
        raise ValueError(f"parts must be a 1-D array of labels >= 0, got shape {arr.shape} dtype {arr.dtype}")
    if n is not None and arr.size != n:
        raise ValueError(f"parts has {arr.size} labels but the kernel has {n} candidates")
    return arr.astype(np.int64, copy=False)


class Partition:
    """A partition-matroid constraint: candidate j has part labels[j]; part p takes at most
    quota[p] picks. ``blocked`` (bool [n_c]) marks the candidates whose part is full."""

    def __init__(self, partition: tuple[np.ndarray, np.ndarray], n_c: int):
        labels, quota = partition
        self.labels = check_parts(labels, n_c)
        left = np.asarray(quota)
        n_parts = int(self.labels.max()) + 1 if n_c else 0
        if left.ndim != 1 or left.size < n_parts or (left.size and (left.dtype.kind not in "iu" or left.min() < 0)):
            raise ValueError(f"partition quota must be a 1-D array of counts >= 0 for {n_parts} parts, "
                             f"got shape {left.shape} dtype {left.dtype}")
        self.left = left.astype(np.int64).copy()
        self.total = int(np.minimum(self.left[:n_parts], np.bincount(self.labels, minlength=n_parts)).sum())
        self.blocked = self.left[self.labels] == 0

    def take(self, j: int) -> np.ndarray:
        """Count pick j; the candidates newly blocked because its part is now full."""
        p = self.labels[j]
        self.left[p] -= 1
        if self.left[p] > 0:
            return np.zeros(0, dtype=np.int64)
        cols = np.flatnonzero((self.labels == p) & ~self.blocked)
        self.blocked[cols] = True
        return cols
