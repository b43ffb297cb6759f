"""finetune and evaluate inside `dvc repro`, the comparison grid over `dvc exp run`, and the
held-out split, in real git + DVC repositories."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import SHORT_P3, p3_records
from tests.helpers.projects import commit, make_project, metrics, sh


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def add_test_file(root: Path, records: list[dict]) -> None:
    """data/test/test.jsonl as data.test, added to ingest's deps as the README says."""
    (root / "data" / "test").mkdir(parents=True, exist_ok=True)
    (root / "data/test/test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"]["test"] = "data/test/test.jsonl"
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = yaml.safe_load((root / "dvc.yaml").read_text())
    stages["stages"]["ingest"]["deps"].append("${data.test}")
    (root / "dvc.yaml").write_text(yaml.safe_dump(stages, sort_keys=False))


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, shared_data, embedded_available):
    """The whole pipeline with the embedded model: 12 pool samples, 4 test samples."""
    records = p3_records(shared_data, SHORT_P3[:4], 4)
    pool, test = [r for k, r in enumerate(records) if k % 4], records[::4]
    root = make_project(
        tmp_path_factory.mktemp("quality") / "repo", pool, {"dtype": "float32"},
        selection={"budget": 0.5}, finetune={"epochs": 1, "batch_size": 4},
        evaluate={"max_new_tokens": 8},
    )
    add_test_file(root, test)
    commit(root, "test set")
    done = sh("dvc", "repro", cwd=root)
    return root, done.stdout, test


def test_repro_runs_finetune_and_evaluate_with_the_real_model(real_run):
    root, stdout, test = real_run
    for stage in ("report", "finetune", "evaluate_initial", "evaluate"):
        assert f"Running stage '{stage}'" in stdout
    train = metrics(root, "train")
    assert train["n_samples"] == 6 and train["steps"] == 2  # 50 % of 12, batches of 4
    assert metrics(root, "ingest") == {"n_records": 12, "n_duplicates": 0, "n_samples": 12, "n_test": 4,
                                       "n_groups": 1}
    live = json.loads((root / "metrics/live/metrics.json").read_text())  # DVCLive's summary
    assert live == {"train": {"loss": round(train["last_loss"], 6)}, "step": 2}
    shown = json.loads(sh("dvc", "metrics", "show", "--json", cwd=root).stdout)
    assert shown[""]["data"]["metrics/live/metrics.json"]["data"] == live
    assert (root / "reports/selection.md").read_text().startswith("# Selection report")  # the report stage
    assert (root / "reports/selection.html").is_file()
    assert (root / "models/adapter/adapter_config.json").is_file()
    result, initial = metrics(root, "eval"), metrics(root, "eval_initial")
    assert set(result) == {"finetuned", "icl", "subset", "n_test"} and set(initial) == {"initial", "n_test"}
    assert result["n_test"] == initial["n_test"] == len(test)
    assert result["subset"] == {"method": "delift", "budget": 0.5, "n_train": 6}
    for block in (result["finetuned"], result["icl"], initial["initial"]):
        assert block["n"] == 4 and block["nll"] > 0 and 0 <= block["rouge_l"] <= 100
        assert -1 <= block["cosine"] <= 1
    assert result["finetuned"]["nll"] != initial["initial"]["nll"]  # the adapter changed the model
    assert (root / "metrics/eval.json").stat().st_mode & 0o044  # readable like any output file


def test_per_sample_outputs_and_icl_examples_come_from_the_subset(real_run):
    root, _, test = real_run
    rows = read_csv(root / "plots/eval_samples.csv")
    assert len(rows) == 4 and set(rows[0]) >= {"id", "finetuned_rouge_l", "icl_nll"}
    subset = {json.loads(line)["prompt"] for line in (root / "data/selected/train.jsonl").open()}
    generations = [json.loads(line) for line in (root / "metrics/generations.jsonl").open()]
    assert len(generations) == 4 and all("finetuned" in g and "icl" in g for g in generations)
    from delift_dvc.data.samples import load_samples

    by_id = {s.id: s.prompt for s in load_samples(root / "data/prepared/train.jsonl")}
    assert all(by_id[g["icl_example"]] in subset for g in generations)
    test_ids = {s.id for s in load_samples(root / "data/prepared/test.jsonl")}
    assert len(test_ids) == 4 and not test_ids & set(by_id)  # the test set never enters the pool


