"""Does `d0` find the wrong responses? A quality-gate check on a `--task pool` project
(benchmarks/make_claim_project.py) after its `dvc repro`: no LM pass, only the stored d0.

    python benchmarks/d0_gate.py --project ../claim-realistic

d0[i] is the model's teacher-forced distance to sample i's response with no example
(`||1 - p||_2 / sqrt(T)`): a response the model finds implausible for its own prompt has a
high d0. A gate would drop the samples whose d0 is high *relative to their stratum* (group x
answer label, as `selection.strata: group_label`): z = (d0 - stratum mean) / stratum sd. This
prints, per defect kind, the count and the mean z, the AUC of z (and of raw d0) for telling the
wrong responses (swapped, flipped) from clean ones, and what dropping the top 5 / 10 / 20 % by z
would remove. A gate is worth building only where the AUC is well above 0.5.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from pools import project_samples
from delift_dvc.selection.stratified import stratum_labels
from delift_dvc.store import Store

WRONG = ("swapped", "flipped")


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties half: the Mann-Whitney AUC."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="stable")
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    ranks[order] = np.arange(1, len(order) + 1)
    for v in np.unique(values):  # average ranks of ties
        tied = order[values == v]
        ranks[tied] = ranks[tied].mean()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def within_stratum_z(values: np.ndarray, strata: list[str]) -> np.ndarray:
    """(value - its stratum's mean) / its stratum's sd; 0 in a stratum of one or of equal values."""
    out = np.zeros(len(values))
    members: dict[str, list[int]] = defaultdict(list)
    for k, s in enumerate(strata):
        members[s].append(k)
    for idx in members.values():
        v = values[idx]
        sd = v.std()
        out[idx] = (v - v.mean()) / sd if len(idx) > 1 and sd > 0 else 0.0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, required=True)
    args = ap.parse_args()
    record = args.project / "data/selected/selection.json"
    samples = project_samples(args.project, "data/prepared/train.jsonl", ["data/selected/selection.json"],
                              "defect", "dvc repro")
    scorer = json.loads(record.read_text(encoding="utf-8"))["scorer"]
    with Store(args.project / "store") as store:
        d0 = store.read_baselines(scorer, [s.id for s in samples])
    if np.isnan(d0).any():
        raise SystemExit(f"{args.project}/store: {int(np.isnan(d0).sum())} samples without a stored d0")
    strata = stratum_labels([s.record["template"] for s in samples], [s.response for s in samples], "group_label")
    z = within_stratum_z(d0, strata)
    defects = np.array([s.record["defect"] for s in samples])
    print(f"pool: {len(samples)} samples, {len(set(strata))} strata (group x answer label)\n")
    print("| defect | samples | mean d0 | mean z (within stratum) |")
    print("|---|---:|---:|---:|")
    for kind, count in sorted(Counter(defects).items()):
        mask = defects == kind
        print(f"| {kind} | {count} | {d0[mask].mean():.4f} | {z[mask].mean():+.3f} |")
    wrong = np.isin(defects, WRONG)
    judged = wrong | (defects == "clean")  # wrong against clean; duplicates are neither
    print(f"\nAUC, wrong ({', '.join(WRONG)}: {int(wrong.sum())}) against clean ({int((defects == 'clean').sum())}):"
          f" z {auc(z[judged], wrong[judged]):.3f}, raw d0 {auc(d0[judged], wrong[judged]):.3f}"
          " (0.5: no signal)")
    for kind in WRONG:
        mask = (defects == kind) | (defects == "clean")
        if (defects == kind).any():
            print(f"  {kind}: AUC of z {auc(z[mask], (defects == kind)[mask]):.3f}")
    print("\n| dropped (top z) | samples | wrong among them | share wrong | wrong left in the pool |")
    print("|---|---:|---:|---:|---:|")
    order = np.argsort(-z, kind="stable")
    for share in (0.05, 0.10, 0.20):
        top = order[: round(share * len(samples))]
        hit = int(wrong[top].sum())
        print(f"| {share:.0%} | {len(top)} | {hit} | {hit / max(len(top), 1):.0%} | {int(wrong.sum()) - hit} |")
    print(f"\n(base rate of wrong responses: {wrong.mean():.1%})")


if __name__ == "__main__":
    main()
