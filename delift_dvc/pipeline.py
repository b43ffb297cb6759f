"""What each DVC stage runs: ingest -> score (plan, score missing pairs, select) -> select (export).

The `score` stage also runs the (cheap) selection and records it in the store, because the next
version's plan needs this version's subset and DVC forbids a later stage's output feeding an
earlier stage. `select` exports that subset in the input's shape with metrics and plots.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from . import versions
from .config import Params
from .errors import InputError
from .planning import Plan, plan_selection, run_plan
from .samples import Sample, load_samples, read_samples, write_samples
from .selection import Subset
from .store import Store
from .utility import ScoreCounts, ensure_scores, store_samples, utility_block

PREPARED_TRAIN = "train.jsonl"
PREPARED_TARGETS = "target_set.jsonl"
PREPARED_TEST = "test.jsonl"
SELECTION_RECORD = "selection.json"
SELECTED_TRAIN = "train.jsonl"


def write_json(path: str | Path, payload: dict) -> None:
    """Write JSON atomically (sorted keys, 2-space indent, trailing newline)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
    os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_scorer(params: Params, progress: bool = False):
    from .scoring import Scorer

    s = params.scoring
    return Scorer(
        None if s.model == "embedded" else s.model, dtype=s.dtype, device=s.device,
        max_length=s.max_length, template=s.template, example_template=s.example_template,
        overflow=s.overflow, batch_tokens=s.batch_tokens, progress=progress,
    )


