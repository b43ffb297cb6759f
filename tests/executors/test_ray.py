"""Scoring on Ray: the same store as local scoring, actor and driver faults, and `dvc repro`.

Every Ray run happens inside a private network namespace with only loopback (tests.helpers.netns).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import SHORT_P3, p3_records
from tests.helpers.netns import netns_command, ray_env, require_netns, run_in_netns
from tests.helpers.projects import commit, make_project, metrics, sh, write_data

pytestmark = pytest.mark.filterwarnings("ignore")


@pytest.fixture(scope="module", autouse=True)
def netns():
    require_netns()


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def segments(store: Path) -> dict[str, bytes]:
    """Every content-addressed segment of a store: name -> bytes."""
    return {f"{kind}/{p.name}": p.read_bytes() for kind in ("samples", "baselines", "pairs")
            for p in sorted((store / kind).glob("*.parquet"))}


def stored_values(store: Path) -> dict:
    from delift_dvc.store import Store

    with Store(store) as s:
        con = s.connect()
        pairs = con.execute("SELECT target, example, d FROM pairs").fetchall()
        d0 = con.execute("SELECT target, d0 FROM baselines").fetchall()
        dup = con.execute("SELECT count(*) FROM (SELECT target, example FROM pairs GROUP BY ALL "
                          "HAVING count(*) > 1)").fetchone()[0]
    return {"pairs": {(t, e): d for t, e, d in pairs}, "d0": dict(d0), "n_pairs": len(pairs), "duplicates": dup}


def test_ray_store_equals_local_store_on_real_model(tmp_path, shared_data, embedded_available):
    """Real model, real P3 data: two Ray workers give exactly the local store (same segments,
    bit-identical float32 values) and the same selection."""
    data = write_jsonl(tmp_path / "pool.jsonl", p3_records(shared_data, SHORT_P3, 1))
    common = ["--dtype", "float32", "--threads", "1", "--segment-pairs", "16"]
    sh("delift-dvc", "score", data, "--store", tmp_path / "local", *common, cwd=tmp_path)
    done = run_in_netns(["delift-dvc", "score", str(data), "--store", str(tmp_path / "ray"), *common,
                         "--executor", "ray", "--workers", "2"], cwd=tmp_path)
    assert "2 Ray workers x 1 thread on a private local Ray" in done.stderr
    local, ray = segments(tmp_path / "local"), segments(tmp_path / "ray")
    assert local == ray and sum(k.startswith("pairs/") for k in local) == 4  # 64 pairs / 16
    assert stored_values(tmp_path / "local") == stored_values(tmp_path / "ray")
    subsets = []
    for store in ("local", "ray"):
        sh("delift-dvc", "select", data, "--store", tmp_path / store, "--dtype", "float32",
           "--out", tmp_path / f"{store}.jsonl", cwd=tmp_path)
        subsets.append((tmp_path / f"{store}.jsonl").read_text())
    assert subsets[0] == subsets[1] and subsets[0]


def test_killed_actor_is_replaced_and_every_pair_is_stored_once(tmp_path, shared_data, tiny_model_dir):
    records = p3_records(shared_data, SHORT_P3[:4], 2)  # 8 samples: 64 pairs, 8 d0
    data = write_jsonl(tmp_path / "pool.jsonl", records)
    done = run_in_netns(["python", "-m", "tests.helpers.ray_faults", str(data), str(tmp_path / "ray"),
                         str(tiny_model_dir), "4"], cwd=Path(__file__).resolve().parents[2])
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(report["killed"]) == 1
    assert report["counts"]["pairs_scored"] == 64 and report["counts"]["baselines_scored"] == 8
    values = stored_values(tmp_path / "ray")
    assert values["n_pairs"] == 64 and values["duplicates"] == 0 and len(values["d0"]) == 8
    sh("delift-dvc", "score", data, "--store", tmp_path / "local", "--model", tiny_model_dir,
       "--dtype", "float32", "--threads", "1", "--segment-pairs", "4", cwd=tmp_path)
    assert segments(tmp_path / "local") == segments(tmp_path / "ray")


def test_killed_driver_resumes_with_only_the_unwritten_blocks(tmp_path, shared_data, tiny_model_dir):
    records = p3_records(shared_data, SHORT_P3[:5], 2)  # 10 samples: 100 pairs, 10 d0
    data = write_jsonl(tmp_path / "pool.jsonl", records)
    args = ["delift-dvc", "score", str(data), "--store", str(tmp_path / "ray"), "--model", str(tiny_model_dir),
            "--dtype", "float32", "--threads", "1", "--segment-pairs", "5", "--executor", "ray", "--workers", "2"]
    driver = subprocess.Popen(netns_command(args), cwd=tmp_path, env=ray_env(), start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pairs_dir = tmp_path / "ray" / "pairs"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and len(list(pairs_dir.glob("*.parquet"))) < 3:
        time.sleep(0.2)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and everything it started
    driver.wait()
    written = len(list(pairs_dir.glob("*.parquet")))
    assert 3 <= written < 20, "the driver must die mid-run"
    rerun = run_in_netns(args, cwd=tmp_path)
    counts = json.loads(rerun.stdout)
    assert counts["pairs_reused"] == 5 * written and counts["pairs_scored"] == 100 - 5 * written
    sh("delift-dvc", "score", data, "--store", tmp_path / "local", "--model", tiny_model_dir,
       "--dtype", "float32", "--threads", "1", "--segment-pairs", "5", cwd=tmp_path)
    assert segments(tmp_path / "local") == segments(tmp_path / "ray")  # as if never interrupted


def test_dvc_repro_on_ray_scores_exactly_the_new_pairs(tmp_path, shared_data, tiny_model_dir):
    v1 = p3_records(shared_data, SHORT_P3[:3], 3)  # 9 samples
    v2 = v1[1:] + p3_records(shared_data, SHORT_P3[3:5], 2)  # -1, +4
    root = make_project(tmp_path / "repo", v1, {"model": str(tiny_model_dir), "dtype": "float32", "threads": 1,
                                                "executor": "ray", "workers": 2, "segment_pairs": 8})
    first = run_in_netns(["dvc", "repro", "select"], cwd=root)
    assert "Ray workers" in first.stdout + first.stderr
    assert metrics(root, "score")["pairs_scored"] == 81
    commit(root, "run 1")
    write_data(root, v2)
    commit(root, "version 2")
    second = run_in_netns(["dvc", "repro", "select"], cwd=root)
    assert "Ray workers" in second.stdout + second.stderr
    score = metrics(root, "score")
    kept, new = score["n_kept"], score["n_new"]
    assert new == 4 and score["pairs_scored"] == new * (new + kept) and score["baselines_scored"] == new
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["scoring"]["executor"] == "ray"


def test_missing_ray_is_one_line_that_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    from delift_dvc.errors import InputError
    from delift_dvc.executors import ray as ray_executor

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(InputError, match=r'pip install "delift-dvc\[ray\]"'):
        ray_executor.import_ray()
