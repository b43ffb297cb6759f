"""`delift-dvc score` / `select` on files: bad inputs, the three stages, resuming, locking."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHORT_P3, p3_records


def run_cli(*args, cwd=None, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "delift_dvc", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=1800)
    if check and done.returncode != 0:
        raise AssertionError(f"delift-dvc {args} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def alpaca(n: int, offset: int = 0) -> list[dict]:
    return [{"instruction": f"Add {k} and {k + 1}.", "output": str(2 * k + 1)} for k in range(offset, offset + n)]


BAD_INPUTS = [
    ("malformed.jsonl", '{"prompt": "a", "completion": "b"}\n{"prompt": oops}\n', "malformed.jsonl:2"),
    ("noresp.jsonl", '{"instruction": "a"}\n', "noresp.jsonl:1"),
    ("empty_resp.jsonl", '{"prompt": "a", "completion": "<|endoftext|>"}\n', "empty_resp.jsonl:1"),
    ("nonstring.jsonl", '{"instruction": "a", "output": 5}\n', "nonstring.jsonl:1"),
    ("empty.jsonl", "", "empty.jsonl"),
]


@pytest.mark.parametrize("name, content, where", BAD_INPUTS)
def test_bad_input_is_one_line_error(tmp_path, name, content, where):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    for command in (["score", path, "--store", tmp_path / "s"],
                    ["select", path, "--method", "random", "--out", tmp_path / "o.jsonl"]):
        done = run_cli(*command, check=False)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert where in lines[0]
    assert not (tmp_path / "o.jsonl").exists()


def test_bad_encoding_and_bad_params(tmp_path):
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"prompt": "a", "completion": "b"}\n{"prompt": "caf\xe9", "completion": "b"}\n')
    done = run_cli("select", path, "--method", "random", "--out", tmp_path / "o.jsonl", check=False)
    assert done.returncode == 2 and "latin.jsonl:2" in done.stderr and "UTF-8" in done.stderr
    good = write_jsonl(tmp_path / "good.jsonl", alpaca(5))
    params = tmp_path / "params.yaml"
    params.write_text("selection:\n  budget: 1.5\n")
    done = run_cli("select", good, "--params", params, "--out", tmp_path / "o.jsonl", check=False)
    assert done.returncode == 2 and "selection.budget" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--budget", "abc"], "error: Invalid value for '--budget': 'abc' is not a number"),
    (["--budget", "1.5"], "error: Invalid value for '--budget': 1.5: a fraction must be in (0, 1]"),
    (["--budget", "0"], "error: Invalid value for '--budget': 0: a count must be >= 1"),
    (["--budget", "25"], "error: --budget 25: more than the 20 samples to choose from"),
    (["--method", "best"], "error: Invalid value for '--method'"),
    (["--embedding-coverage", "-1"], "error: options: selection.embedding_coverage"),
    (["--embedding-coverage", "0.5"], "error: options: selection.embedding_coverage 0.5: only used by selection.method delift, not random"),
    (["--balance-clusters", "-2"], "error: options: selection.balance_clusters"),
    (["--balance-clusters", "3"], "error: options: selection.balance_clusters 3: only used by selection.method delift, not random"),
])
def test_option_errors_name_the_option(tmp_path, args, message):
    pool = write_jsonl(tmp_path / "pool.jsonl", alpaca(20))
    done = run_cli("select", pool, "--method", "random", *args, "--out", tmp_path / "o.jsonl", check=False)
    assert done.returncode == 2 and done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize("command, args, flag", [
    ("score", ["--budget", "0.5"], "--budget"),
    ("score", ["--dtype", "float32"], "--dtype"),
    ("select", ["--out", "x.jsonl"], "--out"),
    ("select", ["--method", "random"], "--method"),
])
def test_stage_mode_refuses_options_it_would_ignore(tmp_path, command, args, flag):
    (tmp_path / "params.yaml").write_text("data:\n  train: data.jsonl\n")
    done = run_cli(command, *args, cwd=tmp_path, check=False)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {flag}: only with a DATA file"), done.stderr


def test_help_has_an_example_on_every_command():
    for command in ("ingest", "score", "select", "finetune", "evaluate", "compare", "status", "diff", "sql"):
        done = run_cli(command, "--help")
        assert "Example: delift-dvc" in done.stdout, command


def test_three_stages_on_files_with_tiny_model(tmp_path, tiny_model_dir):
    pool = write_jsonl(tmp_path / "pool.jsonl", alpaca(12))
    targets = write_jsonl(tmp_path / "task.jsonl", alpaca(3, offset=100))
    used = write_jsonl(tmp_path / "used.jsonl", alpaca(4))
    common = ["--store", tmp_path / "store", "--model", tiny_model_dir, "--dtype", "float32"]
    first = json.loads(run_cli("score", pool, *common, "--quiet").stdout)
    assert first["pairs_scored"] == 144 and first["baselines_scored"] == 12
    again = json.loads(run_cli("score", pool, *common, "--quiet").stdout)
    assert again["pairs_scored"] == 0 and again["pairs_reused"] == 144
    task = json.loads(run_cli("score", pool, *common, "--target-set", targets, "--quiet").stdout)
    assert task["pairs_scored"] == 12 * 3  # only pool x target set was missing
    cont = json.loads(run_cli("score", pool, *common, "--existing", used, "--quiet").stdout)
    assert cont["pairs_scored"] == 0  # (pool - used) x pool: all stored already

    from delift_dvc.data.samples import load_samples
    from tests.helpers.oracle import objective as by_definition

    pool_ids, target_ids, used_ids = ([s.id for s in load_samples(p)] for p in (pool, targets, used))
    blocks = {"fl": (pool_ids, []), "flmi": (pool_ids, target_ids),
              "flcg": ([i for i in pool_ids if i not in used_ids], used_ids)}
    for extra, objective, n in (([], "fl", 3), (["--target-set", targets], "flmi", 3),
                                (["--existing", used], "flcg", 2)):
        out, summary = tmp_path / f"{objective}.jsonl", tmp_path / f"{objective}.json"
        # the default (strata; a pool this small is one stratum: the tempered draw over it, on
        # the same scaled kernel) and the paper's plain DELIFT (strata none, the greedy)
        for strata in ([], ["--strata", "none"]):
            run_cli("select", pool, *common, *extra, *strata, "--budget", "0.25", "--out", out, "--summary", summary)
            result = json.loads(summary.read_text())
            assert result["objective_name"] == objective and result["n_selected"] == n
            assert ("temperature" in result["params"]) == (not strata)
            ground, extra_ids = blocks[objective]
            assert result["objective"] == pytest.approx(by_definition(
                tmp_path / "store", result["scorer"], ground, extra_ids, result["ids"], objective), rel=1e-9)
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(records) == n and all(set(r) == {"instruction", "output"} for r in records)
        covered = tmp_path / f"{objective}_covered.json"
        run_cli("select", pool, *common, *extra, "--budget", "0.25", "--strata", "none", "--embedding-coverage", "0.5",
                "--out", tmp_path / "covered.jsonl", "--summary", covered)
        assert json.loads(covered.read_text())["params"]["embedding_coverage"] == 0.5
        balanced = tmp_path / f"{objective}_balanced.json"
        run_cli("select", pool, *common, *extra, "--budget", "0.25", "--strata", "none", "--balance-clusters", "2",
                "--out", tmp_path / "balanced.jsonl", "--summary", balanced)
        result = json.loads(balanced.read_text())
        assert result["params"]["balance_parts"] == 2 and result["n_selected"] == n
    used_ids = {json.dumps(r, sort_keys=True) for r in alpaca(4)}
    added = [json.dumps(json.loads(x), sort_keys=True) for x in (tmp_path / "flcg.jsonl").read_text().splitlines()]
    assert not used_ids & set(added)


def test_select_without_scores_says_what_to_run(tmp_path, tiny_model_dir):
    pool = write_jsonl(tmp_path / "pool.jsonl", alpaca(4))
    common = ["--store", tmp_path / "store", "--model", tiny_model_dir, "--dtype", "float32"]
    run_cli("score", write_jsonl(tmp_path / "other.jsonl", alpaca(2)), *common, "--quiet")
    done = run_cli("select", pool, *common, "--out", tmp_path / "o.jsonl", check=False)
    assert done.returncode == 2 and "delift-dvc score" in done.stderr


def test_changed_template_or_model_never_reuses(tmp_path, tiny_model_dir):
    pool = write_jsonl(tmp_path / "pool.jsonl", alpaca(4))
    common = ["--store", tmp_path / "store", "--model", tiny_model_dir, "--quiet"]
    run_cli("score", pool, *common, "--dtype", "float32")
    params = tmp_path / "params.yaml"
    params.write_text('scoring:\n  template: "Q: {prompt}\\nA:"\n')
    other = json.loads(run_cli("score", pool, *common, "--dtype", "float32", "--params", params).stdout)
    assert other["pairs_scored"] == 16 and other["pairs_reused"] == 0
    bf16 = json.loads(run_cli("score", pool, *common, "--dtype", "bfloat16").stdout)
    assert bf16["pairs_scored"] == 16


def _pair_rows(store: Path):
    from delift_dvc.store import Store

    with Store(store) as s:
        return s.connect().execute(
            "SELECT scorer, target, example, d FROM pairs ORDER BY ALL").fetchall()


def test_sigkill_mid_scoring_then_resume_equals_uninterrupted(tmp_path, tiny_model_dir):
    pool = write_jsonl(tmp_path / "pool.jsonl", alpaca(16))
    args = ["--model", tiny_model_dir, "--dtype", "float32", "--segment-pairs", "8", "--quiet"]
    run_cli("score", pool, "--store", tmp_path / "straight", *args)
    killed = tmp_path / "killed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "delift_dvc", "score", str(pool), "--store",
                             str(killed), *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((killed / "pairs").glob("*.parquet"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(list((killed / "pairs").glob("*.parquet")))
    assert 3 <= partial < 32, "the run must be killed mid-way"
    resumed = json.loads(run_cli("score", pool, "--store", killed, *args).stdout)
    assert resumed["pairs_reused"] >= 3 * 8 and resumed["pairs_scored"] + resumed["pairs_reused"] == 256
    rows = _pair_rows(killed)
    assert len(rows) == 256 == len({r[:3] for r in rows})
    assert np.allclose([r[3] for r in rows], [r[3] for r in _pair_rows(tmp_path / "straight")], atol=1e-6)


def test_second_writer_gets_a_clear_error(tmp_path, tiny_model_dir):
    from delift_dvc.store import Store

    pool = write_jsonl(tmp_path / "pool.jsonl", alpaca(3))
    with Store(tmp_path / "store", write=True):
        done = run_cli("score", pool, "--store", tmp_path / "store", "--model", tiny_model_dir,
                       "--quiet", check=False)
    assert done.returncode == 2 and "locked" in done.stderr and str(os.getpid()) in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    run_cli("score", pool, "--store", tmp_path / "store", "--model", tiny_model_dir, "--quiet")


def test_real_model_end_to_end_on_p3(tmp_path, shared_data, embedded_available):
    """40 samples from several P3 templates, the embedded model: score, then select 30%."""
    records = p3_records(shared_data, SHORT_P3, 5)
    assert len(records) == 40
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    scored = json.loads(run_cli("score", pool, "--store", tmp_path / "store", "--quiet").stdout)
    assert scored["pairs_scored"] == 1600 and scored["baselines_scored"] == 40
    out, summary = tmp_path / "subset.jsonl", tmp_path / "summary.json"
    # the default: strata of MiniLM clusters (one file: a single group; 40 // 8 = 5 clusters) x
    # answer labels, a tempered draw inside each
    run_cli("select", pool, "--store", tmp_path / "store", "--budget", "0.3", "--out", out,
            "--summary", summary)
    default = json.loads(summary.read_text())
    assert default["n_selected"] == 12 and default["params"]["strata_from"] == "clusters"
    assert default["params"]["strata"] >= 5 and default["params"]["temperature"] == 1.0 and default["objective"] > 0
    # the paper's plain DELIFT: facility location over the whole pool, checked by definition
    run_cli("select", pool, "--store", tmp_path / "store", "--budget", "0.3", "--strata", "none", "--out", out,
            "--summary", summary)
    result = json.loads(summary.read_text())
    assert result["n_selected"] == 12 and len(result["gains"]) == 12
    from delift_dvc.data.samples import load_samples
    from tests.helpers.oracle import objective as by_definition

    ids = [s.id for s in load_samples(pool)]
    oracle = by_definition(tmp_path / "store", result["scorer"], ids, [], result["ids"], "fl")
    assert result["objective"] == pytest.approx(oracle, rel=1e-9) and result["objective"] > 0
    assert all(a >= b - 1e-12 for a, b in zip(result["gains"], result["gains"][1:]))
    chosen = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(chosen) == 12 and all(set(r) == {"prompt", "completion"} for r in chosen)
    se = json.loads(run_cli("select", pool, "--method", "delift_se", "--budget", "0.3",
                            "--out", tmp_path / "se.jsonl").stdout)
    assert se["n_selected"] == 12


def test_progress_in_a_log_is_clean_lines_with_rate_and_eta(tmp_path, tiny_model_dir):
    """stderr is not a terminal: one plain line per phase, and progress lines in pairs with a
    rate and an ETA that move with every forward batch, inside one block of work."""
    pool = write_jsonl(tmp_path / "pool.jsonl", alpaca(12))
    env_args = ["score", pool, "--store", tmp_path / "s", "--model", tiny_model_dir, "--dtype", "float32",
                "--batch-tokens", "64"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "DELIFT_DVC_PROGRESS_SECONDS": "0"}
    done = subprocess.run([sys.executable, "-m", "delift_dvc", *map(str, env_args)], capture_output=True,
                          text=True, env=env, timeout=600, check=True)
    err = done.stderr
    assert "\r" not in err and "\x1b" not in err
    lines = err.strip().splitlines()
    assert all(line.startswith("score: ") for line in lines), err
    assert "score: 12 d0 and 144 pairs to score in 2 blocks" in lines[0]  # one of d0, one of pairs
    progress = [line for line in lines if "pairs/s" in line and "ETA" in line]
    done_counts = [int(line.split()[1].split("/")[0].replace(",", "")) for line in progress]
    assert len(progress) >= 5 and done_counts == sorted(done_counts) and done_counts[-1] < 156
    assert lines[-1].startswith("score: scored 156 values in")
