"""Data versions: naming a set of sample ids after git, and diffs between versions."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from delift_dvc.hashing import members_hash

__all__ = ["members_hash", "version_name", "diff_ids", "VersionDiff"]


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def version_name(data_path: str | Path, ids: Sequence[str]) -> str:
    """A tag at HEAD, else HEAD's short revision when the data has no uncommitted change (in git,
    or in its DVC pointer file), else `ids-<members hash>`."""
    path = Path(data_path).resolve()
    cwd = path if path.is_dir() else path.parent
    fallback = f"ids-{members_hash(ids)[:12]}"
    if not cwd.is_dir() or _git(["rev-parse", "--is-inside-work-tree"], cwd) != "true":
        return fallback
    dvc_pointer = path.with_name(path.name + ".dvc")
    watched = [str(path)] + ([str(dvc_pointer)] if dvc_pointer.exists() else [])
    dirty = _git(["status", "--porcelain", "--", *watched], cwd)
    if dirty is None or dirty:
        return fallback
    tag = _git(["describe", "--tags", "--exact-match", "HEAD"], cwd)
    if tag:
        return tag
    rev = _git(["rev-parse", "--short=10", "HEAD"], cwd)
    return rev or fallback


@dataclass(frozen=True)
class VersionDiff:
    """Ids added, removed and kept going from version A to version B (each sorted)."""

    added: list[str]
    removed: list[str]
    kept: list[str]

    def counts(self) -> dict:
        return {"added": len(self.added), "removed": len(self.removed), "kept": len(self.kept)}


def diff_ids(a: Iterable[str], b: Iterable[str]) -> VersionDiff:
    """What changed from the id set `a` to the id set `b`."""
    sa, sb = set(a), set(b)
    return VersionDiff(sorted(sb - sa), sorted(sa - sb), sorted(sa & sb))
