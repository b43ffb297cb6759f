"""Statistics of the comparison: mean and spread over seeds, and paired differences on the same
test samples with a bootstrap 95 % interval (pure numpy, seeded)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["mean_sd", "Paired", "paired_difference", "run_level_difference"]


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """(mean, sample standard deviation with ddof=1; 0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


@dataclass(frozen=True)
class Paired:
    """Mean of a - b over paired samples, its bootstrap 95 % interval, and the verdict."""

    mean: float
    low: float
    high: float
    n: int
    higher_is_better: bool = True  # False for losses such as NLL

    @property
    def verdict(self) -> str:
        """"better" / "worse" (for a) only where the whole interval says so, else "no difference"."""
        above, below = ("better", "worse") if self.higher_is_better else ("worse", "better")
        if self.low > 0:
            return above
        if self.high < 0:
            return below
        return "no difference"


def paired_difference(a: np.ndarray, b: np.ndarray, resamples: int = 2000, seed: int = 0,
                      higher_is_better: bool = True) -> Paired:
    """a, b: per-sample scores [n] on the same test samples (e.g. each averaged over seeds).
    The percentile bootstrap over samples of mean(a - b); `higher_is_better` False for a loss."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired_difference: need two equal non-empty vectors, got {a.shape} and {b.shape}")
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (resamples, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return Paired(float(diff.mean()), float(low), float(high), len(diff), higher_is_better)


def run_level_difference(a: np.ndarray, b: np.ndarray, higher_is_better: bool = True) -> Paired:
    """a, b: one run-level score per seed [n] (the same seeds, in the same order). The mean of
    a - b over the seeds with a Student t 95 % interval (n - 1 degrees of freedom); with one
    seed the interval is the single difference itself and says nothing (n = 1)."""
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"run_level_difference: need two equal non-empty vectors, got {a.shape} and {b.shape}")
    diff = a - b
    mean = float(diff.mean())
    if len(diff) == 1:
        return Paired(mean, -math.inf, math.inf, 1, higher_is_better)
    half = float(stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff)))
    return Paired(mean, mean - half, mean + half, len(diff), higher_is_better)
