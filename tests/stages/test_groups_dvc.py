"""Groups through `dvc repro`: a folder of two files, the stratified random baseline, the
subset's composition in selection.json, plots/composition.csv and metrics/select.json."""

from __future__ import annotations

import csv
import json

from tests.helpers.projects import make_project, metrics, sh


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
