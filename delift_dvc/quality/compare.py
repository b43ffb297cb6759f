"""The comparison experiment: methods x budgets x fine-tuning seeds as `dvc exp run` runs, then
a table (mean and spread over seeds), paired differences on the same test samples with a
bootstrap 95 % interval, and a plot of quality vs budget.

Every method runs once per seed: the seed is the fine-tuning seed (and the random baseline's
selection seed), so a method's spread includes the training noise. `full` runs at budget 1.0.
With `update`, the continual comparison instead runs a data update from the project's current
version to the `update` data: FLCG continuation (`flcg`), re-selection from scratch (`refresh`)
and random additions of the same size (`random_additions`); before the runs of each budget the
current version is re-selected by DELIFT at that budget, so all three start from the same first
subset and a fraction is one of the whole update. `delift_cov` is DELIFT with the
sentence-embedding coverage term (`selection.embedding_coverage`, weight `coverage`) and
`delift_bal` DELIFT with a format-balanced budget (`selection.balance_clusters`, `clusters`
k-means clusters); plain `delift` runs with both off, whatever params.yaml says.

Rows are appended to OUT/compare.csv (per test sample to OUT/compare_samples.csv, and the ids each
run trained on to OUT/compare_subsets.csv) as each run finishes, so a killed sweep resumes where it stopped. The store keeps every utility, so only the
first LM-based run scores anything.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from delift_dvc.atomic import write_bytes, write_text
from delift_dvc.errors import DeliftError, InputError
from delift_dvc.quality.stats import mean_sd, paired_difference
from delift_dvc.selection.methods import METHODS

COLUMNS = ["method", "budget", "seed", "n_train", "variant", "nll", "rouge_l", "cosine"]
SAMPLE_COLUMNS = ["method", "budget", "seed", "variant", "id", "nll", "rouge_l", "cosine"]
SUBSET_COLUMNS = ["method", "budget", "seed", "rank", "id"]
VARIANTS = ("finetuned", "icl")
METRICS = ("rouge_l", "cosine", "nll")
# continual variants: (selection.method, selection.mode)
CONTINUAL = {"flcg": ("delift", "incremental"), "refresh": ("delift", "refresh"),
             "random_additions": ("random", "incremental")}
COMPARE_METHODS = (*METHODS, "delift_cov", "delift_bal")  # delift + embedding coverage / balanced budget
DEFAULT_COVERAGE = 0.25
DEFAULT_CLUSTERS = 12
# the delift options a compare method turns on: method -> (params key under selection, CLI flag)
OPTIONS = {"delift_cov": ("embedding_coverage", "--embedding-coverage"),
           "delift_bal": ("balance_clusters", "--balance-clusters")}


@dataclass(frozen=True)
class Run:
    """One experiment of the grid."""

    method: str
    budget: float | int
    seed: int
    update: str | None = None  # data.train of the update (continual comparison)
    coverage: float = DEFAULT_COVERAGE  # selection.embedding_coverage of delift_cov runs
    clusters: int = DEFAULT_CLUSTERS  # selection.balance_clusters of delift_bal runs

    def overrides(self) -> list[str]:
        """`dvc exp run -S` arguments of this run."""
        common = [f"selection.budget={self.budget}", f"selection.seed={self.seed}", f"finetune.seed={self.seed}"]
        if self.update is not None:
            method, mode = CONTINUAL[self.method]
            off = [] if method == "delift" else ["selection.embedding_coverage=0", "selection.balance_clusters=0"]
            return [f"data.train={self.update}", f"selection.method={method}", f"selection.mode={mode}", *common,
                    *off]
        if self.method in ("delift", *OPTIONS):
            weight = self.coverage if self.method == "delift_cov" else 0.0
            clusters = self.clusters if self.method == "delift_bal" else 0
            return ["selection.method=delift", *common, "selection.mode=refresh",
                    f"selection.embedding_coverage={weight:g}", f"selection.balance_clusters={clusters}"]
        return [f"selection.method={self.method}", *common, "selection.mode=refresh",
                "selection.embedding_coverage=0", "selection.balance_clusters=0"]

    def option(self) -> float | int | None:
        """The value of the delift option this run's method turns on (None for other methods)."""
        return {"delift_cov": self.coverage, "delift_bal": self.clusters}.get(self.method)

    def key(self) -> tuple[str, str, str]:
        return self.method, str(self.budget), str(self.seed)


