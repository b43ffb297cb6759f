"""The shared segment pool: pull and push link what the other side lacks, never a segment whose
rows another one already holds, and the pool's lock makes a second workspace wait."""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np

from delift_dvc.store import Store
from delift_dvc.store.shared import SharedPool

SCORER = hashlib.sha256(b"fake scorer").hexdigest()
IDS = [hashlib.sha256(f"s{k}".encode()).hexdigest()[:16] for k in range(6)]


def fill(root, pairs, value=0.5):
    with Store(root, write=True) as store:
        t, e = [IDS[i] for i, _ in pairs], [IDS[j] for _, j in pairs]
        store.write_pairs(SCORER, t, e, np.full(len(pairs), value))
        store.write_baselines(SCORER, sorted(set(t)), np.full(len(set(t)), 0.9))


def files(root, kind="pairs"):
    return sorted(p.name for p in (root / kind).glob("*.parquet"))


def test_pull_and_push_link_what_the_other_side_lacks(tmp_path):
    a, b, pool_root = tmp_path / "a", tmp_path / "b", tmp_path / "pool"
    fill(a, [(0, 1), (1, 0)])
    with SharedPool(pool_root) as pool:
        assert pool.pull(a) == 0 and pool.push(a) == 2  # one pairs and one baselines segment
        assert pool.pull(b) == 2
        assert pool.push(a) == 0 and pool.pull(b) == 0  # nothing twice
    assert files(b) == files(a) == files(pool_root)
    assert (b / "pairs" / files(b)[0]).stat().st_ino == (a / "pairs" / files(a)[0]).stat().st_ino  # links
    with Store(b) as store:
        np.testing.assert_array_equal(store.read_pairs(SCORER, IDS[:2], IDS[:2]), [[np.nan, 0.5], [0.5, np.nan]])
        assert store.count_pairs(SCORER) == 2
    assert not list((tmp_path / "b").glob("**/*.tmp"))


def test_a_segment_overlapping_the_other_sides_rows_stays_where_it_is(tmp_path):
    a, b, pool_root = tmp_path / "a", tmp_path / "b", tmp_path / "pool"
    fill(a, [(0, 1), (2, 3)], 0.5)
    fill(b, [(2, 3), (4, 5)], 0.25)  # filled apart: (2, 3) in both, in different segments
    with SharedPool(pool_root) as pool:
        pool.push(a)
        assert files(b) != files(a)
        pool.pull(b)  # b's pairs segment overlaps a's: not linked into b
        pool.push(b)  # nor b's into the pool
    assert set(files(pool_root)) == set(files(a))
    with Store(b) as store:
        assert store.count_pairs(SCORER) == 2  # still no pair stored twice
        assert store.read_pairs(SCORER, [IDS[2]], [IDS[3]])[0, 0] == 0.25


def test_the_lock_makes_a_second_workspace_wait(tmp_path):
    events = []

    def second():
        with SharedPool(tmp_path / "pool"):
            events.append(("second in", time.monotonic()))

    with SharedPool(tmp_path / "pool"):
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        events.append(("first out", time.monotonic()))
    thread.join(10)
    assert [name for name, _ in events] == ["first out", "second in"]


def test_the_pool_sits_beside_dvcs_cache_and_is_off_outside_a_project(tmp_path):
    import subprocess

    from delift_dvc.store.shared import dvc_pool

    assert dvc_pool(tmp_path) is None
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=tmp_path, check=True)
    assert dvc_pool(tmp_path) == tmp_path / ".dvc" / "cache" / "delift-store"


def test_a_pool_that_cannot_be_made_names_the_key(tmp_path):
    import pytest

    from delift_dvc.errors import InputError

    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(InputError, match=r"scoring.shared_store .*file/pool: cannot use it"):
        with SharedPool(tmp_path / "file" / "pool"):
            pass
