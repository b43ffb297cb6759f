"""Exact greedy maximisation of facility-location objectives on a dense kernel (pure numpy).

Kernel ``K`` [n_targets, n_candidates]: row i is a target of the ground set V, column j a
candidate; values are unitless utilities, min-max scaled to [0, 1] by callers.  They should be
>= 0: every target's best-so-far ``cur[i]`` starts at 0, so negative values never count.

* ``fl``:   f(A)   = sum_i max(0, max_{j in A} K[i, j])
* ``flmi``: I(A;Q) = sum_i max(0, min(max_{j in A} K[i, j], eta * max_q Kq[i, q]))
* ``flcg``: f(A|P) = sum_i max(max_{j in A} K[i, j] - nu * max_p Kp[i, p], 0)

Gain of j: ``sum_i max(v[i, j] - cur[i], 0)``, v = K (flmi: min(K, cap)), ``cur`` = 0 (flcg:
nu * max_p Kp) raised to v[:, j] by each pick.  Every gain that is compared or reported is
*canonical*: float64 terms summed in one fixed order (row i into lane i % _LANES, each lane
sequentially by row, then the lanes sequentially), bit-identical on all code paths.  Rounded
sums are monotone, so a gain never grows when ``cur`` grows: stale values are upper bounds.
Lazy greedy evaluates the arg-max of its bounds ``ub`` until it is fresh (ties: lowest
index).  Bounds also come from estimates ``a`` of all gains, patched after each pick from the
rows whose ``cur`` changed (dense rows early, later a sparse residual of the entries still
above ``cur``), with a rigorous rounding-error bound ``e``: ``(a + e) * scale`` is never below
the canonical gain.  They are never reported; they keep fresh evaluations near one per pick.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from delift_dvc.selection.balance import Partition
from delift_dvc.selection.budget import resolve_budget
from delift_dvc.selection.objectives import OBJECTIVES, dense_blocks

__all__ = ["OBJECTIVES", "SelectionResult", "evaluate", "evaluate_dense", "maximize", "maximize_dense",
           "resolve_budget"]

OPTIMIZERS = ("lazy", "naive")

_LANES = 16  # lanes of the canonical sum (row i -> lane i % _LANES)
_U = 2.0**-53  # unit round-off of float64
_TINY = 2.0**-1060  # covers absolute rounding errors of subnormal results
_ROW_CHUNK = 32  # rows per dense patch chunk
_ENTRY_CHUNK = 1 << 14  # residual entries per sparse patch chunk
_SHRINK_MIN = 1 << 11  # sparse patches with fewer entries keep their stale entries
_COL_CHUNK = 64  # columns per gathered fresh-evaluation chunk
_REFRESH_ROWS = 0.4  # patch touching more than this share of rows -> full dense pass
_REFRESH_COLS = 0.15  # more than this share of candidates to re-evaluate -> full pass
_SPARSE_MAX_DENSITY = 0.04  # build the sparse residual once at most this share is live
_SPARSE_MIN_SIZE = 1 << 16  # ... and only for kernels with at least this many entries
_SAMPLE_ROWS = 64  # rows sampled to estimate the live density
_THREADS = max(1, min(4, os.cpu_count() or 1))  # numpy releases the GIL in big passes
_PAR_MIN = 1 << 21  # kernel entries below which a pass stays single-threaded


@dataclass(frozen=True)
class SelectionResult:
    """Greedy outcome: ``indices`` int64 [k] (columns of K, in pick order), ``gains``
    float64 [k] (marginal gain of each pick, utility units), ``objective`` = f(selected)."""

    indices: np.ndarray
    gains: np.ndarray
    objective: float


def _terms(block: np.ndarray, cur: np.ndarray, cap: np.ndarray | None, out: np.ndarray) -> None:
    """out[r, c] = max(v[r, c] - cur[r], 0) in float64, v = block (or min(block, cap[r]))."""
    np.copyto(out, block)  # exact widening; avoids slow mixed-dtype ufunc loops
    if cap is not None:
        np.minimum(out, cap[:, None], out=out)
    out -= cur[:, None]
    np.maximum(out, 0.0, out=out)


def _combine(lanes: np.ndarray) -> np.ndarray:
    """Sequential sum over the lane axis (0) of [_LANES, m]; -0.0 normalised to 0.0."""
    return np.cumsum(lanes, axis=0)[-1] + 0.0


def _parallel(fn, n: int, work: int) -> list:
    """[fn(lo, hi) for consecutive ranges covering range(n)], threaded when ``work`` is big."""
    parts = min(_THREADS, max(1, n // 256)) if work >= _PAR_MIN else 1
    cuts = [n * p // parts for p in range(parts + 1)]
    if parts == 1:
        return [fn(0, n)]
    with ThreadPoolExecutor(parts) as ex:
        return list(ex.map(fn, cuts[:-1], cuts[1:]))


def _full_gains(k: np.ndarray, cur: np.ndarray, cap: np.ndarray | None) -> np.ndarray:
    """Canonical gains of all candidates, float64 [n_c], streaming rows of ``k``."""
    n_t, n_c = k.shape

    def part(c0: int, c1: int) -> np.ndarray:
        acc = np.zeros((_LANES, c1 - c0))
        buf = np.empty((_LANES, c1 - c0))
        for r0 in range(0, n_t, _LANES):
            r1 = min(r0 + _LANES, n_t)
            t = buf[: r1 - r0]
            _terms(k[r0:r1, c0:c1], cur[r0:r1], None if cap is None else cap[r0:r1], t)
            acc[: r1 - r0] += t  # row r0 + l is added to lane l, rows in increasing order
        return _combine(acc)

    return np.concatenate(_parallel(part, n_c, k.size))


def _column_gains(k, cols, cur, cap):
    """Canonical gains of candidates ``cols`` (int [m]) -> (float64 [m], v float64 [n_t] of
    the candidate when m == 1 else None), v = K[:, j] (flmi: min(K[:, j], cap))."""
    n_t = k.shape[0]
    n_pad = -(-n_t // _LANES) * _LANES
    if len(cols) == 1:
        v = k[:, cols[0]].astype(np.float64)  # one strided gather
        if cap is not None:
            np.minimum(v, cap, out=v)
        t = np.zeros(n_pad)
        np.maximum(np.subtract(v, cur, out=t[:n_t]), 0.0, out=t[:n_t])
        return _combine(np.add.reduce(t.reshape(-1, _LANES, 1), axis=0)), v
    out = np.empty(len(cols))
    for c0 in range(0, len(cols), _COL_CHUNK):
        cc = cols[c0 : c0 + _COL_CHUNK]
        t = np.zeros((n_pad, len(cc)))
        _terms(k[:, cc], cur, cap, t[:n_t])
        # lane sums: sequential over row groups i // _LANES (reduction along a non-inner axis)
        lanes = np.add.reduce(t.reshape(n_pad // _LANES, _LANES, len(cc)), axis=0)
        out[c0 : c0 + len(cc)] = _combine(lanes)
    return out, None


class _Residual:
    """Per-row segments (start, length) of the kernel entries above their row threshold,
    a superset of the live ones; a patch shrinks the patched rows' segments in place."""

    def __init__(self, k: np.ndarray, thr: np.ndarray) -> None:
        n_t, n_c = k.shape

        def count(r0: int, r1: int) -> list:  # pass 1: entries per row
            return [np.count_nonzero(k[b:e] > thr[b:e, None], axis=1)
                    for b, e in ((b, min(b + 64, r1)) for b in range(r0, r1, 64))]

        counts = sum(_parallel(count, n_t, k.size), [np.zeros(0, np.int64)])
        self.length = np.concatenate(counts).astype(np.int64)
        self.start = np.cumsum(self.length) - self.length
        total = int(self.length.sum())
        self.cols, self.vals = np.empty(total, np.int32), np.empty(total, k.dtype)

        def fill(r0: int, r1: int) -> None:  # pass 2: write each block in place
            for b in range(r0, r1, 64):
                blk = k[b : min(b + 64, r1)]
                mask = blk > thr[b : b + len(blk), None]
                flat = np.flatnonzero(mask)
                sl = slice(self.start[b], self.start[b] + len(flat))
                np.remainder(flat, n_c, out=self.cols[sl], casting="unsafe")
                self.vals[sl] = blk.reshape(-1)[flat] if blk.flags.c_contiguous else blk[mask]

        _parallel(fill, n_t, k.size)

    def patch(self, rows, old, new, cap, n_c):
        """sum over ``rows`` of clip(K, old, new) - old per column, float64 [n_c]; big groups
        of rows then drop their entries that are no longer above the new threshold."""
        out = np.zeros(n_c)
        ends = np.cumsum(self.length[rows])
        # groups of rows with ~_ENTRY_CHUNK entries: small temporaries are reused by malloc
        cuts = np.searchsorted(ends, np.arange(1, ends[-1] // _ENTRY_CHUNK + 1) * _ENTRY_CHUNK)
        for g0, g1 in zip([0, *cuts.tolist()], [*cuts.tolist(), len(rows)]):
            if g1 > g0:
                sl = slice(g0, g1)
                self._patch(rows[sl], old[sl], new[sl], cap, out)
        return out

    def _patch(self, rows, old, new, cap, out):
        lens = self.length[rows]
        if not lens.all():  # the segment bookkeeping below needs non-empty rows
            nz = lens > 0
            rows, old, new, lens = rows[nz], old[nz], new[nz], lens[nz]
        total = int(lens.sum())
        if total == 0:
            return
        starts = self.start[rows]
        offs = np.cumsum(lens) - lens
        idx = np.arange(total) + np.repeat(starts - offs, lens)
        v, c = self.vals[idx], self.cols[idx]
        d = v.astype(np.float64)
        lo = np.repeat(old, lens)
        np.maximum(d, lo, out=d)
        np.minimum(d, np.repeat(new, lens), out=d)
        d -= lo
        out += np.bincount(c, weights=d, minlength=len(out))
        if total < _SHRINK_MIN:  # a few stale entries cost less than the bookkeeping
            return
        thr = _threshold(new, None if cap is None else cap[rows], self.vals.dtype)
        live = v > np.repeat(thr, lens)
        rank = np.cumsum(live)  # live entries up to and including each position
        end = rank[offs + lens - 1]
        new_len = np.diff(end, prepend=0)
        dest = (np.repeat(starts - (end - new_len), lens) + rank - 1)[live]
        self.vals[dest], self.cols[dest] = v[live], c[live]
        self.length[rows] = new_len


def _dense_patch(k, rows, old, new):
    """sum over ``rows`` of clip(K[r], old[r], new[r]) - old[r], float64 [n_c]."""

    def part(c0: int, c1: int) -> np.ndarray:
        d = np.zeros(c1 - c0)
        buf = np.empty((_ROW_CHUNK, c1 - c0))
        for s in range(0, len(rows), _ROW_CHUNK):
            o, nw = old[s : s + _ROW_CHUNK, None], new[s : s + _ROW_CHUNK, None]
            w = buf[: len(o)]
            np.copyto(w, k[rows[s : s + _ROW_CHUNK], c0:c1])
            np.minimum(np.maximum(w, o, out=w), nw, out=w)
            w -= o
            d += w.sum(axis=0)
        return d

    return np.concatenate(_parallel(part, k.shape[1], len(rows) * k.shape[1]))


def _threshold(cur: np.ndarray, cap: np.ndarray | None, dtype: np.dtype) -> np.ndarray:
    """thr [n] (kernel dtype, rounded down): entries that can have a positive term have K > thr."""
    x = cur if cap is None else np.where(cur < cap, cur, np.inf)
    y = x.astype(dtype)
    y[y > x] = np.nextafter(y[y > x], dtype.type(-np.inf))
    return y


def _naive_pick(k, base, cap, picks, blocked=None):
    """(index, gain, None) of the best candidate after ``picks`` (never a ``blocked`` one, bool
    [n_c]): all gains recomputed."""
    cur = base.copy()
    for j in picks:
        np.maximum(cur, k[:, j] if cap is None else np.minimum(k[:, j], cap), out=cur)
    g = _full_gains(k, cur, cap)
    g[picks] = -np.inf
    if blocked is not None:
        g[blocked] = -np.inf
    j = int(np.argmax(g))  # lowest index among the maxima
    return j, float(g[j]), None


class _Lazy:
    """State of the exact lazy greedy (see module docstring)."""

    def __init__(self, k, base, cap):
        self.k, self.cap, self.cur = k, cap, base.copy()
        n_t, n_c = k.shape
        self.gamma = 2.0 * (n_t + _LANES + 2) * _U  # |canonical - exact sum| <= gamma * sum
        self.scale = 1.0 + 4.0 * (n_t + _LANES + 8) * _U
        self.tiny = (n_t + _LANES + 8) * _TINY
        self.epoch = 0  # bumped whenever cur changes
        self.fresh = np.zeros(n_c, np.int64)  # epoch of ub's exact value; selected: 2**62
        self.resid = None
        self.check_density = k.size >= _SPARSE_MIN_SIZE
        self._refresh()

    def _refresh(self):
        """Canonical gains of all candidates; every bound becomes exact."""
        sel = self.fresh == 2**62
        self.a = _full_gains(self.k, self.cur, self.cap)
        self.e = self.gamma * self.a + self.tiny
        self.ub = self.a.copy()
        self.ub[sel] = -np.inf
        self.fresh[~sel] = self.epoch

    def _evaluate(self, cols):
        g, last = _column_gains(self.k, cols, self.cur, self.cap)
        self.ub[cols] = self.a[cols] = g
        self.e[cols] = self.gamma * g + self.tiny
        self.fresh[cols] = self.epoch
        return g, last

    def pick(self):
        """(index, canonical gain) of the exact greedy choice (largest, lowest index)."""
        last_j, last_v = -1, None
        while True:
            j = int(np.argmax(self.ub))  # lowest index among maxima
            if self.fresh[j] >= self.epoch:
                return j, float(self.ub[j]), (last_v if last_j == j else None)
            (f,), last_v = self._evaluate(np.array([j]))
            last_j = j
            self.ub[j] = -np.inf
            j2 = int(np.argmax(self.ub))
            self.ub[j] = f
            if self.ub[j2] < f or (self.ub[j2] == f and j2 > j):
                return j, float(f), last_v
            todo = (self.ub > f) | ((self.ub == f) & (np.arange(len(self.ub)) < j))
            todo = np.flatnonzero(todo & (self.fresh < self.epoch))
            if len(todo) > _REFRESH_COLS * len(self.ub):
                self._refresh()
            elif len(todo):
                self._evaluate(todo)

    def exclude(self, cols):
        """Never pick these columns (a full part of a partition constraint)."""
        self.fresh[cols] = 2**62
        self.ub[cols] = -np.inf

    def accept(self, j, col):
        """Select column j and update cur, bounds and the residual structure."""
        k, cap, cur = self.k, self.cap, self.cur
        self.fresh[j] = 2**62
        self.ub[j] = -np.inf
        v = col if col is not None else k[:, j].astype(np.float64)
        if col is None and cap is not None:
            np.minimum(v, cap, out=v)
        rows = np.flatnonzero(v > cur)
        if len(rows) == 0:
            return
        old, new = cur[rows], v[rows]
        self.epoch += 1
        if self.resid is None and len(rows) > _REFRESH_ROWS * k.shape[0]:
            cur[rows] = new
            self._refresh()
        else:
            if self.resid is not None:
                d = self.resid.patch(rows, old, new, cap, k.shape[1])
            else:
                d = _dense_patch(k, rows, old, new)
            cur[rows] = new
            cols = np.flatnonzero(d)
            d = d[cols]
            a, e = self.a[cols], self.e[cols]
            a_new = a - d
            # rounding of the patch terms, of the float terms vs clip form, and of a - d
            e += (2 * _U) * (4.0 * (np.abs(a) + e) + (len(rows) + 2.0) * d + np.abs(a_new))
            e += (len(rows) + 4.0) * _TINY
            self.a[cols], self.e[cols] = a_new, e
            self.ub[cols] = np.minimum(self.ub[cols], (a_new + e) * self.scale)
        if self.resid is None and self.check_density and (self.epoch <= 32 or self.epoch % 32 == 0):
            # switch to the sparse residual once few entries are still above cur (sampled)
            sample = np.unique(np.linspace(0, k.shape[0] - 1, _SAMPLE_ROWS).astype(np.int64))
            thr = _threshold(cur, cap, k.dtype)
            live = np.count_nonzero(k[sample] > thr[sample, None])
            if live <= _SPARSE_MAX_DENSITY * len(sample) * k.shape[1]:
                self.resid = _Residual(k, thr)


def maximize_dense(kernel: np.ndarray, budget: int | float, objective: str = "fl", *,
             query_kernel: np.ndarray | None = None, eta: float = 1.0,
             private_kernel: np.ndarray | None = None, nu: float = 1.0,
             optimizer: str = "lazy", stop_at_zero_gain: bool = False,
             partition: tuple[np.ndarray, np.ndarray] | None = None) -> SelectionResult:
    """Greedy subset of the columns of ``kernel`` [n_targets, n_candidates].

    ``budget``: count or fraction of n_candidates (:mod:`delift_dvc.selection.budget`; a count
    above n_candidates raises ValueError).  ``objective``:
    "fl", "flmi" (needs ``query_kernel`` [n_targets, |Q|], ``eta``) or "flcg" (optional
    ``private_kernel`` [n_targets, |P|], ``nu``).  Both optimizers return exactly the same
    picks and bit-identical gains (argmax gain, ties to the lowest index).  With
    ``stop_at_zero_gain`` a pick whose gain is <= 0 ends the selection early.
    ``partition`` = (labels int [n_candidates], quota int [n_parts]): a partition matroid, at
    most quota[p] picks with label p (and at most sum(quota) in all); the greedy takes the best
    candidate among the parts that still have room.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    k, base, cap = dense_blocks(kernel, objective, query_kernel, eta, private_kernel, nu)
    n_pick = resolve_budget(budget, k.shape[1])
    limit = Partition(partition, k.shape[1]) if partition is not None else None
    if limit is not None:
        n_pick = min(n_pick, limit.total)
    picks, gains = [], []
    state = _Lazy(k, base, cap) if n_pick and optimizer == "lazy" else None
    if state and limit is not None:
        state.exclude(np.flatnonzero(limit.blocked))
    for _ in range(n_pick):
        j, g, col = state.pick() if state else _naive_pick(k, base, cap, picks, limit and limit.blocked)
        if stop_at_zero_gain and not g > 0:
            break
        picks.append(j)
        gains.append(g)
        if state:
            state.accept(j, col)
        if limit is not None:
            full = limit.take(j)
            if state and full.size:
                state.exclude(full)
    g = np.asarray(gains, dtype=np.float64)
    return SelectionResult(np.asarray(picks, dtype=np.int64), g, float(g.sum()))


def evaluate_dense(kernel: np.ndarray, indices: np.ndarray, objective: str = "fl", *,
             query_kernel: np.ndarray | None = None, eta: float = 1.0,
             private_kernel: np.ndarray | None = None, nu: float = 1.0) -> float:
    """f(indices) (utility units, float64) for the selected columns ``indices`` (int [k])."""
    k, base, cap = dense_blocks(kernel, objective, query_kernel, eta, private_kernel, nu)
    idx = np.asarray(indices)
    bad = idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= k.shape[1])
    if idx.ndim != 1 or bad:
        raise ValueError(f"indices must be a 1-D integer array of columns in [0, {k.shape[1]}),"
                         f" got shape {idx.shape} dtype {idx.dtype}")
    best = np.full(k.shape[0], -np.inf)
    for c0 in range(0, idx.size, _COL_CHUNK):
        np.maximum(best, k[:, idx[c0 : c0 + _COL_CHUNK]].max(axis=1), out=best)
    if cap is not None:
        np.minimum(best, cap, out=best)
    return float(np.maximum(best - base, 0.0).sum())


maximize = maximize_dense  # the dense solver under its historical name (selection.maximize takes both)
evaluate = evaluate_dense
