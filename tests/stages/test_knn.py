"""Sparse (k-nearest-neighbour) utility mode: candidates, missing entries, incremental counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from delift_dvc.config import DataParams, Params, ScoringParams, UtilityParams
from delift_dvc.selection.methods import instruction_tuning
from delift_dvc.selection.scaling import fill_missing
from delift_dvc.utility.knn import knn_candidates

IDS = [f"{k:016x}" for k in range(6)]


def test_knn_keeps_itself_and_the_most_similar():
    sim = np.array([[0.0, 0.9, 0.8, 0.1], [0.5, 0.2, 0.5, 0.4]])
    t, e = knn_candidates(["a", "b"], ["a", "b", "c", "d"], sim, 2)
    assert list(zip(t.tolist(), e.tolist())) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    t, e = knn_candidates(["a"], ["a", "b"], sim[:1, :2], 5)
    assert e.tolist() == [0, 1]


def test_missing_entries_count_as_zero_after_scaling():
    block = np.array([[0.2, np.nan], [np.nan, 0.6]])
    extra = np.array([[0.4], [np.nan]])
    joint = fill_missing([block, extra], "joint")
    assert joint[0][0, 1] == 0.2 and joint[1][1, 0] == 0.2
    separate = fill_missing([block, extra], "separate")
    assert separate[1][1, 0] == 0.4
    res = instruction_tuning(["a", "b"], block, 2)
    assert res.ids[0] == "b" and res.gains == pytest.approx([1.0, 0.0])  # [[0, 0], [0, 1]] scaled


def alpaca(n: int, offset: int = 0) -> list[dict]:
    words = ["apple", "river", "stone", "cloud", "music", "table", "green", "horse", "light", "paper"]
    return [{"instruction": f"Describe the {words[k % 10]} number {k}.", "output": f"{words[k % 10]} {k}"}
            for k in range(offset, offset + n)]


def params_for(root: Path, model: Path, pairs: str, k: int) -> Params:
    return Params(
        data=DataParams(train=str(root / "raw.jsonl"), prepared=str(root / "prepared"),
                        selected=str(root / "selected")),
        scoring=ScoringParams(model=str(model), dtype="float32"),
        utility=UtilityParams(pairs=pairs, k=k),
        store_dir=str(root / "store"), metrics=str(root / "metrics"), plots=str(root / "plots"),
    )


def run_version(params: Params, records: list[dict]) -> dict:
    from delift_dvc.stages.ingest import run_ingest
    from delift_dvc.stages.score import run_score

    Path(params.data.train).parent.mkdir(parents=True, exist_ok=True)
    Path(params.data.train).write_text("".join(json.dumps(r) + "\n" for r in records))
    run_ingest(params)
    metrics = run_score(params)
    record = json.loads((Path(params.data.selected) / "selection.json").read_text())
    return {**metrics, "record": record}


def test_knn_with_k_at_least_n_equals_dense(tmp_path, tiny_model_dir):
    data = alpaca(10)
    dense = run_version(params_for(tmp_path / "dense", tiny_model_dir, "dense", 32), data)
    sparse = run_version(params_for(tmp_path / "sparse", tiny_model_dir, "knn", 10), data)
    assert sparse["pairs_scored"] == dense["pairs_scored"] == 100
    assert sparse["record"]["ids"] == dense["record"]["ids"]
    assert sparse["record"]["objective"] == dense["record"]["objective"]


def test_sparse_incremental_update_scores_each_new_target_against_its_k_nearest(tmp_path, tiny_model_dir):
    from delift_dvc.kernels.base import PlanContext
    from delift_dvc.kernels.similarity import SimilaritySource
    from delift_dvc.selection.planning import Plan
    from delift_dvc.data.samples import load_samples
    from delift_dvc.store import Store

    k = 4
    params = params_for(tmp_path, tiny_model_dir, "knn", k)
    first = run_version(params, alpaca(12))
    assert first["pairs_scored"] == 12 * k
    with Store(params.store_dir) as store:
        before = set(store.connect().execute("SELECT target, example FROM pairs").fetchall())
    second = run_version(params, alpaca(12)[2:] + alpaca(6, offset=50))
    record = second["record"]
    with Store(params.store_dir) as store:
        new = sorted(set(store.version_ids(2)) - set(store.version_ids(1)))
    assert second["n_new"] == 6 and len(new) == 6
    examples = sorted(set(new) | set(record["kept"]))
    assert second["pairs_scored"] == 6 * min(k, len(examples)) and second["baselines_scored"] == 6
    with Store(params.store_dir) as store:
        after = set(store.connect().execute("SELECT target, example FROM pairs").fetchall())
    added = after - before
    assert len(added) == second["pairs_scored"]  # the count reported = the pairs stored
    by_id = {s.id: s for s in load_samples(Path(params.data.prepared) / "train.jsonl")}
    plan = Plan("continual", "flcg", new, sorted(record["kept"]), record["kept"], 0.3)
    sim, _ = SimilaritySource().read(PlanContext(plan, by_id, None, "cpu"))
    t_idx, e_idx = knn_candidates(new, plan.examples, sim, k)
    assert added == {(new[t], plan.examples[e]) for t, e in zip(t_idx.tolist(), e_idx.tolist())}
    assert all((i, i) in added for i in new)



def test_identical_runs_give_byte_identical_store_and_outputs(tmp_path, tiny_model_dir, monkeypatch):
    outputs = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)  # relative paths, as in a DVC project
        params = params_for(Path("."), tiny_model_dir, "dense", 32)
        run_version(params, alpaca(8))
        run_version(params, alpaca(8)[1:] + alpaca(3, offset=20))
        from delift_dvc.stages.select import run_select

        run_select(params)
        root = tmp_path / name
        files = {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
                 if p.is_file() and p.name != ".lock" and "raw" not in p.name}
        outputs.append(files)
    assert outputs[0].keys() == outputs[1].keys() and len(outputs[0]) > 10
    assert outputs[0] == outputs[1]


def test_embedding_coverage_in_the_pipeline_dense_knn_and_update(tmp_path, tiny_model_dir):
    from dataclasses import replace

    from delift_dvc.utility.embeddings import embed_samples
    from delift_dvc.stages.ingest import prepared_pool

    def covered(params: Params, weight: float) -> Params:
        return replace(params, selection=replace(params.selection, embedding_coverage=weight, strata="none"))

    data = alpaca(10)
    plain = run_version(params_for(tmp_path / "plain", tiny_model_dir, "dense", 32), data)
    dense = run_version(covered(params_for(tmp_path / "dense", tiny_model_dir, "dense", 32), 0.5), data)
    knn_params = covered(params_for(tmp_path / "knn", tiny_model_dir, "knn", 10), 0.5)
    sparse = run_version(knn_params, data)
    assert dense["pairs_scored"] == sparse["pairs_scored"] == plain["pairs_scored"] == 100
    assert dense["record"]["params"]["embedding_coverage"] == 0.5
    assert "embedding_coverage" not in plain["record"]["params"]
    assert sparse["record"]["ids"] == dense["record"]["ids"]
    assert sparse["record"]["objective"] == pytest.approx(dense["record"]["objective"], rel=1e-9)
    # the recorded objective is the utility objective plus half the similarity objective
    pool, _ = prepared_pool(knn_params)
    ids = sorted(s.id for s in pool)
    vectors = embed_samples(ids, {s.id: s for s in pool}, "cpu").astype(np.float64)
    sim = vectors @ vectors.T
    sim = (sim - sim.min()) / (sim.max() - sim.min())
    chosen = [ids.index(i) for i in dense["record"]["ids"]]
    from delift_dvc.store import Store

    with Store(knn_params.store_dir) as store:
        uf = store.read_baselines(dense["scorer"], ids)[:, None] - store.read_pairs(dense["scorer"], ids, ids)
    uf = (uf - uf.min()) / (uf.max() - uf.min())
    expected = uf[:, chosen].max(axis=1).sum() + 0.5 * sim[:, chosen].max(axis=1).sum()
    assert dense["record"]["objective"] == pytest.approx(expected, rel=1e-6)
    # an update extends the subset by FLCG with the same term, scoring only the new targets
    update = run_version(knn_params, data + alpaca(4, offset=10))
    assert update["record"]["mode"] == "continual" and update["record"]["kept"] == sparse["record"]["ids"]
    assert update["record"]["params"]["embedding_coverage"] == 0.5 and update["baselines_scored"] == 4


def test_balance_clusters_in_the_pipeline_dense_knn_and_update(tmp_path, tiny_model_dir):
    from dataclasses import replace

    from delift_dvc.selection.balance import embedding_clusters, quotas
    from delift_dvc.stages.ingest import prepared_pool
    from delift_dvc.store import Store
    from delift_dvc.utility.embeddings import embed_samples
    from tests.selection.test_balance import brute_partition_greedy

    def balanced(params: Params, k: int) -> Params:
        return replace(params, selection=replace(params.selection, balance_clusters=k, budget=6, strata="none"))

    data = alpaca(20)
    dense_params = balanced(params_for(tmp_path / "dense", tiny_model_dir, "dense", 32), 4)
    dense = run_version(dense_params, data)
    sparse = run_version(balanced(params_for(tmp_path / "knn", tiny_model_dir, "knn", 20), 4), data)
    assert dense["record"]["params"]["balance_parts"] == 4
    assert sparse["record"]["ids"] == dense["record"]["ids"]
    # the subset is the partition-matroid greedy on the stored, min-max scaled utility, with the
    # budget split by the MiniLM clusters' sizes
    pool, _ = prepared_pool(dense_params)
    ids = sorted(s.id for s in pool)
    labels = embedding_clusters(embed_samples(ids, {s.id: s for s in pool}, "cpu"), 4, seed=0)
    with Store(dense_params.store_dir) as store:
        uf = store.read_baselines(dense["scorer"], ids)[:, None] - store.read_pairs(dense["scorer"], ids, ids)
    uf = (uf - uf.min()) / (uf.max() - uf.min())
    quota = quotas(labels, 6)
    expected = brute_partition_greedy(uf, 6, labels.tolist(), quota.tolist())
    assert dense["record"]["ids"] == [ids[j] for j in expected]
    chosen = np.bincount(labels[expected], minlength=4)
    assert chosen.tolist() == quota.tolist()
    plain = run_version(params_for(tmp_path / "plain", tiny_model_dir, "dense", 32), data)
    assert "balance_parts" not in plain["record"]["params"]
    # an update picks among the new samples, split by their own clusters
    grown = replace(dense_params, selection=replace(dense_params.selection, budget=12))  # a count: 6 more
    update = run_version(grown, data + alpaca(10, offset=20))
    assert update["record"]["mode"] == "continual" and update["record"]["kept"] == dense["record"]["ids"]
    assert len(update["record"]["added"]) == 6 and update["record"]["params"]["balance_parts"] >= 2
