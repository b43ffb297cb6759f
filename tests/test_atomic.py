"""atomic: every write is all or nothing, folders swap whole, leftovers are cleaned."""

from __future__ import annotations

import json
import os

import pytest

from delift_dvc import atomic


def test_write_bytes_replaces_whole_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "out.bin"
    atomic.write_bytes(path, b"first")
    atomic.write_bytes(path, b"second")
    assert path.read_bytes() == b"second" and os.listdir(path.parent) == ["out.bin"]
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~atomic._umask())  # a normal file's mode


def test_a_failed_write_keeps_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    atomic.write_text(path, "old\n")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_text(path, "new\n")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["out.txt"]


def test_write_json_is_canonical(tmp_path):
    path = atomic.write_json(tmp_path / "m.json", {"b": 1, "a": "é"})
    assert path.read_text(encoding="utf-8") == '{\n  "a": "é",\n  "b": 1\n}\n'
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": "é", "b": 1}


def test_replace_dir_swaps_a_complete_folder_and_restores_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "prepared"
    target.mkdir()
    (target / "old.txt").write_text("old")
    filled = atomic.temp_dir(target)
    (filled / "new.txt").write_text("new")
    atomic.replace_dir(filled, target)
    assert os.listdir(target) == ["new.txt"] and os.listdir(tmp_path) == ["prepared"]
    again = atomic.temp_dir(target)
    real = os.replace

    def fail_second(src, dst):
        if str(src) == str(again):
            raise OSError("no room")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", fail_second)
    with pytest.raises(OSError, match="no room"):
        atomic.replace_dir(again, target)
    assert os.listdir(target) == ["new.txt"]  # the old folder is back under its name


def test_publish_dir_keeps_the_first_writer_and_temp_files_are_removed(tmp_path):
    target = tmp_path / "segment"
    first, second = atomic.temp_dir(target), atomic.temp_dir(target)
    (first / "a").write_text("1")
    (second / "a").write_text("2")
    assert atomic.publish_dir(first, target) is True
    assert atomic.publish_dir(second, target) is False
    assert (target / "a").read_text() == "1" and not second.exists()
    (tmp_path / f"{atomic.TEMP_PREFIX}half.parquet").write_bytes(b"x")
    atomic.temp_dir(tmp_path / "other")
    assert atomic.remove_temp_files([tmp_path]) == 2
    assert sorted(os.listdir(tmp_path)) == ["segment"]
