"""What the default selection picks with each tempered draw (issue 19), in a `--task pool`
project (benchmarks/make_claim_project.py), without fine-tuning anything:

    python benchmarks/draw_check.py --project ../claim-nll --budgets 0.1,0.3 --seeds 0,1,2

It scores the project's pool in file mode with the project's params.yaml (nothing when the store
has it), then selects at every budget and seed with `selection.draw` independent (the default: a
candidate's weight from its gain alone) and sequential (each pick drawn by its gain given the
picks so far), beside uniform and stratified random at the same budget and seed. Per run it
prints the share of defective picks (duplicates, near-duplicates, swapped and flipped responses),
the picks per defect, and the twin picks: picks of a (template, row) already picked, i.e. a
near-duplicate together with its original. Nothing is fine-tuned: this says what each draw
prefers, not which subset trains the better model.
"""

from __future__ import annotations

import time
from collections import Counter

from distance_check import composition, pool_check
from pool_composition import DEFECTS

from delift_dvc import api

SELECTIONS = {"independent": {"draw": "independent"}, "sequential": {"draw": "sequential"},
              "random": {"method": "random"}, "stratified_random": {"method": "stratified_random"}}


def twins(ids: list[str], records: dict[str, dict]) -> int:
    """Picks whose (template, row) an earlier pick already has."""
    seen = Counter((records[i]["template"], records[i]["row"]) for i in ids)
    return sum(n - 1 for n in seen.values())


def main() -> None:
    budgets, seeds, samples, train, params, store = pool_check(__doc__)
    records = {s.id: s.record for s in samples}
    defect = {i: r["defect"] for i, r in records.items()}
    print(f"pool: {len(samples)} samples, " + composition(list(defect), defect).replace(" | ", ", ", 1)
          + f", {twins(list(records), records)} twins")
    start = time.perf_counter()
    counts = api.score(train, params_path=params, store=store)
    print(f"scored {counts['baselines_scored']} d0 + {counts['pairs_scored']} LM pairs in "
          f"{time.perf_counter() - start:.0f} s")
    print("\n| selection | budget | seed | picks | defective | " + " | ".join(DEFECTS) + " | twin picks |")
    print("|---|---|---|---|---|" + "---|" * len(DEFECTS) + "---|")
    means: dict[tuple[str, float], list[tuple[float, int]]] = {}
    for budget in budgets:
        for seed in seeds:
            for name, options in SELECTIONS.items():
                ids = api.select(train, params_path=params, store=store, budget=budget, seed=seed, **options)["ids"]
                bad = sum(defect[i] != "clean" for i in ids) / max(1, len(ids))
                means.setdefault((name, budget), []).append((bad, twins(ids, records)))
                print(f"| {name} | {budget:g} | {seed} | {len(ids)} | {composition(ids, defect)} | "
                      f"{twins(ids, records)} |")
    print("\n| selection | budget | seeds | mean defective | mean twin picks |\n|---|---|---|---|---|")
    for (name, budget), rows in means.items():
        print(f"| {name} | {budget:g} | {len(rows)} | {sum(b for b, _ in rows) / len(rows):.1%} | "
              f"{sum(t for _, t in rows) / len(rows):.1f} |")


if __name__ == "__main__":
    main()
