"""Which samples the default selection picks under each teacher-forced distance (issue 19), in a
`--task pool` project (benchmarks/make_claim_project.py), without fine-tuning anything:

    python benchmarks/distance_check.py --project ../claim-nll --budgets 0.1,0.3 --seeds 0,1,2

For `scoring.distance` l2 (the paper's) and nll (mean -log p, so UF is the per-token
log-likelihood gain), it scores the project's pool in file mode with the project's params.yaml
(into the project's store: each distance under its own scorer fingerprint), selects at every
budget and seed with the project's selection settings, and prints per run the share of defective
picks (duplicates, near-duplicates, swapped and flipped responses) beside uniform and stratified
random at the same budget and seed, and the overlap of the two distances' subsets. Nothing is
fine-tuned: this says what each utility prefers, not which subset trains the better model.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from pool_composition import DEFECTS
from pools import project_samples

from delift_dvc import api


def composition(ids: list[str], defect: dict[str, str]) -> str:
    counts = Counter(defect[i] for i in ids)
    bad = 1 - counts["clean"] / max(1, len(ids))
    return f"{bad:.1%} | " + " | ".join(str(counts[d]) for d in DEFECTS)


def pool_check(doc: str) -> tuple[list[float], list[int], list, Path, Path, str]:
    """The command line of a composition check on a `--task pool` project (--project, --budgets,
    --seeds): (budgets, seeds, the pool's samples, its train file, params.yaml, store)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--budgets", default="0.1,0.3")
    ap.add_argument("--seeds", default="0,1,2")
    args = ap.parse_args()
    data = "data/raw/train.jsonl"
    samples = project_samples(args.project, data, ["params.yaml"], "defect", "make_claim_project.py")
    return ([float(b) for b in args.budgets.split(",")], [int(s) for s in args.seeds.split(",")], samples,
            args.project / data, args.project / "params.yaml", str(args.project / "store"))


def main() -> None:
    budgets, seeds, samples, train, params, store = pool_check(__doc__)
    defect = {s.id: s.record["defect"] for s in samples}
    print(f"pool: {len(samples)} samples, " + composition(list(defect), defect).replace(" | ", ", ", 1))
    picked: dict[tuple, list[str]] = {}
    for distance in ("l2", "nll"):
        start = time.perf_counter()
        counts = api.score(train, params_path=params, store=store, distance=distance)
        print(f"scored {distance}: {counts['baselines_scored']} d0 + {counts['pairs_scored']} LM pairs in "
              f"{time.perf_counter() - start:.0f} s (surrogate held-out Spearman "
              f"{counts.get('surrogate_spearman', float('nan')):.3f})")
        for budget in budgets:
            for seed in seeds:
                picked[distance, budget, seed] = api.select(train, params_path=params, store=store,
                                                            distance=distance, budget=budget, seed=seed)["ids"]
    for method in ("random", "stratified_random"):
        for budget in budgets:
            for seed in seeds:
                picked[method, budget, seed] = api.select(train, params_path=params, store=store, method=method,
                                                          budget=budget, seed=seed)["ids"]
    print("\n| selection | budget | seed | picks | defective | " + " | ".join(DEFECTS) + " | overlap l2/nll |")
    print("|---|---|---|---|---|" + "---|" * len(DEFECTS) + "---|")
    for budget in budgets:
        for seed in seeds:
            both = len(set(picked["l2", budget, seed]) & set(picked["nll", budget, seed]))
            for name in ("l2", "nll", "random", "stratified_random"):
                ids = picked[name, budget, seed]
                overlap = f"{both}" if name in ("l2", "nll") else "-"
                print(f"| {name} | {budget:g} | {seed} | {len(ids)} | {composition(ids, defect)} | {overlap} |")


if __name__ == "__main__":
    main()
