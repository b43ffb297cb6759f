"""The one budget rule: fractions, counts, tiny pools, continual updates."""

from __future__ import annotations

import numpy as np
import pytest

from delift_dvc.selection.budget import BudgetError, check_budget, continual_budget, resolve_budget


def test_fraction_is_floor_but_at_least_one():
    assert resolve_budget(0.3, 10) == 3
    assert resolve_budget(0.3, 7) == 2
    assert resolve_budget(0.3, 3) == 1  # tiny pool: at least one
    assert resolve_budget(0.3, 1) == 1
    assert resolve_budget(0.01, 7) == 1
    assert resolve_budget(1.0, 7) == 7
    assert resolve_budget(0.5, 0) == 0


def test_fraction_is_not_cut_by_float_error():
    assert 0.29 * 100 < 29  # the float product falls just below the integer
    assert resolve_budget(0.29, 100) == 29
    assert resolve_budget(0.57, 100) == 57
    for n in range(1, 400):
        for f in (0.1, 0.2, 0.3, 0.7, 0.29, 0.57):
            exact = (round(f * 100) * n) // 100
            assert resolve_budget(f, n) == max(1, exact)


def test_count_is_exact_and_never_silently_capped():
    assert resolve_budget(3, 10) == 3
    assert resolve_budget(np.int64(4), 10) == 4
    assert resolve_budget(10, 10) == 10
    assert resolve_budget(0, 10) == 0
    with pytest.raises(BudgetError, match="more than the 10 samples"):
        resolve_budget(11, 10)


@pytest.mark.parametrize("bad", [True, False, -1, 0.0, 1.5, -0.2, float("nan"), "3", None, [1]])
def test_bad_budgets(bad):
    with pytest.raises(BudgetError):
        check_budget(bad)
    with pytest.raises(BudgetError):
        resolve_budget(bad, 10)


def test_check_budget_rejects_zero_count():
    with pytest.raises(BudgetError, match=">= 1"):
        check_budget(0)
    assert check_budget(1) == 1 and isinstance(check_budget(1.0), float)


def test_continual_budget():
    assert continual_budget(0.3, 10, 5, 50) == 3  # a fraction of the new samples
    assert continual_budget(0.3, 1, 5, 50) == 1
    assert continual_budget(20, 10, 5, 50) == 10  # count: grow toward 20, only new can be added
    assert continual_budget(8, 10, 5, 50) == 3
    assert continual_budget(4, 10, 5, 50) == 0  # kept already exceed the count
    with pytest.raises(BudgetError, match="more than the 50"):
        continual_budget(51, 10, 5, 50)
