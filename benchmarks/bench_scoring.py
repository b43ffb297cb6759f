"""Scorer throughput on real P3 samples with the embedded model, against a reference-style baseline.

baseline: what the DELIFT reference does: one full forward per (target, example) pair with
full-vocabulary logits at every position, fixed batches of 32 in length order.
scorer:   delift_dvc.Scorer (token-budget batches, output layer only at the scored positions),
          without and with prefix KV reuse (in half precision both ways: one example's targets
          per forward, the path before packing, and many examples packed into one forward).

All score the same pairs; the table shows pairs/s, ratios to the baseline, the largest difference,
the padding share, and the achieved FLOP/s as a fraction of two peaks measured in the same run and
dtype: a 2048^3 matmul, and the model's own linear shapes (one decoder layer's projections) at the
mean tokens per forward the scorer fed. `--profile` adds where each scorer's time went (matmul,
attention, element-wise and the rest, from torch.profiler).

    python benchmarks/bench_scoring.py --samples 64 --pairs 256 --dtypes float32 bfloat16
    python benchmarks/bench_scoring.py --samples 200 --block-examples 4   # 200 targets x 4 examples
    python benchmarks/bench_scoring.py --samples 10 --block-examples 10 --dtypes bfloat16 --profile
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


def timed_flops(step, flops: float, repeat: int = 5) -> float:
    """FLOP/s of `step()` (which does `flops` FLOPs), after one warm-up call."""
    with torch.inference_mode():
        step()
        start = time.perf_counter()
        for _ in range(repeat):
            step()
        return flops * repeat / (time.perf_counter() - start)


def matmul_flops(dtype: torch.dtype, n: int = 2048) -> float:
    """Measured dense matmul FLOP/s on this machine in `dtype` (the physical limit here)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return timed_flops(lambda: torch.matmul(a, b), 2 * n**3)


def layer_shape_flops(model, dtype: torch.dtype, tokens: int) -> float:
    """Measured FLOP/s of one decoder layer's linear projections (the model's own shapes, e.g.
    576 x 1536 for SmolLM2-135M) applied to `tokens` rows in `dtype`: the peak a batch of that
    many tokens can reach in the layers that hold nearly all of the scorer's FLOPs."""
    layer = model.base_model.layers[0]
    shapes = [m.weight.shape for m in layer.modules() if isinstance(m, torch.nn.Linear)]
    weights = [torch.randn(out, inp).to(dtype) for out, inp in shapes]
    inputs = {inp: torch.randn(tokens, inp).to(dtype) for _, inp in shapes}

    def step() -> None:
        for w in weights:
            torch.nn.functional.linear(inputs[w.shape[1]], w)

    return timed_flops(step, 2 * tokens * sum(w.numel() for w in weights))


KINDS = (("matmul", ("aten::mm", "aten::bmm", "aten::addmm")),
         ("attention", ("aten::_scaled_dot_product", "aten::_softmax")),
         ("element-wise", ("aten::mul", "aten::add", "aten::silu", "aten::pow", "aten::rsqrt",
                           "aten::mean", "aten::neg", "aten::where", "aten::copy_", "aten::cat",
                           "aten::div", "aten::sub", "aten::exp", "aten::log_softmax", "aten::_log_softmax")))


def time_shares(profiler) -> dict[str, float]:
    """Share of self CPU time per kind of operator, from a finished torch.profiler run."""
    totals = {name: 0.0 for name, _ in KINDS} | {"other": 0.0}
    for event in profiler.key_averages():
        kind = next((name for name, prefixes in KINDS if event.key.startswith(prefixes)), "other")
        totals[kind] += event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return {kind: value / whole for kind, value in totals.items()}


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


