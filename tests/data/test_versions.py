"""data/versions: a version is named after git when its data is committed, else by its ids."""

from __future__ import annotations

import hashlib
import subprocess

from delift_dvc.data.versions import diff_ids, members_hash, version_name


def git(*args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_members_hash_is_the_sorted_ids_digest():
    ids = ["b2", "a1", "c3"]
    assert members_hash(ids) == hashlib.sha256(b"a1\nb2\nc3").hexdigest()[:16]
    assert members_hash(reversed(ids)) == members_hash(ids) != members_hash(ids[:2])


def test_outside_git_the_name_is_the_ids_hash(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text("{}\n")
    assert version_name(data, ["x", "y"]) == f"ids-{members_hash(['x', 'y'])[:12]}"


def test_committed_data_is_named_by_tag_or_revision_and_dirty_data_by_ids(tmp_path):
    git("init", "-q", cwd=tmp_path)
    git("config", "user.email", "t@example.invalid", cwd=tmp_path)
    git("config", "user.name", "t", cwd=tmp_path)
    data = tmp_path / "train.jsonl"
    data.write_text("{}\n")
    git("add", "-A", cwd=tmp_path)
    git("commit", "-qm", "v1", cwd=tmp_path)
    rev = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=tmp_path, capture_output=True,
                         text=True).stdout.strip()
    assert version_name(data, ["x"]) == rev
    git("tag", "data-v1", cwd=tmp_path)
    assert version_name(data, ["x"]) == "data-v1"
    data.write_text("{}\n{}\n")  # uncommitted change: the revision does not describe it
    assert version_name(data, ["x"]) == f"ids-{members_hash(['x'])[:12]}"


def test_diff_ids_by_hand():
    d = diff_ids(["a", "b", "c"], ["b", "c", "d", "e"])
    assert (d.added, d.removed, d.kept) == (["d", "e"], ["a"], ["b", "c"])
    assert d.counts() == {"added": 2, "removed": 1, "kept": 2}
