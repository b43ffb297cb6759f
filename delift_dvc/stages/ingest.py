"""Stage `ingest`: data.train (+ data.test, data.target_set) -> data.prepared, validated and
de-duplicated, sorted by id, each record in its original shape."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from delift_dvc.config import Params, named_as_params
from delift_dvc.data.groups import sample_groups
from delift_dvc.data.samples import load_samples, read_samples, write_samples
from delift_dvc.data.split import split_pool
from delift_dvc.errors import ArgumentError, InputError
from delift_dvc.stages.outputs import (METRICS, PREPARED_FIELDS, PREPARED_GROUPS, PREPARED_SOURCES, PREPARED_TARGETS,
                                       PREPARED_TEST, PREPARED_TEST_GROUPS, PREPARED_TRAIN, write_json)


def run_ingest(params: Params) -> dict:
    """Write data.prepared/train.jsonl (the pool), groups.json (each pool sample's group: its
    data.group_by field, else its file), test.jsonl (always; empty when there is no test set),
    test_groups.json (each test sample's group, see test_groups), fields.json (data.fields, with
    which the later stages read these records), sources.json (each pool and target-set sample's
    own file and line, which the store and the report show) and, with data.target_set,
    target_set.jsonl; its counts (records, duplicates, pool, test, groups) go to
    metrics/ingest.json. Without data.test a data.holdout fraction of data.train, chosen by
    content hash, is the test set instead of pool."""
    data = params.data
    prepared = Path(data.prepared)
    report = read_samples(data.train, split=data.split, fields=data.fields)
    samples = sorted(report.samples, key=lambda s: s.id)
    with named_as_params():
        groups = sample_groups(samples, data.train, data.group_by)
    if data.test:
        test = sorted(load_samples(data.test, fields=data.fields), key=lambda s: s.id)
        groups = {**groups, **test_groups(test, data.test, data.group_by)}
        in_test = {s.id for s in test}
        pool = [s for s in samples if s.id not in in_test]  # never train on a test sample
        if not pool:
            raise InputError(f"{data.train}: every sample is also in data.test ({data.test}); no pool is left")
    else:
        pool, test = split_pool(samples, data.holdout, data.holdout_seed)
        if not pool:
            raise InputError(f"{data.train}: all {len(samples)} samples fall in the held-out split "
                             f"(data.holdout {data.holdout}); add samples or lower data.holdout")
    write_json(prepared / PREPARED_FIELDS, data.fields or {})
    write_samples(pool, prepared / PREPARED_TRAIN)
    write_json(prepared / PREPARED_GROUPS, {s.id: groups[s.id] for s in pool})
    write_samples(test, prepared / PREPARED_TEST)
    write_json(prepared / PREPARED_TEST_GROUPS, {s.id: groups[s.id] for s in test})
    summary = {"n_records": report.n_records, "n_duplicates": report.n_duplicates,
               "n_samples": len(pool), "n_test": len(test), "n_groups": len({groups[s.id] for s in pool})}
    targets_path = prepared / PREPARED_TARGETS
    targets = []
    if data.target_set:
        targets = load_samples(data.target_set, fields=data.fields)
        write_samples(sorted(targets, key=lambda s: s.id), targets_path)
        summary["n_target_set"] = len(targets)
    elif targets_path.exists():
        targets_path.unlink()
    write_json(prepared / PREPARED_SOURCES, {s.id: s.source for s in sorted([*pool, *targets], key=lambda s: s.id)})
    write_json(Path(params.metrics) / METRICS["ingest"], summary)
    return summary


def prepared_pool(params: Params) -> tuple[list, list]:
    """(pool, target set) from data.prepared; an InputError when ingest has not run."""
    prepared = Path(params.data.prepared)
    if not (prepared / PREPARED_TRAIN).is_file():
        raise InputError(f"{prepared / PREPARED_TRAIN}: not found (run `delift-dvc ingest` first)")
    fields = prepared_fields(prepared)
    pool = load_samples(prepared / PREPARED_TRAIN, fields=fields)
    targets = load_samples(prepared / PREPARED_TARGETS, fields=fields) if params.data.target_set else []
    path = prepared / PREPARED_SOURCES
    if path.is_file():  # each sample's own file and line instead of its line in data.prepared
        sources = json.loads(path.read_text(encoding="utf-8"))
        pool = [replace(s, source=sources.get(s.id, s.source)) for s in pool]
        targets = [replace(s, source=sources.get(s.id, s.source)) for s in targets]
    return pool, targets


def prepared_fields(prepared: str | Path) -> dict[str, str] | None:
    """The data.fields mapping ingest read data.prepared's records with (None: none, or data
    prepared before the mapping was recorded)."""
    path = Path(prepared) / PREPARED_FIELDS
    return (json.loads(path.read_text(encoding="utf-8")) or None) if path.is_file() else None


def test_groups(test: list, path: str, group_by: str | None) -> dict[str, str]:
    """id -> group of each sample of the data.test file at `path`: its data.group_by field when
    every test record has one, else the test file's name (one group)."""
    if group_by is not None:
        try:  # sample_groups is the one check of a group value
            return sample_groups(test, path, group_by)
        except ArgumentError:
            pass
    return sample_groups(test, path, None)


def prepared_groups(params: Params, pool: list) -> dict[str, str]:
    """id -> group of the pool from data.prepared (one group "pool" for data prepared before
    groups were recorded)."""
    path = Path(params.data.prepared) / PREPARED_GROUPS
    if not path.is_file():
        return {s.id: "pool" for s in pool}
    groups = json.loads(path.read_text(encoding="utf-8"))
    missing = [s.id for s in pool if s.id not in groups]
    if missing:
        raise InputError(f"{path}: no group for {len(missing)} pool samples (run `delift-dvc ingest` again)")
    return groups


def prepared_test(params: Params) -> list:
    """The test set from data.prepared ([] when there is none)."""
    path = Path(params.data.prepared) / PREPARED_TEST
    if not path.is_file():
        raise InputError(f"{path}: not found (run `delift-dvc ingest` first)")
    if not path.read_bytes().strip():
        return []
    return load_samples(path, fields=prepared_fields(params.data.prepared))
