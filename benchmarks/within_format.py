"""What a subset picks *inside* each format, against the format's own pool: a `--task pool`
project (benchmarks/make_claim_project.py) after `delift-dvc compare`, from its
reports/compare_subsets.csv and data/prepared (no LM pass).

    python benchmarks/within_format.py --project ../claim-p0

Per method and budget, averaged over the runs (seeds) and over the groups (templates) that got
at least one pick:
- label formats: the total variation distance between the picks' label mix and the group's
  label mix in the pool (0: the same proportions), and the share of picks whose label is the
  group's minority label (the least frequent one);
- free-text formats: the picks' mean response length in characters over the group's mean;
- every format: the picks' mean cosine to the group's MiniLM centroid minus the pool's mean (> 0:
  the picks are more typical of their format than the pool is, < 0: more unusual).
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from pools import project_samples
from delift_dvc.selection.stratified import label_groups, normalise_label


def label_tv(picked: list[str], pool: list[str]) -> float:
    """Total variation distance between the label distributions of `picked` and `pool`."""
    p, q = Counter(picked), Counter(pool)
    labels = set(p) | set(q)
    return 0.5 * sum(abs(p[x] / len(picked) - q[x] / len(pool)) for x in labels)


def minority_share(picked: list[str], pool: list[str]) -> float:
    """Share of `picked` whose label is the pool's least frequent one (ties: the first by name)."""
    counts = Counter(pool)
    minority = min(sorted(counts), key=lambda x: counts[x])
    return sum(1 for x in picked if x == minority) / len(picked)


def centroid_gap(vectors: np.ndarray, picked: np.ndarray) -> float:
    """Mean cosine of the picked rows to the rows' normalised centroid, minus all rows' mean."""
    centroid = vectors.mean(axis=0)
    centroid = centroid / np.linalg.norm(centroid)
    cos = vectors @ centroid
    return float(cos[picked].mean() - cos.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, required=True)
    ap.add_argument("--out", default="reports", help="the compare --out folder")
    args = ap.parse_args()
    subsets = args.project / args.out / "compare_subsets.csv"
    samples = project_samples(args.project, "data/prepared/train.jsonl", [f"{args.out}/compare_subsets.csv"],
                              "template", "delift-dvc compare")
    from delift_dvc.utility.embeddings import embed_samples

    by_id = {s.id: s for s in samples}
    ids = [s.id for s in samples]
    vectors = embed_samples(ids, by_id, "cpu")
    row = {i: k for k, i in enumerate(ids)}
    group = {s.id: s.record["template"] for s in samples}
    members: dict[str, list[str]] = defaultdict(list)
    for i in ids:
        members[group[i]].append(i)
    labelled = label_groups([group[i] for i in ids], [by_id[i].response for i in ids])
    runs: dict[tuple, list[str]] = defaultdict(list)
    with subsets.open(encoding="utf-8", newline="") as handle:
        for r in csv.DictReader(handle):
            if r["id"] in by_id:
                runs[(r["method"], float(r["budget"]), int(r["seed"]))].append(r["id"])
    cells: dict[tuple, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (method, budget, _seed), picked_ids in runs.items():
        if method == "full":
            continue
        chosen = set(picked_ids)
        for g, group_ids in members.items():
            picked = [i for i in group_ids if i in chosen]
            if not picked:
                continue
            cell = cells[(method, budget)]
            if g in labelled:
                pool_labels = [normalise_label(by_id[i].response) for i in group_ids]
                picked_labels = [normalise_label(by_id[i].response) for i in picked]
                cell["tv"].append(label_tv(picked_labels, pool_labels))
                cell["minority"].append(minority_share(picked_labels, pool_labels))
            else:
                lengths = np.array([len(by_id[i].response) for i in group_ids], dtype=float)
                cell["length"].append(float(np.mean([len(by_id[i].response) for i in picked]) / lengths.mean()))
            rows_of_group = np.array([row[i] for i in group_ids])
            mask = np.isin(group_ids, picked)
            cell["centroid"].append(centroid_gap(vectors[rows_of_group], mask))
    print(f"pool: {len(samples)} samples, {len(members)} groups, {len(labelled)} label formats\n")
    print("| method | budget | label mix TV distance (label formats) | minority-label share of picks | "
          "response length / group mean (free text) | centroid cosine, picks - pool |")
    print("|---|---|---|---|---|---|")
    for (method, budget), cell in sorted(cells.items()):
        def mean(key: str) -> str:
            return f"{np.mean(cell[key]):.3f}" if cell[key] else "-"
        print(f"| {method} | {budget:g} | {mean('tv')} | {mean('minority')} | {mean('length')} | "
              f"{float(np.mean(cell['centroid'])):+.4f} |")


if __name__ == "__main__":
    main()