def grid(methods: Sequence[str], budgets: Sequence[float | int], seeds: Sequence[int],
         update: str | None = None, coverage: float = DEFAULT_COVERAGE,
         clusters: int = DEFAULT_CLUSTERS) -> list[Run]:
    """The runs: every method once per budget and seed (`full` at budget 1.0); with `update`,
    the three continual variants per budget and seed instead, grouped by budget. `coverage`: the embedding
    coverage weight of `delift_cov` runs; `clusters`: the balance clusters of `delift_bal` runs."""
    if not budgets or not seeds:
        raise InputError("--budgets and --seeds: need at least one value each")
    if update is not None:
        return [Run(m, b, s, update) for b in budgets for m in CONTINUAL for s in seeds]
    unknown = [m for m in methods if m not in COMPARE_METHODS]
    if unknown:
        raise InputError(f"--methods: unknown method {unknown[0]!r} (known: {', '.join(COMPARE_METHODS)})")
    if "delift_cov" in methods and not (coverage > 0 and coverage < float("inf")):
        raise InputError(f"--embedding-coverage {coverage!r}: expected a number > 0")
    if "delift_bal" in methods and not (isinstance(clusters, int) and clusters >= 2):
        raise InputError(f"--balance-clusters {clusters!r}: expected a whole number >= 2")
    runs = []
    for method in methods:
        for budget in ([1.0] if method == "full" else budgets):
            runs.extend(Run(method, budget, seed, coverage=coverage, clusters=clusters) for seed in seeds)
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
    table, samples = Path(out) / "compare.csv", Path(out) / "compare_samples.csv"
    subsets = Path(out) / "compare_subsets.csv"
    done = {(r["method"], r["budget"], r["seed"]) for r in _read_rows(table, COLUMNS)}
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
            _append_rows(table, _rows(run, Path(params.metrics)), COLUMNS, 5)
            _append_rows(samples, _sample_rows(run, Path(params.plots)), SAMPLE_COLUMNS, 5)
            _append_rows(subsets, _subset_rows(run, Path(params.data.selected)), SUBSET_COLUMNS, 4)
            _record_protocol(Path(out), Path(params.metrics), run)
    finally:
        for name, content in saved.items():
            write_bytes(name, content)


def first_version_overrides(train: str, budget: float | int) -> list[str]:
    """`dvc exp run -S` arguments that re-select the project's current version (data.train =
    `train`, the first version of a continual comparison) with DELIFT at `budget`: every
    continual run at that budget then starts from the same subset, so its size is the budget of
    the whole update. The delift options (coverage, balance) are the project's, as in the runs."""
    return [f"data.train={train}", f"selection.budget={budget}", "selection.method=delift",
            "selection.mode=refresh"]


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


def _rows(run: Run, metrics: Path) -> list[dict]:
    """compare.csv rows of a finished run: the initial model once, then its variants."""
    result = json.loads((metrics / "eval.json").read_text(encoding="utf-8"))
    if not result.get("n_test"):
        raise DeliftError("compare: the project has no test set (set data.test, or data.holdout > 0)")
    initial = json.loads((metrics / "eval_initial.json").read_text(encoding="utf-8"))["initial"]
    n_train = result["subset"]["n_train"]
    rows = [_row("initial", 0, 0, 0, "initial", initial)]
    rows += [_row(run.method, run.budget, run.seed, n_train, v, result[v]) for v in VARIANTS if v in result]
    return rows


