"""`dvc exp run` resets a `persist: true` output to its dvc.lock state before the stage runs, so
values written into the store outside the pipeline (file mode, a copied store) would be deleted.
compare links the store's segments into the shared pool first, where every run's score stage
finds them; without a pool it refuses while the store holds values dvc.lock does not record.
Real git, real DVC: a one-stage project whose store is such an output, and a real project filled
in file mode."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from delift_dvc.errors import InputError
from delift_dvc.experiments import runner
from tests.conftest import SHORT_P3, p3_records
from tests.helpers.projects import make_project, metrics, sh

STAGE = """stages:
  score:
    cmd: mkdir -p store && echo scored > store/segment.txt
    params:
    - store_dir
    outs:
    - store:
        persist: true
"""


def project(root: Path) -> None:
    (root / "params.yaml").write_text("store_dir: store\nscoring:\n  shared_store: null\n")
    (root / "dvc.yaml").write_text(STAGE)
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                    ["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        subprocess.run(command, cwd=root, check=True, capture_output=True)


def test_without_a_pool_compare_refuses_a_store_filled_outside_the_pipeline_and_keeps_it(tmp_path):
    project(tmp_path)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "filled.txt").write_text("values")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(["delift-dvc", "compare", "--methods", "random", "--budgets", "0.1", "--seeds", "0"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()
    assert error == ["error: store: holds values dvc.lock does not record (written outside the pipeline); "
                     "`dvc exp run` would reset it to dvc.lock and lose them: run `dvc repro score` first, "
                     "or set scoring.shared_store"]
    assert (tmp_path / "store" / "filled.txt").read_text() == "values"
    assert not (tmp_path / "reports" / "compare.csv").exists()


def test_a_store_recorded_by_dvc_repro_passes_and_a_later_addition_does_not(tmp_path, monkeypatch):
    project(tmp_path)
    monkeypatch.chdir(tmp_path)
    runner._check_store(Path("store"))  # no store yet: nothing to lose
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "filled.txt").write_text("values")
    subprocess.run(["dvc", "repro", "score"], check=True, capture_output=True)
    runner._check_store(Path("store"))  # dvc.lock records both files
    assert sorted(p.name for p in (tmp_path / "store").iterdir()) == ["filled.txt", "segment.txt"]
    (tmp_path / "store" / "later.txt").write_text("more values")
    with pytest.raises(InputError, match="run `dvc repro score` first"):
        runner._check_store(Path("store"))


def test_compare_keeps_a_store_filled_in_file_mode_through_the_shared_pool(tmp_path, shared_data, tiny_model_dir):
    records = p3_records(shared_data, SHORT_P3[:3], 6)
    root = make_project(tmp_path / "repo", records, {"model": str(tiny_model_dir), "dtype": "float32"},
                        data={"holdout": 0.25}, finetune={"epochs": 1, "batch_size": 4},
                        evaluate={"max_new_tokens": 4})
    sh("delift-dvc", "score", "data/raw/train.jsonl", "--store", "store", cwd=root)  # no dvc.lock entry
    done = sh("delift-dvc", "compare", "--methods", "delift", "--budgets", "0.5", "--seeds", "0", cwd=root)
    score = metrics(root, "score")  # the run's own score stage, after dvc exp run reset the store
    assert score["pairs_scored"] == 0 and score["baselines_scored"] == 0
    assert score["pairs_reused"] > 0 and score["baselines_reused"] == score["n_samples"]
    assert "segments of store linked into the shared store" in done.stdout
