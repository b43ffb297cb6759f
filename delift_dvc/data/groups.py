"""Groups: where each sample came from, for allocating a budget like the data and for reporting
a subset's composition.

A sample's group is the value of the record field `group_by` when one is named (a string or a
number), else the name of its source file relative to the data root (a folder of files gives one
group per file; a single file, one group).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from delift_dvc.errors import ArgumentError

__all__ = ["sample_groups", "composition"]


def _source_file(where: str) -> str:
    """The file of a sample's `source` ("path:line" or "path")."""
    head, sep, tail = where.rpartition(":")
    return head if sep and tail.isdigit() else where


def sample_groups(samples: Sequence, root: str, group_by: str | None = None) -> dict[str, str]:
    """id -> group of each sample (objects with .id, .record, .source); `root` is the path the
    samples were read from. ArgumentError (`group_by`) naming the file and line of a record
    without the field, or with a value that is not a string or number."""
    groups = {}
    base = root if os.path.isdir(root) else os.path.dirname(root)
    for sample in samples:
        if group_by is None:
            groups[sample.id] = os.path.relpath(_source_file(sample.source), base or ".")
            continue
        value = sample.record.get(group_by)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value == "":
            found = "no such field" if value is None else f"a {type(value).__name__} value"
            raise ArgumentError("group_by", f"{group_by!r}: {sample.source} has {found} "
                                            "(every record needs a string or number there)")
        groups[sample.id] = str(value)
    return groups


def composition(pool: Sequence[str], subset: Sequence[str], groups: Mapping[str, str]) -> list[dict]:
    """Per group (sorted by name): samples in the pool, samples selected, and their shares (of the
    pool, of the subset; 6 decimals)."""
    n_pool, n_subset = max(1, len(pool)), max(1, len(subset))
    counts: dict[str, list[int]] = {}
    for i in pool:
        counts.setdefault(groups[i], [0, 0])[0] += 1
    for i in subset:
        counts.setdefault(groups[i], [0, 0])[1] += 1
    return [{"group": g, "pool": p, "selected": s, "pool_share": round(p / n_pool, 6),
             "selected_share": round(s / n_subset, 6)} for g, (p, s) in sorted(counts.items())]
