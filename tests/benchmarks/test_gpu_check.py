"""benchmarks/gpu_check.sh --dry-run: the GPU check's code paths on the CPU with a tiny model."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.sh"
COLUMNS = ["model", "attention", "scorer", "batch_tokens", "pairs", "pairs/s", "vs reference", "peak GPU MiB",
           "max abs diff vs reference"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_dry_run_prints_the_whole_table(tmp_path, shared_data, embedded_available):
    assets = tmp_path / "assets"
    prepared = run("--prepare", "--assets", str(assets), "--per-template", "2")
    assert prepared.returncode == 0, prepared.stderr
    assert {p.name for p in assets.iterdir()} == {"samples.jsonl", "tokenizer.json", "tokenizer_config.json"}
    done = run("--dry-run", "--assets", str(assets))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert [c.strip() for c in lines[0].strip("|").split("|")] == COLUMNS
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    # reference, plain, prefix reuse, the two sweep sizes, auto
    assert [r[2] for r in rows] == ["reference", "plain"] + ["prefix reuse"] * 4
    assert [r[3] for r in rows[3:]] == ["256", "1024", "auto = 8192"]
    for row in rows:
        assert row[0] == "tiny random" and row[4] == "18" and row[7] == "n/a"
        assert float(row[5]) > 0 and row[6].endswith("x")
        assert float(row[8]) < 1e-6  # float32: the scorer's values are the reference's
    assert rows[0][6] == "1.00x"


def test_missing_assets_is_a_one_line_error(tmp_path):
    done = run("--dry-run", "--assets", str(tmp_path / "none"))
    assert done.returncode != 0
    assert done.stderr.strip().count("\n") == 0 and "--prepare" in done.stderr
    assert "Traceback" not in done.stderr
