"""`utility.pairs: surrogate` through `dvc repro` and a data update, with the real model:
the LM measures d0 and lm_pairs pairs per target, the rest of each target's k candidates is
predicted, the store holds only measured values, and the same inputs give the same bytes."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SHORT_P3, p3_records
from tests.helpers.projects import commit, make_project, metrics, sh, write_data

K, LM = 6, 3
SURROGATE = {"pairs": "surrogate", "k": K, "lm_pairs": LM, "rounds": 2, "trees": 50}


@pytest.fixture(scope="module")
def surrogate_run(tmp_path_factory, shared_data, embedded_available):
    v1 = p3_records(shared_data, SHORT_P3[:4], 4)  # 16 samples
    v2 = v1[2:] + p3_records(shared_data, SHORT_P3[4:6], 2)  # -2, +4
    runs = []
    for name in ("a", "b"):  # twice from scratch: same inputs, same bytes
        root = make_project(tmp_path_factory.mktemp(f"surrogate-{name}") / "repo", v1, {}, utility=SURROGATE)
        sh("dvc", "repro", "select", cwd=root)
        first = {"score": metrics(root, "score"), "record": json.loads((root / "data/selected/selection.json").read_text())}
        commit(root, "run 1")
        write_data(root, v2)
        commit(root, "version 2")
        sh("dvc", "repro", "select", cwd=root)
        runs.append((root, first))
    return runs


def stored_pair_count(root, scorer) -> int:
    from delift_dvc.store import Store

    with Store(root / "store") as store:
        return store.count_pairs(scorer)


def test_first_version_measures_lm_pairs_and_predicts_the_rest(surrogate_run):
    root, first = surrogate_run[0]
    score = first["score"]
    n = score["n_samples"]
    assert n == 16 and score["baselines_scored"] == n
    assert score["pairs_scored"] == score["lm_pairs_measured"] == n * LM
    assert score["pairs_in_kernel"] == n * K and score["pairs_predicted"] == n * (K - LM)
    assert score["strategy"] == "active" and score["rounds"] == 2
    assert len(score["surrogate"]) == 64 and "surrogate_heldout_pairs" in score
    if score["surrogate_spearman"] is not None:  # too few measured pairs to hold any out: null
        assert -1 <= score["surrogate_spearman"] <= 1
    assert first["record"]["surrogate"] == score["surrogate"]


def test_update_measures_only_the_new_targets_and_extends_the_subset(surrogate_run):
    root, first = surrogate_run[0]
    score, select = metrics(root, "score"), metrics(root, "select")
    assert score["mode"] == "continual" and score["n_new"] == 4
    assert score["baselines_scored"] == 4 and score["pairs_scored"] == 4 * LM
    assert select["mode"] == "continual" and select["n_kept"] >= 1 and select["n_added"] == 1
    record = json.loads((root / "data/selected/selection.json").read_text())
    assert record["kept"] == [i for i in first["record"]["ids"] if i in record["kept"]]
    assert stored_pair_count(root, score["scorer"]) == 16 * LM + 4 * LM  # predictions are never stored


def test_same_inputs_give_the_same_bytes(surrogate_run):
    (a, _), (b, _) = surrogate_run
    for path in ("metrics/select.json", "data/selected/train.jsonl"):
        assert (a / path).read_bytes() == (b / path).read_bytes(), path
    score_a, score_b = metrics(a, "score"), metrics(b, "score")
    assert score_a.pop("version") != score_b.pop("version")  # named after each repo's git revision
    assert score_a == score_b
    record_a = json.loads((a / "data/selected/selection.json").read_text())
    record_b = json.loads((b / "data/selected/selection.json").read_text())
    record_a["version"].pop("name"), record_b["version"].pop("name")  # git revisions differ
    assert record_a == record_b
    segments = [sorted(p.name for p in (root / "store" / "pairs").glob("*.parquet")) for root in (a, b)]
    assert segments[0] == segments[1]
