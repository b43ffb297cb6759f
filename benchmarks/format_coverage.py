"""Per-format view of a mixture comparison (issue 12): which templates each run trained on, and
the test quality per template.

Reads a project made by `make_claim_project.py --task mixture` after `delift-dvc compare`:
reports/compare_subsets.csv (the ids each run trained on) and reports/compare_samples.csv (per
test sample scores), and maps every id back to its P3 template. Prints, per method and budget
(mean over seeds): how many of the 12 templates have no training sample, the smallest template
count, and the fine-tuned test NLL per template.

    python benchmarks/format_coverage.py --project ../claim-mixture
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from make_claim_project import MIXTURE, TEST_START, p3_rows


def template_of(pool_per_template: int, test_per_template: int) -> dict[str, str]:
    """Sample id -> template name, for the pool and the test rows of the mixture."""
    from delift_dvc.data.samples import to_sample

    out = {}
    for name in MIXTURE:
        short = name.rsplit("/", 1)[-1]
        for first, count in ((0, pool_per_template), (TEST_START, test_per_template)):
            for k, record in enumerate(p3_rows(first, count, [name])):
                out[to_sample(record, f"{short}:{k}").id] = short
    return out


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", required=True, type=Path)
    ap.add_argument("--pool-per-template", type=int, default=50)
    ap.add_argument("--test-per-template", type=int, default=10)
    args = ap.parse_args()
    template = template_of(args.pool_per_template, args.test_per_template)
    names = [n.rsplit("/", 1)[-1] for n in MIXTURE]
    short = {n: "_".join(n.split("_")[:2]) for n in names}
    subsets = read(args.project / "reports/compare_subsets.csv")
    samples = read(args.project / "reports/compare_samples.csv")

    counts: dict[tuple, list[list[int]]] = defaultdict(list)
    by_run: dict[tuple, list[str]] = defaultdict(list)
    for row in subsets:
        by_run[(row["method"], float(row["budget"]), row["seed"])].append(template[row["id"]])
    for (method, budget, _), members in sorted(by_run.items()):
        counts[(method, budget)].append([members.count(n) for n in names])
    print("| method | budget | runs | templates with no sample | smallest template count | samples per template |")
    print("|---|---|---|---|---|---|")
    for (method, budget), runs in sorted(counts.items()):
        array = np.array(runs)
        print(f"| {method} | {budget:g} | {len(runs)} | {np.mean((array == 0).sum(1)):.3g} | {np.mean(array.min(1)):.3g} | "
              f"{' '.join(f'{v:g}' for v in array.mean(0).round(1))} |")
    print(f"\n(templates in that order: {', '.join(short[n] for n in names)})\n")

    nll: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in samples:
        if row["variant"] in ("finetuned", "initial"):
            nll[(row["method"], float(row["budget"]))][template[row["id"]]].append(float(row["nll"]))
    print("| method | budget | " + " | ".join(short[n] for n in names) + " | all |")
    print("|---|---|" + "---|" * (len(names) + 1))
    for (method, budget), per in sorted(nll.items()):
        cells = [f"{np.mean(per[n]):.3f}" if per[n] else "" for n in names]
        everything = [v for n in names for v in per[n]]
        print(f"| {method} | {budget:g} | " + " | ".join(cells) + f" | {np.mean(everything):.3f} |")
    print("\n(fine-tuned test NLL in nats/token of each test sample, averaged over a template's samples and the"
          " seeds; 'all': over every test sample, not token-weighted like compare.csv)")


if __name__ == "__main__":
    main()
