"""What the balanced allocation changes in a project's selections (issue 19), without
fine-tuning anything:

    python benchmarks/allocation_check.py --project ../claim-p0 --budgets 0.1,0.3 --seeds 0,1,2
    python benchmarks/allocation_check.py --project ../claim-cont2 --update data/update/v2.jsonl

It scores the project's pool (data/raw/train.jsonl) in file mode with the project's params.yaml
(nothing when the store has it), then at every budget and seed selects with the default
(`selection.allocation: proportional`) and with `balanced`, the rest of the settings the
project's, and prints per run the picks per group under each and how many picks the two subsets
share. With `--update`, each budget and seed first selects the project's pool by the default,
then adds to it from the update file's new samples, those not in the pool (FLCG in file mode,
`existing` = that first subset) under each allocation, and compares the additions. Two subsets that are the same are the
same fine-tuned model at the same seed: a pool on which they agree needs no fine-tuned grid.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from delift_dvc import api
from delift_dvc.data.samples import load_samples

ALLOCATIONS = ("proportional", "balanced")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--budgets", default="0.1,0.3")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--update", help="the next version's data file, relative to the project (continual)")
    args = ap.parse_args()
    train, params = args.project / "data/raw/train.jsonl", args.project / "params.yaml"
    store = str(args.project / "store")
    if not train.is_file() or not params.is_file():
        raise SystemExit(f"{args.project}: needs data/raw/train.jsonl and params.yaml "
                         "(a make_claim_project.py project)")
    update = None
    ground = load_samples(train)
    if args.update:  # the update's new samples: what a data update adds from (its ground set)
        before = {s.id for s in ground}
        ground = [s for s in load_samples(args.project / args.update) if s.id not in before]
        update = [s.record for s in ground]
    group = {s.id: str(s.record.get("template", "?")) for s in ground}
    start = time.perf_counter()
    counts = api.score(train, params_path=params, store=store)
    print(f"scored {counts['baselines_scored']} d0 + {counts['pairs_scored']} LM pairs in "
          f"{time.perf_counter() - start:.0f} s")
    names = sorted(set(group.values()))
    print("\n| budget | seed | allocation | picks | " + " | ".join(names) + " | shared picks |")
    print("|---|---|---|---|" + "---|" * len(names) + "---|")
    same = 0
    runs = 0
    for budget in [float(b) for b in args.budgets.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            kept = None
            if update:  # the first subset, and what adding to it reads
                kept = api.select(train, params_path=params, store=store, budget=budget, seed=seed)["samples"]
                counts = api.score(update, existing=kept, params_path=params, store=store, budget=budget)
                print(f"update at {budget:g}, seed {seed}: scored {counts['baselines_scored']} d0 + "
                      f"{counts['pairs_scored']} LM pairs")
            data = train if update is None else update
            picked = {a: api.select(data, existing=kept, params_path=params, store=store, budget=budget, seed=seed,
                                    allocation=a)["ids"] for a in ALLOCATIONS}
            shared = len(set(picked["proportional"]) & set(picked["balanced"]))
            runs += 1
            same += sorted(picked["proportional"]) == sorted(picked["balanced"])
            for a in ALLOCATIONS:
                by = Counter(group[i] for i in picked[a] if i in group)
                print(f"| {budget:g} | {seed} | {a} | {len(picked[a])} | " + " | ".join(str(by[g]) for g in names)
                      + f" | {shared} |")
    print(f"\nthe two allocations picked the same subset in {same} of {runs} runs")


if __name__ == "__main__":
    main()
