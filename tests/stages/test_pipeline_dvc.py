"""End to end in a real git + DVC repository: dvc repro, a data update, dvc repro again.

These runs stop at `select`; test_quality_dvc covers finetune and evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import p3_records
from tests.helpers.projects import commit, make_project, metrics, sh, stored_pairs, write_data

V1_TEMPLATES = ["glue_mrpc_paraphrase", "rotten_tomatoes_Reviewer_Enjoyment", "quarel_choose_between"]
V2_TEMPLATES = ["app_reviews_convert_to_star_rating", "social_i_qa_Generate_answer"]


@pytest.fixture(scope="module")
def versions(shared_data):
    v1 = p3_records(shared_data, V1_TEMPLATES, 4)  # 12 samples
    removed = [v1[0], v1[5]]
    v2 = [r for r in v1 if r not in removed] + p3_records(shared_data, V2_TEMPLATES, 3)  # +6
    return v1, v2


@pytest.fixture(scope="module")
def project(tmp_path_factory, versions, embedded_available):
    """Run version 1 and version 2 once with the real model (float32), shared by the tests; the
    paper's plain DELIFT (strata none), whose FL and FLCG picks are checked by definition here
    (the default stratified selection through a data update: tests/stages/test_groups_dvc.py)."""
    root = make_project(tmp_path_factory.mktemp("e2e") / "repo", versions[0], {"dtype": "float32"},
                        selection={"strata": "none"})
    sh("dvc", "repro", "select", cwd=root)
    commit(root, "run 1")
    first = {"score": metrics(root, "score"), "select": metrics(root, "select"),
             "record": json.loads((root / "data/selected/selection.json").read_text())}
    first["pairs"] = stored_pairs(root, first["score"]["scorer"])
    write_data(root, versions[1])
    commit(root, "version 2")
    sh("dvc", "repro", "select", cwd=root)
    commit(root, "run 2")
    return root, first


def test_first_version_is_facility_location_over_everything(project):
    root, first = project
    assert first["score"]["mode"] == "initial" and first["select"]["mode"] == "initial"
    assert first["score"]["pairs_scored"] == 144 and first["score"]["baselines_scored"] == 12
    assert first["select"]["n_selected"] == 3  # int(0.3 * 12)


def test_update_scores_exactly_the_new_pairs(project):
    root, first = project
    score = metrics(root, "score")
    record = json.loads((root / "data/selected/selection.json").read_text())
    n_new, n_kept = score["n_new"], score["n_kept"]
    assert score["mode"] == "continual" and n_new == 6 and score["n_removed"] == 2
    assert n_kept == len(record["kept"]) == len(set(first["record"]["ids"]) & set(record["ids"]))
    assert score["pairs_scored"] == n_new * (n_new + n_kept)
    assert score["baselines_scored"] == n_new
    after = stored_pairs(root, score["scorer"])
    assert len(after) == 144 + score["pairs_scored"]
    assert all(after[key] == value for key, value in first["pairs"].items())  # old values untouched


def test_update_subset_is_kept_plus_flcg_picks(project):
    from delift_dvc.selection.methods import continual
    from delift_dvc.store import Store
    from delift_dvc.kernels.utility import dense_utility

    root, first = project
    record = json.loads((root / "data/selected/selection.json").read_text())
    kept = [i for i in first["record"]["ids"] if i in set(record["ids"])]
    assert record["kept"] == kept and record["ids"][: len(kept)] == kept
    with Store(root / "store") as store:
        version = store.latest_version()
        members = set(store.version_ids(version.seq))
        prev_members = set(store.version_ids(version.seq - 1))
        new = sorted(members - prev_members)
        examples = sorted(set(new) | set(kept))
        block = dense_utility(store, record["scorer"], new, examples)
    col = {e: k for k, e in enumerate(examples)}
    expected = continual(new, block[:, [col[i] for i in new]], block[:, [col[i] for i in sorted(kept)]],
                         0.3, nu=1.0)
    assert record["added"] == expected.ids
    assert metrics(root, "select")["n_selected"] == len(kept) + len(expected.ids)
    subset = [json.loads(line) for line in (root / "data/selected/train.jsonl").read_text().splitlines()]
    assert len(subset) == len(record["ids"]) and all(set(r) == {"prompt", "completion"} for r in subset)


def test_repro_without_change_runs_nothing(project):
    root, _ = project
    done = sh("dvc", "repro", "select", cwd=root)
    assert "Running stage" not in done.stdout, done.stdout
    assert "up to date" in done.stdout


def test_every_stored_utility_equals_a_from_scratch_computation(project):
    from delift_dvc.utility.scorer import Scorer
    from delift_dvc.store import Store

    root, _ = project
    scorer_id = metrics(root, "score")["scorer"]
    pairs = stored_pairs(root, scorer_id)
    with Store(root / "store") as store:
        rows = store.connect().execute("SELECT id, prompt, response FROM samples").fetchall()
        d0_rows = store.connect().execute(
            "SELECT target, d0 FROM baselines WHERE scorer = ?", [scorer_id]).fetchall()
    by_id = {i: type("S", (), {"prompt": p, "response": r})() for i, p, r in rows}
    ids = sorted(by_id)
    index = {i: k for k, i in enumerate(ids)}
    scorer = Scorer(dtype="float32")
    assert scorer.fingerprint == scorer_id
    objs = [by_id[i] for i in ids]
    keys = sorted(pairs)
    fresh = scorer.score_pairs(objs, objs, [(index[t], index[e]) for t, e in keys])
    assert np.allclose(fresh, [pairs[k] for k in keys], atol=1e-5)
    fresh_d0 = scorer.score_pairs(objs, objs, [(index[t], None) for t, _ in d0_rows])
    assert np.allclose(fresh_d0, [d for _, d in d0_rows], atol=1e-5)


def test_status_diff_and_sql_commands(project):
    root, _ = project
    status = json.loads(sh("delift-dvc", "status", "--json", cwd=root).stdout)
    assert len(status["versions"]) == 2 and status["n_pairs"] == 144 + metrics(root, "score")["pairs_scored"]
    diff = json.loads(sh("delift-dvc", "diff", "1", "2", "--json", cwd=root).stdout)
    assert diff["data"] == {"added": 6, "removed": 2, "kept": 10}
    out = sh("delift-dvc", "sql", "SELECT count(*) AS n FROM versions", "--csv", cwd=root).stdout
    assert out.splitlines() == ["n", "2"]
    plots = json.loads(sh("dvc", "plots", "show", "--json", cwd=root).stdout)
    assert any("gains.csv" in key for key in json.dumps(plots).split('"'))


def test_push_clone_pull_rescores_nothing(project, tmp_path):
    root, _ = project
    remote = tmp_path / "remote"
    sh("dvc", "remote", "add", "-d", "local", remote, cwd=root)
    sh("dvc", "push", cwd=root)
    commit(root, "remote")
    clone = tmp_path / "clone"
    sh("git", "clone", "-q", root, clone, cwd=tmp_path)
    sh("dvc", "pull", "--with-deps", "select", cwd=clone)  # this project never ran finetune
    sh("dvc", "repro", "--force", "select", cwd=clone)
    score = metrics(clone, "score")
    assert score["pairs_scored"] == 0 and score["baselines_scored"] == 0
    assert score["pairs_reused"] > 0
