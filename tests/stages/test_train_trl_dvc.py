"""examples/train_trl.py as the finetune stage's command: TRL's SFTTrainer trains on the subset
inside `dvc repro`, writes every file the stage declares (DVCLive's step loss included), and
`delift-dvc evaluate` loads the adapter it leaves."""

from __future__ import annotations

import csv
import json

import yaml

from tests.conftest import require
from tests.helpers.projects import REPO, commit, make_project, metrics, sh


def test_the_trl_example_replaces_the_built_in_loop(tmp_path, tiny_model_dir):
    import importlib.util

    require(importlib.util.find_spec("trl") is not None, "TRL is not installed (pip install trl)")
    records = [{"instruction": f"What is {k} plus {k}?", "output": f"{2 * k}"} for k in range(12)]
    root = make_project(tmp_path / "repo", records, {"model": str(tiny_model_dir), "dtype": "float32"},
                        data={"holdout": 0.25}, selection={"budget": 6}, finetune={"steps": 3, "batch_size": 2},
                        evaluate={"max_new_tokens": 4})
    stages = yaml.safe_load((root / "dvc.yaml").read_text())
    stages["stages"]["finetune"]["cmd"] = f"python {REPO / 'examples' / 'train_trl.py'}"
    (root / "dvc.yaml").write_text(yaml.safe_dump(stages, sort_keys=False))
    commit(root, "train with TRL")
    done = sh("dvc", "repro", cwd=root)
    assert "Running stage 'finetune'" in done.stdout and "Running stage 'evaluate'" in done.stdout
    train = metrics(root, "train")
    assert train["trainer"] == "trl" and train["steps"] == 3 and train["n_samples"] == 6
    with (root / "plots/train_loss.csv").open() as handle:
        losses = [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(handle)]
    assert [s for s, _ in losses] == [1, 2, 3]
    live = json.loads((root / "metrics/live/metrics.json").read_text())
    assert live["step"] == 3 and abs(live["train"]["loss"] - losses[-1][1]) < 1e-6
    tsv = (root / "metrics/live/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert tsv[0] == "step\tloss" and len(tsv) == 4
    assert (root / "models/adapter/adapter_config.json").is_file()
    result = metrics(root, "eval")
    assert result["subset"]["n_train"] == 6 and result["finetuned"]["n"] == result["n_test"] > 0
