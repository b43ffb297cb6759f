"""Any pool of at least one sample runs through every stage, with or without a test set."""

from __future__ import annotations

import json

import pytest
import yaml

from delift_dvc.data.split import held_out
from tests.helpers.projects import make_project, metrics, sh


def records_kept_by_the_split(n: int, fraction: float) -> list[dict]:
    """n records of which the content-hash split at `fraction` (seed 0) holds out none."""
    from delift_dvc.data.samples import sample_id

    out, k = [], 0
    while len(out) < n:
        prompt, response = f"What is {k} times 3?", f"{k} times 3 is {3 * k}."
        if not held_out(sample_id(prompt, response), fraction, 0):
            out.append({"prompt": prompt, "completion": response})
        k += 1
    return out


TEMPLATE = "Q: {prompt}\nA:"


@pytest.mark.parametrize("n, holdout, template", [(10, 0.15, None), (1, 0.0, TEMPLATE)])
def test_repro_succeeds_without_a_test_set(tmp_path, tiny_model_dir, n, holdout, template):
    """Ten samples the shipped 0.15 split holds nothing of, and a one-sample pool with no
    hold-out: every stage runs, and evaluate records that there is no test set. A custom
    scoring.template reaches fine-tuning (one layout)."""
    scoring = {"model": str(tiny_model_dir), "dtype": "float32", **({"template": "templates/qa.txt"} if template else {})}
    root = make_project(tmp_path / "repo", records_kept_by_the_split(n, holdout), scoring,
                        data={"holdout": holdout}, finetune={"epochs": 1}, evaluate={"max_new_tokens": 4},
                        extra_files={"templates/qa.txt": template} if template else {})
    done = sh("dvc", "repro", cwd=root)
    assert (root / "data/prepared/test.jsonl").read_text() == ""
    for name in ("eval_initial", "eval"):
        assert metrics(root, name)["n_test"] == 0 and metrics(root, name)["test_set"] == "none"
    lines = [line for line in done.stderr.splitlines() if "no test set" in line]
    assert len(lines) == 2, done.stderr  # one line from each evaluate stage
    assert metrics(root, "select")["n_selected"] == max(1, int(0.3 * n))
    assert metrics(root, "train")["n_samples"] == metrics(root, "select")["n_selected"]
    assert (root / "metrics/generations.jsonl").read_text() == ""
    plots = json.loads(sh("dvc", "plots", "show", "--json", cwd=root).stdout)
    assert not plots.get("errors"), plots.get("errors")
    log = json.loads((root / "models/adapter/train_log.json").read_text())
    shipped = root / yaml.safe_load((root / "params.yaml").read_text())["scoring"]["template"]
    assert log["templates"]["template"] == (template or shipped.read_text())
