"""benchmarks/within_format.py's statistics against their definitions, by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import within_format  # noqa: E402


def test_label_mix_distance_and_minority_share_by_hand():
    pool = ["yes"] * 6 + ["no"] * 2  # 0.75 / 0.25
    picked = ["no", "no", "yes", "yes"]  # 0.5 / 0.5
    assert within_format.label_tv(picked, pool) == pytest.approx(0.25)
    assert within_format.label_tv(pool, pool) == 0.0
    assert within_format.minority_share(picked, pool) == 0.5  # "no" is the minority label


def test_centroid_gap_by_hand():
    vectors = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # centroid direction (2, 1) / sqrt(5)
    cos = np.array([2, 2, 1]) / np.sqrt(5)
    picked = np.array([False, False, True])
    assert within_format.centroid_gap(vectors, picked) == pytest.approx(cos[2] - cos.mean())
