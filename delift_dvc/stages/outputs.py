"""Every file name the stages write, and the writers of metrics JSON and plot CSVs (each
written atomically, byte-identical for identical inputs: no wall-clock values).

The names live here only: the stages write them, `compare` harvests them, and a test checks
them against dvc.yaml."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from delift_dvc.atomic import write_json, write_text

__all__ = ["write_json", "write_csv", "PREPARED_TRAIN", "PREPARED_TARGETS", "PREPARED_TEST",
           "PREPARED_GROUPS", "PREPARED_TEST_GROUPS", "SELECTION_RECORD", "SELECTED_TRAIN", "METRICS", "PLOTS", "GENERATIONS"]

PREPARED_TRAIN = "train.jsonl"  # data.prepared: the pool
PREPARED_TARGETS = "target_set.jsonl"  # data.prepared: the task-specific target set
PREPARED_TEST = "test.jsonl"  # data.prepared: the held-out test set (empty: none)
PREPARED_GROUPS = "groups.json"  # data.prepared: the group of every pool sample
PREPARED_TEST_GROUPS = "test_groups.json"  # data.prepared: the group of every test sample
PREPARED_SOURCES = "sources.json"  # data.prepared: where each pool and target-set sample came from (file:line)
PREPARED_FIELDS = "fields.json"  # data.prepared: data.fields, with which every prepared record is read
SELECTION_RECORD = "selection.json"  # data.selected: ids, gains, counts of the subset
SELECTED_TRAIN = "train.jsonl"  # data.selected: the subset in the input's shape

# metrics/: stage -> its metrics file
METRICS = {"ingest": "ingest.json", "score": "score.json", "select": "select.json", "finetune": "train.json",
           "evaluate": "eval.json", "evaluate_initial": "eval_initial.json"}
# plots/: plot -> its CSV
PLOTS = {"gains": "gains.csv", "utility_hist": "utility_hist.csv", "composition": "composition.csv",
         "eval_samples": "eval_samples.csv", "eval_initial_samples": "eval_initial_samples.csv"}
TRAIN_LOSS = "train_loss.csv"  # plots/: the per-step loss for scripts (DVCLive's file is the registered plot)
# metrics/: DVCLive's folder of the finetune stage, its summary (a metric) and loss history (the plot)
LIVE_DIR = "live"
LIVE_METRICS = f"{LIVE_DIR}/metrics.json"
LIVE_LOSS = f"{LIVE_DIR}/plots/metrics/train/loss.tsv"
GENERATIONS = "generations.jsonl"  # metrics/: the evaluated model's answers per test sample


def write_csv(path: str | Path, header: Sequence[str], rows: Sequence[Sequence], delimiter: str = ",") -> Path:
    """Replace `path` with a CSV of `header` and `rows` (LF line ends; delimiter "\\t": a TSV)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n", delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())
