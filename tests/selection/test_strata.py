"""Stratified random: proportional allocation by largest remainders, a seeded draw per group."""

from __future__ import annotations

from collections import Counter

import pytest

from delift_dvc.selection.methods import random_subset
from delift_dvc.selection.planning import plan_selection, run_plan
from delift_dvc.selection.spec import SelectionSpec
from delift_dvc.selection.strata import stratified_random

IDS = [f"{k:02d}" for k in range(20)]
GROUPS = ["a"] * 10 + ["b"] * 7 + ["c"] * 3  # shares 0.5 / 0.35 / 0.15


@pytest.mark.parametrize("budget, expected", [
    (10, {"a": 5, "b": 4, "c": 1}),  # exact 5 / 3.5 / 1.5: the two .5 remainders tie -> the first name, b
    (4, {"a": 2, "b": 1, "c": 1}),   # 2 / 1.4 / 0.6: largest remainder c
    (2, {"a": 1, "b": 1}),           # 1 / 0.7 / 0.3: fewer picks than groups, the rule still holds
    (20, {"a": 10, "b": 7, "c": 3}),
])
def test_allocation_is_proportional_by_largest_remainders(budget, expected):
    subset = stratified_random(IDS, GROUPS, budget, seed=4)
    group = dict(zip(IDS, GROUPS))
    assert Counter(group[i] for i in subset.ids) == Counter(expected) and len(set(subset.ids)) == budget
    assert subset.method == "stratified_random" and subset.params["groups"] == 3


def test_seeded_deterministic_order_free_and_one_group_is_uniform_random():
    a = stratified_random(IDS, GROUPS, 0.5, seed=3)
    b = stratified_random(list(reversed(IDS)), list(reversed(GROUPS)), 0.5, seed=3)
    assert a.ids == b.ids and a.ids != stratified_random(IDS, GROUPS, 0.5, seed=4).ids
    one = stratified_random(IDS, ["all"] * 20, 6, seed=9)
    assert one.ids == random_subset(IDS, 6, seed=9).ids


def test_draws_inside_a_group_are_uniform():
    """Over many seeds every member of a group is drawn about equally often (chi-square)."""
    counts = Counter()
    for seed in range(3000):
        counts.update(i for i in stratified_random(IDS, GROUPS, 4, seed=seed).ids if i in IDS[17:])
    observed = [counts[i] for i in IDS[17:]]  # group c: 1 pick of 3 members per draw
    expected = 3000 / 3
    chi2 = sum((o - expected) ** 2 / expected for o in observed)
    assert chi2 < 13.8, observed  # p = 0.001 at 2 degrees of freedom


def test_run_plan_needs_the_groups_of_the_ground():
    plan = plan_selection(IDS, 0.25)
    picked = run_plan(plan, SelectionSpec(method="stratified_random", seed=1), None, groups=GROUPS)
    assert picked.ids == stratified_random(IDS, GROUPS, 5, seed=1).ids
    with pytest.raises(ValueError, match="needs the group of every ground sample"):
        run_plan(plan, SelectionSpec(method="stratified_random"), None)
