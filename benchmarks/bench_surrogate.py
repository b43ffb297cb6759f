"""Quality of sparse utility kernels against the dense one, at equal LM passes, on real P3 data.

A pool of --n P3 samples (16 templates of ../shared/data/p3 and p3_t0, 20 short samples each by
default) is scored densely once (all n^2 pairs + n d0) into --store (resumable: rerun to
continue; --executor ray uses two single-threaded Ray workers, in a loopback-only namespace).
Then every method picks 30 % of the pool by facility location on its own kernel, and each pick is
evaluated by the facility-location objective on the *dense* kernel, as a share of the dense
method's own objective. Sparse methods read only the pairs they would have the LM measure (all
of them stored by the dense run), at 5, 10 and 20 % of the dense LM passes:

- knn: each target's L nearest examples (MiniLM cosine), all measured, the rest missing (0);
- surrogate (random pairs): L random pairs per target among its k candidates measured, a
  LightGBM surrogate predicts the rest of the k (NN-CIFT's random sampling);
- surrogate (active): L pairs per target measured over 3 rounds, each round the best predicted
  unmeasured candidates (this package's `utility.strategy: active`);
plus random subsets and DELIFT (SE) at no LM cost.

    unshare -n sh -c 'ip link set lo up && python benchmarks/bench_surrogate.py --store ../bench-p3-300 --executor ray'
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
TEMPLATES = [("p3", t) for t in (
    "social_i_qa_Generate_answer", "rotten_tomatoes_Reviewer_Enjoyment", "glue_qqp_duplicate_or_not",
    "gigaword_make_a_title", "commonsense_qa_answer_to_question", "common_gen_Given_concepts_type_1",
    "quarel_choose_between", "wiki_qa_Decide_good_answer", "glue_mrpc_paraphrase",
    "qasc_qa_with_separated_facts_1", "quartz_answer_question_based_on", "app_reviews_convert_to_star_rating")] + [
    ("p3_t0", t) for t in ("sciq_Direct_Question_Closed_Book_", "paws_labeled_final_PAWS_ANLI_GPT3",
                           "dbpedia_14_given_a_list_of_category_what_does_the_title_belong_to",
                           "social_i_qa_Generate_the_question_from_the_answer")]
MAX_CHARS = 450  # prompt + response: short samples keep the dense run affordable on a CPU


def pool(per_template: int) -> list:
    from delift_dvc.data.samples import to_sample

    samples, seen = [], set()
    for folder, name in TEMPLATES:
        taken = 0
        for k, line in enumerate((SHARED / folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()):
            record = json.loads(line)
            completion = record["completion"].removesuffix("<|endoftext|>")
            if not completion.strip() or len(record["prompt"]) + len(completion) >= MAX_CHARS:
                continue
            sample = to_sample(record, f"{folder}/{name}:{k + 1}")
            if sample.id in seen:
                continue
            seen.add(sample.id)
            samples.append(sample)
            taken += 1
            if taken == per_template:
                break
    return sorted(samples, key=lambda s: s.id)


def score_dense(store_root: Path, samples, executor_kind: str) -> tuple[str, float]:
    """Score every pair and d0 of the pool that the store lacks; (scorer fingerprint, seconds)."""
    from delift_dvc.config import Params
    from delift_dvc.kernels.driver import score_missing, store_samples
    from delift_dvc.kernels.lm import scorer_spec
    from delift_dvc.progress import Reporter
    from delift_dvc.store import Store

    params = Params()
    if executor_kind == "ray":
        params = replace(params, scoring=replace(params.scoring, executor="ray", workers=2, threads=1))
    spec = scorer_spec(params.scoring)
    scorer = spec.build()
    by_id = {s.id: s for s in samples}
    ids = [s.id for s in samples]
    if executor_kind == "ray":
        from delift_dvc.executors.ray import RayExecutor

        executor = RayExecutor(2, threads=1, name=lambda item: f"block {item[0].id}")
    else:
        from delift_dvc.executors.local import LocalExecutor

        executor = LocalExecutor()
    start = time.perf_counter()
    try:
        with Store(store_root, write=True) as store:
            store_samples(store, by_id)
            score_missing(store, scorer, by_id, ids, ids, ids, segment_pairs=2048, executor=executor, spec=spec,
                          reporter=Reporter("dense", interval=60))
    finally:
        executor.close()
    return scorer.fingerprint, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, help="store folder of the dense run (reused, resumable)")
    ap.add_argument("--per-template", type=int, default=20)
    ap.add_argument("--executor", default="local", choices=["local", "ray"])
    ap.add_argument("--budget", type=float, default=0.3, help="selection budget")
    ap.add_argument("--k", type=int, default=0, help="surrogate candidates per target (0: the whole pool)")
    ap.add_argument("--score-only", action="store_true")
    args = ap.parse_args()
    samples = pool(args.per_template)
    n = len(samples)
    print(f"pool: {n} P3 samples from {len(TEMPLATES)} templates; dense = {n * n} pairs + {n} d0", flush=True)
    fingerprint, seconds = score_dense(Path(args.store), samples, args.executor)
    print(f"dense scoring (what was missing): {seconds:.0f} s", flush=True)
    if args.score_only:
        return

    evaluate_methods(Path(args.store), samples, fingerprint, args.budget, args.k or n)



def evaluate_methods(store_root: Path, samples, fingerprint: str, budget: float, k: int) -> None:
    """The table: each method's subset, scored by the FL objective on the dense kernel."""
    from delift_dvc.config import Params
    from delift_dvc.selection.planning import Plan
    from delift_dvc.selection.scaling import minmax_scale
    from delift_dvc.selection.sparse import SparseKernel
    from delift_dvc.selection.methods import instruction_tuning, random_subset
    from delift_dvc.selection.submodular import evaluate
    from delift_dvc.utility.embeddings import embed_samples
    from delift_dvc.kernels.base import PlanContext
    from delift_dvc.kernels.surrogate import SurrogateOptions, surrogate_kernel
    from delift_dvc.store import Store
    from delift_dvc.utility.embeddings import cosine_kernel
    from delift_dvc.utility.knn import knn_from_vectors

    ids = [s.id for s in samples]
    by_id = {s.id: s for s in samples}
    n = len(ids)
    with Store(store_root) as store:
        d0 = store.read_baselines(fingerprint, ids)
        dense = d0[:, None] - store.read_pairs(fingerprint, ids, ids)
    if np.isnan(dense).any():
        raise SystemExit("the dense store is incomplete: run without --score-only first")
    scaled = minmax_scale([dense])[0]
    position = {i: j for j, i in enumerate(ids)}

    def objective(subset) -> float:
        return evaluate(scaled, np.array([position[i] for i in subset.ids]))

    best = objective(instruction_tuning(ids, dense, budget))
    rows = [("dense (all pairs)", n * n, best)]
    vectors = embed_samples(ids, by_id, "cpu")
    rand = [objective(random_subset(ids, budget, seed)) for seed in range(5)]
    se = objective(instruction_tuning(ids, cosine_kernel(vectors, vectors), budget))


    timing = {}
    for share in (0.05, 0.10, 0.20):
        lm = max(1, round(share * n))
        t_idx, e_idx = knn_from_vectors(ids, ids, vectors, vectors, lm)
        knn = SparseKernel.from_pairs(t_idx, e_idx, dense[t_idx, e_idx], (n, n))
        rows.append((f"knn, L = {lm}", len(t_idx), objective(instruction_tuning(ids, knn, budget))))
        for strategy in ("random", "active"):
            params = Params()
            params = replace(params, utility=replace(params.utility, pairs="surrogate", k=min(k, n), lm_pairs=lm,
                                                     strategy=strategy, rounds=3))
            plan = Plan("initial", "fl", ids, [], [], 0)
            start = time.perf_counter()
            with Store(store_root) as store:
                ctx = PlanContext(plan, by_id, store, "cpu", embeddings=vectors)  # ids == plan.examples
                run = surrogate_kernel(ctx, SurrogateOptions.from_params(params.utility), fingerprint,
                                       all_stored=False)  # reads the dense run's values
            timing[(strategy, lm)] = time.perf_counter() - start
            chosen = instruction_tuning(ids, run.kernel, budget)
            rows.append((f"surrogate ({strategy} pairs), L = {lm}, k = {min(k, n)}",
                         run.metrics["lm_pairs_measured"], objective(chosen),
                         run.metrics.get("surrogate_spearman"), run.metrics.get("surrogate_r2")))
    rows.append(("random subset (5 seeds, mean)", 0, float(np.mean(rand))))
    rows.append(("DELIFT (SE), MiniLM cosine", 0, se))
    print(f"selection: facility location, budget {budget}; objective on the dense kernel (min-max scaled)")
    print("| method | LM pairs | share of dense | FL objective (dense kernel) | vs dense | held-out Spearman | R^2 |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        name, pairs, value = row[:3]
        fit = row[3:] if len(row) > 3 else ("", "")
        fmt = [("" if v is None or v == "" else f"{v:.3f}") for v in fit]
        print(f"| {name} | {pairs:,} | {pairs / (n * n):.1%} | {value:.3f} | {value / best:.3f} | {fmt[0]} | {fmt[1]} |")
    print("surrogate seconds (embeddings excluded):",
          ", ".join(f"{s} L={lm}: {t:.1f}" for (s, lm), t in timing.items()))


if __name__ == "__main__":
    main()
