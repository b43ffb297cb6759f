"""Pipeline stages without DVC: task-specific (FLMI), refresh, and the baseline methods."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from delift_dvc.config import SelectionParams
from delift_dvc.stages.select import run_select

from tests.stages.test_knn import alpaca, params_for, run_version


def test_target_set_selects_by_flmi_in_the_pipeline(tmp_path, tiny_model_dir):
    params = params_for(tmp_path, tiny_model_dir, "dense", 32)
    target = tmp_path / "task.jsonl"
    target.write_text("".join(json.dumps(r) + "\n" for r in alpaca(3, offset=40)))
    params = replace(params, data=replace(params.data, target_set=str(target)))
    first = run_version(params, alpaca(10))
    assert first["mode"] == "initial" and first["record"]["objective_name"] == "flmi"
    assert first["pairs_scored"] == 10 * 13 and first["baselines_scored"] == 10
    second = run_version(params, alpaca(12))
    assert second["mode"] == "refresh" and second["record"]["objective_name"] == "flmi"
    assert second["pairs_scored"] == 2 * 15 + 10 * 2  # only pairs touching the 2 new samples
    metrics = run_select(params)
    assert metrics["n_selected"] == 3 and metrics["objective_name"] == "flmi"


def test_refresh_mode_reselects_from_scratch(tmp_path, tiny_model_dir):
    params = params_for(tmp_path, tiny_model_dir, "dense", 32)
    run_version(params, alpaca(10))
    params = replace(params, selection=SelectionParams(mode="refresh"))
    again = run_version(params, alpaca(10)[2:] + alpaca(3, offset=30))
    assert again["mode"] == "refresh" and again["record"]["kept"] == []
    assert len(again["record"]["ids"]) == 3  # int(0.3 * 11)


def test_random_full_and_se_methods_score_nothing(tmp_path, tiny_model_dir):
    for method, n in (("random", 3), ("full", 10), ("delift_se", 3)):
        root = tmp_path / method
        params = params_for(root, tiny_model_dir, "dense", 32)
        params = replace(params, selection=SelectionParams(method=method))
        result = run_version(params, alpaca(10))
        assert result["pairs_scored"] == 0 and len(result["record"]["ids"]) == n
        assert run_select(params)["method"] == method
        assert len(Path(params.data.selected, "train.jsonl").read_text().splitlines()) == n
