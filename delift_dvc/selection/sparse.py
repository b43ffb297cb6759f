"""Sparse kernels and exact greedy facility location on them (O(nnz) memory, never n x n).

A SparseKernel holds, per target row, candidate column indices and values (CSR). Entries that
are not stored stand for the value that min-max scaling maps to 0: the kernels that selection
maximises are scaled to [0, 1], where a missing entry is exactly 0.

`maximize_sparse` returns exactly what `submodular.maximize` returns on the dense matrix with
those zeros filled in: the same picks (argmax gain, ties to the lowest index), bit-identical
gains and objective. Every gain is the same canonical float64 sum as the dense path (row i into
lane i % 16, each lane in row order, then the lanes in order); a missing entry's term is
max(0 - cur, 0) = 0, and adding 0.0 changes no sum, so the stored entries alone give the same
bits. The greedy is lazy: a heap of stale upper bounds (canonical sums never grow as `cur`
grows), re-evaluated until the top is fresh.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from delift_dvc.selection.balance import Partition
from delift_dvc.selection.budget import resolve_budget
from delift_dvc.selection.objectives import check_factor, check_objective
from delift_dvc.selection.submodular import SelectionResult

__all__ = ["SparseKernel", "maximize_sparse", "evaluate_sparse", "scale_sparse"]

_LANES = 16  # must equal submodular._LANES: the canonical sum's lane count


@dataclass(frozen=True)
class SparseKernel:
    """A [n_rows, n_cols] kernel in CSR form: row i's entries are columns indices[indptr[i]:
    indptr[i+1]] (sorted, unique) with values values[...] (float64). Missing entries: see the
    module docstring."""

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def from_pairs(cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                   shape: tuple[int, int]) -> "SparseKernel":
        """From (row, col, value) triples [m]; repeated (row, col) pairs are an error."""
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        values = np.asarray(values, np.float64)
        if not (len(rows) == len(cols) == len(values)):
            raise ValueError("from_pairs: rows, cols and values differ in length")
        n_rows, n_cols = shape
        if len(rows) and (rows.min() < 0 or rows.max() >= n_rows or cols.min() < 0 or cols.max() >= n_cols):
            raise ValueError(f"from_pairs: an index lies outside {shape}")
        order = np.lexsort((cols, rows))
        rows, cols, values = rows[order], cols[order], values[order]
        if len(rows) > 1 and np.any((rows[1:] == rows[:-1]) & (cols[1:] == cols[:-1])):
            raise ValueError("from_pairs: a (row, col) pair is given twice")
        indptr = np.zeros(n_rows + 1, np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
        return cls(indptr, cols, values, (int(n_rows), int(n_cols)))

    @classmethod
    def from_dense(cls, dense: np.ndarray, present: np.ndarray | None = None) -> "SparseKernel":
        """The entries of `dense` where `present` (default: all) is true."""
        dense = np.asarray(dense, np.float64)
        mask = np.ones(dense.shape, bool) if present is None else np.asarray(present, bool)
        rows, cols = np.nonzero(mask)
        return cls.from_pairs(rows, cols, dense[rows, cols], dense.shape)

    @property
    def nnz(self) -> int:
        return len(self.values)

    def rows(self) -> np.ndarray:
        """The row of each stored entry [nnz]."""
        return np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr))

    def with_values(self, values: np.ndarray) -> "SparseKernel":
        return SparseKernel(self.indptr, self.indices, np.asarray(values, np.float64), self.shape)

    def take(self, rows: Sequence[int], cols: Sequence[int]) -> "SparseKernel":
        """The sub-kernel [len(rows), len(cols)]: new row r is old row rows[r], new column c is old
        column cols[c] (a column not in `cols` is dropped)."""
        rows = np.asarray(rows, np.int64)
        cols = np.asarray(cols, np.int64)
        position = np.full(self.shape[1], -1, np.int64)
        position[cols] = np.arange(len(cols))
        counts = np.diff(self.indptr)[rows]
        starts = self.indptr[rows]
        entry = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(counts.sum())
        new_rows = np.repeat(np.arange(len(rows)), counts)
        new_cols = position[self.indices[entry]]
        keep = new_cols >= 0
        return SparseKernel.from_pairs(new_rows[keep], new_cols[keep], self.values[entry][keep],
                                       (len(rows), len(cols)))

    def stack_rows(self, other: "SparseKernel", weight: float = 1.0) -> "SparseKernel":
        """[self; weight * other]: other's rows appended below (same columns), [n + m, n_cols]."""
        if other.shape[1] != self.shape[1]:
            raise ValueError(f"stack_rows: {other.shape[1]} columns below {self.shape[1]}")
        indptr = np.concatenate([self.indptr, other.indptr[1:] + self.indptr[-1]])
        return SparseKernel(indptr, np.concatenate([self.indices, other.indices]),
                            np.concatenate([self.values, float(weight) * other.values]),
                            (self.shape[0] + other.shape[0], self.shape[1]))

    def row_max(self) -> np.ndarray:
        """max over each row of the dense kernel (missing entries count as 0), float64 [n_rows]."""
        out = np.zeros(self.shape[0])
        if self.nnz:
            np.maximum.at(out, self.rows(), self.values)
        return out

    def to_dense(self, fill: float = 0.0) -> np.ndarray:
        """The dense [n_rows, n_cols] array (for tests and small kernels only)."""
        out = np.full(self.shape, fill, np.float64)
        out[self.rows(), self.indices] = self.values
        return out


