"""Benchmark: our exact FL lazy greedy vs submodlib-py's LazyGreedy on synthetic kernels.

    python benchmarks/bench_selection.py [--sizes 1000 3000 10000] [--seed 0] [--dim 16]

Per size n: a seeded float32 similarity kernel [n, n] from random unit embeddings in
``--dim`` dimensions, K = (1 + cos) / 2 clipped to [0, 1]; budget k = int(0.3 n).  Times are
wall-clock seconds; submodlib's column counts its kernel copy (init) plus maximize, the
ratio uses its maximize time only.  rel_obj_diff = |f_ours - f_submodlib| / f_ours.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from delift_dvc.selection.submodular import maximize  # noqa: E402


def make_kernel(n: int, seed: int, dim: int) -> np.ndarray:
    """Float32 C-order [n, n] kernel in [0, 1]: (1 + cosine) / 2 of random embeddings."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    k = x @ x.T
    k += 1.0
    k *= 0.5
    np.clip(k, 0.0, 1.0, out=k)
    return k


def run_submodlib(k: np.ndarray, budget: int) -> tuple[float, float, float] | None:
    """(init seconds, maximize seconds, objective) or None when submodlib is missing."""
    try:
        with warnings.catch_warnings():  # submodlib imports a deprecated scipy namespace
            warnings.simplefilter("ignore", DeprecationWarning)
            from submodlib import FacilityLocationFunction
    except ImportError:
        return None
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        f = FacilityLocationFunction(n=k.shape[0], mode="dense", sijs=k, separate_rep=False)
    t1 = time.perf_counter()
    res = f.maximize(budget, optimizer="LazyGreedy", stopIfZeroGain=False,
                     stopIfNegativeGain=False, verbose=False, show_progress=False)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, float(sum(g for _, g in res))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000, 10000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dim", type=int, default=16, help="embedding dimension of the kernel")
    ap.add_argument("--fraction", type=float, default=0.3, help="budget as a fraction of n")
    ap.add_argument("--no-submodlib", action="store_true", help="time ours only")
    args = ap.parse_args()

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numpy "
          f"{np.__version__}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"dim={args.dim}, seed={args.seed}")
    head = ("n", "k", "ours_s", "submodlib_s", "submodlib+init_s", "speedup", "rel_obj_diff")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n in args.sizes:
        k = make_kernel(n, args.seed, args.dim)
        budget = int(args.fraction * n)
        t0 = time.perf_counter()
        ours = maximize(k, budget, "fl")
        t_ours = time.perf_counter() - t0
        sub = None if args.no_submodlib else run_submodlib(k, budget)
        if sub is None:
            row = (n, budget, f"{t_ours:.3f}", "-", "-", "-", "-")
        else:
            t_init, t_max, obj = sub
            rel = abs(ours.objective - obj) / max(abs(ours.objective), 1e-300)
            row = (n, budget, f"{t_ours:.3f}", f"{t_max:.3f}", f"{t_init + t_max:.3f}",
                   f"{t_max / t_ours:.1f}x", f"{rel:.1e}")
        print("| " + " | ".join(str(c) for c in row) + " |", flush=True)
        del k


if __name__ == "__main__":
    main()
