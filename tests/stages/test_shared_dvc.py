"""Queued experiments share the store's segments: two experiments that need the same pairs,
run at the same time by `dvc queue start -j 2`, score them once (and twice without the pool)."""

from __future__ import annotations

import json
import time

import yaml

from tests.helpers.projects import commit, make_project, sh


def scored_by_queued_experiments(root, shared: str | None) -> list[int]:
    """pairs_scored of two queued experiments (budgets 2 and 4) that run at the same time."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["scoring"]["shared_store"] = shared
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    commit(root, f"shared_store {shared}")
    names = [f"{'pool' if shared else 'apart'}-b{b}" for b in (2, 4)]
    for name, budget in zip(names, (2, 4)):
        sh("dvc", "exp", "run", "--queue", "-n", name, "-S", f"selection.budget={budget}", "score", cwd=root)
    sh("dvc", "queue", "start", "-j", "2", cwd=root)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = sh("dvc", "queue", "status", cwd=root).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    assert "Failed" not in status, status + sh("dvc", "queue", "logs", names[0], cwd=root, check=False).stdout
    shown = json.loads(sh("dvc", "exp", "show", "--json", cwd=root).stdout)
    found = {}
    for baseline in shown:
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs", []):
                if rev.get("name") in names:
                    found[rev["name"]] = rev["data"]["metrics"]["metrics/score.json"]["data"]["pairs_scored"]
    assert set(found) == set(names), shown
    return sorted(found.values())


def test_two_queued_experiments_score_the_same_pairs_once(tmp_path, tiny_model_dir):
    records = [{"instruction": f"question {k}?", "output": f"answer {k}"} for k in range(8)]
    root = make_project(tmp_path / "repo", records, {"model": str(tiny_model_dir), "dtype": "float32"},
                        selection={"budget": 3})
    sh("dvc", "queue", "stop", "--kill", cwd=root, check=False)
    try:
        assert scored_by_queued_experiments(root, None) == [64, 64]  # each workspace scores all 8 x 8
        assert scored_by_queued_experiments(root, "auto") == [0, 64]  # one scores, the other links
    finally:
        sh("dvc", "queue", "stop", "--kill", cwd=root, check=False)
    pool = root / ".dvc/cache/delift-store"
    assert len(list((pool / "pairs").glob("*.parquet"))) >= 1
