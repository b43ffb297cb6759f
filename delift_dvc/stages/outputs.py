"""The files stages write besides data: metrics JSON and plot CSVs, each written atomically,
byte-identical for identical inputs (no wall-clock values)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from delift_dvc.atomic import write_json, write_text

__all__ = ["write_json", "write_csv", "PREPARED_TRAIN", "PREPARED_TARGETS", "PREPARED_TEST",
           "SELECTION_RECORD", "SELECTED_TRAIN"]

PREPARED_TRAIN = "train.jsonl"  # data.prepared: the pool
PREPARED_TARGETS = "target_set.jsonl"  # data.prepared: the task-specific target set
PREPARED_TEST = "test.jsonl"  # data.prepared: the held-out test set (empty: none)
SELECTION_RECORD = "selection.json"  # data.selected: ids, gains, counts of the subset
SELECTED_TRAIN = "train.jsonl"  # data.selected: the subset in the input's shape


def write_csv(path: str | Path, header: Sequence[str], rows: Sequence[Sequence]) -> Path:
    """Replace `path` with a CSV of `header` and `rows` (LF line ends)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())