# -- ingest -------------------------------------------------------------------------------------
def held_out(sample_id: str, fraction: float, seed: int) -> bool:
    """Whether a sample belongs to the held-out test split: a hash of (seed, content id) below
    `fraction`, so the split of a sample never changes as the data set grows."""
    digest = hashlib.sha256(f"{seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < fraction


def run_ingest(params: Params) -> dict:
    """data.train (+ data.target_set, data.test) -> data/prepared/*.jsonl: validated,
    de-duplicated, sorted by id, each record in its original shape. Without data.test, a
    data.holdout fraction of data.train (by content hash) becomes test.jsonl instead of pool."""
    data = params.data
    prepared = Path(data.prepared)
    report = read_samples(data.train, split=data.split)
    pool = sorted(report.samples, key=lambda s: s.id)
    if data.test:
        test = sorted(load_samples(data.test), key=lambda s: s.id)
        in_test = {s.id for s in test}
        pool = [s for s in pool if s.id not in in_test]  # never train on a test sample
    else:
        test = [s for s in pool if held_out(s.id, data.holdout, data.holdout_seed)]
        pool = [s for s in pool if not held_out(s.id, data.holdout, data.holdout_seed)]
    if not pool:
        raise InputError(f"{data.train}: no training samples left after holding out the test set")
    write_samples(pool, prepared / PREPARED_TRAIN)
    test_path = prepared / PREPARED_TEST
    if test:
        write_samples(test, test_path)
    elif test_path.exists():
        test_path.unlink()
    summary = {"n_records": report.n_records, "n_duplicates": report.n_duplicates,
               "n_samples": len(pool), "n_test": len(test)}
    if params.data.target_set:
        targets = load_samples(params.data.target_set)
        write_samples(sorted(targets, key=lambda s: s.id), prepared / PREPARED_TARGETS)
        summary["n_target_set"] = len(targets)
    return summary


def _prepared(params: Params) -> tuple[list[Sample], list[Sample]]:
    prepared = Path(params.data.prepared)
    if not (prepared / PREPARED_TRAIN).is_file():
        raise InputError(f"{prepared / PREPARED_TRAIN}: not found (run `delift-dvc ingest` first)")
    pool = load_samples(prepared / PREPARED_TRAIN)
    targets = load_samples(prepared / PREPARED_TARGETS) if params.data.target_set else []
    return pool, targets


# -- score --------------------------------------------------------------------------------------
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


def run_score(params: Params, progress: bool = True) -> dict:
    """Record this data version, plan the selection, score only what the store lacks, select,
    and record the subset. Writes the selection record and metrics/score.json."""
    pool, targets = _prepared(params)
    sel = params.selection
    by_id = {s.id: s for s in [*pool, *targets]}
    with Store(params.store, write=True) as store:
        store_samples(store, by_id)
        ids = [s.id for s in pool]
        version = store.record_version(_unique_name(store, params.data.train, ids), ids)
        previous = previous_selection(store, version.seq)
        plan = plan_selection(ids, sel.budget, previous=previous, target_ids=[t.id for t in targets],
                              refresh=sel.mode == "refresh")
        block, counts, fingerprint = kernel_block(store, params, plan, by_id, progress)
        subset = run_plan(plan, sel.method, block, eta=sel.eta, nu=sel.nu, scaling=sel.scaling,
                          stop_at_zero_gain=sel.stop_at_zero_gain, seed=sel.seed)
        store.record_selection(version, subset.objective_name, plan.mode, subset.ids, subset.gains)
    record = _selection_record(plan, subset, version, fingerprint, params)
    write_json(Path(params.data.selected) / SELECTION_RECORD, record)
    metrics = {**plan.counts, **counts.as_dict(), "mode": plan.mode, "version": version.name,
               "scorer": fingerprint}
    seconds = metrics.pop("seconds")  # outputs stay byte-identical across identical runs
    write_json(Path(params.metrics) / "score.json", metrics)
    return {**metrics, "seconds": seconds}


def kernel_block(store: Store, params: Params, plan: Plan, by_id: dict, progress: bool,
                 score_missing: bool = True):
    """(block [|ground|, |examples|] or None, ScoreCounts, kernel identity) for `plan`: LM
    utilities from the store (scoring what it lacks unless score_missing is False), or
    sentence-embedding similarities for delift_se, or None for random/full."""
    method = params.selection.method
    if method in ("random", "full"):
        return None, ScoreCounts(), None
    if method == "delift_se":
        return similarity_block(plan, by_id, params.scoring.device), ScoreCounts(), "all-MiniLM-L6-v2"
    scorer = make_scorer(params)
    candidates = None
    if params.utility.pairs == "knn" and plan.ground:
        from .sparse import knn_candidates

        similarity = similarity_block(plan, by_id, params.scoring.device)
        candidates = knn_candidates(plan.ground, plan.examples, similarity, params.utility.k)
    counts = ScoreCounts()
    if score_missing:
        counts = ensure_scores(store, scorer, by_id, plan.ground, [(plan.ground, plan.examples)],
                               segment_pairs=params.scoring.segment_pairs, progress=progress,
                               candidates=[candidates])
    block = utility_block(store, scorer.fingerprint, plan.ground, plan.examples, candidates)
    return block, counts, scorer.fingerprint


def similarity_block(plan: Plan, by_id: dict, device: str) -> np.ndarray:
    """Cosine similarity [|ground|, |examples|] of all-MiniLM-L6-v2 sentence embeddings."""
    from .embeddings import Embedder, cosine_kernel, sample_text

    vectors = Embedder(device=device).encode(
        [sample_text(by_id[i].prompt, by_id[i].response) for i in plan.examples])
    position = {e: k for k, e in enumerate(plan.examples)}
    return cosine_kernel(vectors[[position[i] for i in plan.ground]], vectors)


def _selection_record(plan: Plan, subset: Subset, version, fingerprint, params: Params) -> dict:
    added = subset.ids[len(plan.kept):]
    return {
        "version": {"name": version.name, "seq": version.seq, "members_hash": version.members_hash,
                    "n": version.n},
        "mode": plan.mode, "method": subset.method, "objective_name": subset.objective_name,
        "objective": subset.objective, "budget": params.selection.budget, "scorer": fingerprint,
        "params": subset.params, "counts": plan.counts,
        "ids": subset.ids, "kept": plan.kept, "added": added,
        "gains": subset.gains[len(plan.kept):],
    }


# -- select -------------------------------------------------------------------------------------
def run_select(params: Params) -> dict:
    """Export the recorded subset: data/selected/train.jsonl (input shape, selection order),
    metrics/select.json, plots/gains.csv and plots/utility_hist.csv."""
    pool, _ = _prepared(params)
    by_id = {s.id: s for s in pool}
    record_path = Path(params.data.selected) / SELECTION_RECORD
    if not record_path.is_file():
        raise InputError(f"{record_path}: not found (run `delift-dvc score` first)")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    if record["version"]["members_hash"] != versions.members_hash(by_id):
        raise InputError(f"{record_path}: recorded for other data (run `delift-dvc score` again)")
    write_samples([by_id[i] for i in record["ids"]], Path(params.data.selected) / SELECTED_TRAIN)
    metrics = {
        "mode": record["mode"], "method": record["method"], "objective_name": record["objective_name"],
        "n_selected": len(record["ids"]), "n_added": len(record["added"]), "n_kept": len(record["kept"]),
        "n_samples": len(pool), "objective": record["objective"], "budget": record["budget"],
    }
    write_json(Path(params.metrics) / "select.json", metrics)
    plots = Path(params.plots)
    _write_csv(plots / "gains.csv", ["step", "gain", "cumulative"], _gain_rows(record["gains"]))
    hist = _utility_histogram(params, record) if record["scorer"] and record["method"] == "delift" else []
    _write_csv(plots / "utility_hist.csv", ["uf", "pairs"], hist)
    return metrics


def _gain_rows(gains: Sequence[float]) -> list[tuple]:
    total, rows = 0.0, []
    for step, gain in enumerate(gains, start=1):
        total += gain
        rows.append((step, round(gain, 6), round(total, 6)))
    return rows


def _utility_histogram(params: Params, record: dict, bins: int = 40) -> list[tuple]:
    """Counts of UF over the pairs stored among this version's samples, bins of width 2/bins."""
    with Store(params.store) as store:
        con = store.connect()
        rows = con.execute(
            "SELECT uf FROM utility WHERE scorer = ? AND version = ?",
            [record["scorer"], record["version"]["name"]],
        ).fetchnumpy()["uf"]
    counts, edges = np.histogram(np.asarray(rows, dtype=np.float64), bins=bins, range=(-1.0, 1.0))
    return [(round(float((edges[k] + edges[k + 1]) / 2), 4), int(c)) for k, c in enumerate(counts)]


def _write_csv(path: Path, header: list[str], rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(header)] + [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
