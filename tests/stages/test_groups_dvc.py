"""Groups through `dvc repro`: a folder of two files, the stratified random baseline, the
subset's composition in selection.json, plots/composition.csv and metrics/select.json."""

from __future__ import annotations

import csv
import json
from collections import Counter

from tests.helpers.projects import commit, make_project, metrics, sh


def records(prefix: str, n: int, **extra) -> list[dict]:
    return [{"instruction": f"{prefix} question {k}?", "output": f"{prefix} {k}", **extra} for k in range(n)]


def test_stratified_random_allocates_like_the_files_and_records_the_composition(tmp_path):
    root = make_project(tmp_path / "repo", records("qa", 12), {},
                        selection={"method": "stratified_random", "budget": 5})
    (root / "data" / "raw" / "math.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records("math", 8)))
    sh("dvc", "repro", "select", cwd=root)
    record = json.loads((root / "data/selected/selection.json").read_text())
    assert record["method"] == "stratified_random" and len(record["ids"]) == 5
    # 12 / 8 of 5 picks: exact 3 / 2
    assert record["composition"] == [
        {"group": "math.jsonl", "pool": 8, "selected": 2, "pool_share": 0.4, "selected_share": 0.4},
        {"group": "train.jsonl", "pool": 12, "selected": 3, "pool_share": 0.6, "selected_share": 0.6},
    ]
    chosen = [json.loads(line)["instruction"] for line in (root / "data/selected/train.jsonl").read_text().splitlines()]
    assert sum(q.startswith("math") for q in chosen) == 2
    select = metrics(root, "select")
    assert select["n_groups"] == 2 and select["groups_without_pick"] == 0
    with (root / "plots/composition.csv").open() as handle:
        assert [(r["group"], r["selected"]) for r in csv.DictReader(handle)] == [("math.jsonl", "2"),
                                                                               ("train.jsonl", "3")]
    groups = json.loads((root / "data/prepared/groups.json").read_text())
    assert sorted(groups.values()).count("math.jsonl") == 8


def test_a_group_by_field_missing_in_a_record_is_a_one_line_error(tmp_path):
    data = records("qa", 3, task="qa") + records("sum", 1)  # the last record has no task
    root = make_project(tmp_path / "repo", data, {}, data={"group_by": "task"})
    done = sh("delift-dvc", "ingest", cwd=root, check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: data.group_by 'task': data/raw/train.jsonl:4 has no such field")
    assert not (root / "data" / "prepared").exists()  # nothing half-written


def label_records(task: str, labels: list[str], n: int) -> list[dict]:
    return [{"instruction": f"{task} item {k}: which?", "output": labels[k % len(labels)], "task": task}
            for k in range(n)]


def test_stratified_delift_allocates_by_group_and_label_and_records_the_test_groups(tmp_path, tiny_model_dir):
    """group_label strata through `dvc repro`: 12 sentiment samples (labels yes/no, 2 strata of
    6), 8 free-text samples (one stratum); a budget of 10 is 3 / 3 / 4 by largest remainders
    with `allocation: proportional`, and with the default (auto: balanced across the groups)
    5 / 5 across the groups, sentiment's 5 split 3 / 2 across its labels (the tie to the label
    whose name sorts first, "no")."""
    pool = label_records("sentiment", ["yes", "no"], 12) + [
        {"instruction": f"summarise note {k}", "output": f"a different summary number {k}", "task": "summary"}
        for k in range(8)]
    test = [{"instruction": "sentiment item 99: which?", "output": "yes", "task": "sentiment"},
            {"instruction": "summarise note 99", "output": "another summary", "task": "summary"}]
    root = make_project(tmp_path / "repo", pool, {"model": str(tiny_model_dir), "dtype": "float32"},
                        data={"group_by": "task", "test": "data/test/test.jsonl"},
                        selection={"method": "delift", "budget": 10, "strata": "group_label",
                                   "allocation": "proportional"})
    (root / "data" / "test").mkdir(parents=True)
    (root / "data" / "test" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in test))
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", "test set", cwd=root)
    sh("dvc", "repro", "select", cwd=root)
    record = json.loads((root / "data/selected/selection.json").read_text())
    assert record["params"]["strata"] == 3 and record["params"]["strata_from"] == "groups"
    chosen = [json.loads(line) for line in (root / "data/selected/train.jsonl").read_text().splitlines()]
    picked = Counter((r["task"], r["output"] if r["task"] == "sentiment" else "") for r in chosen)
    assert picked == {("sentiment", "yes"): 3, ("sentiment", "no"): 3, ("summary", ""): 4}
    test_groups = json.loads((root / "data/prepared/test_groups.json").read_text())
    assert sorted(test_groups.values()) == ["sentiment", "summary"]
    text = (root / "params.yaml").read_text()
    assert "allocation: proportional" in text
    (root / "params.yaml").write_text(text.replace("allocation: proportional", "allocation: auto"))
    sh("dvc", "repro", "select", cwd=root)  # the allocation is a dependency of the score stage
    record = json.loads((root / "data/selected/selection.json").read_text())
    assert record["params"]["allocation"] == "balanced"
    chosen = [json.loads(line) for line in (root / "data/selected/train.jsonl").read_text().splitlines()]
    picked = Counter((r["task"], r["output"] if r["task"] == "sentiment" else "") for r in chosen)
    assert picked == {("sentiment", "yes"): 2, ("sentiment", "no"): 3, ("summary", ""): 5}
    # a negative temperature: one line naming the key, the store untouched (DVC itself removes a
    # failed stage's non-persistent outputs; `dvc checkout` brings them back from its cache)
    before = {p: p.read_bytes() for p in sorted((root / "store").rglob("*")) if p.is_file()}
    text = (root / "params.yaml").read_text().replace("temperature: auto", "temperature: -1")
    assert "temperature: -1" in text
    (root / "params.yaml").write_text(text)
    done = sh("dvc", "repro", "select", cwd=root, check=False)
    assert done.returncode != 0
    assert "selection.temperature -1: expected auto, null or a number >= 0" in done.stdout + done.stderr
    assert {p: p.read_bytes() for p in sorted((root / "store").rglob("*")) if p.is_file()} == before


def test_the_default_selection_allocates_a_data_updates_additions_by_the_new_samples_strata(tmp_path, tiny_model_dir):
    """The default (strata group_label, temperature auto, allocation auto) through `dvc repro`
    and a data update: version 1 = 12 sentiment (6 yes, 6 no) + 8 summary samples: 10 picked,
    5 per group (balanced). Version 2 adds 8 sentiment (4 yes, 4 no) and 4 summary samples. Half
    of the 12 new ones are added, 3 per group of the new samples (balanced), sentiment's 3 split
    2 / 1 across its labels (the tie to "no"), by FLCG inside each stratum; version 1's subset is
    kept."""
    sentiment = label_records("sentiment", ["yes", "no"], 20)
    summary = [{"instruction": f"summarise note {k}", "output": f"a different summary number {k}", "task": "summary"}
               for k in range(12)]
    root = make_project(tmp_path / "repo", sentiment[:12] + summary[:8], {"model": str(tiny_model_dir), "dtype": "float32"},
                        data={"group_by": "task"}, selection={"budget": 0.5})
    params = (root / "params.yaml").read_text()
    assert "strata: group_label" in params and "temperature: auto" in params  # the shipped defaults
    assert "allocation: auto" in params
    sh("dvc", "repro", "select", cwd=root)
    first = json.loads((root / "data/selected/selection.json").read_text())
    assert first["objective_name"] == "fl" and first["params"]["temperature"] == 1.0 and len(first["ids"]) == 10
    assert first["params"]["allocation"] == "balanced"
    assert Counter(c["selected"] for c in first["composition"]) == {5: 2}
    commit(root, "version 1")
    (root / "data/raw/train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in sentiment + summary))
    sh("dvc", "repro", "select", cwd=root)
    record = json.loads((root / "data/selected/selection.json").read_text())
    assert record["objective_name"] == "flcg" and sorted(record["kept"]) == sorted(first["ids"])
    assert record["params"]["strata"] == 3 and record["params"]["strata_from"] == "groups"
    new = {json.dumps(r, sort_keys=True) for r in sentiment[12:] + summary[8:]}
    chosen = [json.loads(line) for line in (root / "data/selected/train.jsonl").read_text().splitlines()]
    added = [r for r in chosen if json.dumps(r, sort_keys=True) in new]
    assert len(added) == len(record["added"]) == 6
    assert Counter((r["task"], r["output"] if r["task"] == "sentiment" else "") for r in added) == {
        ("sentiment", "yes"): 1, ("sentiment", "no"): 2, ("summary", ""): 3}
