"""A shared segment pool: one folder beside DVC's cache that every workspace of a project (the
main one and each queued or `--temp` experiment's, which DVC runs in copies of the repository
that share its cache) links its store's content-addressed segments from.

The `score` stage takes the pool's lock (waiting while another workspace scores), links in
the samples, d0 and pair segments its store lacks, scores only what is still missing, and links
its new segments back, so two experiments that need the same pairs score them once, even when
`dvc queue start -j 2` runs them at the same time (the second one's scoring waits and then finds
them stored). Versions and selections are a workspace's own history and are never shared.
Segments are immutable and named by their content, so a link is a copy that costs no space; a
segment whose rows overlap another one's (stores filled apart before they shared a pool) is
left where it is, so no value is ever stored twice.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

from delift_dvc.errors import InputError
from delift_dvc.store.segments import connect_memory, list_segments, quote

SHARED_KINDS = {"samples": ("id",), "baselines": ("scorer", "target"), "pairs": ("scorer", "target", "example")}
POOL_DIR = "delift-store"  # beside DVC's cache folders (files/md5): <dvc cache dir>/delift-store


def dvc_pool(project: str | Path = ".") -> Path | None:
    """<cache dir>/delift-store of the DVC project holding the folder `project` (it or one of
    its parents has .dvc/); None outside a DVC project (or where DVC cannot open it)."""
    try:
        from dvc.exceptions import DvcException
        from dvc.repo import Repo
    except ImportError:  # pragma: no cover - dvc is a dependency
        return None
    try:
        with Repo(str(project)) as repo:
            cache = repo.cache.local_cache_dir
    except DvcException:  # not a DVC project (or one DVC cannot open): no pool
        return None
    return None if cache is None else Path(cache) / POOL_DIR


def _link(source: Path, target: Path) -> None:
    """`target` as a hard link to `source` (a copy across file systems), appearing atomically."""
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        os.link(source, temp)
    except OSError:
        shutil.copyfile(source, temp)
    os.replace(temp, target)


def _overlapping(candidates: list[Path], existing: list[Path], kind: str) -> set[str]:
    """Names of the candidate files holding a key (id, or scorer + ids) that `existing` holds."""
    if not candidates or not existing:
        return set()
    keys = ", ".join(SHARED_KINDS[kind])
    cand = ", ".join(quote(str(p)) for p in candidates)
    have = ", ".join(quote(str(p)) for p in existing)
    con = connect_memory()
    try:
        rows = con.execute(
            f"SELECT DISTINCT c.filename FROM read_parquet([{cand}], filename = true, hive_partitioning = false) c "
            f"SEMI JOIN read_parquet([{have}], hive_partitioning = false) e USING ({keys})").fetchall()
    finally:
        con.close()
    return {Path(r[0]).name for r in rows}


def _transfer(source_root: Path, target_root: Path) -> int:
    """Link the shared kinds' segments of source_root that target_root lacks; returns how many."""
    moved = 0
    for kind in SHARED_KINDS:
        source, target = source_root / kind, target_root / kind
        have = list_segments(target, kind)
        names = {p.name for p in have}
        new = [p for p in list_segments(source, kind) if p.name not in names]
        skip = _overlapping(new, have, kind)
        for path in new:
            if path.name not in skip:
                target.mkdir(parents=True, exist_ok=True)
                _link(path, target / path.name)
                moved += 1
    return moved


class SharedPool:
    """The pool folder, locked for the duration of a `with` block (blocking: one workspace
    scores at a time); pull() and push() link segments between it and a store folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._fd: int | None = None

    def __enter__(self) -> SharedPool:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"scoring.shared_store {self.root}: cannot use it ({exc.strerror}); "
                             "set another folder, or null") from None
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits while another workspace scores
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def pull(self, store_root: str | Path) -> int:
        """Link into store_root the pool's segments it lacks (and does not overlap); a count."""
        return _transfer(self.root, Path(store_root))

    def push(self, store_root: str | Path) -> int:
        """Link into the pool store_root's segments it lacks (and does not overlap); a count."""
        return _transfer(Path(store_root), self.root)
