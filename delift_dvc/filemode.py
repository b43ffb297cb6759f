"""`delift-dvc score DATA` / `select DATA`: the three stages on files, outside a DVC project.

- no extra set: facility location over DATA (instruction tuning);
- `--target-set T`: FLMI of DATA with the target set T (task-specific);
- `--existing E`: FLCG over DATA minus E, conditioned on E (continual); the output holds the
  added samples only.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .config import Params
from .errors import InputError
from .pipeline import kernel_block, write_json
from .planning import Plan, run_plan
from .samples import Sample, load_samples, read_samples, write_samples
from .store import Store
from .utility import store_samples


def _load(data: str, target_set: str | None, existing: str | None):
    if target_set and existing:
        raise InputError("--target-set and --existing: give at most one of them")
    report = read_samples(data)
    extra = load_samples(target_set or existing) if (target_set or existing) else []
    return report, extra


def _plan(pool: list[Sample], extra: list[Sample], budget, target_set: bool, existing: bool) -> Plan:
    ids = sorted({s.id for s in pool})
    extra_ids = sorted({s.id for s in extra})
    counts = {"n_samples": len(ids)}
    if existing:
        ground = sorted(set(ids) - set(extra_ids))
        counts.update(n_existing=len(extra_ids), n_candidates=len(ground))
        return Plan("continual", "flcg", ground, extra_ids, [], budget, counts)
    if target_set:
        counts["n_target_set"] = len(extra_ids)
        return Plan("initial", "flmi", ids, extra_ids, [], budget, counts)
    return Plan("initial", "fl", ids, [], [], budget, counts)


def score_file(params: Params, data: str, target_set: str | None = None, existing: str | None = None,
               progress: bool = True) -> dict:
    """Score every d0 and pair the selection of DATA will read that `params.store` lacks."""
    report, extra = _load(data, target_set, existing)
    plan = _plan(report.samples, extra, params.selection.budget, bool(target_set), bool(existing))
    by_id = {s.id: s for s in [*report.samples, *extra]}
    with Store(params.store, write=True) as store:
        store_samples(store, by_id)
        _, counts, fingerprint = kernel_block(store, replace_method(params, "delift"), plan, by_id,
                                              progress)
    return {**plan.counts, "n_duplicates": report.n_duplicates, **counts.as_dict(), "scorer": fingerprint}


def replace_method(params: Params, method: str) -> Params:
    return replace(params, selection=replace(params.selection, method=method))


def select_file(params: Params, data: str, out: str, summary: str | None = None,
                target_set: str | None = None, existing: str | None = None) -> dict:
    """Select from DATA with the stored utilities (nothing is scored here) and write the subset
    as JSONL in the input's shape, plus a JSON summary with the objective and gains."""
    report, extra = _load(data, target_set, existing)
    sel = params.selection
    plan = _plan(report.samples, extra, sel.budget, bool(target_set), bool(existing))
    by_id = {s.id: s for s in [*report.samples, *extra]}
    store_root = Path(params.store)
    if sel.method in ("delift",) and not store_root.is_dir():
        raise InputError(f"{store_root}: no store here (run `delift-dvc score {data}` first)")
    if sel.method == "delift":
        with Store(store_root) as store:
            block, _, fingerprint = kernel_block(store, params, plan, by_id, False, score_missing=False)
    else:
        block, _, fingerprint = kernel_block(None, params, plan, by_id, False, score_missing=False)
    subset = run_plan(plan, sel.method, block, eta=sel.eta, nu=sel.nu, scaling=sel.scaling,
                      stop_at_zero_gain=sel.stop_at_zero_gain, seed=sel.seed)
    write_samples([by_id[i] for i in subset.ids], out)
    result = {**subset.summary(), "mode": plan.mode, "counts": plan.counts, "scorer": fingerprint,
              "data": data, "target_set": target_set, "existing": existing}
    if summary:
        write_json(summary, result)
    return result
