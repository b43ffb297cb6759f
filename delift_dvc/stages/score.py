"""Stage `score`: record the data version, plan the selection, score only the values the store
lacks, select, and record the subset in the store.

The selection runs here (it is cheap) because the next version's plan needs this version's
subset, and DVC forbids a later stage's output feeding an earlier stage; `select` exports it.
"""

from __future__ import annotations

from pathlib import Path

from delift_dvc.config import Params, named_as_params
from delift_dvc.data import versions
from delift_dvc.data.groups import composition
from delift_dvc.kernels.base import PlanContext
from delift_dvc.kernels.driver import store_samples
from delift_dvc.progress import Reporter
from delift_dvc.selection.methods import Subset
from delift_dvc.selection.planning import Plan, plan_selection
from delift_dvc.stages.ingest import prepared_groups, prepared_pool
from delift_dvc.stages.outputs import METRICS, SELECTION_RECORD, write_json
from delift_dvc.stages.subset import score_plan, select_plan
from delift_dvc.store import Store
from delift_dvc.store.shared import SharedPool, dvc_pool


def previous_selection(store: Store, before_seq: int) -> tuple[list[str], list[str]] | None:
    """(ids, subset) of the latest version before `before_seq` that has a selection."""
    for info in reversed(store.versions()):
        if info.seq < before_seq:
            found = store.selection(info.seq)
            if found is not None:
                return store.version_ids(info.seq), found[0]
    return None


def _unique_name(store: Store, data_path: str, ids: list[str]) -> str:
    """The version's git-derived name, suffixed when that name already labels other data."""
    name, digest = versions.version_name(data_path, ids), versions.members_hash(ids)
    for info in store.versions():
        if info.name == name and info.members_hash != digest:
            return f"{name}-{digest[:8]}"
    return name


def run_score(params: Params, reporter: Reporter | None = None) -> dict:
    """Record this data version, plan the selection, score only what the store lacks, select,
    and record the subset. Writes the selection record and metrics/score.json. With
    scoring.shared_store (auto: beside DVC's cache) the store first takes the segments that
    other workspaces of the project scored, and gives back its own (store/shared.py)."""
    reporter = reporter or Reporter("score", quiet=True)
    with named_as_params():
        root = shared_root(params.scoring.shared_store, params.store_dir)
        if root is None:
            return _run_score(params, reporter)
        with SharedPool(root) as pool:
            return _run_score(params, reporter, pool)


def shared_root(setting: str | None, store: str | Path) -> Path | None:
    """The pool folder of scoring.shared_store: None (off), auto (the cache dir/delift-store of
    the DVC project holding the store; off for a store in no DVC project) or a folder."""
    if setting is None:
        return None
    return dvc_pool(Path(store).resolve().parent) if setting == "auto" else Path(setting)


def _run_score(params: Params, reporter: Reporter, shared: SharedPool | None = None) -> dict:
    pool, targets = prepared_pool(params)
    groups = prepared_groups(params, pool)  # before anything is written
    sel = params.selection
    by_id = {s.id: s for s in [*pool, *targets]}
    ids = [s.id for s in pool]
    with Store(params.store_dir, write=True) as store:
        if shared is not None:  # what other workspaces of the project scored (the pool's lock is held)
            linked = shared.pull(store.root)
            if linked:
                reporter.phase(f"{linked} segments from the shared store {shared.root}")
        # plan before writing anything (the pool's segments aside): a budget that does not fit adds nothing else
        latest = store.latest_version()
        same = latest is not None and latest.members_hash == versions.members_hash(ids)
        seq = latest.seq if same else (latest.seq + 1 if latest else 1)
        plan = plan_selection(ids, sel.budget, previous=previous_selection(store, seq),
                              target_ids=[t.id for t in targets], refresh=sel.mode == "refresh")
        store_samples(store, by_id)
        version = store.record_version(_unique_name(store, params.data.train, ids), ids)
        reporter.phase(f"version {version.name}: {len(ids)} samples, {plan.mode} selection "
                       f"({plan.objective}) over {len(plan.ground)}")
        ctx = PlanContext(plan, by_id, store, params.scoring.device, groups=groups,
                          embedding_model=params.utility.embedding_model)
        scored = score_plan(ctx, params, reporter)
        subset, identity = select_plan(ctx, params, scored)
        store.record_selection(version, subset.objective_name, plan.mode, subset.ids, subset.gains)
        if shared is not None:
            shared.push(store.root)
    reporter.phase(f"selected {len(subset.ids)} of {len(ids)} ({len(plan.kept)} kept)")
    record = _selection_record(plan, subset, version, identity, params)
    record["composition"] = composition(ids, subset.ids, groups)
    if scored.metrics:
        record["surrogate"] = scored.metrics.get("surrogate")
    write_json(Path(params.data.selected) / SELECTION_RECORD, record)
    metrics = {**plan.counts, **scored.counts.as_dict(), **(scored.metrics or {}), "mode": plan.mode,
               "version": version.name, "scorer": identity}
    extra = {key: metrics.pop(key) for key in ("blocks", "seconds")}  # outputs stay byte-identical
    write_json(Path(params.metrics) / METRICS["score"], metrics)
    return {**metrics, **extra}


def _selection_record(plan: Plan, subset: Subset, version, identity, params: Params) -> dict:
    added = subset.ids[len(plan.kept):]
    return {
        "version": {"name": version.name, "seq": version.seq, "members_hash": version.members_hash,
                    "n": version.n},
        "mode": plan.mode, "method": subset.method, "objective_name": subset.objective_name,
        "objective": subset.objective, "budget": params.selection.budget, "scorer": identity,
        "params": subset.params, "counts": plan.counts,
        "ids": subset.ids, "kept": plan.kept, "added": added,
        "gains": subset.gains[len(plan.kept):],
    }
