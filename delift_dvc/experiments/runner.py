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
                                            run_rows, sample_rows, stage_seconds, subset_rows, write_rows)
from delift_dvc.stages.outputs import METRICS
from delift_dvc.stages.score import shared_root
from delift_dvc.store.shared import SharedPool

__all__ = ["run_grid", "read_protocol", "restore_project"]


BACKUP = ".restore"  # OUT/.restore/: params.yaml and dvc.lock as they were before the sweep
PROJECT_FILES = ("params.yaml", "dvc.lock")
INDEX = "git-index.txt"  # OUT/.restore/: their git index entries before the sweep (`git ls-files -s`)
LOGS = "logs"  # OUT/logs/NAME.log: each run's whole `dvc exp run` output


def run_grid(runs: Sequence[Run], out: str | Path, params_path: str = "params.yaml",
             dry_run: bool = False, echo: Callable[[str], None] = print) -> None:
    """Run each missing run with `dvc exp run` in the current DVC project and harvest its rows;
    params.yaml and dvc.lock are restored afterwards (from OUT/.restore on the next start when
    a sweep was killed before it could). A run is done once its compare.csv row is written, the
    last of its writes: rows a killed run left in the other tables are dropped and redone."""
    if params_path != "params.yaml":
        raise InputError(f"--params {params_path}: compare drives `dvc exp run`, which needs params.yaml")
    for required in ("dvc.yaml", "params.yaml"):
        if not Path(required).is_file():
            raise InputError(f"{required}: not found (run compare in the DVC project's root)")
    from delift_dvc.config import load_params

    out = Path(out)
    restore_project(out, echo)
    params = load_params(params_path)
    table = out / "compare.csv"
    done = {(r["method"], r["budget"], r["seed"]) for r in read_rows(table, COLUMNS)}
    todo = [run for run in runs if run.key() not in done]
    _check_options(read_protocol(out), out / "protocol.json", runs, done)
    if todo:
        _protect_store(params, dry_run, echo)
    echo(f"{len(runs)} runs, {len(runs) - len(todo)} already in {table}, {len(todo)} to run")
    if dry_run:
        _run_all(todo, params, out, dry_run, echo)
        return
    _drop_unfinished(out, done)
    _save_project(out)
    try:
        _run_all(todo, params, out, dry_run, echo)
    finally:
        restore_project(out, lambda line: None)


def _run_all(todo: Sequence[Run], params, out: Path, dry_run: bool, echo: Callable[[str], None]) -> None:
    first_version_budget = None
    for k, run in enumerate(todo, start=1):
        if run.update is not None and run.budget != first_version_budget:
            _exp_run(first_version_overrides(params.data.train, run.budget), dry_run, echo,
                     targets=["score"], label=f"[{k}/{len(todo)}] first version at budget {run.budget}: ",
                     name=f"first-version-b{run.budget}", logs=out / LOGS)
            first_version_budget = run.budget
        output = _exp_run(run.overrides(), dry_run, echo, label=f"[{k}/{len(todo)}] ", name=run.name(),
                          logs=out / LOGS)
        if not dry_run:
            _harvest(run, params, out, stage_seconds(output or ""))


def _harvest(run: Run, params, out: Path, score_seconds: float | None = None) -> None:
    """A finished run's rows: per sample, its subset, the protocol, and last its compare.csv
    rows, which mark the run done."""
    rows = run_rows(run, Path(params.metrics), score_seconds)  # read first: a run without a test set fails here
    append_rows(out / "compare_samples.csv", sample_rows(run, Path(params.plots)), SAMPLE_COLUMNS, 5)
    append_rows(out / "compare_subsets.csv", subset_rows(run, Path(params.data.selected)), SUBSET_COLUMNS, 4)
    _record_protocol(out, Path(params.metrics), run)
    append_rows(out / "compare.csv", rows, COLUMNS, 5)


def _protect_store(params, dry_run: bool, echo: Callable[[str], None]) -> None:
    """Before a stage runs, `dvc exp run` resets a `persist: true` output to its dvc.lock state,
    which deletes values written into the store outside the pipeline (file mode, a copied store).
    With a shared pool (scoring.shared_store) the store's segments are linked into it (not in a
    dry run), and each run's score stage takes them back; without one, such a store is refused."""
    store = Path(params.store_dir)
    pool = shared_root(params.scoring.shared_store, store)
    if pool is None:
        _check_store(store)
    elif not dry_run:
        with SharedPool(pool) as shared:
            linked = shared.push(store)
        if linked:
            echo(f"{linked} segments of {store} linked into the shared store {pool}, where every run finds them")


