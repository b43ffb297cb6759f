"""The utility store: immutable, content-addressed Parquet segments queried with DuckDB.

Layout under the store root (a DVC output with ``persist: true``)::

    samples/<h>.parquet      id, prompt, response, source            sorted by id
    baselines/<h>.parquet    scorer, target, d0                      sorted by scorer, target
    pairs/<h>.parquet        scorer, target, example, d              sorted by scorer, target, example
    versions/<seq>.parquet   version, seq, members_hash, id          one row per member, sorted by id
    selections/<seq>.parquet version, seq, objective, mode, rank, id, gain   in rank order

``<h>`` is the first 16 hex digits of the sha256 of the file's bytes; ``<seq>`` is ``%06d``.
A segment appears under its final name only once complete. A value is written once: values
already stored are dropped from later writes, so every (scorer, target[, example]) key is
stored exactly once. DuckDB runs in memory only; the store holds Parquet files and ``.lock``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from delift_dvc.atomic import remove_temp_files
from delift_dvc.errors import InputError
from delift_dvc.hashing import members_hash
from delift_dvc.store.lock import WriteLock
from delift_dvc.store.segments import (CONTENT_ADDRESSED, SCHEMAS, check_ids, check_scorer,
                                       check_values, connect_memory, list_segments, quote,
                                       source_sql, strings, write_segment)

__all__ = ["Store", "VersionInfo"]

Pairs = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class VersionInfo:
    """A recorded data set version: its name, sequence number, size and member hash."""

    name: str
    seq: int
    n: int
    members_hash: str


def _index_table(ids: Sequence[str], what: str, col: str) -> pa.Table:
    return pa.table({"id": strings(ids, what), col: pa.array(np.arange(len(ids), dtype=np.int64))})


class Store:
    """A directory of Parquet segments holding samples, utilities, versions and selections."""

    def __init__(self, root: str | os.PathLike, *, write: bool = False) -> None:
        """Open `root` (a missing root reads as empty); `write=True` takes the exclusive lock,
        creates the folders and removes temp files that a killed writer left behind."""
        self.root = Path(root)
        self.write = write
        self._lock: WriteLock | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"{self.root}: store path exists and is not a directory")
        if write:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock = WriteLock(self.root)
            for kind in SCHEMAS:
                (self.root / kind).mkdir(exist_ok=True)
            remove_temp_files([self.root, *(self.root / kind for kind in SCHEMAS)])

    def close(self) -> None:
        """Close the query connection and release the write lock (idempotent)."""
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- catalog ----------------------------------------------------------------------------
    def _files(self, kind: str) -> list[Path]:
        return list_segments(self.root / kind, kind)

    def _src(self, kind: str) -> str:
        """A SQL table expression over the segments of `kind` present now."""
        return source_sql(kind, self._files(kind))

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A new in-memory DuckDB connection with views samples, baselines, pairs, versions,
        version_members, selections and utility(scorer, version, seq, target, example, uf)
        over the segments present now (a snapshot: connect again to see later writes)."""
        views = {
            "samples": f"SELECT * FROM {self._src('samples')}",
            "baselines": f"SELECT * FROM {self._src('baselines')}",
            "pairs": f"SELECT * FROM {self._src('pairs')}",
            "version_members": f"SELECT version, seq, id FROM {self._src('versions')}",
            "versions": "SELECT version AS name, seq, count(*) AS n, any_value(members_hash) AS "
                        f"members_hash FROM {self._src('versions')} GROUP BY version, seq ORDER BY seq",
            "selections": f"SELECT * FROM {self._src('selections')}",
            "utility": "SELECT p.scorer, mt.version, mt.seq, p.target, p.example, b.d0 - p.d AS uf "
                       "FROM pairs p JOIN baselines b ON b.scorer = p.scorer AND b.target = p.target "
                       "JOIN version_members mt ON mt.id = p.target "
                       "JOIN version_members me ON me.id = p.example AND me.seq = mt.seq",
        }
        con = connect_memory()
        for name, sql in views.items():
            con.execute(f"CREATE VIEW {name} AS {sql}")
        return con

    @property
    def _db(self) -> duckdb.DuckDBPyConnection:
        """The store's own in-memory connection for internal queries."""
        if self._con is None:
            self._con = connect_memory()
        return self._con

    def _run(self, sql: str, arrow: bool, **tables: pa.Table) -> pa.Table | dict:
        """Run `sql` with Arrow `tables` registered under their names: an Arrow table, or
        (arrow=False) a dict of numpy columns."""
        try:
            for name, table in tables.items():
                self._db.register(name, table)
            if arrow:
                return self._db.sql(sql).to_arrow_table()
            return self._db.execute(sql).fetchnumpy()
        finally:
            for name in tables:
                self._db.unregister(name)

    def _rows(self, sql: str) -> list[tuple]:
        return self._db.execute(sql).fetchall()

    def _require_write(self) -> None:
        if not self.write:
            raise InputError(f"{self.root}: store is open read-only; open it with write=True to write")

    # -- samples ----------------------------------------------------------------------------
    def add_samples(self, ids: Sequence[str], prompts: Sequence[str], responses: Sequence[str],
                    sources: Sequence[str]) -> int:
        """Store the samples whose id is not stored yet (first occurrence wins); how many."""
        self._require_write()
        cols = {"id": strings(ids, "sample ids"), "prompt": strings(prompts, "prompts"),
                "response": strings(responses, "responses"), "source": strings(sources, "sources")}
        if len({len(c) for c in cols.values()}) > 1:
            sizes = ", ".join(f"{k} {len(v)}" for k, v in cols.items())
            raise InputError(f"add_samples: lengths differ ({sizes})")
        check_ids(cols["id"], "sample ids")
        blk = pa.table({"k": pa.array(np.arange(len(cols["id"]), dtype=np.int64)), **cols})
        new = self._run(
            "SELECT * EXCLUDE (k) FROM (SELECT DISTINCT ON (id) * FROM _blk ORDER BY id, k) b "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self._src('samples')} s WHERE s.id = b.id) ORDER BY id",
            True, _blk=blk)
        if new.num_rows:
            write_segment(self.root / "samples", "samples", new)
        return new.num_rows

    def count_samples(self) -> int:
        """How many samples are stored."""
        return int(self._rows(f"SELECT count(*) FROM {self._src('samples')}")[0][0])

    # -- values -----------------------------------------------------------------------------
    def _stored(self, kind: str, scorer: str, targets: Sequence[str],
                examples: Sequence[str] | None, values: bool) -> tuple[np.ndarray, np.ndarray]:
        """Flat indices (t * len(examples) + e, or t) of the stored values, and the values."""
        check_scorer(scorer)
        if len(targets) == 0 or (examples is not None and len(examples) == 0):
            return np.zeros(0, np.int64), np.zeros(0)
        tables = {"_t": _index_table(targets, "targets", "i")}
        flat, join = "t.i", ""
        if examples is not None:
            tables["_e"] = _index_table(examples, "examples", "j")
            flat, join = f"t.i * {len(examples)} + e.j", "JOIN _e e ON p.example = e.id"
        lo, hi = pc.min_max(tables["_t"]["id"]).values()
        value = f", p.{'d' if kind == 'pairs' else 'd0'} AS v" if values else ""
        res = self._run(
            f"SELECT {flat} AS f{value} FROM {self._src(kind)} p JOIN _t t ON p.target = t.id "
            f"{join} WHERE p.scorer = {quote(scorer)} AND p.target BETWEEN {quote(lo.as_py())} "
            f"AND {quote(hi.as_py())}", False, **tables)
        return (np.asarray(res["f"], dtype=np.int64),
                np.asarray(res["v"], dtype=np.float64) if values else np.zeros(0))

    def read_baselines(self, scorer: str, targets: Sequence[str]) -> np.ndarray:
        """d0 for each target: float64 [n], NaN where not stored."""
        out = np.full(len(targets), np.nan)
        flat, vals = self._stored("baselines", scorer, targets, None, True)
        out[flat] = vals
        return out

    def read_pairs(self, scorer: str, targets: Sequence[str], examples: Sequence[str]) -> np.ndarray:
        """d[target, example]: float64 [len(targets), len(examples)], NaN where not stored."""
        out = np.full(len(targets) * len(examples), np.nan)
        flat, vals = self._stored("pairs", scorer, targets, examples, True)
        out[flat] = vals
        return out.reshape(len(targets), len(examples))

    def read_pairs_sparse(self, scorer: str, targets: Sequence[str],
                          examples: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored d among targets x examples as (target_idx int64 [m], example_idx int64 [m],
        d float64 [m]), sorted by target then example: one DuckDB join read through Arrow,
        O(m) memory, never a len(targets) x len(examples) array."""
        flat, vals = self._stored("pairs", scorer, targets, examples, True)
        order = np.argsort(flat, kind="stable")
        flat, vals = flat[order], vals[order]
        ne = max(1, len(examples))
        return flat // ne, flat % ne, vals

    def missing_baselines(self, scorer: str, targets: Sequence[str]) -> list[str]:
        """The targets without a stored d0 for `scorer`, in input order."""
        targets = list(targets)
        flat, _ = self._stored("baselines", scorer, targets, None, False)
        mask = np.ones(len(targets), dtype=bool)
        mask[flat] = False
        return [str(targets[i]) for i in np.flatnonzero(mask)]

    def missing_pairs(self, scorer: str, targets: Sequence[str], examples: Sequence[str],
                      candidates: Pairs | None = None) -> Pairs:
        """(target_idx, example_idx), int64, of the pairs without a stored d for `scorer`:
        among all targets x examples, or only among `candidates` (index arrays); sorted by
        target_idx then example_idx, without repeats."""
        nt, ne = len(targets), len(examples)
        stored, _ = self._stored("pairs", scorer, targets, examples, False)
        if candidates is None:
            mask = np.ones(nt * ne, dtype=bool)
            mask[stored] = False
            flat = np.flatnonzero(mask)
        else:
            ti, ei = (np.asarray(c, dtype=np.int64).ravel() for c in candidates)
            if len(ti) != len(ei):
                raise InputError(f"candidates: {len(ti)} target indices but {len(ei)} example indices")
            if len(ti) and (ti.min() < 0 or ti.max() >= nt or ei.min() < 0 or ei.max() >= ne):
                raise InputError(f"candidates: an index lies outside {nt} targets x {ne} examples")
            flat = np.unique(ti * ne + ei)
            flat = flat[~np.isin(flat, stored)]
        if ne == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return (flat // ne).astype(np.int64), (flat % ne).astype(np.int64)

    def _write_values(self, kind: str, scorer: str, keys: dict[str, Sequence[str]],
                      values: np.ndarray) -> Path | None:
        """Write the (scorer, *keys) -> value rows not stored yet as one sorted segment."""
        self._require_write()
        check_scorer(scorer)
        cols = {k: strings(v, f"{kind}: {k}s") for k, v in keys.items()}
        n = len(cols["target"])
        if any(len(c) != n for c in cols.values()):
            sizes = ", ".join(f"{k}s {len(c)}" for k, c in cols.items())
            raise InputError(f"{kind}: lengths differ ({sizes})")
        vcol = "d" if kind == "pairs" else "d0"
        v = check_values(values, n, kind)
        for k, c in cols.items():
            check_ids(c, f"{kind}: {k}s")
        if n == 0:
            return None
        names = ", ".join(cols)
        blk = pa.table({"k": pa.array(np.arange(n, dtype=np.int64)), **cols, vcol: v})
        table = self._run(f"SELECT {quote(scorer)} AS scorer, * FROM _blk ORDER BY {names}",
                          True, _blk=blk)
        same = None
        for k in cols:  # rows are sorted, so a repeated key sits next to itself
            col = table[k].combine_chunks()
            eq = pc.equal(col[:-1], col[1:])
            same = eq if same is None else pc.and_(same, eq)
        if n > 1 and pc.any(same).as_py():
            row = table.slice(pc.index(same, True).as_py(), 1).to_pylist()[0]
            raise InputError(f"{kind}: the same key is given twice ({', '.join(row[k] for k in cols)})")
        lo, hi = pc.min_max(cols["target"]).values()
        on = " AND ".join(f"p.{k} = b.{k}" for k in cols)
        stored = self._run(
            f"SELECT b.k FROM {self._src(kind)} p JOIN _blk b ON {on} WHERE p.scorer = {quote(scorer)} "
            f"AND p.target BETWEEN {quote(lo.as_py())} AND {quote(hi.as_py())}", False, _blk=blk)["k"]
        if len(stored):
            table = table.filter(pc.invert(pc.is_in(table["k"], pa.array(stored, pa.int64()))))
        return write_segment(self.root / kind, kind, table) if table.num_rows else None

    def write_baselines(self, scorer: str, targets: Sequence[str], d0: np.ndarray) -> Path | None:
        """Store d0[k] for targets[k] (already stored values are kept); the segment or None."""
        return self._write_values("baselines", scorer, {"target": targets}, d0)

    def write_pairs(self, scorer: str, targets: Sequence[str], examples: Sequence[str],
                    d: np.ndarray) -> Path | None:
        """Store d[k] for (targets[k], examples[k]) as one segment (already stored values are
        kept); the segment or None. InputError for values that are not finite and >= 0 (NaN included),
        repeated pairs, lengths that differ or a read-only store."""
        return self._write_values("pairs", scorer, {"target": targets, "example": examples}, d)

    def _count(self, kind: str, scorer: str | None) -> int:
        where = f" WHERE scorer = {quote(check_scorer(scorer))}" if scorer is not None else ""
        return int(self._rows(f"SELECT count(*) FROM {self._src(kind)}{where}")[0][0])

    def count_pairs(self, scorer: str | None = None) -> int:
        """Stored d values of `scorer` (of all scorers if None)."""
        return self._count("pairs", scorer)

    def count_baselines(self, scorer: str | None = None) -> int:
        """Stored d0 values of `scorer` (of all scorers if None)."""
        return self._count("baselines", scorer)

    # -- versions and selections ------------------------------------------------------------
    def _seq_file(self, kind: str, seq: int) -> Path:
        return self.root / kind / f"{int(seq):06d}.parquet"

    def _version_info(self, path: Path) -> VersionInfo:
        name, seq, n, h = self._rows(f"SELECT version, seq, count(*), any_value(members_hash) "
                                     f"FROM read_parquet({quote(str(path))}) GROUP BY ALL")[0]
        return VersionInfo(name, int(seq), int(n), h)

    def record_version(self, name: str, ids: Sequence[str]) -> VersionInfo:
        """Record the member set `ids` as version seq = latest + 1, unless the latest version
        has the same members: then that one is returned and nothing is written."""
        self._require_write()
        if not isinstance(name, str) or not name.strip() or "\n" in name:
            raise InputError(f"version name {name!r} must be a non-empty one-line string")
        arr = strings(ids, "version members")
        check_ids(arr, "version members")
        members = sorted(set(arr.to_pylist()))
        if not members:
            raise InputError(f"version {name!r}: no member samples")
        digest = members_hash(members)
        latest = self.latest_version()
        if latest is not None and latest.members_hash == digest:
            return latest
        seq, n = (latest.seq if latest else 0) + 1, len(members)
        table = pa.table({"version": [name] * n, "seq": pa.array(np.full(n, seq, dtype=np.int64)),
                          "members_hash": [digest] * n, "id": members})
        write_segment(self.root / "versions", "versions", table, name=f"{seq:06d}.parquet")
        return VersionInfo(name, seq, n, digest)

    def versions(self) -> list[VersionInfo]:
        """Every recorded version, ascending seq."""
        rows = self._rows(f"SELECT version, seq, count(*), any_value(members_hash) FROM "
                          f"{self._src('versions')} GROUP BY version, seq ORDER BY seq")
        return [VersionInfo(name, int(seq), int(n), h) for name, seq, n, h in rows]

    def latest_version(self) -> VersionInfo | None:
        """The version with the highest seq, or None."""
        files = self._files("versions")
        return self._version_info(files[-1]) if files else None

    def version_ids(self, seq: int) -> list[str]:
        """The member ids of version `seq`, sorted."""
        path = self._seq_file("versions", seq)
        if not path.exists():
            raise InputError(f"{self.root}: no version {seq} is recorded")
        return pq.read_table(path, columns=["id"])["id"].to_pylist()

    def record_selection(self, version: VersionInfo, objective: str, mode: str,
                         ids: Sequence[str], gains: Sequence[float]) -> None:
        """Store the selection of `version` (ids in selection order, their gains), replacing
        any earlier selection of that version."""
        self._require_write()
        path = self._seq_file("versions", version.seq)
        if not path.exists() or self._version_info(path).members_hash != version.members_hash:
            raise InputError(f"{self.root}: version {version.seq} ({version.name}) is not recorded here")
        arr = strings(ids, "selected ids")
        g = np.asarray(gains, dtype=np.float64).ravel()
        if len(g) != len(arr):
            raise InputError(f"selection: {len(arr)} ids but {len(g)} gains")
        if len(pc.unique(arr)) != len(arr):
            raise InputError("selection: an id is selected twice")
        outside = set(arr.to_pylist()) - set(self.version_ids(version.seq))
        if outside:
            raise InputError(f"selection: {min(outside)!r} is not a member of version {version.seq}")
        n = len(arr)
        table = pa.table({"version": [version.name] * n, "objective": [str(objective)] * n,
                          "seq": pa.array(np.full(n, version.seq, dtype=np.int64)),
                          "mode": [str(mode)] * n, "rank": pa.array(np.arange(n, dtype=np.int64)),
                          "id": arr, "gain": g})
        write_segment(self.root / "selections", "selections", table, name=f"{version.seq:06d}.parquet")

    def selection(self, seq: int) -> tuple[list[str], np.ndarray] | None:
        """The selection of version `seq` (ids in rank order, gains), or None."""
        path = self._seq_file("selections", seq)
        if not path.exists():
            return None
        table = pq.read_table(path, columns=["rank", "id", "gain"]).sort_by("rank")
        return table["id"].to_pylist(), table["gain"].to_numpy().astype(np.float64)

    def latest_selection(self) -> tuple[VersionInfo, list[str], np.ndarray] | None:
        """The most recent version that has a selection, with its ids and gains; or None."""
        for path in reversed(self._files("selections")):
            seq = int(path.name.split(".")[0])
            version, found = self._seq_file("versions", seq), self.selection(seq)
            if version.exists() and found is not None:
                return self._version_info(version), *found
        return None

    def stats(self) -> dict:
        """Counts, segment files and their bytes, and per-scorer value counts."""
        files = {kind: self._files(kind) for kind in SCHEMAS}
        scorers: dict[str, dict[str, int]] = {}
        for kind in ("baselines", "pairs"):
            for scorer, n in self._rows(f"SELECT scorer, count(*) FROM {self._src(kind)} "
                                        "GROUP BY scorer ORDER BY scorer"):
                scorers.setdefault(scorer, {"baselines": 0, "pairs": 0})[kind] = int(n)
        return {
            "n_samples": self.count_samples(),
            "n_baselines": sum(s["baselines"] for s in scorers.values()),
            "n_pairs": sum(s["pairs"] for s in scorers.values()),
            "n_versions": len(files["versions"]),
            "n_selections": len(files["selections"]),
            "n_segments": sum(len(files[k]) for k in CONTENT_ADDRESSED),
            "segments": {kind: len(paths) for kind, paths in files.items()},
            "bytes": sum(p.stat().st_size for paths in files.values() for p in paths),
            "scorers": scorers,
        }
