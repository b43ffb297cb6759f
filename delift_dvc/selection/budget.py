"""The one budget rule, used by params validation, the CLI, the stages and `maximize`.

A budget is a fraction of the ground set (a float in (0, 1]) or a count of samples (an int):
- a fraction f of n candidates picks floor(f * n) (with a 1e-9 tolerance, so 0.29 of 100 is 29),
  but at least 1 when n >= 1: on a pool of 3 samples, 0.3 picks 1;
- a count c picks c; a count larger than the ground set is an error, never a silent "all".
In a continual update the ground set is the new samples: a fraction applies to them, a count is
the size the whole subset grows toward (kept samples count against it, and only new samples
can be added).
"""

from __future__ import annotations

import math

import numpy as np

from delift_dvc.errors import ArgumentError

__all__ = ["BudgetError", "check_budget", "resolve_budget", "continual_budget"]


class BudgetError(ArgumentError):
    """A budget that breaks the rule: the argument `budget` (renamed to the key or option
    the budget came from by the stage layer)."""

    def __init__(self, detail: str) -> None:
        super().__init__("budget", detail)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_budget(value: object) -> int | float:
    """`value` as a budget (int count >= 1 or float fraction in (0, 1]); BudgetError otherwise."""
    if _is_int(value):
        if value >= 1:
            return int(value)
        raise BudgetError(f"{value!r}: a count must be >= 1")
    if isinstance(value, (float, np.floating)) and not isinstance(value, (bool, np.bool_)):
        if 0.0 < value <= 1.0:  # rejects NaN
            return float(value)
        raise BudgetError(f"{value!r}: a fraction must be in (0, 1]")
    raise BudgetError(f"{value!r}: expected a fraction in (0, 1] or a count >= 1")


def resolve_budget(budget: int | float, n: int) -> int:
    """How many of `n` candidates to pick (see the module docstring); a count of 0 picks none."""
    if not _is_int(n) or n < 0:
        raise BudgetError(f"n must be a non-negative int, got {n!r}")
    if _is_int(budget) and budget == 0:
        return 0
    budget = check_budget(budget)
    if isinstance(budget, int):
        if budget > n:
            raise BudgetError(f"{budget}: more than the {n} samples to choose from")
        return budget
    return max(1, math.floor(budget * n + 1e-9)) if n > 0 else 0


def continual_budget(budget: int | float, n_new: int, n_kept: int, n_total: int) -> int:
    """Picks among `n_new` new samples in a continual update: a fraction of n_new, or a count
    minus the `n_kept` samples already in the subset (at most n_new); a count larger than the
    whole version (`n_total` samples) is an error."""
    budget = check_budget(budget)
    if isinstance(budget, float):
        return resolve_budget(budget, n_new)
    if budget > n_total:
        raise BudgetError(f"{budget}: more than the {n_total} samples to choose from")
    return min(max(0, budget - n_kept), n_new)
