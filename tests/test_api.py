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
