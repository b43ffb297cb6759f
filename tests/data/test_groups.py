"""Groups (a sample's file, or its data.group_by field) and a subset's composition, by hand."""

from __future__ import annotations

import json

import pytest

from delift_dvc.config import named_as_params
from delift_dvc.data.groups import composition, sample_groups
from delift_dvc.data.samples import load_samples
from delift_dvc.errors import InputError


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_a_folder_gives_one_group_per_file_and_a_field_overrides_it(tmp_path):
    folder = tmp_path / "raw"
    folder.mkdir()
    write(folder / "qa.jsonl", [{"prompt": f"q{k}", "completion": "a", "task": "qa"} for k in range(3)])
    write(folder / "sum.jsonl", [{"prompt": f"s{k}", "completion": "b", "task": 7} for k in range(2)])
    samples = load_samples(folder)
    by_file = sample_groups(samples, str(folder))
    assert sorted(by_file.values()) == ["qa.jsonl"] * 3 + ["sum.jsonl"] * 2
    single = sample_groups(load_samples(folder / "qa.jsonl"), str(folder / "qa.jsonl"))
    assert set(single.values()) == {"qa.jsonl"}
    by_field = sample_groups(samples, str(folder), "task")
    assert sorted(by_field.values()) == ["7", "7", "qa", "qa", "qa"]


def test_a_record_without_the_field_names_the_key_file_and_line(tmp_path):
    path = tmp_path / "data.jsonl"
    write(path, [{"prompt": "a", "completion": "x", "task": "t"}, {"prompt": "b", "completion": "y"}])
    samples = load_samples(path)
    with pytest.raises(InputError, match=r"^group_by 'task': .*data.jsonl:2 has no such field"):
        sample_groups(samples, str(path), "task")
    with pytest.raises(InputError, match=r"^data\.group_by 'task': .*data.jsonl:2 has no such field"), \
            named_as_params():
        sample_groups(samples, str(path), "task")
    write(path, [{"prompt": "a", "completion": "x", "task": ["t"]}])
    with pytest.raises(InputError, match="data.jsonl:1 has a list value"):
        sample_groups(load_samples(path), str(path), "task")


def test_composition_by_hand():
    groups = {"a": "x", "b": "x", "c": "x", "d": "y", "e": "z"}
    rows = composition(["a", "b", "c", "d", "e"], ["a", "d"], groups)
    assert rows == [
        {"group": "x", "pool": 3, "selected": 1, "pool_share": 0.6, "selected_share": 0.5},
        {"group": "y", "pool": 1, "selected": 1, "pool_share": 0.2, "selected_share": 0.5},
        {"group": "z", "pool": 1, "selected": 0, "pool_share": 0.2, "selected_share": 0.0},
    ]
