"""Incremental update vs from-scratch on the demo data, same machine, same run.

Version 1 = the first N1 demo samples; version 2 = version 1 minus 3 samples plus N_NEW samples
from the demo's second version. Times the `score` stage (plan + score + select) of:
  update:  version 2 after version 1 (scores only new x (new + kept) pairs),
  scratch: version 2 in an empty store (scores all pairs),
and prints the time ratio beside the pair-count ratio. Also measures the store's size.

    python benchmarks/bench_update.py --n1 30 --new 10 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from delift_dvc.config import DataParams, Params, ScoringParams
from delift_dvc.stages.ingest import run_ingest
from delift_dvc.kernels.lm import scorer_spec
from delift_dvc.stages.score import run_score
from delift_dvc.store import Store

REPO = Path(__file__).resolve().parents[1]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def project(root: Path, dtype: str) -> Params:
    return Params(
        data=DataParams(train=str(root / "raw" / "train.jsonl"), prepared=str(root / "prepared"),
                        selected=str(root / "selected")),
        scoring=ScoringParams(dtype=dtype),
        store_dir=str(root / "store"), metrics=str(root / "metrics"), plots=str(root / "plots"),
    )


def timed_score(params: Params, records: list[dict]) -> tuple[float, dict]:
    write(Path(params.data.train), records)
    run_ingest(params)
    start = time.perf_counter()
    metrics = run_score(params)
    return time.perf_counter() - start, metrics


def scored_tokens(params: Params, wanted) -> int:
    """Tokens in every stored sequence (d0 and pairs) whose target passes `wanted`."""
    scorer = scorer_spec(params.scoring).build()
    with Store(params.store_dir) as store:
        con = store.connect()
        text = {i: (p, r) for i, p, r in con.execute("SELECT id, prompt, response FROM samples").fetchall()}
        pairs = con.execute("SELECT target, example FROM pairs").fetchall()
        pairs += [(t, None) for (t,) in con.execute("SELECT target FROM baselines").fetchall()]

    def sample(i):
        return type("S", (), {"prompt": text[i][0], "response": text[i][1]})()

    return sum(len(scorer.encode(sample(t), None if e is None else sample(e)).tokens)
               for t, e in pairs if wanted(t))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n1", type=int, default=30)
    ap.add_argument("--new", type=int, default=10)
    ap.add_argument("--dtype", default="bfloat16")
    args = ap.parse_args()
    v1_all = read(REPO / "data" / "raw" / "train.jsonl")
    extra = [r for r in read(REPO / "examples" / "demo_v2" / "train.jsonl") if r not in v1_all]
    v1 = v1_all[: args.n1]
    v2 = v1[3:] + extra[: args.new]
    with tempfile.TemporaryDirectory() as tmp:
        inc = project(Path(tmp) / "inc", args.dtype)
        start = time.perf_counter()
        scorer_spec(inc.scoring).build().model  # fixed start-up paid by every stage run: imports, weights
        startup = time.perf_counter() - start
        t1, m1 = timed_score(inc, v1)
        t_update, m_update = timed_score(inc, v2)
        scratch = project(Path(tmp) / "scratch", args.dtype)
        t_scratch, m_scratch = timed_score(scratch, v2)
        with Store(inc.store_dir) as store:
            stats = store.stats()
            v1_targets = set(store.version_ids(1))
        tokens_s = scored_tokens(scratch, lambda target: True)
        tokens_u = scored_tokens(inc, lambda target: target not in v1_targets)
    pairs_u = m_update["pairs_scored"] + m_update["baselines_scored"]
    pairs_s = m_scratch["pairs_scored"] + m_scratch["baselines_scored"]
    print(f"demo data, dtype {args.dtype}: v1 {len(v1)} samples ({t1:.1f} s), v2 {len(v2)} samples "
          f"({m_update['n_new']} new, {m_update['n_removed']} removed, {m_update['n_kept']} kept)")
    print("| run | sequences scored | tokens scored | stage seconds | of which scoring |")
    print("|---|---|---|---|---|")
    print(f"| v2 from scratch | {pairs_s} | {tokens_s} | {t_scratch:.1f} | {m_scratch['seconds']:.1f} |")
    print(f"| v2 update | {pairs_u} | {tokens_u} | {t_update:.1f} | {m_update['seconds']:.1f} |")
    print(f"| ratio scratch/update | {pairs_s / pairs_u:.2f}x | {tokens_s / tokens_u:.2f}x | "
          f"{t_scratch / t_update:.2f}x | {m_scratch['seconds'] / m_update['seconds']:.2f}x |")
    print(f"| ratio, start-up ({startup:.1f} s) excluded | | | "
          f"{(t_scratch - startup) / (t_update - startup):.2f}x | "
          f"{(m_scratch['seconds'] - startup) / (m_update['seconds'] - startup):.2f}x |")
    per_pair = stats["bytes"] / max(1, stats["n_pairs"] + stats["n_baselines"])
    print(f"store after v1+v2: {stats['n_pairs']} pairs, {stats['bytes']} bytes "
          f"({per_pair:.1f} bytes per stored value, small segments included)")


if __name__ == "__main__":
    main()
