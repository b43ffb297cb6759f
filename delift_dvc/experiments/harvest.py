"""Harvest a finished run's stage outputs into the comparison's tables (OUT/compare.csv, per
test sample OUT/compare_samples.csv, the ids each run trained on OUT/compare_subsets.csv).

Tables are rewritten whole and atomically, a run's rows only once (a resumed sweep adds no twin).
The stage output names come from :mod:`delift_dvc.stages.outputs`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from delift_dvc.atomic import write_text
from delift_dvc.errors import DeliftError, InputError
from delift_dvc.experiments.grid import Run
from delift_dvc.quality.report import METRICS as METRIC_NAMES
from delift_dvc.quality.report import VARIANTS
from delift_dvc.stages.outputs import METRICS, PLOTS, SELECTION_RECORD

__all__ = ["COLUMNS", "SAMPLE_COLUMNS", "SUBSET_COLUMNS", "VARIANTS", "METRIC_NAMES", "run_rows", "sample_rows",
           "subset_rows", "read_rows", "append_rows", "write_rows"]

COLUMNS = ["method", "budget", "seed", "n_train", "variant", "nll", "rouge_l", "cosine", "lm_values", "score_seconds"]
SAMPLE_COLUMNS = ["method", "budget", "seed", "variant", "id", "nll", "rouge_l", "cosine", "exact"]
# absent from tables of an older version: read as ""
OPTIONAL_COLUMNS = {"exact", "lm_values", "score_seconds"}
SUBSET_COLUMNS = ["method", "budget", "seed", "rank", "id"]


def run_rows(run: Run, metrics: Path, score_seconds: float | None = None) -> list[dict]:
    """compare.csv rows of a finished run: the initial model once, then its variants, each with
    the selection's cost: `lm_values`, the LM-scored values (d0 and pairs) its kernel reads, which
    is its LM passes from an empty store (0 for methods without LM values), and `score_seconds`,
    the wall time of this run's score stage (the store reused: mostly the selection itself; ""
    when DVC skipped the stage)."""
    result = json.loads((metrics / METRICS["evaluate"]).read_text(encoding="utf-8"))
    if not result.get("n_test"):
        raise DeliftError("compare: the project has no test set (set data.test, or data.holdout > 0)")
    initial = json.loads((metrics / METRICS["evaluate_initial"]).read_text(encoding="utf-8"))["initial"]
    n_train = result["subset"]["n_train"]
    cost = {"lm_values": str(lm_values(metrics)),
            "score_seconds": "" if score_seconds is None else f"{score_seconds:.1f}"}
    rows = [_row("initial", 0, 0, 0, "initial", initial)]
    rows += [{**_row(run.method, run.budget, run.seed, n_train, v, result[v]), **cost} for v in VARIANTS if v in result]
    return rows


def lm_values(metrics: Path) -> int:
    """LM values the selection read: scored now plus reused from the store (metrics/score.json)."""
    path = metrics / METRICS["score"]
    if not path.is_file():
        return 0
    counts = json.loads(path.read_text(encoding="utf-8"))
    return sum(int(counts.get(k, 0)) for k in ("pairs_scored", "pairs_reused", "baselines_scored", "baselines_reused"))


def stage_seconds(output: str) -> float | None:
    """The `seconds` of the score stage's JSON line in a `dvc exp run` output (None: not run)."""
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("{") and '"seconds"' in line and '"pairs_scored"' in line:
            try:
                return float(json.loads(line)["seconds"])
            except (ValueError, KeyError, TypeError):
                return None
    return None


def sample_rows(run: Run, plots: Path) -> list[dict]:
    """compare_samples.csv rows of a finished run: per test sample and variant."""
    rows = []
    for name, variants in ((PLOTS["eval_initial_samples"], ("initial",)), (PLOTS["eval_samples"], VARIANTS)):
        path = plots / name
        if not path.is_file():
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            for record in csv.DictReader(handle):
                for variant in variants:
                    if f"{variant}_rouge_l" not in record:
                        continue
                    key = ("initial", "0", "0") if variant == "initial" else (run.method, str(run.budget), str(run.seed))
                    rows.append(dict(zip(("method", "budget", "seed"), key), variant=variant, id=record["id"],
                                     **{m: record[f"{variant}_{m}"] for m in METRIC_NAMES},
                                     exact=record.get(f"{variant}_exact", "")))
    return rows


def subset_rows(run: Run, selected: Path) -> list[dict]:
    """compare_subsets.csv rows of a finished run: the ids it trained on, in selection order."""
    record = json.loads((selected / SELECTION_RECORD).read_text(encoding="utf-8"))
    key = {"method": run.method, "budget": str(run.budget), "seed": str(run.seed)}
    return [{**key, "rank": str(rank), "id": sample} for rank, sample in enumerate(record["ids"], start=1)]


def _row(method, budget, seed, n_train, variant, values: dict) -> dict:
    return {"method": method, "budget": str(budget), "seed": str(seed), "n_train": str(n_train),
            "variant": variant, **{m: f"{values[m]:.6f}" for m in METRIC_NAMES}, "lm_values": "", "score_seconds": ""}


def read_rows(path: Path, columns: list[str] = COLUMNS) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for line, row in enumerate(rows, start=2):
        for name in OPTIONAL_COLUMNS & (set(columns) - set(row)):
            row[name] = ""
        if set(row) != set(columns) or None in row.values():
            raise InputError(f"{path}:{line}: malformed row (expected columns {', '.join(columns)})")
    return rows


def append_rows(path: Path, rows: list[dict], columns: list[str], key_columns: int) -> None:
    """Append the rows whose first key_columns values are new (a resumed sweep adds no twin)."""
    existing = read_rows(path, columns)
    keys = columns[:key_columns]
    seen = {tuple(r[c] for c in keys) for r in existing}
    fresh = [r for r in rows if tuple(r[c] for c in keys) not in seen]
    write_rows(path, existing + fresh, columns)


def write_rows(path: Path, rows: list[dict], columns: list[str]) -> None:
    """Replace `path` with a CSV of `rows` (whole file, atomically: never half a row)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
