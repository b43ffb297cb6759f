"""Scoring throughput: local executor vs a Ray actor pool, on the same real P3 block of work.

Each setting scores the same values into a fresh store: the d0 of --samples P3 samples and their
pairs with the first --examples samples as in-context examples (samples x examples pairs), in
blocks of --segment-pairs. It prints values/s, the ratio to the first setting, Ray's start-up
(ray.init) seconds, and whether every setting stored bit-identical values.

On this 2-core CPU (Ray must run in a loopback-only network namespace here):

    unshare -n sh -c 'ip link set lo up && python benchmarks/bench_scaleout.py --samples 200'

On a machine with GPUs (one GPU per Ray actor; pairs/s per worker and the scaling 1 -> N):

    python benchmarks/bench_scaleout.py --device cuda --workers 4 --samples 2000 --examples 8
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "p3"


def p3_samples(n: int, seed: int = 0) -> list:
    from bench_sparse import shuffled_unique  # after the thread settings of main()

    rows = []
    for path in sorted(SHARED.glob("*.jsonl")):
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines()[:40]):
            record = json.loads(line)
            if record["completion"].removesuffix("<|endoftext|>").strip() and len(record["prompt"]) < 1500:
                rows.append((f"{path.stem}:{k + 1}", record))
    return shuffled_unique(rows, n, seed)


def run(samples, examples: int, segment_pairs: int, executor_kind: str, workers: int, threads: int,
        device: str, dtype: str) -> dict:
    from delift_dvc.executors.local import LocalExecutor
    from delift_dvc.kernels.driver import score_missing
    from delift_dvc.store import Store
    from delift_dvc.utility.scorer import ScorerSpec

    spec = ScorerSpec(device=device, dtype=dtype, threads=threads)
    scorer = spec.build()
    by_id = {s.id: s for s in samples}
    ids = [s.id for s in samples]
    startup = 0.0
    if executor_kind == "ray":
        from delift_dvc.executors.ray import RayExecutor

        executor = RayExecutor(workers, threads=threads, use_gpu=device == "cuda")
        start = time.perf_counter()
        executor.start()  # ray.init, timed on its own
        startup = time.perf_counter() - start
    else:
        executor = LocalExecutor()
    with tempfile.TemporaryDirectory() as tmp:
        with Store(Path(tmp) / "store", write=True) as store:
            start = time.perf_counter()
            counts = score_missing(store, scorer, by_id, ids, ids, ids[:examples], segment_pairs=segment_pairs,
                                   executor=executor, spec=spec)
            seconds = time.perf_counter() - start
            executor.close()
            con = store.connect()
            values = np.array([v for (v,) in con.execute(
                "SELECT d FROM pairs ORDER BY target, example").fetchall()]
                + [v for (v,) in con.execute("SELECT d0 FROM baselines ORDER BY target").fetchall()])
    n = counts.pairs_scored + counts.baselines_scored
    return {"values": values, "n": n, "seconds": seconds, "startup": startup}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--examples", type=int, default=2)
    ap.add_argument("--segment-pairs", type=int, default=100)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    samples = p3_samples(args.samples)
    if args.device == "cpu":
        settings = [("local, 2 threads", "local", 1, 2), ("local, 1 thread", "local", 1, 1),
                    (f"ray, {args.workers} workers x 1 thread", "ray", args.workers, 1)]
    else:
        settings = [("local, 1 GPU", "local", 1, 1)] + [
            (f"ray, {w} workers x 1 GPU", "ray", w, 1) for w in sorted({1, *range(2, args.workers + 1, 2), args.workers})]
    print(f"{len(samples)} P3 samples x {args.examples} examples + d0 = "
          f"{len(samples) * (args.examples + 1)} values, blocks of {args.segment_pairs}, "
          f"device {args.device}, dtype {args.dtype}")
    print("| setting | values/s | vs first | per worker | wall s | Ray start-up s | values vs first | "
          "values vs first with as many threads |")
    print("|---|---|---|---|---|---|---|---|")
    first, by_threads = None, {}
    for name, kind, workers, threads in settings:
        result = run(samples, args.examples, args.segment_pairs, kind, workers, threads, args.device, args.dtype)
        rate = result["n"] / result["seconds"]
        first = first or result | {"rate": rate}
        twin = by_threads.setdefault(threads, result)
        print(f"| {name} | {rate:.2f} | {rate / first['rate']:.2f}x | {rate / workers:.2f} | "
              f"{result['seconds']:.1f} | {result['startup']:.1f} | {compare(result, first)} | "
              f"{compare(result, twin)} |", flush=True)


def compare(a: dict, b: dict) -> str:
    if np.array_equal(a["values"], b["values"]):
        return "bit-identical"
    return f"max diff {float(np.max(np.abs(a['values'] - b['values']))):.1e}"


if __name__ == "__main__":
    main()
