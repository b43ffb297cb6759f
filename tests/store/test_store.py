"""The utility store: real Parquet files, real DuckDB, real processes for locking and kills."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from delift_dvc.errors import InputError, StoreLockedError
from delift_dvc.store.segments import write_segment
from delift_dvc.store import Store, VersionInfo

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).resolve().parents[1] / "helpers" / "store_writer.py"
SCORER = hashlib.sha256(b"scorer A").hexdigest()
OTHER = hashlib.sha256(b"scorer B").hexdigest()
VIEWS = ("samples", "baselines", "pairs", "versions", "version_members", "selections", "utility")


def ids_of(n: int, salt: str = "") -> list[str]:
    return [hashlib.sha256(f"{salt}{i}".encode()).hexdigest()[:16] for i in range(n)]


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def store_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".lock"}


# ------------------------------------------------------------------------------ values


def test_round_trip_baselines_and_pairs(tmp_path):
    ids = ids_of(30)
    rng = np.random.default_rng(1)
    d0 = rng.random(20)
    d = rng.random((10, 12))
    with Store(tmp_path / "s", write=True) as st:
        assert st.write_baselines(SCORER, ids[:20], d0) is not None
        t = [ids[i] for i in range(10) for _ in range(12)]
        e = [ids[10 + j] for _ in range(10) for j in range(12)]
        seg = st.write_pairs(SCORER, t, e, d.ravel())
        assert seg.parent.name == "pairs" and len(seg.name) == len("0123456789abcdef.parquet")
    with Store(tmp_path / "s") as st:  # read-only
        np.testing.assert_array_equal(st.read_baselines(SCORER, ids[:20]), d0)
        got = st.read_baselines(SCORER, [ids[25], ids[3]])
        assert np.isnan(got[0]) and got[1] == d0[3]
        np.testing.assert_array_equal(st.read_pairs(SCORER, ids[:10], ids[10:22]), d)
        block = st.read_pairs(SCORER, ids[5:15], ids[8:14])  # partly stored, repeated ids fine
        for a, ti in enumerate(range(5, 15)):
            for b, ei in enumerate(range(8, 14)):
                want = d[ti, ei - 10] if ti < 10 and ei >= 10 else np.nan
                np.testing.assert_equal(block[a, b], want)
        assert np.isnan(st.read_pairs(OTHER, ids[:10], ids[10:22])).all()
        assert st.count_pairs() == 120 and st.count_pairs(SCORER) == 120 and st.count_pairs(OTHER) == 0
        assert st.count_baselines(SCORER) == 20 and st.count_baselines(OTHER) == 0
        assert st.read_pairs(SCORER, [], ids).shape == (0, 30)


def test_missing_against_brute_force(tmp_path):
    rng = np.random.default_rng(7)
    ids = ids_of(300)
    stored = set()
    with Store(tmp_path / "s", write=True) as st:
        for _ in range(5):  # several segments
            k = rng.integers(0, 300, size=(2000, 2))
            t, e = [ids[a] for a in k[:, 0]], [ids[b] for b in k[:, 1]]
            new = {(a, b) for a, b in zip(t, e)} - stored
            new = sorted(new)
            st.write_pairs(SCORER, [a for a, _ in new], [b for _, b in new], rng.random(len(new)))
            stored |= set(new)
        k = rng.integers(0, 300, size=(3000, 2))  # another scorer: must never count
        other = sorted({(ids[a], ids[b]) for a, b in k})
        st.write_pairs(OTHER, [a for a, _ in other], [b for _, b in other], rng.random(len(other)))
        base = set(rng.choice(ids, 120, replace=False).tolist())
        st.write_baselines(SCORER, sorted(base), rng.random(len(base)))
        st.write_baselines(OTHER, ids, rng.random(300))
        assert st.count_pairs(SCORER) == len(stored)

        extra = ids_of(20, salt="not stored ")
        for trial in range(4):
            targets = list(rng.choice(ids + extra, 110, replace=False))
            examples = list(rng.choice(ids + extra, 130, replace=False))
            ti, ei = st.missing_pairs(SCORER, targets, examples)
            want = [(a, b) for a in range(110) for b in range(130)
                    if (targets[a], examples[b]) not in stored]
            assert ti.dtype == np.int64 and ei.dtype == np.int64
            assert list(zip(ti.tolist(), ei.tolist())) == want  # ordered by target, example
            cand = (rng.integers(0, 110, 4000), rng.integers(0, 130, 4000))
            ci, cj = st.missing_pairs(SCORER, targets, examples, candidates=cand)
            want_c = sorted({(a, b) for a, b in zip(*cand) if (targets[a], examples[b]) not in stored})
            assert list(zip(ci.tolist(), cj.tolist())) == want_c
            assert st.missing_baselines(SCORER, targets) == [t for t in targets if t not in base]
        ti, ei = st.missing_pairs(SCORER, ids[:3], ids[:4], candidates=(np.zeros(0), np.zeros(0)))
        assert len(ti) == len(ei) == 0
        with pytest.raises(InputError):
            st.missing_pairs(SCORER, ids[:3], ids[:4], candidates=(np.array([3]), np.array([0])))


def test_write_skips_stored_values_and_repeats_are_refused(tmp_path):
    ids = ids_of(6)
    with Store(tmp_path, write=True) as st:
        first = st.write_pairs(SCORER, ids[:3], ids[3:], [0.1, 0.2, 0.3])
        assert st.write_pairs(SCORER, ids[:3], ids[3:], [0.9, 0.9, 0.9]) is None  # all stored
        examples = [ids[3], ids[4], ids[5], ids[0]]
        st.write_pairs(SCORER, ids[:4], examples, [0.5, 0.6, 0.7, 0.8])  # 3 stored, 1 new
        assert st.count_pairs(SCORER) == 4
        got = np.diag(st.read_pairs(SCORER, ids[:4], examples))
        np.testing.assert_array_equal(got, [0.1, 0.2, 0.3, 0.8])
        assert len(list((tmp_path / "pairs").iterdir())) == 2 and first.exists()
        with pytest.raises(InputError, match="twice"):
            st.write_pairs(SCORER, [ids[0], ids[1], ids[0]], [ids[5]] * 3, [0.1, 0.2, 0.3])
        assert st.write_baselines(SCORER, ids, np.full(6, 0.5)) is not None
        assert st.write_baselines(SCORER, ids, np.full(6, 0.4)) is None
        assert st.write_pairs(SCORER, [], [], []) is None


@pytest.mark.parametrize("call, match", [
    (lambda st, ids: st.write_pairs(SCORER, ids[:2], ids[2:4], [0.1, np.nan]), "not a finite distance"),
    (lambda st, ids: st.write_pairs(SCORER, ids[:2], ids[2:4], [0.1, -np.inf]), "not a finite distance"),
    (lambda st, ids: st.write_pairs(SCORER, ids[:2], ids[2:4], [-0.1, 0.5]), "not a finite distance"),
    (lambda st, ids: st.write_pairs(SCORER, ids[:2], ids[2:4], [0.1]), "lengths"),
    (lambda st, ids: st.write_pairs(SCORER, ids[:2], ids[2:5], [0.1, 0.2]), "lengths"),
    (lambda st, ids: st.write_baselines(SCORER, ids[:2], [0.1, np.inf]), "not a finite distance"),
    (lambda st, ids: st.write_baselines(SCORER, ids[:2], [0.1]), "lengths"),
    (lambda st, ids: st.write_pairs("short", ids[:1], ids[1:2], [0.1]), "fingerprint"),
    (lambda st, ids: st.write_pairs(SCORER, ["NOT-AN-ID"], ids[1:2], [0.1]), "not a sample id"),
    (lambda st, ids: st.add_samples(ids[:2], ["p"], ["r", "r"], ["s", "s"]), "lengths"),
    (lambda st, ids: st.record_version("v", ["x"]), "not a sample id"),
])
def test_validation_errors_are_one_line(tmp_path, call, match):
    ids = ids_of(5)
    with Store(tmp_path, write=True) as st:
        with pytest.raises(InputError, match=match) as info:
            call(st, ids)
        assert "\n" not in str(info.value)
        assert st.count_pairs() == 0 and st.count_baselines() == 0


def test_read_only_store_refuses_writes(tmp_path):
    ids = ids_of(4)
    Store(tmp_path, write=True).close()
    with Store(tmp_path) as st:
        for call in (lambda: st.write_pairs(SCORER, ids[:1], ids[1:2], [0.5]),
                     lambda: st.write_baselines(SCORER, ids[:1], [0.5]),
                     lambda: st.add_samples(ids[:1], ["p"], ["r"], ["s"]),
                     lambda: st.record_version("v", ids)):
            with pytest.raises(InputError, match="read-only") as info:
                call()
            assert "\n" not in str(info.value)
    with Store(tmp_path / "absent") as st:  # a missing root reads as empty
        assert st.count_pairs() == 0 and st.latest_version() is None and st.latest_selection() is None
        assert np.isnan(st.read_pairs(SCORER, ids, ids)).all()
    assert not (tmp_path / "absent").exists()


def test_samples_are_stored_once(tmp_path):
    ids = ids_of(5)
    with Store(tmp_path, write=True) as st:
        assert st.add_samples(ids[:3] + ids[:1], ["a", "b", "c", "dup"], ["r"] * 4, ["f.jsonl"] * 4) == 3
        assert st.add_samples(ids[:3], ["a", "b", "c"], ["r"] * 3, ["f.jsonl"] * 3) == 0
        assert st.add_samples(ids, list("abcde"), ["r"] * 5, ["g.jsonl"] * 5) == 2
        assert len(list((tmp_path / "samples").iterdir())) == 2
        rows = st.connect().sql("SELECT id, prompt, source FROM samples ORDER BY id").fetchall()
    assert len(rows) == 5 and dict((r[0], r[1]) for r in rows)[ids[0]] == "a"


# ------------------------------------------------------------------------------ determinism


def fill(root: Path) -> None:
    ids = ids_of(40)
    rng = np.random.default_rng(3)
    with Store(root, write=True) as st:
        st.add_samples(ids, [f"p{i}" for i in range(40)], [f"r{i}" for i in range(40)], ["x.jsonl"] * 40)
        st.write_baselines(SCORER, ids[::-1], rng.random(40))  # unsorted input
        k = rng.permutation(1600)
        t, e = [ids[i // 40] for i in k], [ids[i % 40] for i in k]
        d = rng.random(1600)
        st.write_pairs(SCORER, t[:700], e[:700], d[:700])
        st.write_pairs(SCORER, t[700:], e[700:], d[700:])
        v = st.record_version("v1", ids[:30])
        st.record_selection(v, "facility_location", "dense", ids[:5], [5.0, 4.0, 3.0, 2.0, 1.0])
        st.record_version("v2", ids)


def test_same_calls_give_same_files(tmp_path):
    fill(tmp_path / "a")
    fill(tmp_path / "b")
    a, b = store_files(tmp_path / "a"), store_files(tmp_path / "b")
    assert a == b and len([k for k in a if k.startswith("pairs/")]) == 2


def test_same_segment_twice_is_one_file(tmp_path):
    table = pa.table({"scorer": [SCORER] * 3, "target": ids_of(3), "example": ids_of(3, "e"),
                      "d": [0.1, 0.2, 0.3]})
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
    first = write_segment(tmp_path / "x", "pairs", table)
    again = write_segment(tmp_path / "x", "pairs", table)
    other = write_segment(tmp_path / "y", "pairs", table)
    assert first == again and list((tmp_path / "x").iterdir()) == [first]
    assert first.read_bytes() == other.read_bytes() and first.name == other.name
    assert first.name[:16] == hashlib.sha256(first.read_bytes()).hexdigest()[:16]


# ------------------------------------------------------------------------------ views


def test_views_and_utility(tmp_path):
    ids = ids_of(8)
    rng = np.random.default_rng(5)
    d0, d = rng.random(8), rng.random((8, 8))
    with Store(tmp_path, write=True) as st:
        st.write_baselines(SCORER, ids, d0)
        st.write_pairs(SCORER, np.repeat(ids, 8), np.tile(ids, 8), d.ravel())
        st.write_pairs(OTHER, ids[:2], ids[2:4], [0.5, 0.5])
        v1 = st.record_version("v1", ids[:5])
        v2 = st.record_version("v2", ids[3:])
        st.record_selection(v2, "fl", "dense", [ids[4], ids[6]], [2.0, 1.0])
        con = st.connect()
        rows = con.sql("SELECT scorer, version, seq, target, example, uf FROM utility").fetchall()
        assert {r[0] for r in rows} == {SCORER}  # OTHER has no baselines
        assert len(rows) == 25 + 25
        pos = {x: i for i, x in enumerate(ids)}
        for scorer, version, seq, t, e, uf in rows:
            members = ids[:5] if seq == 1 else ids[3:]
            assert t in members and e in members and version == ("v1" if seq == 1 else "v2")
            assert uf == pytest.approx(d0[pos[t]] - d[pos[t], pos[e]], abs=1e-15)
        assert con.sql("SELECT name, seq, n, members_hash FROM versions ORDER BY seq").fetchall() == [
            (v1.name, 1, 5, v1.members_hash), (v2.name, 2, 5, v2.members_hash)]
        assert con.sql("SELECT count(*) FROM version_members WHERE seq = 2").fetchall() == [(5,)]
        assert con.sql("SELECT version, seq, objective, mode, rank, id, gain FROM selections "
                       "ORDER BY rank").fetchall() == [("v2", 2, "fl", "dense", 0, ids[4], 2.0),
                                                       ("v2", 2, "fl", "dense", 1, ids[6], 1.0)]
        con.close()
    leftovers = [p for p in tmp_path.rglob("*")
                 if p.is_file() and p.suffix != ".parquet" and p.name != ".lock"]
    assert leftovers == []
    assert not list(tmp_path.rglob("*.duckdb")) and not list(tmp_path.rglob("*.wal"))


def test_empty_store_views(tmp_path):
    with Store(tmp_path / "s", write=True) as st:
        con = st.connect()
        columns = {v: [r[0] for r in con.sql(f"DESCRIBE {v}").fetchall()] for v in VIEWS}
        for view in VIEWS:
            assert con.sql(f"SELECT count(*) FROM {view}").fetchall() == [(0,)]
        assert columns["versions"] == ["name", "seq", "n", "members_hash"]
        assert columns["utility"] == ["scorer", "version", "seq", "target", "example", "uf"]
        assert columns["pairs"] == ["scorer", "target", "example", "d"]
        stats = st.stats()
        assert stats["n_pairs"] == stats["n_segments"] == stats["bytes"] == 0
        assert st.versions() == [] and st.latest_version() is None


# ------------------------------------------------------------------------------ versions


def test_versions_and_selections(tmp_path):
    ids = ids_of(10)
    with Store(tmp_path, write=True) as st:
        v1 = st.record_version("first", ids[:6])
        members_hash = hashlib.sha256("\n".join(sorted(ids[:6])).encode()).hexdigest()[:16]
        assert v1 == VersionInfo("first", 1, 6, members_hash)
        assert st.record_version("again", list(reversed(ids[:6])) + ids[:2]) == v1  # same members
        assert len(list((tmp_path / "versions").iterdir())) == 1
        assert st.latest_selection() is None and st.selection(1) is None
        st.record_selection(v1, "fl", "dense", [ids[2], ids[0]], [0.7, 0.3])
        v2 = st.record_version("second", ids)
        assert (v2.seq, v2.n) == (2, 10) and st.versions() == [v1, v2] and st.latest_version() == v2
        assert st.version_ids(2) == sorted(ids)
        info, sel, gains = st.latest_selection()
        assert info == v1 and sel == [ids[2], ids[0]] and gains.tolist() == [0.7, 0.3]
        st.record_selection(v2, "fl", "knn", [ids[9]], [1.0])
        st.record_selection(v2, "fl", "knn", [ids[8], ids[9]], [2.0, 1.0])  # replaces
        info, sel, gains = st.latest_selection()
        assert info == v2 and sel == [ids[8], ids[9]] and gains.tolist() == [2.0, 1.0]
        assert st.selection(1)[0] == [ids[2], ids[0]]
        v3 = st.record_version("back", ids[:6])  # same members as v1, but not the latest
        assert v3.seq == 3 and v3.members_hash == v1.members_hash
        with pytest.raises(InputError, match="not a member"):
            st.record_selection(v1, "fl", "dense", [ids[9]], [1.0])
        with pytest.raises(InputError, match="not recorded"):
            st.record_selection(VersionInfo("x", 9, 1, "0" * 16), "fl", "dense", [ids[0]], [1.0])
        stats = st.stats()
        assert stats["n_versions"] == 3 and stats["n_selections"] == 2


# ------------------------------------------------------------------------------ processes


LOCK_CHILD = """
import sys
from delift_dvc.errors import StoreLockedError
from delift_dvc.store import Store
try:
    Store(sys.argv[1], write=True).close()
