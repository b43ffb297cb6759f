"""The three facility-location objectives and the checks both greedy solvers share.

* ``fl``:   f(A)   = sum_i max(0, max_{j in A} K[i, j])
* ``flmi``: I(A;Q) = sum_i max(0, min(max_{j in A} K[i, j], eta * max_q Kq[i, q]))
* ``flcg``: f(A|P) = sum_i max(max_{j in A} K[i, j] - nu * max_p Kp[i, p], 0)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["OBJECTIVES", "check_objective", "check_factor"]

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
