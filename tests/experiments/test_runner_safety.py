"""compare's runner: a stopped sweep leaves params.yaml, dvc.lock and their git index entries as
they were, runs have names, and a failed run reports the stage's own error line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from delift_dvc.experiments import runner
from delift_dvc.experiments.grid import Run


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_restore_puts_back_files_and_their_index_entries(tmp_path, monkeypatch):
    git("init", "-q", cwd=tmp_path)
    git("config", "user.email", "t@example.invalid", cwd=tmp_path)
    git("config", "user.name", "t", cwd=tmp_path)
    (tmp_path / "params.yaml").write_text("selection:\n  seed: 0\n")
    git("add", "params.yaml", cwd=tmp_path)
    git("commit", "-qm", "v1", cwd=tmp_path)
    (tmp_path / "params.yaml").write_text("selection:\n  seed: 0\n  budget: 5\n")  # the user's unstaged edit
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "reports"
    runner._save_project(out)
    # what a `dvc exp run` stopped with Ctrl-C can leave: overrides written and staged, a new dvc.lock staged
    (tmp_path / "params.yaml").write_text("selection:\n  seed: 7\n")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    git("add", "params.yaml", "dvc.lock", cwd=tmp_path)
    lines = []
    runner.restore_project(out, lines.append)
    assert (tmp_path / "params.yaml").read_text() == "selection:\n  seed: 0\n  budget: 5\n"
    assert git("diff", "--cached", "--name-only", cwd=tmp_path) == ""  # nothing staged, as before
    assert git("status", "--porcelain", "params.yaml", cwd=tmp_path).strip() == "M params.yaml"
    assert not (out / ".restore").exists() and lines and "restored params.yaml" in lines[0]


def test_runs_have_names():
    assert Run("delift_strata", 0.3, 1).name() == "delift_strata-b0.3-s1"
    assert Run("flcg", 0.3, 0, update="data/v2").name() == "flcg-b0.3-s0-update"


def test_the_failure_line_is_the_stages_own_error():
    stderr = ("Running stage 'score':\n> delift-dvc score\nerror: params.yaml: scoring.k 0: expected an integer >= 1\n"
              "ERROR: failed to reproduce 'score': failed to run: delift-dvc score, exited with 2\n")
    assert runner.failure_line(stderr, "") == "error: params.yaml: scoring.k 0: expected an integer >= 1"
    assert runner.failure_line("ERROR: something in dvc\n", "") == "ERROR: something in dvc"
    assert runner.failure_line("", "last words\n") == "last words"
    assert runner.failure_line("", "") == "?"


def test_selection_cost_from_score_metrics_and_the_stage_output(tmp_path):
    import json

    from delift_dvc.experiments.harvest import lm_values, stage_seconds
    from delift_dvc.quality.report import cost_markdown

    (tmp_path / "score.json").write_text(json.dumps({"pairs_scored": 10, "pairs_reused": 90, "baselines_scored": 2,
                                                     "baselines_reused": 8, "n_samples": 10}))
    assert lm_values(tmp_path) == 110
    assert lm_values(tmp_path / "none") == 0
    output = ("Running stage 'score':\n> delift-dvc score\n"
              '{"blocks": 1, "pairs_scored": 0, "seconds": 3.25, "version": "v1"}\nRunning stage \'select\':\n')
    assert stage_seconds(output) == 3.25
    assert stage_seconds("Stage 'score' didn't change, skipping\n") is None
    rows = [{"method": "delift", "budget": "0.3", "seed": s, "variant": "finetuned", "lm_values": "110",
             "score_seconds": t} for s, t in (("0", "3.0"), ("1", "5.0"), ("2", ""))]
    rows.append({"method": "random", "budget": "0.3", "seed": "0", "variant": "finetuned", "lm_values": "0",
                 "score_seconds": "0.5"})
    table = cost_markdown(rows)
    assert "| delift | 0.3 | 110 | 4.0 |" in table and "| random | 0.3 | 0 | 0.5 |" in table