except StoreLockedError as exc:
    print(exc)
    sys.exit(3)
print("locked and released")
"""


def test_lock_excludes_other_writers(tmp_path):
    run = lambda: subprocess.run([sys.executable, "-c", LOCK_CHILD, str(tmp_path)], capture_output=True,
                                 text=True, env=child_env(), timeout=60)
    st = Store(tmp_path, write=True)
    try:
        child = run()
        assert child.returncode == 3, child.stderr
        message = child.stdout.strip()
        assert "\n" not in message and child.stderr == ""
        assert message.startswith(
            f"{tmp_path}: store is locked by another delift-dvc process (pid {os.getpid()}: ")
        assert message.endswith("; wait for it to finish")
        with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
            Store(tmp_path, write=True)  # a second writer in this process is refused too
        with Store(tmp_path) as reader:  # readers take no lock
            assert reader.count_pairs() == 0
    finally:
        st.close()
    child = run()
    assert child.returncode == 0 and "locked and released" in child.stdout
    Store(tmp_path, write=True).close()


def run_writer(root: Path, pause: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), str(root), "40", "50", str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())


def test_sigkill_and_resume(tmp_path):
    from tests.helpers.store_writer import SCORER as FAKE, grid_ids

    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = run_writer(killed, 0.1)
    deadline = time.monotonic() + 60
    while len(list((killed / "pairs").glob("*.parquet"))) < 2:  # glob of a missing folder: []
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the writer made no progress"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Store(killed) as reader:
        partial = reader.count_pairs(FAKE)
    assert 100 <= partial < 1600
    stale = killed / "pairs" / ".tmp-xyz"
    stale.write_bytes(b"PAR1 half a segment")
    with Store(killed) as reader:  # readers see complete segments only
        assert reader.count_pairs(FAKE) == partial

    resumed = run_writer(killed, 0.0)
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0 and "done" in out, err
    complete = run_writer(clean, 0.0)
    out, err = complete.communicate(timeout=120)
    assert complete.returncode == 0, err

    assert not stale.exists() and not list(killed.rglob(".tmp-*"))
    ids = grid_ids(40)
    with Store(killed) as a, Store(clean) as b:
        con = a.connect()
        counts = con.sql("SELECT count(*), count(DISTINCT (scorer, target, example)) FROM pairs")
        assert counts.fetchall() == [(1600, 1600)]
        con.close()
        np.testing.assert_array_equal(a.read_pairs(FAKE, ids, ids), b.read_pairs(FAKE, ids, ids))
        assert not np.isnan(a.read_pairs(FAKE, ids, ids)).any()
    # blocks are cut the same way after a resume, so even the segment files agree
    assert store_files(killed) == store_files(clean)


# ------------------------------------------------------------------------------ size


def test_large_block_round_trip(tmp_path):
    n = 1000
    ids = ids_of(n)
    d = np.random.default_rng(11).random(n * n)
    with Store(tmp_path, write=True) as st:
        st.write_pairs(SCORER, np.repeat(ids, n), np.tile(ids, n), d)
        got = st.read_pairs(SCORER, ids, ids)
        np.testing.assert_array_equal(got.ravel(), d)
        ti, _ = st.missing_pairs(SCORER, ids + ids_of(2, "new"), ids)
        assert len(ti) == 2 * n and (ti >= n).all()
        assert st.count_pairs(SCORER) == n * n
