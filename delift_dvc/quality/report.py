"""Statistics, tables and plots of a comparison: pure functions from rows (dicts of strings,
as read from compare.csv) to numbers, markdown, CSV text and PNG bytes. Nothing here reads or
writes files or knows how the runs were made."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence

import numpy as np

from delift_dvc.quality.stats import mean_sd, paired_difference

__all__ = ["summarize", "paired_table", "paired_markdown", "markdown", "curves_csv", "plot_png", "METRICS",
           "VARIANTS"]

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
                 metric: str = "rouge_l") -> list[dict]:
    """Each method and budget against the methods `against(method)` names (on the same budget;
    `full` at its own): the mean per-sample difference of `metric` on the same test samples
    (each side averaged over its seeds), a bootstrap 95 % interval and the verdict ("better"
    means higher, or lower for nll)."""
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
