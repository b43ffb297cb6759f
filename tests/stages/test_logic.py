"""The tool's code as a stage dependency: stage commands carry their logic version, a stale
number refuses to run, and `delift-dvc upgrade` makes `dvc repro` re-run exactly the stages
whose logic changed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from delift_dvc.stages.logic import LOGIC, upgrade_pipeline
from tests.helpers.projects import REPO, make_project, sh


def test_every_stage_command_states_this_releases_logic():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        command = stage["cmd"].split()[1]
        assert re.search(rf"--logic {LOGIC[command]}\b", stage["cmd"]), (name, stage["cmd"])


def test_upgrade_of_a_current_pipeline_changes_nothing(tmp_path):
    path = tmp_path / "dvc.yaml"
    path.write_bytes((REPO / "dvc.yaml").read_bytes())
    assert upgrade_pipeline(path) == ({}, [])
    assert path.read_bytes() == (REPO / "dvc.yaml").read_bytes()


def test_upgrade_rewrites_stale_and_missing_numbers_and_keeps_the_rest(tmp_path, monkeypatch):
    path = tmp_path / "dvc.yaml"
    path.write_text("stages:\n  a:\n    cmd: delift-dvc score --logic 1  # note\n"
                    "  b:\n    cmd: delift-dvc evaluate --initial\n  c:\n    cmd: python train.py --logic 1\n")
    monkeypatch.setitem(LOGIC, "score", 7)
    assert upgrade_pipeline(path).logic == {"score": (1, 7), "evaluate": (None, LOGIC["evaluate"])}
    assert path.read_text() == ("stages:\n  a:\n    cmd: delift-dvc score --logic 7  # note\n"
                                f"  b:\n    cmd: delift-dvc evaluate --initial --logic {LOGIC['evaluate']}\n"
                                "  c:\n    cmd: python train.py --logic 1\n")


def test_a_number_of_another_release_is_a_one_line_error_and_runs_nothing(tmp_path):
    done = subprocess.run(["delift-dvc", "ingest", "--logic", str(LOGIC["ingest"] + 1)], cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "newer delift-dvc (pip install -U delift-dvc)" in done.stderr
    assert done.stderr.startswith(f"error: dvc.yaml: `delift-dvc ingest --logic {LOGIC['ingest'] + 1}`")
    assert list(tmp_path.iterdir()) == []
    older = subprocess.run(["delift-dvc", "select", "--logic", "0"], cwd=tmp_path, capture_output=True, text=True)
    assert older.returncode == 2 and older.stderr.count("\n") == 1 and "run `delift-dvc upgrade`" in older.stderr


def test_missing_pipeline_file_names_it(tmp_path):
    with pytest.raises(Exception, match="dvc.yaml: not found"):
        upgrade_pipeline(tmp_path / "dvc.yaml")


def test_after_an_upgrade_dvc_reruns_only_the_stages_whose_logic_changed(tmp_path, tiny_model_dir, monkeypatch):
    records = [{"instruction": f"question {k}?", "output": f"answer {k}"} for k in range(8)]
    root = make_project(tmp_path / "repo", records, {"model": str(tiny_model_dir), "dtype": "float32"},
                        selection={"budget": 3})
    sh("dvc", "repro", "select", cwd=root)
    monkeypatch.setitem(LOGIC, "select", LOGIC["select"] + 1)  # a release whose select writes other results
    assert upgrade_pipeline(Path(root) / "dvc.yaml").logic == {"select": (LOGIC["select"] - 1, LOGIC["select"])}
    status = sh("dvc", "status", "ingest", "score", "select", cwd=root).stdout
    assert "select:" in status and "changed command" in status, status
    assert "score:" not in status and "ingest:" not in status, status


def test_a_pipeline_with_the_old_store_key_is_told_to_upgrade_and_upgrade_renames_it(tmp_path, tiny_model_dir):
    """`store` (a top-level key named like the store dependency, so `dvc exp show` filled its
    column with the dependency's hash) is `store_dir` since 0.3.0: an old project gets a one-line
    error naming the key, and `delift-dvc upgrade` renames it in params.yaml and in dvc.yaml,
    comments kept, after which the pipeline is up to date and nothing stored was touched."""
    records = [{"instruction": f"question {k}?", "output": f"answer {k}"} for k in range(8)]
    root = Path(make_project(tmp_path / "repo", records, {"model": str(tiny_model_dir), "dtype": "float32"},
                             selection={"budget": 3}))
    sh("dvc", "repro", "select", cwd=root)
    stored = {p: p.read_bytes() for p in sorted((root / "store").rglob("*")) if p.is_file()}
    params, pipeline = root / "params.yaml", root / "dvc.yaml"
    assert params.read_text().count("store_dir:") == 1 and "${store_dir}" in pipeline.read_text()
    current = {params: params.read_text(), pipeline: pipeline.read_text()}
    params.write_text(re.sub(r"^store_dir:", "store:", params.read_text(), flags=re.MULTILINE))  # a 0.2 project
    pipeline.write_text(pipeline.read_text().replace("${store_dir}", "${store}"))
    sh("git", "commit", "-qam", "a 0.2 project", cwd=root)
    old = subprocess.run(["delift-dvc", "select", "--logic", str(LOGIC["select"])], cwd=root,
                         capture_output=True, text=True)
    assert old.returncode == 2 and old.stderr.count("\n") == 1, old.stderr
    assert old.stderr.startswith("error: params.yaml: store: renamed to store_dir (run `delift-dvc upgrade`")
    done = sh("delift-dvc", "upgrade", cwd=root)
    assert yaml.safe_load(done.stdout) == {"renamed": ["store -> store_dir", "${store} -> ${store_dir}"]}
    assert {params: params.read_text(), pipeline: pipeline.read_text()} == current  # byte for byte, comments kept
    status = sh("dvc", "status", "ingest", "score", "select", cwd=root).stdout
    assert "changed" not in status, status
    assert {p: p.read_bytes() for p in sorted((root / "store").rglob("*")) if p.is_file()} == stored
    assert sh("delift-dvc", "upgrade", cwd=root).stdout.strip() == "{}"  # a second upgrade changes nothing
