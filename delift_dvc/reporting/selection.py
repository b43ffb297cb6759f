"""What the selection report shows, gathered from what the stages already wrote: the recorded
subset (data.selected/selection.json), the prepared pool and its groups, the utility histogram
(plots) and, where LM values are stored, each sample's mean utility as a one-shot example."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from delift_dvc.config import Params
from delift_dvc.errors import InputError
from delift_dvc.selection.balance import balanced_quotas
from delift_dvc.stages.ingest import prepared_groups, prepared_pool
from delift_dvc.stages.outputs import PLOTS
from delift_dvc.stages.select import read_record
from delift_dvc.store import Store

FEW_SHARE = 0.5  # a group is flagged "few picks" below this share of its expected picks
SHOWN = 3  # picks and unpicked samples shown per group
SNIPPET = 160  # characters of a prompt or response shown


@dataclass(frozen=True)
class Shown:
    """One sample as the report shows it: rank in the subset (None: not picked), its gain when
    picked, its mean UF as a one-shot example over the stored pairs (None: no LM values)."""

    id: str
    source: str  # its own file and line
    prompt: str
    response: str
    rank: int | None
    gain: float | None
    mean_uf: float | None


@dataclass(frozen=True)
class GroupRow:
    """A group's pool and subset counts, its expected share of the picks and its flag."""

    group: str
    pool: int
    selected: int
    expected: float  # pool share x subset size (proportional), or its balanced quota (balanced)
    flag: str  # "", "no pick" or "few picks"
    picks: list[Shown] = field(default_factory=list)
    unpicked: list[Shown] = field(default_factory=list)


@dataclass(frozen=True)
class SelectionReport:
    method: str
    mode: str
    budget: float | int
    n_samples: int
    n_selected: int
    objective_name: str
    objective: float
    scorer: str | None
    version: str
    counts: dict  # n_new, n_kept, n_removed of the data update
    n_added: int
    n_kept: int
    gains: list[float]
    histogram: list[tuple[float, int]]  # (UF bin centre, pairs)
    groups: list[GroupRow]
    allocation: str = "proportional"  # what a group's expected picks follow (selection.allocation)

    @property
    def flagged(self) -> list[GroupRow]:
        return [g for g in self.groups if g.flag]


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"


def _histogram(path: Path) -> list[tuple[float, int]]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return [(float(r["uf"]), int(r["pairs"])) for r in csv.DictReader(handle)]


def _mean_uf(params: Params, record: dict) -> dict[str, float]:
    """id -> mean UF of the sample as the example, over this version's stored pairs."""
    if not record.get("scorer") or not Path(params.store_dir).is_dir():
        return {}
    with Store(params.store_dir) as store:
        rows = store.connect().execute(
            "SELECT example, AVG(uf) FROM utility WHERE scorer = ? AND version = ? GROUP BY example",
            [record["scorer"], record["version"]["name"]]).fetchall()
    return {example: float(value) for example, value in rows}


def flag(pool: int, selected: int, expected: float) -> str:
    """"no pick" for a group without a pick, "few picks" for fewer than FEW_SHARE of its
    expected share (when that share is at least one pick), else ""."""
    if pool and selected == 0:
        return "no pick"
    if expected >= 1 and selected < FEW_SHARE * expected:
        return "few picks"
    return ""


def gather(params: Params) -> SelectionReport:
    """The report of the subset recorded in data.selected, for the prepared pool it was chosen from."""
    record = read_record(params)
    pool, _ = prepared_pool(params)
    by_id = {s.id: s for s in pool}
    missing = [i for i in record["ids"] if i not in by_id]
    if missing:
        raise InputError(f"{Path(params.data.selected) / 'selection.json'}: {len(missing)} picks are not in "
                         f"{params.data.prepared} (run `dvc repro` again)")
    groups = prepared_groups(params, pool)
    means = _mean_uf(params, record)
    rank = {i: k for k, i in enumerate(record["ids"], start=1)}
    gains = record.get("gains") or []
    n_selected = len(record["ids"])

    def shown(sample_id: str) -> Shown:
        s, r = by_id[sample_id], rank.get(sample_id)
        gain = gains[r - 1] if r is not None and r <= len(gains) else None
        return Shown(s.id, s.source, _snippet(s.prompt), _snippet(s.response), r, gain, means.get(s.id))

    members: dict[str, list[str]] = {}
    for s in pool:  # pool order: sorted by id, so "typical" unpicked samples are content-hash draws
        members.setdefault(groups[s.id], []).append(s.id)
    rows = []
    names = sorted(members)
    allocation = record.get("params", {}).get("allocation", "proportional")
    shares = expected_picks([len(members[name]) for name in names], n_selected, allocation)
    for name, expected in zip(names, shares):
        ids = members[name]
        picked = sorted((i for i in ids if i in rank), key=rank.__getitem__)
        others = [i for i in ids if i not in rank]
        rows.append(GroupRow(name, len(ids), len(picked), expected, flag(len(ids), len(picked), expected),
                             [shown(i) for i in picked[:SHOWN]], [shown(i) for i in others[:SHOWN]]))
    return SelectionReport(
        method=record["method"], mode=record["mode"], budget=record["budget"], n_samples=len(pool),
        n_selected=n_selected, objective_name=record["objective_name"], objective=record["objective"],
        scorer=record.get("scorer"), version=record["version"]["name"], counts=record.get("counts", {}),
        n_added=len(record.get("added", [])), n_kept=len(record.get("kept", [])), gains=list(gains),
        histogram=_histogram(Path(params.plots) / PLOTS["utility_hist"]), groups=rows, allocation=allocation)


def expected_picks(sizes: list[int], n_selected: int, allocation: str = "proportional") -> list[float]:
    """Each group's expected picks of a subset of n_selected from groups of these sizes: its
    pool share times n_selected (proportional), or its balanced quota (balanced)."""
    total = sum(sizes)
    if allocation == "balanced" and total:
        labels = np.repeat(np.arange(len(sizes)), sizes)
        return [float(q) for q in balanced_quotas(labels, min(n_selected, total))]
    return [size / total * n_selected if total else 0.0 for size in sizes]


@dataclass(frozen=True)
class Quality:
    """What `delift-dvc compare` wrote into its --out folder: compare.md (the protocol, the
    quality table with spreads, the paired differences with their intervals and verdicts) and
    compare.png (quality against budget), shown on the page as they are."""

    markdown: str
    figure: bytes | None


def gather_quality(folder: str | Path) -> Quality:
    """The Quality of a compare --out folder; an InputError when it holds no compare.md."""
    folder = Path(folder)
    table = folder / "compare.md"
    if not table.is_file():
        raise InputError(f"--compare {folder}: no compare.md there (run `delift-dvc compare --out {folder}` first)")
    figure = folder / "compare.png"
    return Quality(table.read_text(encoding="utf-8"), figure.read_bytes() if figure.is_file() else None)