def _check_store(store: Path) -> None:
    """Without a shared pool, refuse a sweep while the store holds values its dvc.lock entry
    does not record (filled in file mode, or copied in): `dvc exp run` would reset the store to
    its dvc.lock state and delete them. `dvc repro score` records them."""
    if not store.is_dir() or not any(path.is_file() for path in store.rglob("*")):
        return
    done = subprocess.run(["dvc", "status", "--json"], capture_output=True, text=True)
    try:
        stages = json.loads(done.stdout) if done.returncode == 0 else {}
    except json.JSONDecodeError:  # not DVC's JSON: `dvc exp run` reports the problem itself
        return
    unrecorded = {"modified", "new"}
    for stage, changes in stages.items():
        for change in changes:
            outs = change.get("changed outs", {}) if isinstance(change, dict) else {}
            if any(Path(path) == store and state in unrecorded for path, state in outs.items()):
                raise InputError(f"{store}: holds values dvc.lock does not record (written outside the "
                                 f"pipeline); `dvc exp run` would reset it to dvc.lock and lose them: "
                                 f"run `dvc repro {stage}` first, or set scoring.shared_store")


def _drop_unfinished(out: Path, done: set) -> None:
    """Remove the per-sample and subset rows of runs without a compare.csv row (a sweep killed
    between a run's writes), so that their rerun writes them afresh."""
    for name, columns in (("compare_samples.csv", SAMPLE_COLUMNS), ("compare_subsets.csv", SUBSET_COLUMNS)):
        path = out / name
        rows = read_rows(path, columns)
        kept = [r for r in rows if r["method"] == "initial" or (r["method"], r["budget"], r["seed"]) in done]
        if len(kept) != len(rows):
            write_rows(path, kept, columns)


def _index_entries() -> str:
    """`git ls-files -s` of params.yaml and dvc.lock (empty outside git)."""
    done = subprocess.run(["git", "ls-files", "-s", "--", *PROJECT_FILES], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""


def _save_project(out: Path) -> None:
    """OUT/.restore/: a copy of params.yaml and dvc.lock and their git index entries, each
    written atomically (the index last: it marks the backup complete)."""
    for name in PROJECT_FILES:
        if Path(name).exists():
            write_bytes(out / BACKUP / name, Path(name).read_bytes())
    write_text(out / BACKUP / INDEX, _index_entries())


def restore_project(out: Path, echo: Callable[[str], None]) -> None:
    """Put back params.yaml and dvc.lock from OUT/.restore, and their git index entries (a run
    stopped inside `dvc exp run` can leave the overrides staged), then remove it (nothing when
    absent)."""
    folder = out / BACKUP
    if not folder.is_dir():
        return
    names = [name for name in PROJECT_FILES if (folder / name).is_file()]
    for name in names:
        write_bytes(name, (folder / name).read_bytes())
    index = folder / INDEX
    if index.is_file():
        saved = index.read_text(encoding="utf-8")
        if saved != _index_entries():
            _put_index(saved)
    for name in names:
        (folder / name).unlink()
    index.unlink(missing_ok=True)
    folder.rmdir()
    if names:
        echo(f"restored {' and '.join(names)} from {folder} (a sweep stopped before it could)")


def _put_index(saved: str) -> None:
    """The git index entries of PROJECT_FILES as `git ls-files -s` printed them (a file not in
    the index then is removed from it)."""
    entries = {}
    for line in saved.splitlines():
        meta, _, path = line.partition("\t")
        mode, blob, _stage = meta.split()
        entries[path] = (mode, blob)
    for name in PROJECT_FILES:
        if name in entries:
            mode, blob = entries[name]
            subprocess.run(["git", "update-index", "--cacheinfo", f"{mode},{blob},{name}"], capture_output=True)
        else:
            subprocess.run(["git", "rm", "-q", "--cached", "--ignore-unmatch", "--", name], capture_output=True)


def _exp_run(overrides: list[str], dry_run: bool, echo: Callable[[str], None],
             targets: Sequence[str] = (), label: str = "", name: str | None = None,
             logs: Path | None = None) -> str | None:
    """One `dvc exp run -n NAME -S ++key=value ...` (up to `targets`' stages when given; `++` also
    adds a key that params.yaml leaves to its default), its whole output in LOGS/NAME.log; a
    DeliftError with the stage's own error line when it fails. An experiment of that name left
    by an unfinished earlier sweep is replaced."""
    named = ["-n", name] if name else []
    command = ["dvc", "exp", "run", *named, *[arg for o in overrides for arg in ("-S", "++" + o)], *targets]
    echo(label + " ".join(command))
    if dry_run:
        return None
    if name:
        subprocess.run(["dvc", "exp", "remove", name], capture_output=True, text=True)
    done = subprocess.run(command, capture_output=True, text=True)
    log = None
    if logs is not None and name:
        log = write_text(logs / f"{name}.log", f"$ {' '.join(command)}\n{done.stdout}{done.stderr}")
    if done.returncode != 0:
        where = f"; whole output in {log}" if log else ""
        raise DeliftError(f"dvc exp run {name or ' '.join(overrides)}: failed ({failure_line(done.stderr, done.stdout)})"
                          + where)
    return done.stdout


def failure_line(stderr: str, stdout: str) -> str:
    """The line that says why a `dvc exp run` failed: a stage's own one-line "error: ..." (the
    delift-dvc CLI's), else DVC's last "ERROR: ..." line, else the last line."""
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("error: ")]
    theirs = [line for line in lines if line.startswith("ERROR: ")]
    return (ours or theirs or lines or ["?"])[-1]


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
