"""Read-only views of a store for people and scripts: status, version diffs, SQL."""

from __future__ import annotations

from pathlib import Path

from delift_dvc.data.versions import diff_ids
from delift_dvc.errors import InputError
from delift_dvc.store import Store


def _open(root: str) -> Store:
    if not Path(root).is_dir():
        raise InputError(f"{root}: no store here (run `dvc repro` or `delift-dvc score` first)")
    return Store(root)


def store_status(root: str) -> dict:
    """Store totals and, per version, its size and subset size."""
    with _open(root) as store:
        stats = store.stats()
        rows = []
        for info in store.versions():
            chosen = store.selection(info.seq)
            rows.append({"seq": info.seq, "name": info.name, "n": info.n,
                         "members_hash": info.members_hash,
                         "n_selected": None if chosen is None else len(chosen[0])})
    return {"store": str(root), **stats, "versions": rows}


def format_status(report: dict) -> str:
    lines = [
        f"store {report['store']}: {report.get('n_samples', 0)} samples, "
        f"{report.get('n_baselines', 0)} baselines, {report.get('n_pairs', 0)} pairs, "
        f"{report.get('n_segments', 0)} segments, {report.get('bytes', 0)} bytes",
        f"{'seq':>4}  {'version':<24} {'samples':>8} {'selected':>9}",
    ]
    for row in report["versions"]:
        chosen = "-" if row["n_selected"] is None else str(row["n_selected"])
        lines.append(f"{row['seq']:>4}  {row['name']:<24} {row['n']:>8} {chosen:>9}")
    return "\n".join(lines)


def _find(store: Store, key: str):
    found = [v for v in store.versions() if key in (v.name, str(v.seq))]
    if not found:
        names = ", ".join(f"{v.seq}:{v.name}" for v in store.versions()) or "none"
        raise InputError(f"version '{key}': not in the store (versions: {names})")
    return found[-1]


def version_diff(root: str, a: str, b: str) -> dict:
    """Samples added/removed/kept from version A to B, and how their subsets differ."""
    with _open(root) as store:
        va, vb = _find(store, a), _find(store, b)
        data = diff_ids(store.version_ids(va.seq), store.version_ids(vb.seq))
        sa, sb = store.selection(va.seq), store.selection(vb.seq)
    report = {"a": va.name, "b": vb.name, "data": data.counts(),
              "added": data.added, "removed": data.removed}
    if sa is not None and sb is not None:
        subset = diff_ids(sa[0], sb[0])
        report["subset"] = subset.counts()
        report["subset_added"], report["subset_removed"] = subset.added, subset.removed
    return report


def format_diff(report: dict) -> str:
    d = report["data"]
    lines = [f"{report['a']} -> {report['b']}: data +{d['added']} -{d['removed']} ={d['kept']}"]
    if "subset" in report:
        s = report["subset"]
        lines.append(f"subset: +{s['added']} -{s['removed']} ={s['kept']}")
    return "\n".join(lines)


def run_sql(root: str, query: str, as_csv: bool = False) -> str:
    """Run `query` on the store's catalog; a table (or CSV) as text."""
    import duckdb

    with _open(root) as store:
        con = store.connect()
        try:
            relation = con.sql(query)
        except duckdb.Error as exc:
            raise InputError(f"sql: {str(exc).splitlines()[0]}") from None
        if relation is None:
            return ""
        columns = relation.columns
        rows = relation.fetchall()
    if as_csv:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return buffer.getvalue()
    widths = [max([len(str(c))] + [len(str(r[k])) for r in rows]) for k, c in enumerate(columns)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines) + "\n"
