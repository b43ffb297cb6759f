"""Scale of the surrogate mode: wall time and peak memory at n = 1,000 .. 50,000 samples.

Each n runs in a fresh process on n distinct samples of ../shared/data (P3 templates of p3 and
p3_t0 and gsm8k train, one seeded shuffle), through the surrogate pipeline's parts: MiniLM embeddings, knn
candidates (k per target, chunked), the LM passes (d0 + lm_pairs per target), three surrogate
fits on the growing measured set, predictions for every candidate, and facility location on the
sparse kernel (30 %). The LM part is run for --lm-sample sequences of this pool (d0 and candidate
pairs, the embedded model, this machine's default threads) and extrapolated at that rate to the
n x (1 + lm_pairs) passes; fitting, prediction and selection then run at full size on labels
drawn from a fixed function of the features (the LM labels would take days), which costs the
same time. The dense estimate is n^2 + n passes at the same rate, and 8 n^2 bytes of kernel.

    python benchmarks/bench_scale.py --n 1000 5000 50000

`--write-pool FILE --n N` writes the N samples' records (as they are in ../shared/data, one per
line, sorted by sample id) to FILE instead, for an end-to-end run of the real pipeline on them:

    python benchmarks/bench_scale.py --n 10000 --write-pool ../scale10k/pool.jsonl
    cd ../scale10k && delift-dvc score pool.jsonl --store store --pairs surrogate
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def records(n: int) -> list:
    """n distinct samples of P3 (all templates of p3 and p3_t0) and gsm8k train, drawn in one
    seeded shuffle of all their rows (empty completions skipped), sorted by id."""
    return [sample for sample, _ in drawn(n)]


def drawn(n: int) -> list:
    """(sample, its record's line) of the n samples of `records`, sorted by sample id."""
    import random

    from delift_dvc.data.samples import to_sample

    rows = []
    for path in sorted((SHARED / "p3").glob("*.jsonl")) + sorted((SHARED / "p3_t0").glob("*.jsonl")) + [
            SHARED / "gsm8k" / "train.jsonl"]:
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            rows.append((f"{path.parent.name}/{path.stem}:{k + 1}", line))
    random.Random(0).shuffle(rows)
    samples, seen = [], set()
    for where, line in rows:
        record = json.loads(line)
        if "completion" in record and not record["completion"].removesuffix("<|endoftext|>").strip():
            continue
        sample = to_sample(record, where)
        if sample.id not in seen:
            seen.add(sample.id)
            samples.append((sample, line))
            if len(samples) == n:
                break
    if len(samples) < n:
        raise SystemExit(f"only {len(samples)} distinct samples in ../shared/data")
    return sorted(samples, key=lambda pair: pair[0].id)


def one(n: int, k: int, lm_pairs: int, lm_sample: int) -> dict:
    from delift_dvc.selection.sparse import SparseKernel, maximize_sparse, scale_sparse
    from delift_dvc.utility.embeddings import embed_samples
    from delift_dvc.utility.knn import knn_from_vectors
    from delift_dvc.utility.scorer import Scorer
    from delift_dvc.utility.surrogate import SurrogateConfig, features, fit

    out = {"n": n}
    samples = records(n)
    ids = [s.id for s in samples]
    by_id = {s.id: s for s in samples}
    t = time.perf_counter()
    vectors = embed_samples(ids, by_id, "cpu")
    out["embeddings_s"] = time.perf_counter() - t
    t = time.perf_counter()
    t_all, e_all = knn_from_vectors(ids, ids, vectors, vectors, k)
    out["candidates_s"] = time.perf_counter() - t
    # LM: a sample of this pool's sequences (half d0, half candidate pairs), then the rate
    scorer = Scorer()
    rng = np.random.default_rng(0)
    targets = rng.choice(n, min(n, lm_sample // 2), replace=False)
    picks = rng.choice(len(t_all), lm_sample - len(targets), replace=False)
    pairs = [(int(i), None) for i in targets] + [(int(t_all[p]), int(e_all[p])) for p in picks]
    scorer.score_pairs(samples, samples, pairs[:8])  # load the model and warm up
    t = time.perf_counter()
    scorer.score_pairs(samples, samples, pairs)
    rate = len(pairs) / (time.perf_counter() - t)
    out["lm_rate_per_s"] = rate
    out["lm_passes"] = n * (1 + lm_pairs)
    out["lm_s_extrapolated"] = out["lm_passes"] / rate
    out["dense_lm_s_extrapolated"] = (n * n + n) / rate
    # surrogate fits on n x lm_pairs pairs (three rounds), labels from a fixed function
    config = SurrogateConfig()
    d0 = rng.uniform(0.3, 0.95, n)
    measured = rng.choice(k, (n, lm_pairs), replace=True)
    mt = np.repeat(np.arange(n), lm_pairs)
    me = e_all.reshape(n, k)[np.arange(n)[:, None], measured].ravel()
    keys, first = np.unique(mt * n + me, return_index=True)
    mt, me = mt[first], me[first]
    x = features(vectors, d0, mt, me, config)
    y = 0.25 * d0[mt] * (x[:, 0] + 1.0) + rng.normal(0, 0.03, len(mt))
    t = time.perf_counter()
    for share in (1 / 3, 2 / 3, 1.0):
        m = int(share * len(y))
        model = fit(x[:m], y[:m], keys[:m], config)
    out["fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    values = np.empty(len(t_all))
    for start in range(0, len(t_all), 200_000):
        s = slice(start, start + 200_000)
        values[s] = model.predict(features(vectors, d0, t_all[s], e_all[s], config))
    out["predict_s"] = time.perf_counter() - t
    t = time.perf_counter()
    kernel = scale_sparse([SparseKernel.from_pairs(t_all, e_all, values, (n, n))])[0]
    res = maximize_sparse(kernel, 0.3)
    out["selection_s"] = time.perf_counter() - t
    out["selected"] = len(res.indices)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["dense_kernel_gb"] = 8 * n * n / 1e9
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1000, 5000, 50000])
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--lm-pairs", type=int, default=8)
    ap.add_argument("--lm-sample", type=int, default=400, help="LM sequences actually run per n")
    ap.add_argument("--write-pool", type=Path, help="write the records of the one --n to this file and stop")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.write_pool:
        if len(args.n) != 1:
            raise SystemExit("--write-pool takes one --n")
        args.write_pool.parent.mkdir(parents=True, exist_ok=True)
        lines = [line for _, line in drawn(args.n[0])]
        args.write_pool.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{args.write_pool}: {len(lines):,} records")
        return
    if args.one:
        print(json.dumps(one(args.one, args.k, args.lm_pairs, args.lm_sample)))
        return
    print(f"surrogate mode: k = {args.k} candidates per target, {args.lm_pairs} LM pairs per target, "
          f"LM rate from {args.lm_sample} sequences per n (extrapolated)")
    print("| n | embeddings s | knn s | LM s (extrapolated) | fit s (3 rounds) | predict s | selection s | "
          "peak RSS MB | dense LM (extrapolated) | dense kernel |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.n:
        done = subprocess.run([sys.executable, __file__, "--one", str(n), "--k", str(args.k), "--lm-pairs",
                               str(args.lm_pairs), "--lm-sample", str(args.lm_sample)],
                              capture_output=True, text=True, check=True)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"| {n:,} | {r['embeddings_s']:.0f} | {r['candidates_s']:.1f} | {r['lm_s_extrapolated']:,.0f} "
              f"({r['lm_passes']:,} passes at {r['lm_rate_per_s']:.1f}/s) | {r['fit_s']:.0f} | {r['predict_s']:.0f} | "
              f"{r['selection_s']:.1f} | {r['peak_rss_mb']:,.0f} | {r['dense_lm_s_extrapolated'] / 3600:,.0f} h | "
              f"{r['dense_kernel_gb']:.1f} GB |", flush=True)


if __name__ == "__main__":
    main()