def _sample_rows(run: Run, plots: Path) -> list[dict]:
    """compare_samples.csv rows of a finished run: per test sample and variant."""
    rows = []
    for name, variants in (("eval_initial_samples.csv", ("initial",)), ("eval_samples.csv", VARIANTS)):
        path = plots / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            for record in csv.DictReader(handle):
                for variant in variants:
                    if f"{variant}_rouge_l" not in record:
                        continue
                    key = ("initial", "0", "0") if variant == "initial" else (run.method, str(run.budget), str(run.seed))
                    rows.append(dict(zip(("method", "budget", "seed"), key), variant=variant, id=record["id"],
                                     **{m: record[f"{variant}_{m}"] for m in METRICS}))
    return rows


def _subset_rows(run: Run, selected: Path) -> list[dict]:
    """compare_subsets.csv rows of a finished run: the ids it trained on, in selection order."""
    record = json.loads((selected / "selection.json").read_text(encoding="utf-8"))
    key = {"method": run.method, "budget": str(run.budget), "seed": str(run.seed)}
    return [{**key, "rank": str(rank), "id": sample} for rank, sample in enumerate(record["ids"], start=1)]


def read_protocol(out: Path) -> dict:
    """OUT/protocol.json ({} before the first run)."""
    path = out / "protocol.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _record_protocol(out: Path, metrics: Path, run: Run) -> None:
    """OUT/protocol.json: how the runs were fine-tuned (the same for every run of a sweep), and
    the value of each delift option (embedding coverage, balance clusters) once a run used it."""
    train = json.loads((metrics / "train.json").read_text(encoding="utf-8"))
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


def _row(method, budget, seed, n_train, variant, values: dict) -> dict:
    return {"method": method, "budget": str(budget), "seed": str(seed), "n_train": str(n_train),
            "variant": variant, **{m: f"{values[m]:.6f}" for m in METRICS}}


def _read_rows(path: Path, columns: list[str] = COLUMNS) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for line, row in enumerate(rows, start=2):
        if set(row) != set(columns) or None in row.values():
            raise InputError(f"{path}:{line}: malformed row (expected columns {', '.join(columns)})")
    return rows


def _append_rows(path: Path, rows: list[dict], columns: list[str], key_columns: int) -> None:
    """Append the rows whose first key_columns values are new (a resumed sweep adds no twin)."""
    existing = _read_rows(path, columns)
    keys = columns[:key_columns]
    seen = {tuple(r[c] for c in keys) for r in existing}
    fresh = [r for r in rows if tuple(r[c] for c in keys) not in seen]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(existing + fresh)
    write_text(path, buffer.getvalue())  # whole file, atomically: a killed sweep never leaves half a row


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
            entry[metric], entry[f"{metric}_sd"] = mean_sd([float(r[metric]) for r in members])
        out.append(entry)
    return out


def paired_table(samples: list[dict], variant: str = "finetuned", metric: str = "rouge_l") -> list[dict]:
    """Each method and budget against random (same budget; random additions in a continual
    comparison), against full, delift_cov / delift_bal also against delift and flcg also
    against refresh: the mean per-sample difference of `metric` on the same test samples (each
    side averaged over its seeds), a bootstrap 95 % interval and the verdict ("better" means
    higher, or lower for nll)."""
    per: dict[tuple, dict[str, list[float]]] = {}
    for row in samples:
        if row["variant"] == variant:
            key = (row["method"], float(row["budget"]))
            per.setdefault(key, {}).setdefault(row["id"], []).append(float(row[metric]))
    means = {key: {i: float(np.mean(v)) for i, v in ids.items()} for key, ids in per.items()}
    full = next((key for key in means if key[0] == "full"), None)
    out = []
    for key in sorted(means):
        method, budget = key
        if method in ("full", "random", "random_additions"):
            continue
        baseline = "random_additions" if method in CONTINUAL else "random"
        against = [(baseline, (baseline, budget)), ("full", full)]
        if method in OPTIONS:  # the option against the plain method it changes
            against.append(("delift", ("delift", budget)))
        if method == "flcg":  # continuation against re-selecting from scratch
            against.append(("refresh", ("refresh", budget)))
        for name, other in against:
            if other is None or other not in means:
                continue
            common = sorted(set(means[key]) & set(means[other]))
            if not common:
                continue
            result = paired_difference(np.array([means[key][i] for i in common]),
                                       np.array([means[other][i] for i in common]),
                                       higher_is_better=metric != "nll")
            out.append({"method": method, "budget": budget, "against": name, "n": result.n, "mean": result.mean,
                        "low": result.low, "high": result.high, "verdict": result.verdict})
    return out


