"""Scoring throughput with and without a competing CPU-bound process, by torch thread setting.

On a shared 2-core machine torch's default (one OpenMP thread per core, idle threads spinning)
collapses when another process takes a core: the spinning threads fight the competitor for it.
This runs the same scoring job (real P3 samples, the embedded model) in a fresh process per
setting, once on a quiet machine and once beside a busy-loop process, and prints pairs/s and the
slowdown. Each setting is a fresh process because OMP_WAIT_POLICY is read when torch loads.

    python benchmarks/bench_threads.py --pairs 96 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "p3"
TEMPLATES = ["glue_mrpc_paraphrase", "common_gen_Given_concepts_type_1", "social_i_qa_Generate_answer",
             "rotten_tomatoes_Reviewer_Enjoyment", "app_reviews_convert_to_star_rating",
             "glue_qqp_duplicate_or_not", "quarel_choose_between", "gigaword_make_a_title"]
SETTINGS = {
    "torch default (2 threads)": {"threads": 0, "env": {}},
    "2 threads, short spin (GOMP_SPINCOUNT=10000)": {"threads": 2, "env": {"GOMP_SPINCOUNT": "10000"}},
    "2 threads, idle threads sleep (PASSIVE)": {"threads": 2, "env": {"OMP_WAIT_POLICY": "PASSIVE"}},
    "1 thread": {"threads": 1, "env": {"OMP_WAIT_POLICY": "PASSIVE"}},
}

JOB = r"""
import json, sys, time
from delift_dvc.data.samples import to_sample
from delift_dvc.utility.scorer import Scorer
records, n_pairs, threads = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
samples = [to_sample(r, f"p3:{k}") for k, r in enumerate(records)]
scorer = Scorer(threads=threads or None)
pairs = [(i, (i * 7 + 3) % len(samples)) for i in range(len(samples))][:n_pairs]
scorer.score_pairs(samples, samples, pairs[:4])  # load and warm up
start = time.perf_counter()
scorer.score_pairs(samples, samples, pairs)
print(json.dumps({"seconds": time.perf_counter() - start, "pairs": len(pairs)}))
"""


def records(n: int) -> list[dict]:
    per = -(-n // len(TEMPLATES))
    out = []
    for name in TEMPLATES:
        rows = [json.loads(line) for line in open(SHARED / f"{name}.jsonl", encoding="utf-8")]
        out += [r for r in rows if r["completion"].removesuffix("<|endoftext|>").strip()][:per]
    return out[:n]


def run(setting: dict, data: list[dict], n_pairs: int) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(setting["env"], HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-c", JOB, json.dumps(data), str(n_pairs), str(setting["threads"])],
                          capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["pairs"] / result["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--repeat", type=int, default=3, help="rounds over all settings; medians are shown")
    args = parser.parse_args()
    data = records(args.pairs)
    quiet: dict[str, list[float]] = {name: [] for name in SETTINGS}
    busy: dict[str, list[float]] = {name: [] for name in SETTINGS}
    for _ in range(args.repeat):  # round-robin, so drift of the machine hits every setting alike
        for name, setting in SETTINGS.items():
            quiet[name].append(run(setting, data, args.pairs))
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                time.sleep(1.0)
                busy[name].append(run(setting, data, args.pairs))
            finally:
                hog.kill()
                hog.wait()
    rows = [(name, statistics.median(quiet[name]), statistics.median(busy[name])) for name in SETTINGS]
    base = rows[0][1]
    print(f"{'setting':<46} {'quiet pairs/s':>14} {'busy pairs/s':>13} {'busy/quiet':>11} {'quiet vs default':>17}")
    for name, quiet, busy in rows:
        print(f"{name:<46} {quiet:>14.2f} {busy:>13.2f} {busy / quiet:>11.2f} {quiet / base:>17.2f}")


if __name__ == "__main__":
    main()
