"""The balanced allocation (selection.allocation: balanced) against its definition: the quota
vector with the smallest sum of squares under quota <= size, found by enumerating every vector;
the two-level quotas of label strata; stratified random and stratified DELIFT honouring it; the
bad inputs naming the key."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from delift_dvc.errors import ArgumentError, InputError
from delift_dvc.selection.balance import allocate, balanced_quotas, resolve_allocation
from delift_dvc.selection.planning import plan_selection, run_plan
from delift_dvc.selection.spec import SelectionSpec
from delift_dvc.selection.strata import stratified_random
from delift_dvc.selection.stratified import select_stratified, stratum_quotas


def most_equal(sizes: list[int], n_pick: int) -> list[int]:
    """Every quota vector with 0 <= q <= size summing to n_pick; the one with the smallest sum of
    squares, ties to the vector that gives the larger parts more (then the lower parts)."""
    best = None
    for q in itertools.product(*[range(s + 1) for s in sizes]):
        if sum(q) != n_pick:
            continue
        by_size = tuple(-q[k] for k in sorted(range(len(sizes)), key=lambda k: (-sizes[k], k)))
        key = (sum(x * x for x in q), by_size)
        if best is None or key < best[0]:
            best = (key, list(q))
    return best[1]


@pytest.mark.parametrize("sizes", [[5, 7, 2], [1, 10, 10], [3, 3, 3, 3], [9, 1, 4, 2, 6], [0, 4, 2], [8]])
def test_balanced_quotas_are_the_most_equal_vector(sizes):
    labels = np.repeat(np.arange(len(sizes)), sizes)
    for n_pick in range(sum(sizes) + 1):
        assert balanced_quotas(labels, n_pick).tolist() == most_equal(sizes, n_pick), n_pick


def test_balanced_quotas_by_hand():
    labels = np.array([0] * 5 + [1] * 7 + [2] * 2)
    assert balanced_quotas(labels, 5).tolist() == [2, 2, 1]   # 5 // 3 = 1 each, then the two largest
    assert balanced_quotas(labels, 9).tolist() == [3, 4, 2]   # c full at 2; 7 left for a and b
    assert balanced_quotas(labels, 2).tolist() == [1, 1, 0]   # fewer picks than parts: the largest, b then a
    with pytest.raises(ValueError, match="15 picks from 14"):
        balanced_quotas(labels, 15)
    with pytest.raises(ArgumentError, match="allocation"):
        allocate(labels, 3, "equal")
    assert allocate(labels, 5).tolist() == [2, 2, 1] and allocate(labels, 9).tolist() == [3, 5, 1]


def test_stratum_quotas_balance_the_groups_then_split_each_group_by_label():
    # group g (10 samples: labels yes 6, no 4), group h (3), group k (2)
    groups = ["g"] * 10 + ["h"] * 3 + ["k"] * 2
    strata = ["g=yes"] * 6 + ["g=no"] * 4 + ["h"] * 3 + ["k"] * 2
    names = sorted(set(strata))  # g=no, g=yes, h, k
    labels = np.array([names.index(s) for s in strata])
    # 9 picks: balanced over groups 3 / 3 / 2 ... k full at 2, 7 left for g and h: h full at 3, g 4
    q = dict(zip(names, stratum_quotas(labels, 9, "balanced", groups).tolist()))
    assert q == {"g=no": 2, "g=yes": 2, "h": 3, "k": 2}  # g's 4 split 6:4 -> 2.4 / 1.6 -> yes 2, no 2 (remainder)
    q = dict(zip(names, stratum_quotas(labels, 6, "balanced", groups).tolist()))
    assert q == {"g=no": 1, "g=yes": 1, "h": 2, "k": 2}
    assert stratum_quotas(labels, 9, "proportional").tolist() == [2, 4, 2, 1]  # 2.4, 3.6, 1.8, 1.2 by remainders
    with pytest.raises(ValueError, match="more than one group"):
        stratum_quotas(np.array([0, 0]), 1, "balanced", ["g", "h"])
    with pytest.raises(ValueError, match="group of every sample"):
        stratum_quotas(labels, 3, "balanced", None)


def test_stratified_random_balanced_draws_the_balanced_counts():
    ids = [f"{k:02d}" for k in range(20)]
    groups = ["a"] * 12 + ["b"] * 6 + ["c"] * 2
    group = dict(zip(ids, groups))
    for budget, expected in ((6, {"a": 2, "b": 2, "c": 2}), (10, {"a": 4, "b": 4, "c": 2}),
                             (2, {"a": 1, "b": 1}), (16, {"a": 8, "b": 6, "c": 2})):
        subset = stratified_random(ids, groups, budget, seed=3, allocation="balanced")
        assert Counter(group[i] for i in subset.ids) == Counter(expected)
        assert subset.params["allocation"] == "balanced"
    assert "allocation" not in stratified_random(ids, groups, 6, seed=3).params  # the old record, unchanged


@pytest.mark.parametrize("temperature", [None, 0.0, 1.0])
def test_stratified_delift_balanced_takes_the_balanced_quota_of_each_stratum(temperature):
    rng = np.random.default_rng(7)
    groups = ["g"] * 10 + ["h"] * 3 + ["k"] * 2
    strata = ["g=yes"] * 6 + ["g=no"] * 4 + ["h"] * 3 + ["k"] * 2
    ids = [f"s{k:02d}" for k in rng.permutation(15)]
    K = rng.normal(size=(15, 15))
    got = select_stratified(ids, K, 9, strata, temperature=temperature, seed=2, allocation="balanced", groups=groups)
    where = dict(zip(ids, strata))
    assert Counter(where[i] for i in got.ids) == Counter({"g=no": 2, "g=yes": 2, "h": 3, "k": 2})
    assert got.params["allocation"] == "balanced"
    # the allocation moves quotas and nothing else: inside each stratum the greedy and the
    # independent draw rank the candidates the same way, so the stratum's picks under one quota
    # are the first picks of the other (the proportional quotas: g=no 2, g=yes 4, h 2, k 1)
    prop = select_stratified(ids, K, 9, strata, temperature=temperature, seed=2)
    assert "allocation" not in prop.params
    for s in set(strata):
        mine, theirs = [i for i in got.ids if where[i] == s], [i for i in prop.ids if where[i] == s]
        short, long = sorted((mine, theirs), key=len)
        assert set(short) <= set(long) and len(long) > 0, s


def test_run_plan_passes_the_allocation_and_the_groups():
    ids = [f"{k:02d}" for k in range(12)]
    groups = ["a"] * 8 + ["b"] * 2 + ["c"] * 2
    plan = plan_selection(ids, 6)
    K = np.random.default_rng(0).normal(size=(12, 12))
    spec = SelectionSpec(strata="group", temperature=1.0, allocation="balanced")
    got = run_plan(plan, spec, K, strata=groups, strata_groups=groups)
    group = dict(zip(ids, groups))
    assert Counter(group[i] for i in got.ids) == Counter({"a": 2, "b": 2, "c": 2})
    baseline = run_plan(plan, SelectionSpec(method="stratified_random", allocation="balanced"), None, groups=groups)
    assert Counter(group[i] for i in baseline.ids) == Counter({"a": 2, "b": 2, "c": 2})
    proportional = run_plan(plan, SelectionSpec(method="stratified_random"), None, groups=groups)
    assert Counter(group[i] for i in proportional.ids) == Counter({"a": 4, "b": 1, "c": 1})


def test_bad_allocation_names_the_key(tmp_path):
    from delift_dvc.config import load_params

    path = tmp_path / "params.yaml"
    for text, message in (("selection: {allocation: equal}\n", "selection.allocation 'equal': expected one of"),
                          ("selection: {allocation: balanced, method: random}\n",
                           "selection.allocation 'balanced': only used by selection.method stratified_random, or "
                           "delift and delift_se with selection.strata group or group_label, not random"),
                          ("selection: {allocation: balanced, strata: none}\n",
                           "selection.allocation 'balanced': only used by")):
        path.write_text(text)
        with pytest.raises(InputError, match=message.replace(".", r"\.")):
            load_params(path)
    for text in ("selection: {allocation: balanced}\n", "selection: {allocation: proportional, method: random}\n",
                 "selection: {allocation: auto, strata: none}\n",
                 "selection: {allocation: balanced, method: stratified_random}\n",
                 "selection: {allocation: balanced, method: delift_se, strata: group}\n",
                 "selection: {allocation: balanced, temperature: null}\n"):
        path.write_text(text)
        assert load_params(path).selection.allocation == text.split("allocation: ")[1].split(",")[0].split("}")[0]


def test_auto_allocation_balances_groups_and_not_clusters():
    assert resolve_allocation("auto", clusters=False) == "balanced"
    assert resolve_allocation("auto", clusters=True) == "proportional"
    for value in ("balanced", "proportional"):
        assert resolve_allocation(value, clusters=True) == resolve_allocation(value, clusters=False) == value
    with pytest.raises(ArgumentError, match="allocation"):
        resolve_allocation("equal", clusters=False)