def scale_sparse(blocks: Sequence[SparseKernel], mode: str = "joint") -> list[SparseKernel]:
    """Min-max scale the stored values of sparse blocks to [0, 1] (joint: one min and max over
    all blocks; separate: each its own), so a missing entry is the scaled 0. Like
    scaling.minmax_scale, a constant input scales to all zeros; NaN/inf raise ValueError."""
    from delift_dvc.selection.scaling import SCALINGS

    if mode not in SCALINGS:
        raise ValueError(f"mode must be one of {SCALINGS}, got {mode!r}")
    ranges = []
    for k, b in enumerate(blocks):
        if b.nnz and not np.all(np.isfinite(b.values)):
            raise ValueError(f"blocks[{k}] contains NaN or infinite values")
        ranges.append((float(b.values.min()), float(b.values.max())) if b.nnz else None)
    present = [r for r in ranges if r is not None]
    joint = (min((r[0] for r in present), default=0.0), max((r[1] for r in present), default=0.0))
    out = []
    for b, r in zip(blocks, ranges):
        lo, hi = joint if mode == "joint" else (r or (0.0, 0.0))
        if not hi > lo:
            out.append(b.with_values(np.zeros(b.nnz)))
            continue
        v = (b.values - lo) / (hi - lo)
        out.append(b.with_values(np.clip(v, 0.0, 1.0)))
    return out


class _Columns:
    """Column-major view of a sparse kernel: for column j, its rows (ascending) and values."""

    def __init__(self, k: SparseKernel) -> None:
        rows = k.rows()
        order = np.lexsort((rows, k.indices))  # by column, then row
        self.rows = rows[order]
        self.lanes = self.rows % _LANES
        self.values = k.values[order]
        self.ptr = np.zeros(k.shape[1] + 1, np.int64)
        np.cumsum(np.bincount(k.indices, minlength=k.shape[1]), out=self.ptr[1:])

    def column(self, j: int) -> slice:
        return slice(self.ptr[j], self.ptr[j + 1])


def _canonical_gain(rows: np.ndarray, lanes: np.ndarray, v: np.ndarray, cur: np.ndarray) -> float:
    """sum_i max(v_i - cur_i, 0) over the column's stored rows, in the canonical order."""
    if len(rows) == 0:
        return 0.0
    terms = np.maximum(v - cur[rows], 0.0)
    acc = np.zeros(_LANES)
    np.add.at(acc, lanes, terms)  # unbuffered, in row order within each lane
    return float(np.cumsum(acc)[-1] + 0.0)


