"""Scorer throughput on real P3 samples with the embedded model, against a reference-style baseline.

baseline: what the DELIFT reference does: one full forward per (target, example) pair with
full-vocabulary logits at every position, fixed batches of 32 in length order.
scorer:   delift_dvc.Scorer (token-budget batches, output layer only at the scored positions),
          without and with prefix KV reuse.

All score the same pairs; the table shows pairs/s, ratios to the baseline, the largest difference,
the padding share, and the fraction of the machine's measured matmul FLOP/s in that dtype.

    python benchmarks/bench_scoring.py --samples 64 --pairs 256 --dtypes float32 bfloat16
    python benchmarks/bench_scoring.py --samples 200 --block-examples 4   # 200 targets x 4 examples
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from delift_dvc.data.samples import to_sample
from delift_dvc.utility.scorer import Scorer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "p3"


def p3_samples(n: int, seed: int) -> list:
    files = sorted(p for p in SHARED.glob("*.jsonl") if not p.name.startswith("trec"))
    rows = []
    for path in files:
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines()[:20]):
            rows.append((f"{path.name}:{k + 1}", json.loads(line)))
    random.Random(seed).shuffle(rows)
    return [to_sample(r, where) for where, r in rows[:n]]


def reference_style(scorer: Scorer, samples, pairs, batch_size: int = 32) -> np.ndarray:
    """One full forward per pair, full logits everywhere, fixed-size batches in length order."""
    encoded = scorer.encode_pairs(samples, samples, pairs)
    order = sorted(range(len(pairs)), key=lambda k: len(encoded[k].tokens))
    out = np.empty(len(pairs))
    eos = scorer.layout.eos
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        width = max(len(encoded[k].tokens) for k in batch)
        ids = torch.full((len(batch), width), eos)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, k in enumerate(batch):
            ids[r, : len(encoded[k].tokens)] = torch.tensor(encoded[k].tokens)
            mask[r, : len(encoded[k].tokens)] = 1
        with torch.inference_mode():
            logits = scorer.model(input_ids=ids.to(scorer.device), attention_mask=mask.to(scorer.device)).logits
            probs = torch.softmax(logits.float(), -1).cpu()
        for r, k in enumerate(batch):
            e = encoded[k]
            n = len(e.tokens)
            pos = torch.arange(n - e.n_scored - 1, n - 1)
            p = probs[r, pos, torch.tensor(e.tokens[-e.n_scored:])].double()
            out[k] = float(torch.sqrt(((1 - p) ** 2).mean()))
    return out


def matmul_flops(dtype: torch.dtype, n: int = 2048, repeat: int = 5) -> float:
    """Measured dense matmul FLOP/s on this machine in `dtype` (the physical limit here)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.matmul(a, b)
    start = time.perf_counter()
    for _ in range(repeat):
        torch.matmul(a, b)
    return 2 * n**3 * repeat / (time.perf_counter() - start)


def model_flops(scorer: Scorer, tokens: int, scored: int) -> float:
    """Forward FLOPs: 2 x (non-embedding parameters) per token fed, plus the output layer at
    the scored positions (attention score FLOPs left out: a lower bound)."""
    model = scorer.model
    embed = model.get_input_embeddings().weight.numel()
    body = sum(p.numel() for p in model.base_model.parameters()) - embed
    return 2.0 * body * tokens + 2.0 * embed * scored


def run_scorer(scorer: Scorer, samples, pairs):
    scorer.stats = {k: 0 for k in scorer.stats}
    start = time.perf_counter()
    values = scorer.score_pairs(samples, samples, pairs)
    return values, time.perf_counter() - start, dict(scorer.stats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=256, help="random (target, example) pairs to time")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--block-examples", type=int, default=0,
                    help="score all samples x the first N samples (a block) instead of random pairs")
    args = ap.parse_args()
    samples = p3_samples(args.samples, args.seed)
    rng = random.Random(args.seed)
    if args.block_examples:
        pairs = [(i, j) for j in range(args.block_examples) for i in range(len(samples))]
    else:
        pairs = [(rng.randrange(len(samples)), rng.randrange(len(samples))) for _ in range(args.pairs)]
    print(f"{len(samples)} P3 samples, {len(pairs)} pairs, torch threads {torch.get_num_threads()}")
    print("| dtype | scorer | pairs/s | vs baseline | max abs diff vs baseline | padding | FLOP/s / matmul FLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for dtype in args.dtypes:
        peak = matmul_flops(getattr(torch, dtype))
        scorer = Scorer(dtype=dtype, prefix_reuse=False)
        scorer.score_pairs(samples, samples, pairs[:4])  # load and warm up
        t = time.perf_counter()
        ref = reference_style(scorer, samples, pairs)
        t_ref = time.perf_counter() - t
        print(f"| {dtype} | baseline | {len(pairs) / t_ref:.2f} | 1.00x | 0 | | |", flush=True)
        scored = sum(scorer.encode(samples[i], samples[j]).n_scored for i, j in pairs)
        for label, reuse in (("plain", False), ("prefix reuse", True)):
            scorer.prefix_reuse = reuse
            ours, t_ours, stats = run_scorer(scorer, samples, pairs)
            pad = stats["padded_tokens"] / max(1, stats["tokens"] + stats["padded_tokens"])
            achieved = model_flops(scorer, stats["tokens"] + stats["padded_tokens"], scored) / t_ours
            print(f"| {dtype} | {label} | {len(pairs) / t_ours:.2f} | {t_ref / t_ours:.2f}x | "
                  f"{np.max(np.abs(ref - ours)):.2e} | {100 * pad:.1f}% | "
                  f"{achieved / 1e9:.1f} / {peak / 1e9:.1f} GFLOP/s = {achieved / peak:.2f} |", flush=True)


if __name__ == "__main__":
    main()
