"""Run a comparison grid in the current DVC project: one `dvc exp run` per missing run, its
outputs harvested as it finishes, params.yaml and dvc.lock restored afterwards. The store keeps
every utility, so only the first LM-based run scores anything."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from delift_dvc.atomic import write_bytes, write_text
from delift_dvc.errors import DeliftError, InputError
from delift_dvc.experiments.grid import OPTIONS, Run, first_version_overrides
from delift_dvc.experiments.harvest import (COLUMNS, SAMPLE_COLUMNS, SUBSET_COLUMNS, append_rows, read_rows,
                                            run_rows, sample_rows, subset_rows)
from delift_dvc.stages.outputs import METRICS

__all__ = ["run_grid", "read_protocol"]


def run_grid(runs: Sequence[Run], out: str | Path, params_path: str = "params.yaml",
             dry_run: bool = False, echo: Callable[[str], None] = print) -> None:
    """Run each missing run with `dvc exp run` in the current DVC project and append its metrics
    to OUT/compare.csv; params.yaml and dvc.lock are restored afterwards."""
    if params_path != "params.yaml":
        raise InputError(f"--params {params_path}: compare drives `dvc exp run`, which needs params.yaml")
    for required in ("dvc.yaml", "params.yaml"):
        if not Path(required).is_file():
            raise InputError(f"{required}: not found (run compare in the DVC project's root)")
    from delift_dvc.config import load_params

    params = load_params(params_path)
    table, samples = Path(out) / "compare.csv", Path(out) / "compare_samples.csv"
    subsets = Path(out) / "compare_subsets.csv"
    done = {(r["method"], r["budget"], r["seed"]) for r in read_rows(table, COLUMNS)}
    todo = [run for run in runs if run.key() not in done]
    _check_options(read_protocol(Path(out)), Path(out) / "protocol.json", runs, done)
    echo(f"{len(runs)} runs, {len(runs) - len(todo)} already in {table}, {len(todo)} to run")
    saved = {name: Path(name).read_bytes() for name in ("params.yaml", "dvc.lock") if Path(name).exists()}
    try:
        first_version_budget = None
        for k, run in enumerate(todo, start=1):
            if run.update is not None and run.budget != first_version_budget:
                _exp_run(first_version_overrides(params.data.train, run.budget), dry_run, echo,
                         targets=["score"], label=f"[{k}/{len(todo)}] first version at budget {run.budget}: ")
                first_version_budget = run.budget
            _exp_run(run.overrides(), dry_run, echo, label=f"[{k}/{len(todo)}] ")
            if dry_run:
                continue
            append_rows(table, run_rows(run, Path(params.metrics)), COLUMNS, 5)
            append_rows(samples, sample_rows(run, Path(params.plots)), SAMPLE_COLUMNS, 5)
            append_rows(subsets, subset_rows(run, Path(params.data.selected)), SUBSET_COLUMNS, 4)
            _record_protocol(Path(out), Path(params.metrics), run)
    finally:
        for name, content in saved.items():
            write_bytes(name, content)


def _exp_run(overrides: list[str], dry_run: bool, echo: Callable[[str], None],
             targets: Sequence[str] = (), label: str = "") -> None:
    """One `dvc exp run -S ++key=value ...` (up to `targets`' stages when given; `++` also adds a
    key that params.yaml leaves to its default); DeliftError when it fails."""
    command = ["dvc", "exp", "run", *[arg for o in overrides for arg in ("-S", "++" + o)], *targets]
    echo(label + " ".join(command))
    if dry_run:
        return
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["?"]
        raise DeliftError(f"dvc exp run {' '.join(overrides)}: failed ({tail[0]})")


def read_protocol(out: Path) -> dict:
    """OUT/protocol.json ({} before the first run)."""
    path = out / "protocol.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _record_protocol(out: Path, metrics: Path, run: Run) -> None:
    """OUT/protocol.json: how the runs were fine-tuned (the same for every run of a sweep), and
    the value of each delift option (embedding coverage, balance clusters) once a run used it."""
    train = json.loads((metrics / METRICS["finetune"]).read_text(encoding="utf-8"))
    protocol = read_protocol(out)
    protocol.setdefault("protocol", train.get("protocol", "epochs"))
    if run.method in OPTIONS:
        protocol.setdefault(OPTIONS[run.method][0], run.option())
    write_text(out / "protocol.json", json.dumps(protocol, sort_keys=True) + "\n")


def _check_options(protocol: dict, path: Path, runs: Sequence[Run], done: set) -> None:
    """Refuse to mix delift_cov (delift_bal) rows made with another coverage weight (cluster count)."""
    for method, (key, flag) in OPTIONS.items():
        wanted = {run.option() for run in runs if run.method == method}
        recorded = protocol.get(key)
        if wanted and recorded is not None and recorded not in wanted and any(k[0] == method for k in done):
            raise InputError(f"{flag} {wanted.pop():g}: {path} holds {method} runs at "
                             f"{recorded:g} (use that value, or another --out)")
