"""Selection objectives computed from their definitions, straight from the store's Parquet files
(pyarrow only: neither the store's readers nor the selection code under test)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq


def stored_values(store: Path, scorer: str) -> tuple[dict, dict]:
    """(d0 by target, d by (target, example)) of `scorer`, read from the segment files."""
    base = pq.read_table(store / "baselines").to_pylist()
    pairs = pq.read_table(store / "pairs").to_pylist()
    d0 = {r["target"]: r["d0"] for r in base if r["scorer"] == scorer}
    d = {(r["target"], r["example"]): r["d"] for r in pairs if r["scorer"] == scorer}
    return d0, d


def objective(store: Path, scorer: str, ground: Sequence[str], extra: Sequence[str], chosen: Sequence[str],
              name: str, eta: float = 1.0, nu: float = 1.0) -> float:
    """f(chosen) with UF = d0 - d, the ground and extra blocks min-max scaled jointly:
    fl = sum_i max_j K; flmi = sum_i min(max_j K, eta max_q Kq); flcg = sum_i max(max_j K - nu max_p Kp, 0)."""
    d0, d = stored_values(store, scorer)
    uf = lambda cols: np.array([[d0[i] - d[(i, j)] for j in cols] for i in ground])  # noqa: E731
    k, kx = uf(list(ground)), uf(list(extra))
    both = np.concatenate([k.ravel(), kx.ravel()])
    lo, hi = both.min(), both.max()
    k, kx = (k - lo) / (hi - lo), (kx - lo) / (hi - lo)
    best = np.max(k[:, [list(ground).index(c) for c in chosen]], axis=1)
    if name == "fl":
        return float(np.maximum(best, 0).sum())
    if name == "flmi":
        return float(np.maximum(np.minimum(best, eta * kx.max(axis=1)), 0).sum())
    return float(np.maximum(best - nu * kx.max(axis=1), 0).sum())
