"""Runtime settings are no stage dependency: changing where and how fast scoring runs re-runs
nothing, while a key that changes the numbers re-runs `score`."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import yaml

from delift_dvc.config import SCORING_RUNTIME, ScoringParams
from tests.helpers.projects import make_project, sh

REPO = Path(__file__).resolve().parents[2]


def test_score_depends_on_every_scoring_key_but_the_runtime_ones():
    params = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["score"]["params"]
    scoring = {p.removeprefix("scoring.") for p in params if p.startswith("scoring.")}
    assert scoring == {f.name for f in fields(ScoringParams)} - set(SCORING_RUNTIME)
    assert {"utility", "selection"} <= set(params)


def test_changing_runtime_settings_reruns_nothing(tmp_path, tiny_model_dir):
    records = [{"instruction": f"question {k}?", "output": f"answer {k}"} for k in range(8)]
    root = make_project(tmp_path / "repo", records, {"model": str(tiny_model_dir), "dtype": "float32"},
                        selection={"budget": 3})
    sh("dvc", "repro", "select", cwd=root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["scoring"].update(threads=1, workers=3, batch_tokens=4096, device="cpu", segment_pairs=7,
                             shared_store=str(tmp_path / "pool"))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = sh("dvc", "status", "score", "select", cwd=root).stdout
    assert "up to date" in status, status
    params["scoring"]["max_length"] = 1024
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = sh("dvc", "status", "score", cwd=root).stdout
    assert "modified:" in status and "scoring.max_length" in status, status
