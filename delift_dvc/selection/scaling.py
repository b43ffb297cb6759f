"""Min-max scaling of the utility kernel blocks that one selection reads (pure numpy).

A selection reads e.g. [K_data, K_private] (flcg) or [K_data, K_query] (flmi); their values
are utilities in arbitrary units and must be brought to [0, 1] before the facility-location
objectives of :mod:`delift_dvc.selection.submodular` compare them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["SCALINGS", "minmax_scale", "fill_missing"]

SCALINGS = ("joint", "separate")


def _float_dtype(a: np.ndarray) -> np.dtype:
    """Output dtype: the input's float dtype (float16/32/64), float32 for anything else."""
    return a.dtype if a.dtype.kind == "f" else np.dtype(np.float32)


def _range(a: np.ndarray, name: str) -> tuple[float, float] | None:
    """(min, max) of ``a`` in float64, None when empty; NaN -> ValueError."""
    if a.size == 0:
        return None
    lo, hi = float(a.min()), float(a.max())  # min/max propagate NaN
    if math.isnan(lo) or math.isnan(hi):
        raise ValueError(f"{name} contains NaN values")
    if math.isinf(lo) or math.isinf(hi):
        raise ValueError(f"{name} contains infinite values")
    return lo, hi


def _scale(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """New array (x - lo) / (hi - lo) in ``a``'s float dtype; all zeros when hi == lo."""
    out = np.zeros(a.shape, dtype=_float_dtype(a))
    if not hi > lo or a.size == 0:
        return out
    src, dst = (a.reshape(1), out.reshape(1)) if a.ndim == 0 else (a, out)
    step = max(1, (1 << 22) // (src.size // src.shape[0]))  # ~32 MB float64 per chunk
    for r0 in range(0, src.shape[0], step):  # float64 math without a full-size temporary
        blk = src[r0 : r0 + step].astype(np.float64)
        blk -= lo
        blk /= hi - lo
        np.clip(blk, 0.0, 1.0, out=blk)
        dst[r0 : r0 + step] = blk
    return out


def minmax_scale(blocks: Sequence[np.ndarray], mode: str = "joint") -> list[np.ndarray]:
    """Min-max scale utility blocks (any shapes, e.g. [K_data [n, n], K_query [n, |Q|]]).

    ``mode="joint"`` (default): one common min and max over the values of all blocks,
    ``(x - min) / (max - min)``, so the blocks stay comparable with each other.
    ``mode="separate"``: every block scaled by its own min and max (the DELIFT reference).
    Returns new arrays in [0, 1] (inputs untouched), dtype = the input's float dtype or
    float32 for integer/bool input.  A constant input (max == min) scales to all zeros.
    Empty blocks (a dimension of size 0) are returned empty and ignored for min/max.
    NaN or infinite values raise ValueError.
    """
    if mode not in SCALINGS:
        raise ValueError(f"mode must be one of {SCALINGS}, got {mode!r}")
    if isinstance(blocks, np.ndarray):
        raise ValueError("blocks must be a sequence of arrays, not a single array")
    arrays = []
    for i, b in enumerate(blocks):
        a = np.asarray(b)
        if a.dtype.kind not in "biuf":
            raise ValueError(f"blocks[{i}] must be numeric, got dtype {a.dtype}")
        arrays.append(a)
    ranges = [_range(a, f"blocks[{i}]") for i, a in enumerate(arrays)]
    if mode == "separate":
        return [_scale(a, *(r or (0.0, 0.0))) for a, r in zip(arrays, ranges)]
    present = [r for r in ranges if r is not None]
    lo = min((r[0] for r in present), default=0.0)
    hi = max((r[1] for r in present), default=0.0)
    return [_scale(a, lo, hi) for a in arrays]


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
