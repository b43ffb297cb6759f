"""Per-group metrics and the run-level test of a comparison, against numbers worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from delift_dvc.quality.report import group_markdown, group_summary, paired_markdown, paired_table
from delift_dvc.quality.stats import run_level_difference


def sample(method, budget, seed, id_, nll, exact="", variant="finetuned"):
    return {"method": method, "budget": str(budget), "seed": str(seed), "variant": variant, "id": id_,
            "nll": str(nll), "rouge_l": "0", "cosine": "0", "exact": str(exact)}


GROUPS = {"a1": "A", "a2": "A", "b1": "B"}  # A: a label format, B: free text


def test_macro_and_worst_group_nll_and_exact_match_by_hand():
    rows = [sample("m", 0.3, 0, "a1", 1.0, 1), sample("m", 0.3, 0, "a2", 3.0, 0), sample("m", 0.3, 0, "b1", 4.0),
            sample("m", 0.3, 1, "a1", 1.0, 1), sample("m", 0.3, 1, "a2", 1.0, 1), sample("m", 0.3, 1, "b1", 1.0)]
    (entry,) = group_summary(rows, GROUPS, {"A"})
    # seed 0: A mean 2, B 4 -> macro 3, worst 4 (B), exact 1/2; seed 1: A 1, B 1 -> macro 1, worst 1 (A), exact 1
    assert entry["runs"] == 2
    assert entry["macro_nll"] == pytest.approx(2.0) and entry["macro_nll_sd"] == pytest.approx(math.sqrt(2))
    assert entry["worst_nll"] == pytest.approx(2.5)
    assert entry["worst"] == "A"  # one seed each: ties to the name first in order
    assert entry["exact"] == pytest.approx(0.75)
    text = group_markdown([entry], 2, 1)
    assert "| m | 0.3 | 2 | 2.000 ± 1.414 | 2.500 ± 2.121 | A | 75.0 ± 35.4 |" in text


def test_samples_without_exact_match_show_none():
    rows = [sample("m", 0.3, 0, "a1", 1.0), sample("m", 0.3, 0, "b1", 2.0)]
    (entry,) = group_summary(rows, GROUPS, {"A"})
    assert entry["exact"] is None and "| - |" in group_markdown([entry], 2, 1)


def test_run_level_difference_is_a_t_interval_over_seeds():
    a, b = np.array([1.0, 2.0, 4.0]), np.array([0.5, 1.0, 1.5])  # differences 0.5, 1, 2.5
    got = run_level_difference(a, b, higher_is_better=False)
    d = np.array([0.5, 1.0, 2.5])
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert got.mean == pytest.approx(d.mean()) and got.low == pytest.approx(d.mean() - half)
    assert got.high == pytest.approx(d.mean() + half) and got.verdict == "no difference"
    one = run_level_difference(np.array([1.0]), np.array([0.0]))
    assert one.n == 1 and one.verdict == "no difference"


def test_a_verdict_only_where_bootstrap_and_run_level_agree():
    ids = [f"t{k}" for k in range(30)]
    samples, runs = [], []
    for seed, shift in ((0, 1.0), (1, 1.1), (2, 0.9)):
        for k, i in enumerate(ids):
            samples.append(sample("delift", 0.3, seed, i, 2.0 + shift + 0.01 * k))
            samples.append(sample("random", 0.3, seed, i, 2.0 + 0.01 * k))
        runs += [{"method": "delift", "budget": "0.3", "seed": str(seed), "variant": "finetuned", "nll": str(2 + shift)},
                 {"method": "random", "budget": "0.3", "seed": str(seed), "variant": "finetuned", "nll": "2.0"}]
    (row,) = paired_table(samples, lambda m: ["random"] if m == "delift" else [], "finetuned", "nll", runs=runs)
    assert row["verdict"] == "worse" and row["run_verdict"] == "worse" and row["verdict_both"] == "worse"
    assert row["seeds"] == 3 and row["run_mean"] == pytest.approx(1.0)
    # the same per-sample gap, but the seeds disagree: no verdict
    runs[0]["nll"], runs[2]["nll"] = "1.0", "3.0"
    (row,) = paired_table(samples, lambda m: ["random"] if m == "delift" else [], "finetuned", "nll", runs=runs)
    assert row["verdict"] == "worse" and row["run_verdict"] == "no difference"
    assert row["verdict_both"] == "no difference"
    assert "| no difference |" in paired_markdown([row], "finetuned", "NLL")
