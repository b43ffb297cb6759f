"""The LM utility read from the store: UF = d0 - d, computed here and nowhere else.

`UF[i, j] = d0[i] - d[i | j]`: how much example j, shown as a one-shot example, lowers target
i's teacher-forced distance (scoring.distance l2: unitless, in [-1, 1]; nll: the per-token
log-likelihood gain, nats/token).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from delift_dvc.errors import InputError
from delift_dvc.selection.sparse import SparseKernel
from delift_dvc.store import Store

__all__ = ["uf", "dense_utility", "sparse_utility"]


def uf(d0: np.ndarray, d: np.ndarray) -> np.ndarray:
    """UF = d0 - d elementwise, float64 (d0 broadcasts: pass d0[:, None] for a block)."""
    return np.asarray(d0, dtype=np.float64) - np.asarray(d, dtype=np.float64)


def _not_scored(store: Store, missing: int) -> InputError:
    return InputError(f"{store.root}: {missing} utility values are not scored yet for this scorer "
                      f"(run `delift-dvc score` first)")


def dense_utility(store: Store, fingerprint: str, targets: Sequence[str], examples: Sequence[str],
                  candidates: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """UF [len(targets), len(examples)] (float64) from the store; an InputError names how many
    values are missing when the block is incomplete. With `candidates` (target idx, example
    idx) only those pairs are required and every other entry is NaN."""
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
        raise _not_scored(store, missing)
    return uf(d0[:, None], d)


def sparse_utility(store: Store, fingerprint: str, targets: Sequence[str], examples: Sequence[str],
                   candidates: tuple[np.ndarray, np.ndarray]) -> SparseKernel:
    """UF over exactly the `candidates` (target idx, example idx), as a SparseKernel
    [len(targets), len(examples)] read without any dense array; an InputError names how many
    values are missing."""
    d0 = store.read_baselines(fingerprint, list(targets))
    t_idx, e_idx, d = store.read_pairs_sparse(fingerprint, list(targets), list(examples))
    ne = max(1, len(examples))
    wanted = np.unique(np.asarray(candidates[0], np.int64) * ne + np.asarray(candidates[1], np.int64))
    keep = np.isin(t_idx * ne + e_idx, wanted)
    missing = int(np.isnan(d0).sum()) + len(wanted) - int(keep.sum())
    if missing:
        raise _not_scored(store, missing)
    t_idx, e_idx, d = t_idx[keep], e_idx[keep], d[keep]
    return SparseKernel.from_pairs(t_idx, e_idx, uf(d0[t_idx], d), (len(targets), len(examples)))
