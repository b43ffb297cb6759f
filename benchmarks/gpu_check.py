"""GPU check of the scorer: pairs/s against the reference algorithm on the same GPU, a
`batch_tokens` sweep with peak GPU memory, and the values' agreement, in one table.

The GPU machine has torch and transformers only (no DuckDB, DVC, Ray or gguf, no network) and
receives at most 64 MiB of working tree, so the embedded model's weights cannot travel. Throughput
depends on shapes, not weights: the check builds random-weight models with SmolLM2-135M's and
SmolLM2-1.7B's shapes from a seed, with the real tokenizer, and scores real P3 samples. Both come
from `--prepare`, run here where the embedded model and ../shared/data are:

    python benchmarks/gpu_check.py --prepare                 # writes benchmarks/gpu_assets/ (ignored)
    benchmarks/gpu_check.sh                                   # on the GPU, carrying benchmarks/gpu_assets
    benchmarks/gpu_check.sh --dry-run                         # the same code paths on the CPU, tiny model

Reference algorithm (as in benchmarks/bench_scoring.py): one full forward per (target, example)
pair, full-vocabulary softmax at every position, fixed batches of 32 in length order. Scorer rows:
delift_dvc's Scorer with token-budget batches and the output layer at scored positions only,
without and with prefix KV reuse, then a batch_tokens sweep (prefix reuse) that ends with "auto".
Rows past `--budget-s` seconds are skipped and said to be skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # delift_dvc from this working tree: nothing is installed there
sys.path.insert(0, str(ROOT / "benchmarks"))
ASSETS = ROOT / "benchmarks" / "gpu_assets"
SHARED_P3 = ROOT.parent / "shared" / "data" / "p3"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
# the shapes of the public SmolLM2 configurations (HuggingFaceTB/SmolLM2-135M-Instruct, -1.7B-Instruct)
SHAPES = {
    "135M": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                 num_key_value_heads=3, head_dim=64),
    "1.7B": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=32,
                 num_key_value_heads=32, head_dim=64),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16),
}
COLUMNS = ("model", "attention", "scorer", "batch_tokens", "pairs", "pairs/s", "vs reference",
           "peak GPU MiB", "max abs diff vs reference")


def prepare(out: Path, per_template: int) -> None:
    """Copy the embedded model's tokenizer files and P3 samples (the first `per_template` of
    every template but trec, as prompt/response) into `out`."""
    from delift_dvc.data.samples import to_sample
    from delift_dvc.utility import models

    if not SHARED_P3.is_dir():
        sys.exit(f"error: {SHARED_P3}: the shared P3 data is absent (--prepare reads it)")
    folder = Path(models.dequantised_folder(models.resolve_model(None)))
    out.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        (out / name).write_bytes((folder / name).read_bytes())
    lines = []
    for path in sorted(p for p in SHARED_P3.glob("*.jsonl") if not p.name.startswith("trec")):
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines()[:per_template]):
            s = to_sample(json.loads(line), f"{path.name}:{k + 1}")
            lines.append(json.dumps({"prompt": s.prompt, "response": s.response}, ensure_ascii=False))
    (out / "samples.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out}: {len(lines)} samples, tokenizer, {size / 2**20:.1f} MiB in all")


class Text:
    def __init__(self, prompt: str, response: str) -> None:
        self.prompt, self.response = prompt, response


def load_samples(assets: Path, n: int, seed: int) -> list[Text]:
    path = assets / "samples.jsonl"
    if not path.is_file():
        sys.exit(f"error: {path} is absent: run `python benchmarks/gpu_check.py --prepare` where the "
                 "embedded model and ../shared/data are, and carry benchmarks/gpu_assets")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    random.Random(seed).shuffle(rows)
    return [Text(r["prompt"], r["response"]) for r in rows[:n]]


def random_model(shape: str, assets: Path, folder: Path, device: str, dtype, seed: int) -> None:
    """Save a random-weight Llama with `shape`'s sizes and the real tokenizer into `folder`."""
    import torch
    import transformers
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    transformers.utils.logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(assets)
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=8192, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.eos_token_id, **SHAPES[shape])
    torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model


def peak_mib(device: str) -> str:
    import torch

    if not device.startswith("cuda"):
        return "n/a"
    return f"{torch.cuda.max_memory_allocated() / 2**20:.0f}"


def reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def check_model(shape: str, args, samples: list[Text], deadline: float, emit) -> None:
    """All rows of one model: reference, scorer plain, scorer prefix reuse, batch_tokens sweep."""
    import torch

    from bench_scoring import reference_style
    from delift_dvc.utility.scorer import Scorer

    n_targets, n_examples = args.pairs[shape] if shape in args.pairs else (len(samples), 4)
    pairs = [(i, j) for j in range(n_examples) for i in range(n_targets)]
    with tempfile.TemporaryDirectory(prefix=f"gpu-check-{shape}-") as tmp:
        folder = Path(tmp) / "model"
        random_model(shape, args.assets, folder, args.device, getattr(torch, args.dtype), args.seed)
        scorer = Scorer(str(folder), dtype=args.dtype, device=args.device, prefix_reuse=False)
        scorer.score_pairs(samples, samples, pairs[:8])  # load and warm up
        attention = getattr(scorer.model.config, "_attn_implementation", "?")
        base = {"model": f"{shape} random", "attention": attention, "pairs": len(pairs)}

        reset_peak(args.device)
        start = time.perf_counter()
        reference = reference_style(scorer, samples, pairs)
        t_ref = time.perf_counter() - start
        emit({**base, "scorer": "reference", "batch_tokens": "32 seqs", "pairs/s": len(pairs) / t_ref,
              "vs reference": 1.0, "peak GPU MiB": peak_mib(args.device), "max abs diff vs reference": 0.0})

        runs = [("plain", False, scorer.batch_tokens), ("prefix reuse", True, scorer.batch_tokens)]
        runs += [("prefix reuse", True, size) for size in args.sweep] + [("prefix reuse", True, "auto")]
        for label, reuse, size in runs:
            if time.perf_counter() > deadline:
                emit({**base, "scorer": f"{label} (skipped: past --budget-s)", "batch_tokens": size})
                continue
            run = Scorer(str(folder), dtype=args.dtype, device=args.device, prefix_reuse=reuse,
                         batch_tokens=size)
            run._model, run._layout = scorer.model, scorer.layout  # the loaded model, shared
            if size == "auto":
                run.batch_tokens = run.auto_batch_tokens()
            reset_peak(args.device)
            start = time.perf_counter()
            values = run.score_pairs(samples, samples, pairs)
            seconds = time.perf_counter() - start
            shown = f"auto = {run.batch_tokens}" if size == "auto" else size
            if run.stats["oom_splits"]:
                shown = f"{shown} ({run.stats['oom_splits']} OOM splits)"
            emit({**base, "scorer": label, "batch_tokens": shown, "pairs/s": len(pairs) / seconds,
                  "vs reference": t_ref / seconds, "peak GPU MiB": peak_mib(args.device),
                  "max abs diff vs reference": float(np.max(np.abs(values - reference)))})
        del scorer


def cell(row: dict, column: str) -> str:
    value = row.get(column, "")
    if column == "pairs/s" and isinstance(value, float):
        return f"{value:.1f}"
    if column == "vs reference" and isinstance(value, float):
        return f"{value:.2f}x"
    if column == "max abs diff vs reference" and isinstance(value, float):
        return f"{value:.2e}"
    return str(value)


def parse_pairs(text: str) -> dict[str, tuple[int, int]]:
    """"135M=96x96,1.7B=48x48" -> {"135M": (96, 96), "1.7B": (48, 48)} (targets x examples)."""
    out = {}
    for part in filter(None, text.split(",")):
        name, _, size = part.partition("=")
        t, _, e = size.partition("x")
        out[name.strip()] = (int(t), int(e))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepare", action="store_true", help="write the assets (tokenizer, P3 samples) and stop")
    ap.add_argument("--dry-run", action="store_true",
                    help="on the CPU with a tiny random model, float32, a few pairs: the table's shape")
    ap.add_argument("--assets", type=Path, default=ASSETS)
    ap.add_argument("--models", default="135M,1.7B", help="comma-separated: 135M, 1.7B, tiny")
    ap.add_argument("--pairs", type=parse_pairs, default=parse_pairs("135M=96x96,1.7B=64x32"),
                    help="targets x examples per model, e.g. 135M=96x96,1.7B=64x32")
    ap.add_argument("--sweep", default="4096,16384,65536", help="batch_tokens values of the sweep")
    ap.add_argument("--dtype", default="bfloat16")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--budget-s", type=float, default=420.0, help="skip rows that would start after this")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the rows here")
    ap.add_argument("--per-template", type=int, default=20, help="--prepare: samples per P3 template")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    if args.prepare:
        prepare(args.assets, args.per_template)
        return
    if args.dry_run:
        args.device, args.dtype, args.models = "cpu", "float32", "tiny"
        args.pairs, args.sweep, args.budget_s = {"tiny": (6, 3)}, "256,1024", 600.0
    args.sweep = [int(s) for s in args.sweep.split(",") if s]
    import torch
    import transformers

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("error: --device cuda: no CUDA device is visible (use --dry-run to check on a CPU)")
    where = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"cpu, {torch.get_num_threads()} threads"
    print(f"gpu_check: {where}; torch {torch.__version__}, transformers {transformers.__version__}, "
          f"dtype {args.dtype}, seed {args.seed}", flush=True)
    n_samples = max(max(t, e) for t, e in args.pairs.values())
    samples = load_samples(args.assets, n_samples, args.seed)
    rows: list[dict] = []
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS), flush=True)

    def emit(row: dict) -> None:
        rows.append(row)
        print("| " + " | ".join(cell(row, c) for c in COLUMNS) + " |", flush=True)

    deadline = time.perf_counter() + args.budget_s
    for shape in args.models.split(","):
        if shape not in SHAPES:
            sys.exit(f"error: --models {shape!r}: expected one of {', '.join(SHAPES)}")
        check_model(shape, args, samples, deadline, emit)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
