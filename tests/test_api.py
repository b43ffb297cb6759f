"""delift_dvc.api: score/select on records in memory give what the CLI gives on the same file."""

from __future__ import annotations

import json

import pytest

from delift_dvc import api
from delift_dvc.errors import InputError
from tests.test_cli_files import alpaca, run_cli, write_jsonl


def test_api_on_records_matches_the_cli_on_the_file(tmp_path, tiny_model_dir):
    records = alpaca(8)
    common = {"model": str(tiny_model_dir), "dtype": "float32"}
    counts = api.score(records, store=str(tmp_path / "api-store"), budget=3, **common)
    assert counts["baselines_scored"] == 8 and counts["pairs_scored"] == 64
    again = api.score(records, store=str(tmp_path / "api-store"), budget=3, **common)
    assert again["pairs_scored"] == 0 and again["pairs_reused"] == 64  # nothing scored twice
    chosen = api.select(records, store=str(tmp_path / "api-store"), budget=3, **common)

    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    flags = ["--model", tiny_model_dir, "--dtype", "float32", "--budget", "3"]
    run_cli("score", pool, "--store", tmp_path / "cli-store", *flags)
    run_cli("select", pool, "--store", tmp_path / "cli-store", *flags, "--out", tmp_path / "out.jsonl",
            "--summary", tmp_path / "summary.json")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert chosen["ids"] == summary["ids"] and chosen["gains"] == summary["gains"] and len(chosen["ids"]) == 3
    assert chosen["samples"] == [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert chosen["data"] == "<records>" and chosen["objective"] == summary["objective"]


def test_api_refuses_an_unknown_option_and_checks_values(tmp_path):
    with pytest.raises(InputError, match="option 'budgett': unknown"):
        api.select(alpaca(3), budgett=2, params_path=tmp_path / "none.yaml")
    with pytest.raises(InputError, match="selection.budget"):
        api.select(alpaca(3), method="random", budget=0.0, params_path=tmp_path / "none.yaml")
    with pytest.raises(InputError, match="^--budget 5: more than the 3 samples"):
        api.select(alpaca(3), method="random", budget=5, params_path=tmp_path / "none.yaml")


def test_file_mode_groups_by_params_data_group_by(tmp_path):
    """params.yaml's data.group_by sets file mode's groups too (its composition and strata)."""
    import yaml

    records = [{**r, "task": "a" if k < 6 else "b"} for k, r in enumerate(alpaca(8))]
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"data": {"group_by": "task"}}))
    chosen = api.select(records, method="stratified_random", budget=4, params_path=params)
    assert {row["group"]: row["pool"] for row in chosen["composition"]} == {"a": 6, "b": 2}
    assert {row["group"]: row["selected"] for row in chosen["composition"]} == {"a": 2, "b": 2}  # auto: balanced
    chosen = api.select(records, method="stratified_random", budget=4, allocation="proportional", params_path=params)
    assert {row["group"]: row["selected"] for row in chosen["composition"]} == {"a": 3, "b": 1}


def test_nll_distance_is_its_own_scorer_in_the_store(tmp_path, tiny_model_dir):
    """scoring.distance nll scores under another fingerprint: nothing reused from l2's values."""
    records = alpaca(5)
    common = {"model": str(tiny_model_dir), "dtype": "float32", "store": str(tmp_path / "store"), "budget": 2}
    l2 = api.score(records, **common)
    nll = api.score(records, distance="nll", **common)
    assert l2["scorer"] != nll["scorer"] and nll["pairs_scored"] == 25 and nll["pairs_reused"] == 0
    assert len(api.select(records, distance="nll", **common)["ids"]) == 2


def test_auto_allocation_is_proportional_across_the_clusters_of_a_single_group(tmp_path, tiny_model_dir):
    """allocation auto (the default) balances the data's groups but not the MiniLM clusters that
    stand in for them when the pool is one group: those keep the proportional allocation, unless
    balanced is asked for."""
    records = alpaca(24)  # one file, no group_by: 3 clusters (at most one per 8 samples)
    common = {"model": str(tiny_model_dir), "dtype": "float32", "store": str(tmp_path / "store"), "budget": 6,
              "params_path": tmp_path / "none.yaml"}
    api.score(records, **common)
    auto = api.select(records, **common)
    assert auto["params"]["strata_from"] == "clusters" and "allocation" not in auto["params"]
    forced = api.select(records, allocation="balanced", **common)
    assert forced["params"]["strata_from"] == "clusters" and forced["params"]["allocation"] == "balanced"
