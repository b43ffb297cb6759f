"""Low-level pieces of the store: segment schemas, deterministic Parquet bytes written
atomically, segment listing as DuckDB table expressions, and input validation.

Used by :mod:`delift_dvc.store.catalog`; nothing here knows about scorers' meaning or versions.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from delift_dvc.atomic import write_bytes
from delift_dvc.errors import InputError

__all__ = ["SCHEMAS", "CONTENT_ADDRESSED", "write_segment", "list_segments", "source_sql",
           "strings", "check_ids", "check_scorer", "check_values", "quote", "connect_memory"]

_S, _F, _I = pa.string(), pa.float64(), pa.int64()
SCHEMAS: dict[str, pa.Schema] = {
    "samples": pa.schema([("id", _S), ("prompt", _S), ("response", _S), ("source", _S)]),
    "baselines": pa.schema([("scorer", _S), ("target", _S), ("d0", _F)]),
    "pairs": pa.schema([("scorer", _S), ("target", _S), ("example", _S), ("d", _F)]),
    "versions": pa.schema([("version", _S), ("seq", _I), ("members_hash", _S), ("id", _S)]),
    "selections": pa.schema([("version", _S), ("seq", _I), ("objective", _S), ("mode", _S),
                             ("rank", _I), ("id", _S), ("gain", _F)]),
}
CONTENT_ADDRESSED = ("samples", "baselines", "pairs")  # named <sha256[:16]>.parquet
_SQL_TYPES = {_S: "VARCHAR", _F: "DOUBLE", _I: "BIGINT"}
_SEGMENT_NAME = re.compile(r"^[0-9a-f]{16}\.parquet$")
_SEQ_NAME = re.compile(r"^[0-9]{6,}\.parquet$")
_ID_RE, _SCORER_RE = "^[0-9a-f]{16}$", re.compile(r"^[0-9a-f]{64}$")
# Fixed writer options: the same rows always give the same bytes (for a given pyarrow).
_WRITE_OPTIONS = dict(compression="zstd", compression_level=3, use_dictionary=True,
                      write_statistics=True, version="2.6", data_page_version="1.0",
                      row_group_size=1 << 20)
_FLOAT_COLUMNS = ("d", "d0", "gain")  # byte-stream-split: compresses doubles a little better
_DUCKDB_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
                  "allow_community_extensions": False, "temp_directory": tempfile.gettempdir()}


# ------------------------------------------------------------------------------ validation


def strings(values: Sequence[str] | pa.Array, what: str) -> pa.Array:
    """`values` as an Arrow string array (InputError for non-strings or missing items)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    try:
        arr = values.cast(_S) if isinstance(values, pa.Array) else pa.array(values, type=_S)
    except (pa.ArrowException, TypeError, ValueError) as exc:
        raise InputError(f"{what}: expected strings ({str(exc).splitlines()[0][:120]})") from None
    if arr.null_count:
        raise InputError(f"{what}: item {pc.index(arr.is_null(), True).as_py()} is missing (null)")
    return arr


def check_ids(arr: pa.Array, what: str) -> None:
    """InputError unless every item is a sample id (16 lowercase hex digits)."""
    uniq = pc.unique(arr)
    ok = pc.match_substring_regex(uniq, _ID_RE)
    if len(uniq) and not pc.all(ok).as_py():
        bad = uniq[pc.index(ok, False).as_py()].as_py()
        raise InputError(f"{what}: {bad[:40]!r} is not a sample id (16 lowercase hex digits)")


def check_scorer(scorer: str) -> str:
    """`scorer`, or InputError unless it is a fingerprint (64 lowercase hex digits)."""
    if not isinstance(scorer, str) or not _SCORER_RE.match(scorer):
        raise InputError(f"scorer {str(scorer)[:70]!r} is not a fingerprint (64 lowercase hex digits)")
    return scorer


def check_values(values: np.ndarray, n: int, what: str) -> np.ndarray:
    """`values` as float64 [n], each a distance: finite and >= 0 (so never NaN; the l2 distance
    lies in [0, 1], the nll distance in nats/token has no upper bound)."""
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{what}: values are not numbers") from None
    if v.ndim != 1 or len(v) != n:
        raise InputError(f"{what}: {v.size} values for {n} keys (lengths must match)")
    bad = np.flatnonzero(~((v >= 0.0) & np.isfinite(v)))  # NaN fails both
    if len(bad):
        raise InputError(f"{what}: value {bad[0]} is {v[bad[0]]!r}, not a finite distance >= 0")
    return v


def quote(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


# ------------------------------------------------------------------------------ files


def write_segment(folder: Path, kind: str, table: pa.Table, name: str | None = None) -> Path:
    """Write `table` (rows already in their final order) into `folder` atomically (see
    :mod:`delift_dvc.atomic`). Named by content unless `name` is given (then an
    existing file is replaced); an existing file of the same content is left as it is."""
    schema = SCHEMAS[kind]
    table = table.select(schema.names).cast(schema).combine_chunks()
    split = [c for c in _FLOAT_COLUMNS if c in schema.names]
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, use_byte_stream_split=split, **_WRITE_OPTIONS)
    data = sink.getvalue()
    final = folder / (name or hashlib.sha256(data).hexdigest()[:16] + ".parquet")
    if name is None and final.exists():
        return final
    write_bytes(final, data.to_pybytes())
    return final


def list_segments(folder: Path, kind: str) -> list[Path]:
    """Complete segment files of `kind` in `folder`, sorted by name (temp files never match)."""
    pattern = _SEGMENT_NAME if kind in CONTENT_ADDRESSED else _SEQ_NAME
    try:
        names = sorted(e.name for e in os.scandir(folder) if pattern.match(e.name))
    except FileNotFoundError:
        return []
    return [folder / name for name in names]


def source_sql(kind: str, files: Sequence[Path]) -> str:
    """A DuckDB table expression over `files` with the columns of `kind` (empty if none)."""
    if files:
        listed = ", ".join(quote(str(f)) for f in files)
        return f"read_parquet([{listed}], hive_partitioning = false)"
    cols = ", ".join(f"CAST(NULL AS {_SQL_TYPES[f.type]}) AS {f.name}" for f in SCHEMAS[kind])
    return f"(SELECT {cols} LIMIT 0)"


def connect_memory() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that never installs or loads extensions."""
    return duckdb.connect(":memory:", config=dict(_DUCKDB_CONFIG))
