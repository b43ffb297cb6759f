"""benchmarks/d0_gate.py's statistics against their definitions."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import d0_gate  # noqa: E402


def test_auc_is_the_share_of_positive_negative_pairs_ranked_right():
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=40), 1)  # rounded: ties count half
    positive = rng.random(40) < 0.3
    pairs = [(p, n) for p in scores[positive] for n in scores[~positive]]
    brute = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)
    assert abs(d0_gate.auc(scores, positive) - brute) < 1e-12
    assert np.isnan(d0_gate.auc(scores, np.zeros(40, bool)))


def test_z_is_taken_within_each_stratum():
    values = np.array([1.0, 3.0, 10.0, 10.0, 7.0])
    z = d0_gate.within_stratum_z(values, ["a", "a", "b", "b", "c"])
    np.testing.assert_allclose(z, [-1.0, 1.0, 0.0, 0.0, 0.0])
