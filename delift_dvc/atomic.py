"""The one way this package writes a file or a folder: all or nothing.

A file is written to a temp name in its own folder, flushed and fsynced, renamed over the
final name, and the folder is fsynced, so a reader (or DVC) sees either the old content or the
new one, never half of it, even after a crash. Temp names start with `TEMP_PREFIX`; writers
that own a folder remove leftovers with `remove_temp_files`.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["TEMP_PREFIX", "write_bytes", "write_text", "write_json", "replace_dir", "publish_dir", "temp_dir",
           "remove_temp_files"]

TEMP_PREFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Replace `path` with `data` atomically (parents created; the usual 0666 & ~umask mode)."""
    final = Path(path)
    folder = final.parent
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    return final


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Replace `path` with UTF-8 `text` atomically (newlines written as given)."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Replace `path` with `payload` as JSON: sorted keys, 2-space indent, trailing newline."""
    return write_text(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def temp_dir(beside: str | os.PathLike) -> Path:
    """A new empty temp folder next to `beside`, to be filled and then `replace_dir`-ed."""
    target = Path(beside)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f"{TEMP_PREFIX}{target.name}-{secrets.token_hex(6)}"
    tmp.mkdir()
    return tmp


def replace_dir(filled: Path, target: str | os.PathLike) -> Path:
    """Swap the complete folder `filled` in at `target` (an old `target` is removed afterwards);
    `filled` must be on the same file system, e.g. from `temp_dir(target)`."""
    target = Path(target)
    old = None
    if target.exists():
        old = target.parent / f"{TEMP_PREFIX}{target.name}-old-{secrets.token_hex(6)}"
        os.replace(target, old)
    try:
        os.replace(filled, target)
    except BaseException:
        if old is not None:
            os.replace(old, target)
        raise
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def publish_dir(filled: Path, target: str | os.PathLike) -> bool:
    """Move the complete folder `filled` to `target` unless another writer got there first
    (then `filled` is discarded); whether ours was published."""
    target = Path(target)
    try:
        os.rename(filled, target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(filled, ignore_errors=True)
        return False
    _fsync_dir(target.parent)
    return True


def remove_temp_files(folders: Sequence[Path]) -> int:
    """Delete the temp files and folders that a killed writer left in `folders`; how many."""
    removed = 0
    for folder in folders:
        for stale in Path(folder).glob(TEMP_PREFIX + "*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed += 1
    return removed
