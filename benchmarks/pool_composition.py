"""What each compared run trained on, by defect and template, in a `--task pool` project
(benchmarks/make_claim_project.py): from its reports/compare_subsets.csv and data/raw/train.jsonl.

    python benchmarks/pool_composition.py --project ../claim-realistic

Prints one row per method, budget and seed: picks, the share of defective picks (and of the
pool), picks per defect, and the templates with no pick and their proportional share.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

from pools import project_samples

DEFECTS = ("clean", "duplicate", "near_duplicate", "swapped", "flipped")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--out", default="reports", help="the compare --out folder")
    args = ap.parse_args()
    subsets = args.project / args.out / "compare_subsets.csv"
    samples = {s.id: s.record for s in project_samples(args.project, "data/raw/train.jsonl",
                                                       [f"{args.out}/compare_subsets.csv"], "defect",
                                                       "delift-dvc compare")}
    pool_defects = Counter(r["defect"] for r in samples.values())
    pool_templates = Counter(r["template"] for r in samples.values())
    runs: dict[tuple, list[str]] = {}
    with subsets.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            runs.setdefault((row["method"], float(row["budget"]), int(row["seed"])), []).append(row["id"])
    n_pool = len(samples)
    bad_pool = 1 - pool_defects["clean"] / n_pool
    print(f"pool: {n_pool} samples, {bad_pool:.1%} defective "
          + ", ".join(f"{d} {pool_defects[d]}" for d in DEFECTS))
    print("| method | budget | seed | picks | defective | " + " | ".join(DEFECTS)
          + " | templates without pick (proportional share) |")
    print("|---|---|---|---|---|" + "---|" * len(DEFECTS) + "---|")
    for (method, budget, seed), ids in sorted(runs.items()):
        defects = Counter(samples[i]["defect"] for i in ids)
        templates = Counter(samples[i]["template"] for i in ids)
        missed = [f"{t} ({len(ids) * n / n_pool:.1f})" for t, n in sorted(pool_templates.items()) if not templates[t]]
        print(f"| {method} | {budget:g} | {seed} | {len(ids)} | {1 - defects['clean'] / len(ids):.1%} | "
              + " | ".join(str(defects[d]) for d in DEFECTS) + f" | {', '.join(missed) or '-'} |")


if __name__ == "__main__":
    main()
