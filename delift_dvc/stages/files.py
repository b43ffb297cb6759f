"""`delift-dvc score DATA` / `select DATA`: the three stages on files, outside a DVC project.

- no extra set: facility location over DATA (instruction tuning);
- `--target-set T`: FLMI of DATA with the target set T (task-specific);
- `--existing E`: FLCG over DATA minus E, conditioned on E (continual); the output holds the
  added samples only.

The selection itself is the stage mode's (:mod:`delift_dvc.stages.subset`); only the source of
samples differs. A library's bad argument is reported under its CLI option.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from delift_dvc.config import Params, named_as_params
from delift_dvc.data.groups import composition, sample_groups
from delift_dvc.data.samples import load_samples, read_samples, write_samples
from delift_dvc.errors import InputError
from delift_dvc.kernels.base import PlanContext
from delift_dvc.kernels.driver import store_samples
from delift_dvc.progress import Reporter
from delift_dvc.selection.planning import Plan, plan_files
from delift_dvc.stages.outputs import write_json
from delift_dvc.stages.subset import score_plan, select_plan
from delift_dvc.store import Store


def _load(data: str, target_set: str | None, existing: str | None, budget, fields=None) -> tuple:
    """(read report, id -> Sample of data and extra set, plan); fields: data.fields."""
    if target_set and existing:
        raise InputError("--target-set and --existing: give at most one of them")
    report = read_samples(data, fields=fields)
    extra = load_samples(target_set or existing, fields=fields) if (target_set or existing) else []
    with named_as_params(options=True):
        plan: Plan = plan_files([s.id for s in report.samples], [s.id for s in extra], budget,
                                target_set=bool(target_set), existing=bool(existing))
    return report, {s.id: s for s in [*report.samples, *extra]}, plan


def score_file(params: Params, data: str, target_set: str | None = None, existing: str | None = None,
               reporter: Reporter | None = None) -> dict:
    """Score every d0 and pair the selection of DATA will read that `params.store_dir` lacks."""
    report, by_id, plan = _load(data, target_set, existing, params.selection.budget, params.data.fields)
    params = replace(params, selection=replace(params.selection, method="delift"))
    with Store(params.store_dir, write=True) as store, named_as_params(options=True):
        store_samples(store, by_id)
        scored = score_plan(PlanContext(plan, by_id, store, params.scoring.device,
                                        embedding_model=params.utility.embedding_model), params,
                            reporter or Reporter("score", quiet=True))
    counts = scored.counts.as_dict()
    return {**plan.counts, "n_duplicates": report.n_duplicates, **counts, **(scored.metrics or {}),
            "scorer": scored.identity}


def select_file(params: Params, data: str, out: str, summary: str | None = None,
                target_set: str | None = None, existing: str | None = None) -> dict:
    """Select from DATA with the stored utilities (nothing is scored here) and write the subset
    as JSONL in the input's shape, plus a JSON summary with the objective and gains."""
    report, by_id, plan = _load(data, target_set, existing, params.selection.budget, params.data.fields)
    groups = sample_groups(report.samples, data, params.data.group_by)  # only selection reads them
    store_root = Path(params.store_dir)
    device = params.scoring.device
    embedding = params.utility.embedding_model
    with named_as_params(options=True):
        if params.selection.method == "delift":
            if not store_root.is_dir():
                raise InputError(f"{store_root}: no store here (run `delift-dvc score {data}` first)")
            with Store(store_root) as store:
                subset, identity = select_plan(PlanContext(plan, by_id, store, device, groups=groups,
                                                           embedding_model=embedding), params)
        else:
            subset, identity = select_plan(PlanContext(plan, by_id, None, device, groups=groups,
                                                       embedding_model=embedding), params)
    write_samples([by_id[i] for i in subset.ids], out)
    result = {**subset.summary(), "mode": plan.mode, "counts": plan.counts, "scorer": identity,
              "composition": composition(plan.ground, subset.ids, groups),
              "data": data, "target_set": target_set, "existing": existing}
    if summary:
        write_json(summary, result)
    return result
