"""Min-max scaling of utility kernel blocks: joint vs separate, edge cases, validation."""

from __future__ import annotations

import numpy as np
import pytest

from delift_dvc.selection.scaling import minmax_scale

A = np.array([[1.0, 3.0], [5.0, 2.0]])  # min 1, max 5
B = np.array([[0.0, 9.0, 4.5]])  # min 0, max 9


def test_joint_uses_one_min_and_max_over_all_blocks():
    a, b = minmax_scale([A, B])  # union: min 0, max 9
    np.testing.assert_allclose(a, [[1 / 9, 3 / 9], [5 / 9, 2 / 9]], rtol=1e-15)
    np.testing.assert_allclose(b, [[0.0, 1.0, 0.5]], rtol=1e-15)


def test_separate_scales_each_block_on_its_own():
    a, b = minmax_scale([A, B], mode="separate")
    np.testing.assert_allclose(a, [[0.0, 0.5], [1.0, 0.25]], rtol=1e-15)
    np.testing.assert_allclose(b, [[0.0, 1.0, 0.5]], rtol=1e-15)


def test_joint_is_the_default_and_single_block_modes_agree():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 30)) * 7 + 3
    (joint,) = minmax_scale([x])
    (sep,) = minmax_scale([x], mode="separate")
    np.testing.assert_array_equal(joint, sep)
    assert joint.min() == 0.0 and joint.max() == 1.0


def test_constant_input_gives_zeros():
    (z,) = minmax_scale([np.full((3, 4), 2.5)])
    assert z.shape == (3, 4) and not z.any()
    a, b = minmax_scale([np.full((2, 2), 7.0), np.full((1, 3), 7.0)])
    assert not a.any() and not b.any()
    # separate: the constant block alone becomes zeros, the other one is scaled
    c, d = minmax_scale([np.full((2, 2), 7.0), A], mode="separate")
    assert not c.any() and d.max() == 1.0
    # joint: a constant block is scaled with the others' range
    e, f = minmax_scale([np.full((1, 2), 3.0), A])
    np.testing.assert_allclose(e, [[0.5, 0.5]])


def test_empty_blocks_are_ignored_for_the_range():
    empty = np.zeros((0, 5))
    a, e, b = minmax_scale([A, empty, B])
    assert e.shape == (0, 5)
    np.testing.assert_allclose(b, [[0.0, 1.0, 0.5]])
    a2, e2 = minmax_scale([A, np.zeros((4, 0))], mode="separate")
    assert e2.shape == (4, 0) and a2.max() == 1.0
    assert minmax_scale([]) == []
    (only_empty,) = minmax_scale([np.zeros((0, 0))])
    assert only_empty.shape == (0, 0)


def test_dtypes_and_inputs_untouched():
    x32 = (np.arange(12, dtype=np.float32).reshape(3, 4) - 4) * 3
    before = x32.copy()
    (y,) = minmax_scale([x32])
    assert y.dtype == np.float32 and not np.shares_memory(x32, y)
    np.testing.assert_array_equal(x32, before)
    (yi,) = minmax_scale([np.array([[1, 2], [3, 5]])])
    assert yi.dtype == np.float32
    np.testing.assert_allclose(yi, [[0.0, 0.25], [0.5, 1.0]])
    (y64,) = minmax_scale([A])
    assert y64.dtype == np.float64
    (yf,) = minmax_scale([np.asfortranarray(A)])
    np.testing.assert_array_equal(yf, y64)
    for out in minmax_scale([x32, A, B]):
        assert out.min() >= 0.0 and out.max() <= 1.0


def test_bad_input_raises():
    with pytest.raises(ValueError, match="NaN"):
        minmax_scale([A, np.array([[np.nan, 1.0]])])
    with pytest.raises(ValueError, match="NaN"):
        minmax_scale([np.array([[np.nan]])], mode="separate")
    with pytest.raises(ValueError, match="infinite"):
        minmax_scale([np.array([[np.inf, 1.0]])])
    with pytest.raises(ValueError, match="mode"):
        minmax_scale([A], mode="global")
    with pytest.raises(ValueError, match="numeric"):
        minmax_scale([np.array([["a"]])])
    with pytest.raises(ValueError, match="sequence"):
        minmax_scale(A)
