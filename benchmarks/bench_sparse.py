"""Sparse (k-NN) utility vs dense: pairs scored, wall time, and selection quality on real P3 data.

Scores n P3 samples densely (all n^2 pairs) and sparsely (each target with its k nearest
examples under all-MiniLM-L6-v2, itself included), each into its own fresh store, selects 30 %
by facility location on each kernel, and evaluates both selections on the dense kernel.

    python benchmarks/bench_sparse.py --n 150 --k 16
    python benchmarks/bench_sparse.py --n 1000 --k 32 --no-dense    # knn only (dense would be n^2)
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from delift_dvc.config import Params
from delift_dvc.data.samples import to_sample
from delift_dvc.selection.planning import Plan
from delift_dvc.selection.scaling import minmax_scale
from delift_dvc.selection.methods import instruction_tuning, random_subset
from delift_dvc.selection.submodular import evaluate
from delift_dvc.kernels.base import PlanContext
from delift_dvc.kernels.driver import score_missing
from delift_dvc.kernels.lm import scorer_spec
from delift_dvc.kernels.similarity import SimilaritySource
from delift_dvc.kernels.utility import dense_utility
from delift_dvc.store import Store
from delift_dvc.utility.knn import knn_candidates

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "p3"
TEMPLATES = ["glue_mrpc_paraphrase", "common_gen_Given_concepts_type_1", "social_i_qa_Generate_answer",
             "rotten_tomatoes_Reviewer_Enjoyment", "app_reviews_convert_to_star_rating",
             "glue_qqp_duplicate_or_not", "quarel_choose_between", "gigaword_make_a_title",
             # 8 more short-prompt templates, used when n needs more than 60 rows from each of the first 8
             "ag_news_classify_with_choices", "amazon_polarity_Is_this_review",
             "commonsense_qa_answer_to_question", "paws_labeled_final_paraphrase_task",
             "qasc_qa_with_separated_facts_1", "quartz_answer_question_based_on",
             "wiki_qa_Decide_good_answer", "dbpedia_14_pick_one_category_for_the_following_text"]


def templates_for(n: int) -> list[str]:
    """The first 8 templates (60 rows each) while they suffice, else all 16."""
    return TEMPLATES[:8] if n <= 8 * 60 else TEMPLATES


def load(n: int, seed: int) -> list:
    rows = []
    names = templates_for(n)
    per_template = max(60, -(-n // len(names)) + 10)
    for name in names:
        lines = (SHARED / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        rows += [(f"{name}:{k + 1}", json.loads(line)) for k, line in enumerate(lines[:per_template])]
    return shuffled_unique(rows, n, seed)


def shuffled_unique(rows: list[tuple[str, dict]], n: int, seed: int) -> list:
    """`n` distinct samples of (where, record) rows after a seeded shuffle, sorted by id."""
    random.Random(seed).shuffle(rows)
    samples, seen = [], set()
    for where, record in rows:
        sample = to_sample(record, where)
        if sample.id not in seen:
            seen.add(sample.id)
            samples.append(sample)
    if len(samples) < n:
        raise SystemExit(f"only {len(samples)} usable P3 samples")
    return sorted(samples[:n], key=lambda s: s.id)


def score(samples, candidates, params: Params) -> tuple[np.ndarray, float, int]:
    ids = [s.id for s in samples]
    by_id = {s.id: s for s in samples}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "store", write=True) as store:
        scorer = scorer_spec(params.scoring).build()
        start = time.perf_counter()
        counts = score_missing(store, scorer, by_id, ids, ids, ids, candidates=candidates)
        seconds = time.perf_counter() - start
        block = dense_utility(store, scorer.fingerprint, ids, ids, candidates)
    return block, seconds, counts.pairs_scored


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--budget", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-dense", action="store_true", help="score only the knn pairs (for large n)")
    args = ap.parse_args()
    samples = load(args.n, args.seed)
    if len(samples) < args.n:
        raise SystemExit(f"only {len(samples)} distinct P3 samples available, asked for {args.n}")
    ids = [s.id for s in samples]
    params = Params()
    start = time.perf_counter()
    plan = Plan("initial", "fl", ids, [], [], 0)
    sim, _ = SimilaritySource().read(PlanContext(plan, {s.id: s for s in samples}, None, "auto"))
    candidates = knn_candidates(ids, ids, sim, args.k)
    t_knn = time.perf_counter() - start
    sparse, t_sparse, n_sparse = score(samples, candidates, params)
    if args.no_dense:
        report_sparse_only(args, samples, sparse, t_sparse, n_sparse, t_knn, params)
        return
    dense, t_dense, n_dense = score(samples, None, params)
    dense_sel = instruction_tuning(ids, dense, args.budget)
    sparse_sel = instruction_tuning(ids, sparse, args.budget)
    scaled = minmax_scale([dense])[0]
    index = {i: k for k, i in enumerate(ids)}

    def f(subset) -> float:
        return evaluate(scaled, [index[i] for i in subset.ids])

    rand = np.mean([f(random_subset(ids, args.budget, seed)) for seed in range(3)])
    print(f"n = {args.n} P3 samples ({len(templates_for(args.n))} templates), k = {args.k}, budget {args.budget}, "
          f"dtype {scorer_spec(params.scoring).build().describe()['dtype']}")
    print("| utility | pairs scored | scoring s | FL objective on the dense kernel | vs dense |")
    print("|---|---|---|---|---|")
    print(f"| dense | {n_dense} | {t_dense:.0f} | {f(dense_sel):.3f} | 1.000 |")
    print(f"| knn (k={args.k}) | {n_sparse} | {t_sparse:.0f} (+{t_knn:.1f} neighbours) | "
          f"{f(sparse_sel):.3f} | {f(sparse_sel) / f(dense_sel):.3f} |")
    print(f"| random (3 seeds, mean) | 0 | 0 | {rand:.3f} | {rand / f(dense_sel):.3f} |")
    overlap = len(set(dense_sel.ids) & set(sparse_sel.ids))
    print(f"subset overlap sparse/dense: {overlap} of {len(dense_sel.ids)}")


def report_sparse_only(args, samples, sparse, t_sparse, n_sparse, t_knn, params) -> None:
    """Pairs and wall time of the knn run; the dense cost is extrapolated at the same pair rate."""
    ids = [s.id for s in samples]
    start = time.perf_counter()
    chosen = instruction_tuning(ids, sparse, args.budget)
    t_select = time.perf_counter() - start
    rate = n_sparse / t_sparse
    dense_pairs = len(ids) ** 2
    print(f"n = {len(ids)} P3 samples ({len(templates_for(len(ids)))} templates), k = {args.k}, "
          f"budget {args.budget}, dtype {scorer_spec(params.scoring).build().describe()['dtype']}")
    print("| utility | pairs | wall s | pairs/s |")
    print("|---|---|---|---|")
    print(f"| knn (k={args.k}), measured | {n_sparse} | {t_sparse:.0f} scoring + {t_knn:.1f} neighbours "
          f"+ {t_select:.2f} selection | {rate:.1f} |")
    print(f"| dense, extrapolated at the same rate | {dense_pairs} | {dense_pairs / rate:.0f} | - |")
    print(f"pairs ratio dense/knn: {dense_pairs / n_sparse:.1f}x; selected {len(chosen.ids)} samples")


if __name__ == "__main__":
    main()
