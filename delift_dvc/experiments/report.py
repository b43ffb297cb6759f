"""The comparison's report files from its tables: OUT/compare.md (mean and spread, paired
differences with bootstrap intervals), OUT/quality_vs_budget.csv (for `dvc plots`) and
OUT/compare.png."""

from __future__ import annotations

from pathlib import Path

from delift_dvc.atomic import write_bytes, write_text
from delift_dvc.errors import InputError
from delift_dvc.experiments.grid import COMPARE_METHODS, against
from delift_dvc.experiments.harvest import SAMPLE_COLUMNS, VARIANTS, read_rows
from delift_dvc.experiments.runner import read_protocol
from delift_dvc.quality.report import curves_csv, markdown, paired_markdown, paired_table, plot_png, summarize

__all__ = ["report"]


def report(out: str | Path) -> str:
    """Write OUT/compare.md, OUT/quality_vs_budget.csv (for `dvc plots`) and OUT/compare.png from
    OUT/compare.csv; returns the markdown table."""
    out = Path(out)
    rows = read_rows(out / "compare.csv")
    if not rows:
        raise InputError(f"{out / 'compare.csv'}: no results yet (run `delift-dvc compare` first)")
    summary = summarize(rows)
    protocol = read_protocol(out)
    header = f"fine-tuning protocol: {protocol.get('protocol', 'unknown')}"
    if "embedding_coverage" in protocol:
        header += f"; delift_cov = delift with selection.embedding_coverage {protocol['embedding_coverage']:g}"
    if "balance_clusters" in protocol:
        header += f"; delift_bal = delift with selection.balance_clusters {protocol['balance_clusters']}"
    if "temperature" in protocol:
        header += f"; delift_temp = delift with selection.strata group_label, temperature {protocol['temperature']:g}"
    table = header + "\n\n" + markdown(summary)
    samples = read_rows(out / "compare_samples.csv", SAMPLE_COLUMNS)
    for variant in VARIANTS:
        for metric, name in (("rouge_l", "ROUGE-L"), ("nll", "NLL")):
            paired = paired_table(samples, against, variant, metric)
            if paired:
                table += (f"\nPaired differences of {name}, {variant}, on the same test samples (bootstrap over"
                          f" samples{'; lower NLL is better' if metric == 'nll' else ''}):\n\n")
                table += paired_markdown(paired, variant, name)
    write_text(out / "compare.md", table)
    series = [(m, v) for m in COMPARE_METHODS for v in VARIANTS] + [("initial", "initial")]
    write_text(out / "quality_vs_budget.csv", curves_csv(summary, series))
    write_bytes(out / "compare.png", plot_png(summary))
    return table
