"""The comparison experiment: methods x budgets (x seeds for random) as `dvc exp run` runs,
then a table (mean and spread over seeds) and a plot of quality vs budget.

Rows are appended to OUT/compare.csv as each run finishes, so a killed sweep resumes where it
stopped. Each run re-selects from scratch (`selection.mode=refresh`); the store keeps every
utility, so only the first delift run scores anything.
"""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from delift_dvc.errors import DeliftError, InputError
from delift_dvc.selection.stages import METHODS

COLUMNS = ["method", "budget", "seed", "n_train", "variant", "nll", "rouge_l", "cosine"]
VARIANTS = ("finetuned", "icl")
METRICS = ("rouge_l", "cosine", "nll")


@dataclass(frozen=True)
class Run:
    """One experiment of the grid."""

    method: str
    budget: float | int
    seed: int

    def overrides(self) -> list[str]:
        """`dvc exp run -S` arguments of this run."""
        return [f"selection.method={self.method}", f"selection.budget={self.budget}",
                f"selection.seed={self.seed}", "selection.mode=refresh"]

    def key(self) -> tuple[str, str, str]:
        return self.method, str(self.budget), str(self.seed)


def grid(methods: Sequence[str], budgets: Sequence[float | int], seeds: Sequence[int]) -> list[Run]:
    """The runs: `full` once (budget 1.0), `random` once per budget and seed, the deterministic
    methods once per budget (seed 0)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"--methods: unknown method {unknown[0]!r} (known: {', '.join(METHODS)})")
    if not budgets or not seeds:
        raise InputError("--budgets and --seeds: need at least one value each")
    runs = []
    for method in methods:
        if method == "full":
            runs.append(Run("full", 1.0, 0))
            continue
        for budget in budgets:
            for seed in (seeds if method == "random" else [0]):
                runs.append(Run(method, budget, seed))
    return runs


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
    table = Path(out) / "compare.csv"
    done = {(r["method"], r["budget"], r["seed"]) for r in _read_rows(table)}
    todo = [run for run in runs if run.key() not in done]
    echo(f"{len(runs)} runs, {len(runs) - len(todo)} already in {table}, {len(todo)} to run")
    saved = {name: Path(name).read_bytes() for name in ("params.yaml", "dvc.lock") if Path(name).exists()}
    try:
        for k, run in enumerate(todo, start=1):
            command = ["dvc", "exp", "run"] + [arg for o in run.overrides() for arg in ("-S", o)]
            echo(f"[{k}/{len(todo)}] {' '.join(command)}")
            if dry_run:
                continue
            done_run = subprocess.run(command, capture_output=True, text=True)
            if done_run.returncode != 0:
                tail = (done_run.stderr.strip() or done_run.stdout.strip()).splitlines()[-1:] or ["?"]
                raise DeliftError(f"dvc exp run {' '.join(run.overrides())}: failed ({tail[0]})")
            _append_rows(table, _rows(run, Path(params.metrics)))
    finally:
        for name, content in saved.items():
            Path(name).write_bytes(content)


def _rows(run: Run, metrics: Path) -> list[dict]:
    """compare.csv rows of a finished run: the initial model once, then its variants."""
    result = json.loads((metrics / "eval.json").read_text(encoding="utf-8"))
    initial = json.loads((metrics / "eval_initial.json").read_text(encoding="utf-8"))["initial"]
    n_train = result["subset"]["n_train"]
    rows = [_row("initial", 0, 0, 0, "initial", initial)]
    rows += [_row(run.method, run.budget, run.seed, n_train, v, result[v]) for v in VARIANTS if v in result]
    return rows


def _row(method, budget, seed, n_train, variant, values: dict) -> dict:
    return {"method": method, "budget": str(budget), "seed": str(seed), "n_train": str(n_train),
            "variant": variant, **{m: f"{values[m]:.6f}" for m in METRICS}}


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for line, row in enumerate(rows, start=2):
        if set(row) != set(COLUMNS) or None in row.values():
            raise InputError(f"{path}:{line}: malformed row (expected columns {', '.join(COLUMNS)})")
    return rows


def _append_rows(path: Path, rows: list[dict]) -> None:
    existing = _read_rows(path)
    seen = {tuple(r[c] for c in COLUMNS[:5]) for r in existing}
    fresh = [r for r in rows if tuple(r[c] for c in COLUMNS[:5]) not in seen]
    path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not path.exists()
    with path.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        if new_file:
            writer.writeheader()
        writer.writerows(fresh)


# -- report -------------------------------------------------------------------------------------
def summarize(rows: list[dict]) -> list[dict]:
    """Mean and sample standard deviation (ddof=1; 0 for one run) per (method, budget, variant),
    in a stable order: initial, then methods by name, budgets ascending."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["method"], float(row["budget"]), row["variant"]), []).append(row)
    out = []
    for (method, budget, variant), members in sorted(groups.items(), key=lambda kv: (kv[0][0] != "initial", kv[0])):
        entry = {"method": method, "budget": budget, "variant": variant, "runs": len(members),
                 "n_train": int(np.mean([int(r["n_train"]) for r in members]))}
        for metric in METRICS:
            values = np.array([float(r[metric]) for r in members])
            entry[metric] = float(values.mean())
            entry[f"{metric}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out.append(entry)
    return out


def markdown(summary: list[dict]) -> str:
    """A markdown table: one line per method, budget and variant, 'mean ± sd' where runs > 1."""
    def cell(entry, metric, digits):
        text = f"{entry[metric]:.{digits}f}"
        return text + (f" ± {entry[metric + '_sd']:.{digits}f}" if entry["runs"] > 1 else "")

    lines = ["| method | budget | n_train | variant | runs | ROUGE-L | cosine | NLL (nats/token) |",
             "|---|---|---|---|---|---|---|---|"]
    for e in summary:
        lines.append(f"| {e['method']} | {e['budget']:g} | {e['n_train']} | {e['variant']} | {e['runs']} | "
                     f"{cell(e, 'rouge_l', 2)} | {cell(e, 'cosine', 3)} | {cell(e, 'nll', 3)} |")
    return "\n".join(lines) + "\n"


def report(out: str | Path) -> str:
    """Write OUT/compare.md, OUT/quality_vs_budget.csv (for `dvc plots`) and OUT/compare.png from
    OUT/compare.csv; returns the markdown table."""
    out = Path(out)
    rows = _read_rows(out / "compare.csv")
    if not rows:
        raise InputError(f"{out / 'compare.csv'}: no results yet (run `delift-dvc compare` first)")
    summary = summarize(rows)
    table = markdown(summary)
    (out / "compare.md").write_text(table, encoding="utf-8")
    _write_curves(out / "quality_vs_budget.csv", summary)
    _plot(out / "compare.png", summary)
    return table


def _write_curves(path: Path, summary: list[dict]) -> None:
    """ROUGE-L means by budget, one column per method and variant (every method always has its
    columns, empty where it did not run); full and initial repeat as flat reference lines."""
    budgets = sorted({e["budget"] for e in summary if e["method"] not in ("initial", "full")})
    series = [(m, v) for m in METHODS for v in VARIANTS] + [("initial", "initial")]
    value = {(e["method"], e["variant"], e["budget"]): e["rouge_l"] for e in summary}
    flat = {(e["method"], e["variant"]): e["rouge_l"] for e in summary if e["method"] in ("initial", "full")}
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["budget"] + [f"{m}_{v}" for m, v in series])
        for b in budgets:
            cells = [flat.get((m, v), value.get((m, v, b))) for m, v in series]
            writer.writerow([f"{b:g}"] + ["" if c is None else f"{c:.4f}" for c in cells])


def _plot(path: Path, summary: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, variant in zip(axes, VARIANTS):
        for method in sorted({e["method"] for e in summary} - {"initial", "full"}):
            points = sorted((e["budget"], e["rouge_l"], e["rouge_l_sd"]) for e in summary
                            if e["method"] == method and e["variant"] == variant)
            if points:
                x, y, sd = zip(*points)
                ax.errorbar(x, y, yerr=sd, marker="o", capsize=3, label=method)
        for e in summary:
            if e["method"] == "full" and e["variant"] == variant:
                ax.axhline(e["rouge_l"], color="black", linestyle="--", label="full")
            if e["method"] == "initial":
                ax.axhline(e["rouge_l"], color="grey", linestyle=":", label="initial (no tuning)")
        ax.set_title("fine-tuned" if variant == "finetuned" else "ICL (one-shot from subset)")
        ax.set_xlabel("budget (fraction of the pool)")
        ax.set_xlim(0.0, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("ROUGE-L (test set)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
