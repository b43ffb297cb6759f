"""compare resumes honestly: a run is done only once its compare.csv row is written (the last of
its writes), rows a killed run left elsewhere are redone, and params.yaml / dvc.lock come back
from OUT/.restore even after kill -9. A fake `dvc exp run` writes what the stages would."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers.projects import REPO

FAKE = r'''
import json, os, signal, sys
from pathlib import Path
from delift_dvc.experiments import runner
from delift_dvc.experiments.grid import grid

def fake_exp_run(overrides, dry_run, echo, targets=(), label="", name=None, logs=None):
    seed = int(next(o for o in overrides if o.startswith("selection.seed=")).split("=")[1])
    Path("params.yaml").write_text("selection:\n  seed: %d\n" % seed)   # as `dvc exp run -S` does
    Path("dvc.lock").write_text("changed by run %d\n" % seed)
    for d in ("metrics", "plots", "data/selected"):
        Path(d).mkdir(parents=True, exist_ok=True)
    value = {"nll": 1.0 + seed, "rouge_l": 10.0 + seed, "cosine": 0.5}
    Path("metrics/eval.json").write_text(json.dumps({"n_test": 2, "subset": {"n_train": 3}, "finetuned": value}))
    Path("metrics/eval_initial.json").write_text(json.dumps({"initial": value}))
    Path("metrics/train.json").write_text(json.dumps({"protocol": "steps"}))
    rows = "id,finetuned_nll,finetuned_rouge_l,finetuned_cosine\na,%d,1,0.5\nb,%d,2,0.5\n" % (seed, seed)
    Path("plots/eval_samples.csv").write_text(rows)
    Path("data/selected/selection.json").write_text(json.dumps({"ids": ["a", "b", "c"][: seed + 1]}))

runner._exp_run = fake_exp_run
kill_after = sys.argv[1]  # "compare_subsets.csv": die (SIGKILL) right after that file's write
real_append = runner.append_rows

def append(path, rows, columns, keys):
    real_append(path, rows, columns, keys)
    if Path(path).name == kill_after and rows[0]["seed"] == "1":
        os.kill(os.getpid(), signal.SIGKILL)

runner.append_rows = append
runner.run_grid(grid(["random"], [0.3], [0, 1]), "reports", echo=print)
'''


def sweep(root: Path, kill_after: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", FAKE, kill_after], cwd=root, capture_output=True, text=True,
                          env=env, timeout=300)


def rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_a_run_killed_between_its_writes_is_redone_and_the_project_files_come_back(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("selection:\n  budget: 0.3\n")
    (tmp_path / "dvc.lock").write_text("original lock\n")
    killed = sweep(tmp_path, "compare_subsets.csv")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    reports = tmp_path / "reports"
    # seed 0 finished; seed 1 wrote its samples and subset rows but not its compare.csv row
    assert {r["seed"] for r in rows(reports / "compare.csv") if r["method"] == "random"} == {"0"}
    assert {r["seed"] for r in rows(reports / "compare_subsets.csv")} == {"0", "1"}
    assert (tmp_path / "params.yaml").read_text() == "selection:\n  seed: 1\n"  # kill -9 skipped `finally`
    assert (reports / ".restore" / "params.yaml").read_text() == "selection:\n  budget: 0.3\n"

    resumed = sweep(tmp_path, "never")
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert lines[0].startswith("restored params.yaml and dvc.lock from reports/.restore")
    assert lines[1] == "2 runs, 1 already in reports/compare.csv, 1 to run"
    finished = [r for r in rows(reports / "compare.csv") if r["method"] == "random"]
    assert sorted(r["seed"] for r in finished) == ["0", "1"]
    subsets = rows(reports / "compare_subsets.csv")
    assert [(r["seed"], r["rank"]) for r in subsets] == [("0", "1"), ("1", "1"), ("1", "2")]  # no twins
    samples = [r for r in rows(reports / "compare_samples.csv") if r["method"] == "random"]
    assert len(samples) == 4 and len({(r["seed"], r["id"]) for r in samples}) == 4
    assert (tmp_path / "params.yaml").read_text() == "selection:\n  budget: 0.3\n"
    assert (tmp_path / "dvc.lock").read_text() == "original lock\n" and not (reports / ".restore").exists()


def test_a_kill_right_after_the_samples_write_leaves_the_run_undone(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("{}\n")
    assert sweep(tmp_path, "compare_samples.csv").returncode == -signal.SIGKILL
    reports = tmp_path / "reports"
    assert {r["seed"] for r in rows(reports / "compare_samples.csv") if r["method"] == "random"} == {"0", "1"}
    assert not any(r["seed"] == "1" for r in rows(reports / "compare_subsets.csv"))
    assert sweep(tmp_path, "never").returncode == 0
    assert sorted(r["seed"] for r in rows(reports / "compare.csv") if r["method"] == "random") == ["0", "1"]
    assert (tmp_path / "params.yaml").read_text() == "{}\n"


def test_the_bootstrap_interval_has_its_stated_level():
    """Over many data sets from a known distribution, the 95 % interval covers the true mean
    difference about 95 % of the time (a 50 % interval would cover about half)."""
    import numpy as np

    from delift_dvc.quality.stats import paired_difference

    rng = np.random.default_rng(11)
    covered = 0
    trials = 400
    for t in range(trials):
        a = rng.normal(0.3, 1.0, 60)
        b = rng.normal(0.0, 1.0, 60)
        result = paired_difference(a, b, resamples=1000, seed=t)
        covered += result.low <= 0.3 <= result.high
    assert 0.91 <= covered / trials <= 0.98, covered / trials
