"""Which formats does a DELIFT subset miss, why, and what brings them back (issue 12).

On the dense utility kernel of bench_surrogate.py's pool (320 real P3 samples, 20 short ones from
each of 16 templates of ../shared/data/p3 and p3_t0; scored into --store if missing, ~70 min),
this prints two tables, no LM pass beyond that store:

1. per template: mean d0, the mean best one-shot gain of its targets (row max of UF), the mean UF
   its targets get from examples of their own template and from the other templates, how many of
   its samples plain DELIFT picks at 10 % and 30 %, and the share of its targets' best gain that
   the 30 % subset still delivers;
2. per selection variant, at 10 % and 30 %: templates with no sample, the smallest and largest template count,
   the utility FL objective as a share of plain DELIFT's, and the share of the achievable one-shot
   gain (sum over targets of max(UF, 0) over the subset / over the pool) overall and for the worst
   template. Variants: plain DELIFT (joint min-max), three per-target normalisations of UF (an
   analysis only), DELIFT + embedding coverage (`selection.embedding_coverage` w), DELIFT with a
   format-balanced budget (`selection.balance_clusters` k: the budget split over k MiniLM k-means
   clusters by size; and, as a reference no user has, split over the true templates), DELIFT (SE)
   and random subsets (mean of 5 seeds).
3. how well the k-means clusters recover the templates (adjusted Rand index, purity).

    python benchmarks/bench_coverage.py --store ../bench-p3-320
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench_surrogate import pool, score_dense


def load(store_root: Path, samples, executor: str) -> tuple[np.ndarray, np.ndarray]:
    """(UF [n, n], d0 [n]) in the order of `samples`, scoring what the store lacks."""
    from delift_dvc.store import Store

    fingerprint, seconds = score_dense(store_root, samples, executor)
    print(f"dense scoring (what was missing): {seconds:.0f} s", flush=True)
    ids = [s.id for s in samples]
    with Store(store_root) as store:
        d0 = store.read_baselines(fingerprint, ids)
        uf = d0[:, None] - store.read_pairs(fingerprint, ids, ids)
    if np.isnan(uf).any():
        raise SystemExit(f"{store_root}: incomplete dense store")
    return uf, d0


CLUSTERS = (8, 16, 32)


def variants(uf: np.ndarray, d0: np.ndarray, sim: np.ndarray, clusters: dict, template: np.ndarray):
    """(name, kernel, selection keywords) of every variant that selects on a kernel."""
    n = len(d0)
    yield "DELIFT (global min-max)", uf, {}
    yield "UF / row max (per target)", np.clip(uf, 0, None) / np.maximum(uf.max(1, keepdims=True), 1e-12), {}
    yield "UF row ranks (per target)", uf.argsort(1).argsort(1) / (n - 1), {}
    yield "UF / d0 (relative gain)", uf / d0[:, None], {}
    for w in (0.1, 0.25, 0.5, 1.0, 4.0):
        yield f"DELIFT + embedding coverage {w:g}", uf, {"coverage": (sim, None), "coverage_weight": w}
    for k, labels in clusters.items():
        yield f"DELIFT, budget balanced over {k} clusters", uf, {"balance": labels}
    truth = np.unique(template, return_inverse=True)[1]
    yield "DELIFT, budget balanced over the true templates", uf, {"balance": truth}
    yield "DELIFT (SE): MiniLM cosine only", sim, {}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, type=Path, help="the dense store of bench_surrogate.py")
    ap.add_argument("--executor", default="local", choices=["local", "ray"], help="to score what is missing")
    args = ap.parse_args()

    from sklearn.metrics import adjusted_rand_score

    from delift_dvc.selection.balance import embedding_clusters
    from delift_dvc.selection.scaling import minmax_scale
    from delift_dvc.selection.methods import instruction_tuning, random_subset
    from delift_dvc.selection.submodular import evaluate
    from delift_dvc.utility.embeddings import embed_samples
    from delift_dvc.utility.embeddings import cosine_kernel

    samples = pool(20)
    ids = [s.id for s in samples]
    template = np.array([s.source.split(":")[0] for s in samples])
    names = sorted(set(template))
    uf, d0 = load(args.store, samples, args.executor)
    vectors = embed_samples(ids, {s.id: s for s in samples}, "cpu")
    sim = cosine_kernel(vectors, vectors)
    clusters = {k: embedding_clusters(vectors, k, seed=0) for k in CLUSTERS}
    scaled = minmax_scale([uf])[0].astype(np.float64)
    gain = np.clip(uf, 0, None)
    best = gain.max(1)
    position = {i: k for k, i in enumerate(ids)}

    def columns(subset_ids) -> np.ndarray:
        return np.array([position[i] for i in subset_ids])

    def shares(cols: np.ndarray) -> tuple[float, list[float]]:
        got = gain[:, cols].max(1)
        return got.sum() / best.sum(), [got[template == t].sum() / best[template == t].sum() for t in names]

    plain = {b: columns(instruction_tuning(ids, uf, b).ids) for b in (0.1, 0.3)}
    print(f"\npool: {len(ids)} samples, {len(names)} templates x 20; plain DELIFT (facility location)\n")
    print("| template | d0 | best gain | UF from own template | UF from other templates | picks 10 % | picks 30 % |"
          " best gain kept at 30 % |")
    print("|---|---|---|---|---|---|---|---|")
    per_template = shares(plain[0.3])[1]
    for t, kept in zip(names, per_template):
        rows = template == t
        own, other = uf[np.ix_(rows, rows)], uf[np.ix_(rows, ~rows)]
        print(f"| {t.split('/')[-1]} | {d0[rows].mean():.3f} | {uf[rows].max(1).mean():.3f} | {own.mean():+.3f} | "
              f"{other.mean():+.3f} | {int(rows[plain[0.1]].sum())} | {int(rows[plain[0.3]].sum())} | {kept:.3f} |")

    print("\n| variant | budget | templates with no sample | smallest / largest template count | utility FL"
          " objective (share of DELIFT's) | one-shot gain kept | worst template's gain kept |")
    print("|---|---|---|---|---|---|---|")
    for budget in (0.1, 0.3):
        reference = evaluate(scaled, plain[budget])
        rows = [(name, columns(instruction_tuning(ids, kernel, budget, **kw).ids)) for name, kernel, kw in
                variants(uf, d0, sim, clusters, template)]
        randoms = [columns(random_subset(ids, budget, seed).ids) for seed in range(5)]
        for name, cols in rows + [("random (mean of 5 seeds)", randoms)]:
            group = cols if isinstance(cols, list) else [cols]
            counts = [[int((template[c] == t).sum()) for t in names] for c in group]
            missed = np.mean([sum(x == 0 for x in cnt) for cnt in counts])
            smallest = np.mean([min(cnt) for cnt in counts])
            largest = np.mean([max(cnt) for cnt in counts])
            objective = np.mean([evaluate(scaled, c) for c in group]) / reference
            kept = [shares(c) for c in group]
            overall, worst = np.mean([k[0] for k in kept]), np.mean([min(k[1]) for k in kept])
            print(f"| {name} | {budget:g} | {missed:g} | {smallest:g} / {largest:g} | {objective:.3f} | {overall:.3f} |"
                  f" {worst:.3f} |")

    print("\n| k-means clusters | adjusted Rand index vs templates | purity (share in its cluster's main template) |")
    print("|---|---|---|")
    for k, labels in clusters.items():
        main_share = sum(max((template[labels == c] == t).sum() for t in names) for c in set(labels.tolist()))
        print(f"| {k} | {adjusted_rand_score(template, labels):.3f} | {main_share / len(template):.3f} |")


if __name__ == "__main__":
    main()
