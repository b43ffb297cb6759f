"""Behaviour-equivalence check for refactors: run the same projects with two versions of the code
and compare every output byte.

    python benchmarks/equivalence.py record OUT.json [--code DIR] [--work DIR]
    python benchmarks/equivalence.py compare A.json B.json

`record` builds, in a scratch folder, the demo project (dense, v1 then examples/demo_v2), a knn
project and a surrogate project on the same data, runs `dvc repro select` for each version with the
embedded model, then runs the file-mode commands (FLMI with a target set, FLCG with --existing,
delift_se, embedding coverage, cluster balance) on a copy of the demo store, and writes the sha256
of every output file (store segments, data/selected/*, metrics/*, plots/*, dvc.lock) to OUT.json.
`--code DIR` runs a checkout of other code (a `git worktree` or `git archive` of a commit): DIR
goes first on PYTHONPATH and the projects take its dvc.yaml, params.yaml and demo data, so
`--code ../base` records the old behaviour with the same script. Git dates and identity are fixed, so the
version names (git revisions) are the same in both runs. `compare` prints every file whose bytes
differ and exits 1 if any does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PROJECTS = {
    "dense": {},
    "knn": {"utility": {"pairs": "knn", "k": 8}},
    "surrogate": {"utility": {"pairs": "surrogate", "k": 8, "lm_pairs": 3, "rounds": 2, "trees": 50}},
}
OUTPUTS = ("store", "data/selected", "data/prepared", "metrics", "plots", "dvc.lock")


def environment(code: Path | None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1",
           "GIT_AUTHOR_NAME": "equivalence", "GIT_AUTHOR_EMAIL": "eq@delift-dvc.invalid",
           "GIT_COMMITTER_NAME": "equivalence", "GIT_COMMITTER_EMAIL": "eq@delift-dvc.invalid",
           "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}
    if code is not None:
        env["PYTHONPATH"] = str(code.resolve()) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run(args: list, cwd: Path, env: dict) -> None:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, args))} failed in {cwd}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


def project(root: Path, sections: dict, env: dict, source: Path) -> Path:
    root.mkdir(parents=True)
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(source / name, root / name)
    if (source / "templates").is_dir():  # the scoring templates' files (older checkouts: inline)
        shutil.copytree(source / "templates", root / "templates")
    params = yaml.safe_load((source / "params.yaml").read_text())
    for name, values in sections.items():
        params[name].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "data" / "raw").mkdir(parents=True)
    shutil.copy(source / "data" / "raw" / "train.jsonl", root / "data" / "raw" / "train.jsonl")
    run(["git", "init", "-q", "-b", "main"], root, env)
    run(["dvc", "init", "-q"], root, env)
    run(["dvc", "config", "core.analytics", "false"], root, env)
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-qm", "version 1"], root, env)
    return root


def digests(root: Path, prefix: str) -> dict[str, str]:
    out = {}
    for name in OUTPUTS:
        path = root / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            out[f"{prefix}/{file.relative_to(root)}"] = hashlib.sha256(file.read_bytes()).hexdigest()
    return out


def record(out: Path, code: Path | None, work: Path) -> None:
    env = environment(code)
    source = (code or REPO).resolve()
    if work.exists():
        shutil.rmtree(work)
    result, timings = {}, {}
    for name, sections in PROJECTS.items():
        start = time.perf_counter()
        root = project(work / name, sections, env, source)
        run(["dvc", "repro", "select"], root, env)
        result.update(digests(root, f"{name}/v1"))
        run(["git", "add", "-A"], root, env)
        run(["git", "commit", "-qm", "version 1 selected"], root, env)
        shutil.copy(source / "examples" / "demo_v2" / "train.jsonl", root / "data" / "raw" / "train.jsonl")
        run(["git", "add", "-A"], root, env)
        run(["git", "commit", "-qm", "version 2"], root, env)
        run(["dvc", "repro", "select"], root, env)
        result.update(digests(root, f"{name}/v2"))
        timings[name] = round(time.perf_counter() - start, 1)
        print(f"{name}: {timings[name]} s", flush=True)
    result.update(file_mode(work, env))
    out.write_text(json.dumps({"files": result, "seconds": timings}, indent=1, sort_keys=True) + "\n")
    print(f"{len(result)} files -> {out}")


def file_mode(work: Path, env: dict) -> dict[str, str]:
    """File-mode score/select on the demo's pool, reusing a copy of the demo store."""
    root = work / "files"
    root.mkdir()
    shutil.copytree(work / "dense" / "store", root / "store")
    pool = work / "dense" / "data" / "prepared" / "train.jsonl"
    lines = pool.read_text().splitlines(keepends=True)
    (root / "target.jsonl").write_text("".join(lines[:5]))
    (root / "used.jsonl").write_text("".join(lines[5:12]))
    (root / "pool.jsonl").write_text("".join(lines[12:]))
    runs = {
        "flmi": ["--target-set", "target.jsonl"],
        "flcg": ["--existing", "used.jsonl"],
        "fl_count": ["--budget", "7"],
        "delift_se": ["--method", "delift_se", "--budget", "0.2"],
        "coverage": ["--embedding-coverage", "0.5"],
        "balance": ["--balance-clusters", "3"],
        "random": ["--method", "random", "--seed", "3"],
        "separate": ["--scaling", "separate", "--existing", "used.jsonl"],
    }
    extra_score = {"flmi": ["--target-set", "target.jsonl"], "flcg": ["--existing", "used.jsonl"],
                   "separate": ["--existing", "used.jsonl"]}
    for name, options in runs.items():
        if name in extra_score:
            run(["delift-dvc", "score", "pool.jsonl", "--store", "store", *extra_score[name]], root, env)
        run(["delift-dvc", "select", "pool.jsonl", "--store", "store", "--out", f"{name}.jsonl",
             "--summary", f"{name}.json", *options], root, env)
    out = {}
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        out[f"files/{file.relative_to(root)}"] = hashlib.sha256(file.read_bytes()).hexdigest()
    return out


def compare(a: Path, b: Path) -> None:
    left, right = (json.loads(p.read_text())["files"] for p in (a, b))
    differ = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
    for key in differ:
        print(f"differs: {key} ({'missing in ' + b.name if key not in right else 'missing in ' + a.name if key not in left else 'bytes'})")
    print(f"{len(left)} vs {len(right)} files, {len(differ)} differ")
    sys.exit(1 if differ else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("out", type=Path)
    rec.add_argument("--code", type=Path, default=None, help="put this folder first on PYTHONPATH")
    rec.add_argument("--work", type=Path, default=Path("/tmp/delift-equivalence"))
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("a", type=Path)
    cmp_.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "record":
        record(args.out, args.code, args.work)
    else:
        compare(args.a, args.b)


if __name__ == "__main__":
    main()
