"""compare refuses to start while the store holds values its dvc.lock entry does not record:
`dvc exp run` resets a `persist: true` output to its dvc.lock state before the stage runs, so
values written outside the pipeline (file mode, a copied store) would be deleted. Real git, real
DVC, a one-stage project whose store is such an output."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from delift_dvc.errors import InputError
from delift_dvc.experiments import runner

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
    (root / "params.yaml").write_text("store_dir: store\n")
    (root / "dvc.yaml").write_text(STAGE)
    for command in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                    ["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        subprocess.run(command, cwd=root, check=True, capture_output=True)


def test_compare_refuses_a_store_filled_outside_the_pipeline_and_keeps_it(tmp_path):
    project(tmp_path)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "filled.txt").write_text("values")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(["delift-dvc", "compare", "--methods", "random", "--budgets", "0.1", "--seeds", "0"],
                          cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()
    assert error == ["error: store: holds values dvc.lock does not record (written outside the pipeline); "
                     "`dvc exp run` would reset it to dvc.lock and lose them: run `dvc repro score` first"]
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
