"""Stage `select`: export the subset that `score` recorded, in the input's own record shape,
with its metrics and plots."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from delift_dvc.config import Params
from delift_dvc.data import versions
from delift_dvc.data.samples import write_samples
from delift_dvc.errors import InputError
from delift_dvc.stages.ingest import prepared_pool
from delift_dvc.stages.outputs import METRICS, PLOTS, SELECTED_TRAIN, SELECTION_RECORD, write_csv, write_json
from delift_dvc.store import Store


def read_record(params: Params) -> dict:
    """data.selected/selection.json; an InputError when `score` has not written it."""
    path = Path(params.data.selected) / SELECTION_RECORD
    if not path.is_file():
        raise InputError(f"{path}: not found (run `delift-dvc score` first)")
    return json.loads(path.read_text(encoding="utf-8"))


def run_select(params: Params) -> dict:
    """Export the recorded subset: data/selected/train.jsonl (input shape, selection order),
    metrics/select.json, plots/gains.csv and plots/utility_hist.csv."""
    pool, _ = prepared_pool(params)
    by_id = {s.id: s for s in pool}
    record = read_record(params)
    if record["version"]["members_hash"] != versions.members_hash(by_id):
        raise InputError(f"{Path(params.data.selected) / SELECTION_RECORD}: recorded for other data "
                         "(run `delift-dvc score` again)")
    write_samples([by_id[i] for i in record["ids"]], Path(params.data.selected) / SELECTED_TRAIN)
    parts = record.get("composition", [])
    metrics = {
        "mode": record["mode"], "method": record["method"], "objective_name": record["objective_name"],
        "n_selected": len(record["ids"]), "n_added": len(record["added"]), "n_kept": len(record["kept"]),
        "n_samples": len(pool), "objective": record["objective"], "budget": record["budget"],
        "n_groups": len(parts), "groups_without_pick": sum(1 for p in parts if p["selected"] == 0),
    }
    write_json(Path(params.metrics) / METRICS["select"], metrics)
    plots = Path(params.plots)
    write_csv(plots / PLOTS["gains"], ["step", "gain", "cumulative"], _gain_rows(record["gains"]))
    columns = ["group", "pool", "selected", "pool_share", "selected_share"]
    write_csv(plots / PLOTS["composition"], columns, [[p[c] for c in columns] for p in parts])
    hist = _utility_histogram(params, record) if record["scorer"] and record["method"] == "delift" else []
    write_csv(plots / PLOTS["utility_hist"], ["uf", "pairs"], hist)
    return metrics


def _gain_rows(gains: Sequence[float]) -> list[tuple]:
    total, rows = 0.0, []
    for step, gain in enumerate(gains, start=1):
        total += gain
        rows.append((step, round(gain, 6), round(total, 6)))
    return rows


def _utility_histogram(params: Params, record: dict, bins: int = 40) -> list[tuple]:
    """Counts of UF over the pairs stored among this version's samples, `bins` bins over [-r, r]:
    r = 1 (the l2 distance's range), or the largest |UF| where that is larger (nll)."""
    with Store(params.store_dir) as store:
        con = store.connect()
        rows = con.execute(
            "SELECT uf FROM utility WHERE scorer = ? AND version = ?",
            [record["scorer"], record["version"]["name"]],
        ).fetchnumpy()["uf"]
    values = np.asarray(rows, dtype=np.float64)
    reach = max(1.0, float(np.abs(values).max(initial=0.0)))
    counts, edges = np.histogram(values, bins=bins, range=(-reach, reach))
    return [(round(float((edges[k] + edges[k + 1]) / 2), 4), int(c)) for k, c in enumerate(counts)]