def test_artifacts_name_the_subset_and_the_adapter(real_run):
    root, _, _ = real_run
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        artifacts = repo.artifacts.read()["dvc.yaml"]
    assert {name: (a.type, a.path) for name, a in artifacts.items()} == {
        "subset": ("dataset", "data/selected/train.jsonl"), "adapter": ("model", "models/adapter")}
    assert all((root / a.path).exists() for a in artifacts.values())


def test_second_repro_runs_nothing(real_run):
    root, _, _ = real_run
    commit(root, "run 1")
    assert "Running stage" not in sh("dvc", "repro", cwd=root).stdout


def test_holdout_split_is_by_content_and_stable_as_data_grows(tmp_path):
    from delift_dvc.config import DataParams, Params
    from delift_dvc.data.split import held_out
    from delift_dvc.stages.ingest import run_ingest
    from delift_dvc.data.samples import load_samples

    records = [{"prompt": f"question {k}", "completion": f"answer {k}"} for k in range(200)]
    data = tmp_path / "raw.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records[:150]))
    params = Params(data=DataParams(train=str(data), holdout=0.2, prepared=str(tmp_path / "prep")))
    summary = run_ingest(params)
    test_v1 = {s.id for s in load_samples(tmp_path / "prep/test.jsonl")}
    assert summary["n_test"] == len(test_v1) and 15 <= len(test_v1) <= 45
    assert summary["n_samples"] + summary["n_test"] == 150
    data.write_text("".join(json.dumps(r) + "\n" for r in records))  # the data set grows
    run_ingest(params)
    test_v2 = {s.id for s in load_samples(tmp_path / "prep/test.jsonl")}
    pool_v2 = {s.id for s in load_samples(tmp_path / "prep/train.jsonl")}
    assert test_v1 <= test_v2 and not test_v2 & pool_v2
    assert all(held_out(i, 0.2, 0) for i in test_v2)
    assert {s for s in test_v2 if not held_out(s, 0.2, 1)}  # another salt gives another split


def test_a_test_file_removes_its_samples_from_the_pool(tmp_path):
    from delift_dvc.config import DataParams, Params
    from delift_dvc.stages.ingest import run_ingest

    rows = [{"prompt": f"q{k}", "completion": f"a{k}"} for k in range(10)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    params = Params(data=DataParams(train=str(tmp_path / "train.jsonl"), test=str(tmp_path / "test.jsonl"),
                                    prepared=str(tmp_path / "prep")))
    assert run_ingest(params) == {"n_records": 10, "n_duplicates": 0, "n_samples": 7, "n_test": 3, "n_groups": 1}


@pytest.mark.parametrize("text, key", [
    ("finetune:\n  lora_targets: q_proj\n", "finetune.lora_targets"),
    ("finetune:\n  epochs: 0\n", "finetune.epochs"),
    ("finetune:\n  learning_rate: -1\n", "finetune.learning_rate"),
    ("evaluate:\n  max_new_tokens: 0\n", "evaluate.max_new_tokens"),
    ("evaluate:\n  beams: 2\n", "evaluate.beams"),
    ("data:\n  holdout: 1.5\n", "data.holdout"),
])
def test_bad_quality_params_name_the_key(tmp_path, text, key):
    (tmp_path / "params.yaml").write_text(text)
    done = sh("delift-dvc", "finetune", cwd=tmp_path, check=False)
    assert done.returncode == 2 and key in done.stderr and "Traceback" not in done.stderr


# -- the comparison grid, with the tiny random model (mechanics, not quality) ----------------------
