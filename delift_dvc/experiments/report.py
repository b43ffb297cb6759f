"""The comparison's report files from its tables: OUT/compare.md (mean and spread, per-group
NLL and exact match, paired differences with bootstrap intervals and the run-level test over
seeds), OUT/quality_vs_budget.csv (for `dvc plots`) and OUT/compare.png."""

from __future__ import annotations

from pathlib import Path

from delift_dvc.atomic import write_bytes, write_text
from delift_dvc.errors import InputError
from delift_dvc.experiments.grid import COMPARE_METHODS, against
from delift_dvc.experiments.harvest import SAMPLE_COLUMNS, VARIANTS, read_rows
from delift_dvc.experiments.runner import read_protocol
from delift_dvc.quality.report import (cost_markdown, curves_csv, group_markdown, group_summary, markdown, paired_markdown,
                                       paired_table, plot_png, summarize)
from delift_dvc.stages.outputs import PREPARED_TEST, PREPARED_TEST_GROUPS

__all__ = ["report"]


def report(out: str | Path, prepared: str | Path | None = None) -> str:
    """Write OUT/compare.md, OUT/quality_vs_budget.csv (for `dvc plots`) and OUT/compare.png from
    OUT/compare.csv; returns the markdown table. `prepared`: the project's data.prepared, whose
    test groups (test_groups.json) give the per-group table (left out when it has none)."""
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
        header += (f"; delift_temp = delift with selection.strata group_label, temperature {protocol['temperature']:g}"
                   " (delift_seq: the same, selection.draw sequential; delift_balanced: the same, "
                   "selection.allocation balanced)")
    table = header + "\n\n" + markdown(summary)
    if any(r.get("lm_values") for r in rows):
        table += "\nSelection cost:\n\n" + cost_markdown(rows)
    samples = read_rows(out / "compare_samples.csv", SAMPLE_COLUMNS)
    groups = _test_groups(prepared)
    if groups is not None:
        test_groups, labelled = groups
        table += ("\nPer test group (fine-tuned; mean over a run's groups, the worst group's mean, exact match "
                  "on the label formats):\n\n")
        table += group_markdown(group_summary(samples, test_groups, labelled), len(set(test_groups.values())),
                                len(labelled))
    for variant in VARIANTS:
        for metric, name in (("rouge_l", "ROUGE-L"), ("nll", "NLL")):
            paired = paired_table(samples, against, variant, metric, runs=rows)
            if paired:
                table += (f"\nPaired differences of {name}, {variant}, on the same test samples (bootstrap over"
                          f" samples{'; lower NLL is better' if metric == 'nll' else ''}), and over the seeds"
                          " (t interval on the per-seed differences); a verdict only where both agree:\n\n")
                table += paired_markdown(paired, variant, name)
    write_text(out / "compare.md", table)
    series = [(m, v) for m in COMPARE_METHODS for v in VARIANTS] + [("initial", "initial")]
    write_text(out / "quality_vs_budget.csv", curves_csv(summary, series))
    write_bytes(out / "compare.png", plot_png(summary))
    return table


def _test_groups(prepared: str | Path | None) -> tuple[dict[str, str], set[str]] | None:
    """(test id -> group, the groups that are label formats) from data.prepared; None without
    test groups (a project prepared before they were recorded) or with a single group."""
    if prepared is None:
        return None
    path = Path(prepared) / PREPARED_TEST_GROUPS
    if not path.is_file():
        return None
    import json

    from delift_dvc.data.samples import load_samples
    from delift_dvc.selection.stratified import label_groups
    from delift_dvc.stages.ingest import prepared_fields

    test_groups = json.loads(path.read_text(encoding="utf-8"))
    if len(set(test_groups.values())) < 2:
        return None
    test = [s for s in load_samples(Path(prepared) / PREPARED_TEST, fields=prepared_fields(prepared))
            if s.id in test_groups]
    return test_groups, label_groups([test_groups[s.id] for s in test], [s.response for s in test])
