"""Statistics, tables and plots of a comparison: pure functions from rows (dicts of strings,
as read from compare.csv) to numbers, markdown, CSV text and PNG bytes. Nothing here reads or
writes files or knows how the runs were made."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence

import numpy as np

from delift_dvc.quality.stats import mean_sd, paired_difference, run_level_difference

__all__ = ["summarize", "paired_table", "paired_markdown", "markdown", "curves_csv", "plot_png", "METRICS",
           "VARIANTS", "group_summary", "group_markdown"]

METRICS = ("rouge_l", "cosine", "nll")
VARIANTS = ("finetuned", "icl")


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


def paired_table(samples: list[dict], against: Callable[[str], list[str]], variant: str = "finetuned",
                 metric: str = "rouge_l", runs: list[dict] | None = None) -> list[dict]:
    """Each method and budget against the methods `against(method)` names (on the same budget;
    `full` at its own): the mean per-sample difference of `metric` on the same test samples
    (each side averaged over its seeds), a bootstrap 95 % interval and the verdict ("better"
    means higher, or lower for nll). With `runs` (compare.csv rows), also the run-level test
    over the seeds both sides ran (a t interval on the per-seed differences of the run's
    metric) and `verdict_both`: the bootstrap's verdict where the run-level test agrees, else
    "no difference"."""
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
        for name in against(method):
            other = full if name == "full" else (name, budget)
            if other is None or other not in means:
                continue
            common = sorted(set(means[key]) & set(means[other]))
            if not common:
                continue
            result = paired_difference(np.array([means[key][i] for i in common]),
                                       np.array([means[other][i] for i in common]),
                                       higher_is_better=metric != "nll")
            row = {"method": method, "budget": budget, "against": name, "n": result.n, "mean": result.mean,
                   "low": result.low, "high": result.high, "verdict": result.verdict}
            if runs is not None:
                row.update(_run_level(runs, variant, metric, key, other))
                row["verdict_both"] = row["verdict"] if row["run_verdict"] == row["verdict"] else "no difference"
            out.append(row)
    return out


def _run_level(runs: list[dict], variant: str, metric: str, key: tuple, other: tuple) -> dict:
    """The run-level test of `key` against `other` ((method, budget) each): per-seed differences."""
    def by_seed(side: tuple) -> dict[str, float]:
        return {r["seed"]: float(r[metric]) for r in runs
                if r["variant"] == variant and r["method"] == side[0] and float(r["budget"]) == side[1]}

    mine, theirs = by_seed(key), by_seed(other)
    seeds = sorted(set(mine) & set(theirs))
    if not seeds:
        return {"seeds": 0, "run_mean": float("nan"), "run_low": float("nan"), "run_high": float("nan"),
                "run_verdict": "no runs"}
    result = run_level_difference(np.array([mine[s] for s in seeds]), np.array([theirs[s] for s in seeds]),
                                  higher_is_better=metric != "nll")
    return {"seeds": result.n, "run_mean": result.mean, "run_low": result.low, "run_high": result.high,
            "run_verdict": result.verdict if result.n > 1 else "one seed"}


def paired_markdown(rows: list[dict], variant: str, metric: str = "ROUGE-L") -> str:
    both = bool(rows) and "verdict_both" in rows[0]
    head = f"| method | budget | against | test samples | {metric} difference ({variant}) | 95 % interval | verdict |"
    rule = "|---|---|---|---|---|---|---|"
    if both:
        head += " seeds | run-level difference | run-level 95 % interval | verdict (both tests) |"
        rule += "---|---|---|---|"
    lines = [head, rule]
    digits = 3 if metric == "NLL" else 2  # nats per token vs ROUGE-L points
    for r in rows:
        line = (f"| {r['method']} | {r['budget']:g} | {r['against']} | {r['n']} | {r['mean']:+.{digits}f} | "
                f"[{r['low']:+.{digits}f}, {r['high']:+.{digits}f}] | {r['verdict']} |")
        if both:
            interval = ("-" if not r["seeds"] > 1 else
                        f"[{r['run_low']:+.{digits}f}, {r['run_high']:+.{digits}f}]")
            mean = "-" if not r["seeds"] else f"{r['run_mean']:+.{digits}f}"
            line += f" {r['seeds']} | {mean} | {interval} | {r['verdict_both']} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def group_summary(samples: list[dict], test_groups: dict[str, str], label_groups: set[str],
                  variant: str = "finetuned") -> list[dict]:
    """Per (method, budget) of `variant` (and the initial model): over its seeds, mean and sd of
    the macro NLL (the mean over test groups of each group's mean per-sample NLL), the
    worst-group NLL (the largest group mean) and the exact match over the test samples of the
    `label_groups` (None where no sample there has one); `worst`: the group that was worst in
    most seeds (ties to the name first in order). Test samples without a group are left out."""
    runs: dict[tuple, dict[str, list[dict]]] = {}
    for row in samples:
        if row["variant"] in (variant, "initial") and row["id"] in test_groups:
            key = (row["method"], float(row["budget"]), row["seed"])
            runs.setdefault(key, {}).setdefault(test_groups[row["id"]], []).append(row)
    per: dict[tuple, list[tuple[float, float, str, float | None]]] = {}
    for (method, budget, _), groups in sorted(runs.items()):
        means = {g: float(np.mean([float(r["nll"]) for r in rows])) for g, rows in groups.items()}
        worst = max(sorted(means), key=means.get)
        exact = [float(r["exact"]) for g in label_groups & set(groups) for r in groups[g] if r.get("exact", "") != ""]
        per.setdefault((method, budget), []).append(
            (float(np.mean(list(means.values()))), means[worst], worst, float(np.mean(exact)) if exact else None))
    out = []
    for (method, budget), values in sorted(per.items(), key=lambda kv: (kv[0][0] != "initial", kv[0])):
        macro, macro_sd = mean_sd([v[0] for v in values])
        worst, worst_sd = mean_sd([v[1] for v in values])
        names = [v[2] for v in values]
        exact = [v[3] for v in values if v[3] is not None]
        exact_mean, exact_sd = mean_sd(exact) if exact else (None, None)
        out.append({"method": method, "budget": budget, "runs": len(values), "macro_nll": macro,
                    "macro_nll_sd": macro_sd, "worst_nll": worst, "worst_nll_sd": worst_sd,
                    "worst": max(sorted(set(names)), key=names.count), "exact": exact_mean, "exact_sd": exact_sd})
    return out


def group_markdown(rows: list[dict], n_groups: int, n_label_groups: int) -> str:
    """The per-group table of group_summary, 'mean ± sd' where runs > 1."""
    def cell(r, metric, digits, scale=1.0):
        if r[metric] is None:
            return "-"
        text = f"{scale * r[metric]:.{digits}f}"
        return text + (f" ± {scale * r[metric + '_sd']:.{digits}f}" if r["runs"] > 1 else "")

    lines = [f"| method | budget | runs | macro NLL ({n_groups} test groups) | worst-group NLL | worst group | "
             f"exact match, % ({n_label_groups} label formats) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['budget']:g} | {r['runs']} | {cell(r, 'macro_nll', 3)} | "
                     f"{cell(r, 'worst_nll', 3)} | {r['worst']} | {cell(r, 'exact', 1, 100.0)} |")
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


def cost_markdown(rows: list[dict]) -> str:
    """Selection cost per method and budget (compare.csv rows with lm_values / score_seconds):
    the LM values its kernel reads, which are its LM passes from an empty store, and the median
    over seeds of the score stage's seconds with the store reused ("" where not recorded)."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r["method"] != "initial" and r["variant"] == "finetuned":
            cells.setdefault((r["method"], r["budget"]), []).append(r)
    lines = ["| method | budget | LM values read (= LM passes from an empty store) | score stage s (median) |",
             "|---|---|---:|---:|"]
    for (method, budget), group in sorted(cells.items()):
        values = sorted({g["lm_values"] for g in group if g.get("lm_values")})
        seconds = sorted(float(g["score_seconds"]) for g in group if g.get("score_seconds"))
        median = f"{float(np.median(seconds)):.1f}" if seconds else ""
        lines.append(f"| {method} | {budget} | {' / '.join(values)} | {median} |")
    return "\n".join(lines) + "\n"


def curves_csv(summary: list[dict], series: Sequence[tuple[str, str]]) -> str:
    """ROUGE-L means by budget, one column per (method, variant) of `series` (each always has its
    column, empty where it did not run); full and initial repeat as flat reference lines."""
    budgets = sorted({e["budget"] for e in summary if e["method"] not in ("initial", "full")})
    value = {(e["method"], e["variant"], e["budget"]): e["rouge_l"] for e in summary}
    flat = {(e["method"], e["variant"]): e["rouge_l"] for e in summary if e["method"] in ("initial", "full")}
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["budget"] + [f"{m}_{v}" for m, v in series])
    for b in budgets:
        cells = [flat.get((m, v), value.get((m, v, b))) for m, v in series]
        writer.writerow([f"{b:g}"] + ["" if c is None else f"{c:.4f}" for c in cells])
    return buffer.getvalue()


def plot_png(summary: list[dict], variants: Sequence[str] = VARIANTS) -> bytes:
    """The quality-vs-budget figure (ROUGE-L, one panel per variant) as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = [v for v in variants if any(e["variant"] == v for e in summary)] or ["finetuned"]
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
    return image.getvalue()
