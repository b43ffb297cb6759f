"""A user's own field names through `dvc repro`: data.fields maps them, ingest records the
mapping beside the prepared records, every later stage reads them with it, and the subset keeps
the records' own shape."""

from __future__ import annotations

import json

from tests.helpers.projects import commit, make_project, metrics, sh


def records(n: int) -> list[dict]:
    return [{"query": f"What is {k} plus {k}?", "reply": str(2 * k), "topic": "sums" if k % 2 else "doubles"}
            for k in range(n)]


def test_data_fields_map_a_users_names_through_the_pipeline(tmp_path, tiny_model_dir):
    root = make_project(tmp_path / "repo", records(10), {"model": str(tiny_model_dir), "dtype": "float32"},
                        data={"fields": {"prompt": "query", "completion": "reply"}, "group_by": "topic"},
                        selection={"budget": 4})
    sh("dvc", "repro", "select", cwd=root)
    assert json.loads((root / "data/prepared/fields.json").read_text()) == {"prompt": "query", "completion": "reply"}
    chosen = [json.loads(line) for line in (root / "data/selected/train.jsonl").read_text().splitlines()]
    assert len(chosen) == 4 and all(set(r) == {"query", "reply", "topic"} for r in chosen)
    assert metrics(root, "select")["n_samples"] == 10

    # another mapping reads other prompts: the prepared data changes and every stage reruns
    text = (root / "params.yaml").read_text()
    text = text.replace("    prompt: query\n    completion: reply\n",
                        "    instruction: query\n    output: reply\n    input: topic\n")
    (root / "params.yaml").write_text(text)
    commit(root, "alpaca names")
    done = sh("dvc", "repro", "select", cwd=root)
    assert "Running stage 'score'" in done.stdout
    pool = [json.loads(line) for line in (root / "data/prepared/train.jsonl").read_text().splitlines()]
    assert all(set(r) == {"query", "reply", "topic"} for r in pool)

    # a mapping of an unknown key: one line naming it, nothing prepared is lost
    before = (root / "data/prepared/train.jsonl").read_bytes()
    (root / "params.yaml").write_text(text.replace("    input: topic\n", "    inputs: topic\n"))
    done = sh("delift-dvc", "ingest", cwd=root, check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "data.fields.inputs 'inputs': expected one of instruction" in done.stderr
    assert (root / "data/prepared/train.jsonl").read_bytes() == before
