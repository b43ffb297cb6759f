"""Sparse (k-NN) utility vs dense: pairs scored, wall time, and selection quality on real P3 data.

Scores n P3 samples densely (all n^2 pairs) and sparsely (each target with its k nearest
examples under all-MiniLM-L6-v2, itself included), each into its own fresh store, selects 30 %
by facility location on each kernel, and evaluates both selections on the dense kernel.

    python benchmarks/bench_sparse.py --n 150 --k 16
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from delift_dvc.kernel import minmax_scale
from delift_dvc.pipeline import make_scorer, similarity_block
from delift_dvc.config import Params
from delift_dvc.planning import Plan
from delift_dvc.samples import to_sample
from delift_dvc.selection import instruction_tuning, random_subset
from delift_dvc.sparse import knn_candidates
from delift_dvc.store import Store
from delift_dvc.submodular import evaluate
from delift_dvc.utility import ensure_scores, utility_block

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "p3"
TEMPLATES = ["glue_mrpc_paraphrase", "common_gen_Given_concepts_type_1", "social_i_qa_Generate_answer",
             "rotten_tomatoes_Reviewer_Enjoyment", "app_reviews_convert_to_star_rating",
             "glue_qqp_duplicate_or_not", "quarel_choose_between", "gigaword_make_a_title"]


def load(n: int, seed: int) -> list:
    rows = []
    for name in TEMPLATES:
        lines = (SHARED / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        rows += [(f"{name}:{k + 1}", json.loads(line)) for k, line in enumerate(lines[:60])]
    random.Random(seed).shuffle(rows)
    samples, seen = [], set()
    for where, record in rows:
        sample = to_sample(record, where)
        if sample.id not in seen:
            seen.add(sample.id)
            samples.append(sample)
    return sorted(samples[:n], key=lambda s: s.id)


def score(samples, candidates, params: Params) -> tuple[np.ndarray, float, int]:
    ids = [s.id for s in samples]
    by_id = {s.id: s for s in samples}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "store", write=True) as store:
        scorer = make_scorer(params)
        start = time.perf_counter()
        counts = ensure_scores(store, scorer, by_id, ids, [(ids, ids)], progress=False,
                               candidates=[candidates])
        seconds = time.perf_counter() - start
        block = utility_block(store, scorer.fingerprint, ids, ids, candidates)
    return block, seconds, counts.pairs_scored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--budget", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    samples = load(args.n, args.seed)
    ids = [s.id for s in samples]
    params = Params()
    start = time.perf_counter()
    plan = Plan("initial", "fl", ids, [], [], args.budget)
    sim = similarity_block(plan, {s.id: s for s in samples}, "auto")
    candidates = knn_candidates(ids, ids, sim, args.k)
    t_knn = time.perf_counter() - start
    sparse, t_sparse, n_sparse = score(samples, candidates, params)
    dense, t_dense, n_dense = score(samples, None, params)
    dense_sel = instruction_tuning(ids, dense, args.budget)
    sparse_sel = instruction_tuning(ids, sparse, args.budget)
    scaled = minmax_scale([dense])[0]
    index = {i: k for k, i in enumerate(ids)}

    def f(subset) -> float:
        return evaluate(scaled, [index[i] for i in subset.ids])

    rand = np.mean([f(random_subset(ids, args.budget, seed)) for seed in range(3)])
    print(f"n = {args.n} P3 samples ({len(TEMPLATES)} templates), k = {args.k}, budget {args.budget}, "
          f"dtype {make_scorer(params).describe()['dtype']}")
    print("| utility | pairs scored | scoring s | FL objective on the dense kernel | vs dense |")
    print("|---|---|---|---|---|")
    print(f"| dense | {n_dense} | {t_dense:.0f} | {f(dense_sel):.3f} | 1.000 |")
    print(f"| knn (k={args.k}) | {n_sparse} | {t_sparse:.0f} (+{t_knn:.1f} neighbours) | "
          f"{f(sparse_sel):.3f} | {f(sparse_sel) / f(dense_sel):.3f} |")
    print(f"| random (3 seeds, mean) | 0 | 0 | {rand:.3f} | {rand / f(dense_sel):.3f} |")
    overlap = len(set(dense_sel.ids) & set(sparse_sel.ids))
    print(f"subset overlap sparse/dense: {overlap} of {len(dense_sel.ids)}")


if __name__ == "__main__":
    main()
