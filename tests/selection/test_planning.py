"""The incremental rule, the stage functions and params validation (pure, fast)."""

from __future__ import annotations

import numpy as np
import pytest

from delift_dvc.config import load_params
from delift_dvc.errors import InputError
from delift_dvc.selection.planning import plan_selection, run_plan
from delift_dvc.selection.spec import SelectionSpec
from delift_dvc.selection.methods import continual, full_set, instruction_tuning, random_subset, task_specific
from delift_dvc.selection.submodular import evaluate, maximize

IDS = [f"{k:016x}" for k in range(10)]


def test_first_version_plans_facility_location_over_all():
    plan = plan_selection(IDS[::-1], 0.3)
    assert plan.mode == "initial" and plan.objective == "fl"
    assert plan.ground == IDS and plan.examples == IDS and plan.kept == []
    assert plan.counts == {"n_samples": 10, "n_new": 10, "n_kept": 0, "n_removed": 0}


def test_update_keeps_present_subset_and_grounds_on_new_samples():
    previous = (IDS[:8], [IDS[5], IDS[1], IDS[7]])  # version 1 and its subset in rank order
    data = [i for i in IDS if i != IDS[1]]  # IDS[1] removed, IDS[8], IDS[9] new
    plan = plan_selection(data, 0.5, previous=previous)
    assert plan.mode == "continual" and plan.objective == "flcg"
    assert plan.kept == [IDS[5], IDS[7]] and plan.extra == sorted(plan.kept)
    assert plan.ground == [IDS[8], IDS[9]]
    assert plan.examples == sorted([IDS[5], IDS[7], IDS[8], IDS[9]])
    assert plan.counts["n_new"] == 2 and plan.counts["n_removed"] == 1 and plan.counts["n_kept"] == 2


def test_removed_then_added_back_counts_as_new():
    v2 = plan_selection(IDS[1:], 0.3, previous=(IDS, [IDS[0], IDS[2]]))
    assert IDS[0] not in v2.ground and v2.kept == [IDS[2]]
    v3 = plan_selection(IDS, 0.3, previous=(IDS[1:], [IDS[2], IDS[4]]))
    assert v3.ground == [IDS[0]]


def test_refresh_and_target_set_select_from_scratch():
    previous = (IDS[:5], [IDS[0]])
    refresh = plan_selection(IDS, 0.3, previous=previous, refresh=True)
    assert refresh.mode == "refresh" and refresh.ground == IDS and refresh.kept == []
    task = plan_selection(IDS, 0.3, target_ids=["f" * 16])
    assert task.objective == "flmi" and task.extra == ["f" * 16]


def test_count_budget_is_the_total_subset_size_on_updates():
    plan = plan_selection(IDS, 5, previous=(IDS[:6], IDS[:3]))
    assert plan.budget == 2


def test_run_plan_puts_kept_first_and_picks_by_flcg():
    rng = np.random.default_rng(0)
    previous = (IDS[:6], [IDS[4], IDS[2]])
    plan = plan_selection(IDS, 0.5, previous=previous)
    block = rng.random((len(plan.ground), len(plan.examples)))
    subset = run_plan(plan, SelectionSpec(), block)
    assert subset.ids[:2] == [IDS[4], IDS[2]] and subset.gains[:2] == [0.0, 0.0]
    col = {e: k for k, e in enumerate(plan.examples)}
    expected = continual(plan.ground, block[:, [col[i] for i in plan.ground]],
                         block[:, [col[i] for i in plan.extra]], 0.5)
    assert subset.ids[2:] == expected.ids and len(expected.ids) == 2


def test_stage_functions_scale_jointly_and_match_maximize():
    rng = np.random.default_rng(1)
    uf = rng.normal(size=(10, 10)) * 0.1
    query = rng.normal(size=(10, 3)) * 0.1
    lo, hi = min(uf.min(), query.min()), max(uf.max(), query.max())
    res = task_specific(IDS, uf, query, 4, eta=1.0)
    direct = maximize((uf - lo) / (hi - lo), 4, objective="flmi", query_kernel=(query - lo) / (hi - lo))
    assert res.ids == [IDS[k] for k in direct.indices] and res.objective == pytest.approx(direct.objective)
    fl = instruction_tuning(IDS, uf, 0.3)
    scaled = (uf - uf.min()) / (uf.max() - uf.min())
    assert fl.objective == pytest.approx(evaluate(scaled, [IDS.index(i) for i in fl.ids]))
    assert len(fl.ids) == 3


def test_candidates_are_ordered_by_id_so_ties_go_to_the_smallest_id():
    ids = ["c" * 16, "a" * 16, "b" * 16]
    res = instruction_tuning(ids, np.ones((3, 3)), 1)
    assert res.ids == ["a" * 16]


def test_random_and_full_are_deterministic():
    assert random_subset(IDS, 0.3, seed=3).ids == random_subset(IDS[::-1], 0.3, seed=3).ids
    assert random_subset(IDS, 0.3, seed=3).ids != random_subset(IDS, 0.3, seed=4).ids
    assert full_set(IDS[::-1]).ids == IDS


@pytest.mark.parametrize("text, key", [
    ("selection:\n  budget: 0\n", "selection.budget"),
    ("selection:\n  method: magic\n", "selection.method"),
    ("selection:\n  bugdet: 0.3\n", "selection.bugdet"),
    ("scoring:\n  max_length: long\n", "scoring.max_length"),
    ("data: [1, 2]\n", "data"),
    ("selection: {budget: 0.3\n", "params.yaml:"),
    ("extra: 1\n", "extra"),
])
def test_bad_params_name_the_key(tmp_path, text, key):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        load_params(path)
    assert key in str(info.value) and "\n" not in str(info.value)


def test_shipped_params_load(tmp_path):
    from pathlib import Path

    params = load_params(Path(__file__).resolve().parents[2] / "params.yaml")
    assert params.data.train == "data/raw" and params.selection.budget == 0.3
