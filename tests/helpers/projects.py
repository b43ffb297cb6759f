"""Real git + DVC projects for end-to-end tests: the project's own dvc.yaml and params.yaml in a
temp folder, data written as JSONL, commands run as a user would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def sh(*args, cwd: Path, check=True) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(list(map(str, args)), cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=1800)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed: {done.stdout[-1500:]}\n{done.stderr[-2500:]}")
    return done


def make_project(root: Path, records: list[dict], scoring: dict, extra_files: dict[str, str] | None = None,
                 **sections: dict) -> Path:
    """A fresh git + DVC repo with the project's dvc.yaml and params.yaml (scoring and other
    sections overridden; no hold-out unless `data` says so) and `extra_files` (path -> text,
    e.g. a template file) committed with them."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(REPO / ".dvcignore", root / ".dvcignore")
    shutil.copytree(REPO / "templates", root / "templates")  # scoring.template, scoring.example_template
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["scoring"].update(scoring)
    params["data"]["holdout"] = 0.0
    for name, values in sections.items():
        params[name].update(values)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for name, text in (extra_files or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    write_data(root, records)
    sh("git", "init", "-q", cwd=root)
    sh("git", "config", "user.email", "t@example.invalid", cwd=root)
    sh("git", "config", "user.name", "test", cwd=root)
    sh("dvc", "init", "-q", cwd=root)
    sh("dvc", "config", "core.analytics", "false", cwd=root)
    commit(root, "version 1")
    return root


def write_data(root: Path, records: list[dict]) -> None:
    (root / "data" / "raw").mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in records)
    (root / "data" / "raw" / "train.jsonl").write_text(text, encoding="utf-8")


def commit(root: Path, message: str) -> None:
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", message, "--allow-empty", cwd=root)


def metrics(root: Path, name: str) -> dict:
    return json.loads((root / "metrics" / f"{name}.json").read_text())


def stored_pairs(root: Path, scorer: str) -> dict:
    from delift_dvc.store import Store

    with Store(root / "store") as store:
        rows = store.connect().execute(
            "SELECT target, example, d FROM pairs WHERE scorer = ?", [scorer]).fetchall()
    return {(t, e): d for t, e, d in rows}