def paired_markdown(rows: list[dict], variant: str, metric: str = "ROUGE-L") -> str:
    lines = [f"| method | budget | against | test samples | {metric} difference ({variant}) | 95 % interval | verdict |",
             "|---|---|---|---|---|---|---|"]
    digits = 3 if metric == "NLL" else 2  # nats per token vs ROUGE-L points
    for r in rows:
        lines.append(f"| {r['method']} | {r['budget']:g} | {r['against']} | {r['n']} | {r['mean']:+.{digits}f} | "
                     f"[{r['low']:+.{digits}f}, {r['high']:+.{digits}f}] | {r['verdict']} |")
    return "\n".join(lines) + "\n"


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
    protocol = read_protocol(out)
    header = f"fine-tuning protocol: {protocol.get('protocol', 'unknown')}"
    if "embedding_coverage" in protocol:
        header += f"; delift_cov = delift with selection.embedding_coverage {protocol['embedding_coverage']:g}"
    if "balance_clusters" in protocol:
        header += f"; delift_bal = delift with selection.balance_clusters {protocol['balance_clusters']}"
    table = header + "\n\n" + markdown(summary)
    samples = _read_rows(out / "compare_samples.csv", SAMPLE_COLUMNS)
    for variant in VARIANTS:
        for metric, name in (("rouge_l", "ROUGE-L"), ("nll", "NLL")):
            paired = paired_table(samples, variant, metric)
            if paired:
                table += (f"\nPaired differences of {name}, {variant}, on the same test samples (bootstrap over"
                          f" samples{'; lower NLL is better' if metric == 'nll' else ''}):\n\n")
                table += paired_markdown(paired, variant, name)
    write_text(out / "compare.md", table)
    _write_curves(out / "quality_vs_budget.csv", summary)
    _plot(out / "compare.png", summary)
    return table


def _write_curves(path: Path, summary: list[dict]) -> None:
    """ROUGE-L means by budget, one column per method and variant (every method always has its
    columns, empty where it did not run); full and initial repeat as flat reference lines."""
    budgets = sorted({e["budget"] for e in summary if e["method"] not in ("initial", "full")})
    series = [(m, v) for m in COMPARE_METHODS for v in VARIANTS] + [("initial", "initial")]
    value = {(e["method"], e["variant"], e["budget"]): e["rouge_l"] for e in summary}
    flat = {(e["method"], e["variant"]): e["rouge_l"] for e in summary if e["method"] in ("initial", "full")}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["budget"] + [f"{m}_{v}" for m, v in series])
    for b in budgets:
        cells = [flat.get((m, v), value.get((m, v, b))) for m, v in series]
        writer.writerow([f"{b:g}"] + ["" if c is None else f"{c:.4f}" for c in cells])
    write_text(path, buffer.getvalue())


def _plot(path: Path, summary: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v for v in VARIANTS if any(e["variant"] == v for e in summary)] or ["finetuned"]
    fig, axes = plt.subplots(1, len(variants), figsize=(5 * len(variants), 4), sharey=True, squeeze=False)
    axes = axes[0]
    for ax, variant in zip(axes, variants):
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
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    write_bytes(path, image.getvalue())