def prepare_sparse(kernel: SparseKernel, objective: str, query_kernel, eta, private_kernel, nu):
    check_objective(objective, query_kernel, private_kernel)
    if kernel.nnz and (not np.all(np.isfinite(kernel.values))):
        raise ValueError("kernel contains NaN or infinite values")
    n_rows = kernel.shape[0]
    base, cap = np.zeros(n_rows), None
    eta, nu = check_factor("eta", eta), check_factor("nu", nu)
    if objective == "flmi":
        if query_kernel.shape[0] != n_rows:
            raise ValueError(f"query_kernel has {query_kernel.shape[0]} rows but kernel has {n_rows}")
        cap = eta * query_kernel.row_max()
    elif private_kernel is not None:
        if private_kernel.shape[0] != n_rows:
            raise ValueError(f"private_kernel has {private_kernel.shape[0]} rows but kernel has {n_rows}")
        base = nu * private_kernel.row_max()
    return base, cap


def maximize_sparse(kernel: SparseKernel, budget: int | float, objective: str = "fl", *,
                    query_kernel: SparseKernel | None = None, eta: float = 1.0,
                    private_kernel: SparseKernel | None = None, nu: float = 1.0,
                    stop_at_zero_gain: bool = False,
                    partition: tuple[np.ndarray, np.ndarray] | None = None) -> SelectionResult:
    """Exact lazy greedy on a sparse kernel [n_targets, n_candidates] (values >= 0, missing =
    0): the same result as submodular.maximize on the dense equivalent (see module docstring),
    also under a ``partition`` constraint (labels, quota)."""
    base, cap = prepare_sparse(kernel, objective, query_kernel, eta, private_kernel, nu)
    n_pick = resolve_budget(budget, kernel.shape[1])
    limit = Partition(partition, kernel.shape[1]) if partition is not None else None
    if limit is not None:
        n_pick = min(n_pick, limit.total)
    cols = _Columns(kernel)
    values = cols.values if cap is None else np.minimum(cols.values, cap[cols.rows])
    cur = base.copy()

    def gain(j: int) -> float:
        s = cols.column(j)
        return _canonical_gain(cols.rows[s], cols.lanes[s], values[s], cur)

    heap = [(-gain(j), j, 0) for j in range(kernel.shape[1])]
    heapq.heapify(heap)
    epoch = 0
    picks, gains = [], []
    while len(picks) < n_pick and heap:
        neg, j, fresh = heapq.heappop(heap)
        if limit is not None and limit.blocked[j]:
            continue
        if fresh != epoch:
            heapq.heappush(heap, (-gain(j), j, epoch))
            continue
        g = -neg + 0.0
        if stop_at_zero_gain and not g > 0:
            break
        picks.append(j)
        gains.append(g)
        if limit is not None:
            limit.take(j)
        s = cols.column(j)
        rows = cols.rows[s]
        if len(rows):
            up = values[s] > cur[rows]
            if up.any():
                cur[rows[up]] = values[s][up]
                epoch += 1
    g = np.asarray(gains, dtype=np.float64)
    return SelectionResult(np.asarray(picks, dtype=np.int64), g, float(g.sum()))


def evaluate_sparse(kernel: SparseKernel, indices: np.ndarray, objective: str = "fl", *,
                    query_kernel: SparseKernel | None = None, eta: float = 1.0,
                    private_kernel: SparseKernel | None = None, nu: float = 1.0) -> float:
    """f(indices) for the selected columns, as submodular.evaluate on the dense equivalent."""
    base, cap = prepare_sparse(kernel, objective, query_kernel, eta, private_kernel, nu)
    chosen = np.zeros(kernel.shape[1], bool)
    chosen[np.asarray(indices, np.int64)] = True
    # a row's best over the chosen columns: its stored values there, and 0 if it lacks one
    rows = kernel.rows()
    sel = chosen[kernel.indices]
    stored_per_row = np.bincount(rows[sel], minlength=kernel.shape[0])
    lacks_one = stored_per_row < chosen.sum()
    best = np.where(lacks_one, 0.0, -np.inf)
    if sel.any():
        np.maximum.at(best, rows[sel], kernel.values[sel])
    if cap is not None:
        best = np.minimum(best, cap)
    return float(np.maximum(best - base, 0.0).sum())
