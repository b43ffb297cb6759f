"""The three facility-location objectives and the checks both greedy solvers share.

* ``fl``:   f(A)   = sum_i max(0, max_{j in A} K[i, j])
* ``flmi``: I(A;Q) = sum_i max(0, min(max_{j in A} K[i, j], eta * max_q Kq[i, q]))
* ``flcg``: f(A|P) = sum_i max(max_{j in A} K[i, j] - nu * max_p Kp[i, p], 0)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["OBJECTIVES", "as_kernel", "check_objective", "check_factor", "dense_blocks"]

OBJECTIVES = ("fl", "flmi", "flcg")


def check_objective(objective: str, query_kernel: object, private_kernel: object) -> None:
    """ValueError unless `objective` is known and gets exactly the extra kernel it reads."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if query_kernel is not None and objective != "flmi":
        raise ValueError(f"query_kernel is only used by objective 'flmi', not {objective!r}")
    if private_kernel is not None and objective != "flcg":
        raise ValueError(f"private_kernel is only used by objective 'flcg', not {objective!r}")
    if objective == "flmi" and query_kernel is None:
        raise ValueError("query_kernel is required for objective 'flmi'")


def check_factor(name: str, value: object) -> float:
    """`value` (eta or nu) as a float; ValueError unless it is a finite real number."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
    if not ok or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def as_kernel(x: object, name: str, n_rows: int | None = None) -> np.ndarray:
    """2-D float32/float64 view of ``x`` (copied only for other dtypes); rejects NaN/inf."""
    k = np.asarray(x)
    if k.ndim != 2 or k.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a 2-D numeric array, got shape {k.shape} dtype {k.dtype}")
    if n_rows is not None and k.shape[0] != n_rows:
        raise ValueError(f"{name} has {k.shape[0]} rows but kernel has {n_rows}")
    if k.dtype not in (np.float32, np.float64):
        k = k.astype(np.float64)
    # min/max propagate NaN and need no n x n temporary (isfinite(k).all() would)
    lo, hi = (float(k.min()), float(k.max())) if k.size else (0.0, 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if max(-lo, hi) * k.shape[0] > 1e300:
        raise ValueError(f"{name} values are too large: sums over its rows would overflow")
    return k


def _row_max_scaled(x: object, n_t: int, name: str, factor: object, fname: str) -> np.ndarray:
    """factor * max over the columns of ``x`` per row, float64 [n_t] (0 when x has no columns)."""
    factor = check_factor(fname, factor)
    k = as_kernel(x, name, n_t)
    return factor * (k.max(axis=1).astype(np.float64) if k.shape[1] else np.zeros(n_t))


def dense_blocks(kernel, objective, query_kernel, eta, private_kernel, nu):
    """Validated dense inputs of the greedy: (K, base [n_t] float64 starting ``cur``, cap [n_t] float64 or None) after validation."""
    check_objective(objective, query_kernel, private_kernel)
    k = as_kernel(kernel, "kernel")
    base, cap = np.zeros(k.shape[0]), None
    if objective == "flmi":
        cap = _row_max_scaled(query_kernel, k.shape[0], "query_kernel", eta, "eta")
    elif private_kernel is not None:
        base = _row_max_scaled(private_kernel, k.shape[0], "private_kernel", nu, "nu")
    return k, base, cap