def profile_scorer(scorer: Scorer, samples, pairs) -> dict[str, float]:
    """One more scoring run of the same pairs under torch.profiler: time shares per kind."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        scorer.score_pairs(samples, samples, pairs)
    return time_shares(profiler)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--pairs", type=int, default=256, help="random (target, example) pairs to time")
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--block-examples", type=int, default=0,
                    help="score all samples x the first N samples (a block) instead of random pairs")
    ap.add_argument("--profile", action="store_true",
                    help="also print where each scorer's time went (one more run under torch.profiler)")
    args = ap.parse_args()
    samples = p3_samples(args.samples, args.seed)
    rng = random.Random(args.seed)
    if args.block_examples:
        pairs = [(i, j) for j in range(args.block_examples) for i in range(len(samples))]
    else:
        pairs = [(rng.randrange(len(samples)), rng.randrange(len(samples))) for _ in range(args.pairs)]
    print(f"{len(samples)} P3 samples, {len(pairs)} pairs, torch threads {torch.get_num_threads()}")
    print("| dtype | scorer | pairs/s | vs baseline | max abs diff vs baseline | padding | "
          "FLOP/s / matmul FLOP/s | tokens per forward | / layer-shape peak at those tokens |")
    print("|---|---|---|---|---|---|---|---|---|")
    shares, models = [], {}
    for dtype in args.dtypes:
        peak = matmul_flops(getattr(torch, dtype))
        scorer = Scorer(dtype=dtype, prefix_reuse=False)
        scorer.score_pairs(samples, samples, pairs[:4])  # load and warm up
        models[dtype] = scorer.model
        t = time.perf_counter()
        ref = reference_style(scorer, samples, pairs)
        t_ref = time.perf_counter() - t
        print(f"| {dtype} | baseline | {len(pairs) / t_ref:.2f} | 1.00x | 0 | | | | |", flush=True)
        scored = sum(scorer.encode(samples[i], samples[j]).n_scored for i, j in pairs)
        runs = [("plain", False, False), ("prefix reuse", True, scorer.pack_examples)]
        if scorer.pack_examples:  # half precision: also the one-example-per-forward path (the "before")
            runs.insert(1, ("prefix reuse, one example per forward", True, False))
        for label, reuse, pack in runs:
            scorer.prefix_reuse, scorer.pack_examples = reuse, pack
            ours, t_ours, stats = run_scorer(scorer, samples, pairs)
            pad = stats["padded_tokens"] / max(1, stats["tokens"] + stats["padded_tokens"])
            fed = stats["tokens"] + stats["padded_tokens"]
            achieved = model_flops(scorer, fed, scored) / t_ours
            per_forward = round(fed / max(1, stats["forwards"]))
            shape_peak = layer_shape_flops(scorer.model, getattr(torch, dtype), per_forward)
            print(f"| {dtype} | {label} | {len(pairs) / t_ours:.2f} | {t_ref / t_ours:.2f}x | "
                  f"{np.max(np.abs(ref - ours)):.2e} | {100 * pad:.1f}% | "
                  f"{achieved / 1e9:.1f} / {peak / 1e9:.1f} GFLOP/s = {achieved / peak:.2f} | "
                  f"{per_forward} | {shape_peak / 1e9:.1f} GFLOP/s: {achieved / shape_peak:.2f} |", flush=True)
            if args.profile:
                shares.append((dtype, label, profile_scorer(scorer, samples, pairs)))
    if shares:
        kinds = list(shares[0][2])
        print("\n| dtype | scorer | " + " | ".join(kinds) + " |")
        print("|---|---|" + "---|" * len(kinds))
        for dtype, label, share in shares:
            print(f"| {dtype} | {label} | " + " | ".join(f"{100 * share[k]:.0f}%" for k in kinds) + " |")
    print("\nlayer-shape peak (GFLOP/s) by tokens per forward:")
    for dtype, model in models.items():
        row = [f"{t}: {layer_shape_flops(model, getattr(torch, dtype), t) / 1e9:.0f}"
               for t in (64, 128, 256, 512, 1024, 2048, 4096)]
        print(f"  {dtype}: " + ", ".join(row), flush=True)


if __name__ == "__main__":
    main()
