"""Read instruction-tuning samples from files into (id, prompt, response) records.

The record shapes and the content id are :mod:`delift_dvc.data.records`' (re-exported here);
`fields` renames their keys (params.yaml's data.fields). Accepted inputs: .jsonl/.ndjson, .json (a list),
.parquet, .csv, a Hugging Face ``save_to_disk`` directory, or a plain directory of such
files. Every bad input raises :class:`InputError` with a one-line message naming the file
and, where there is one, the line, row or item.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from delift_dvc.atomic import write_text
from delift_dvc.data.records import (EOT_MARKER, FIELD_NAMES, SHAREGPT_ROLES, Sample, _err, _tname, sample_id,
                                     to_sample)

__all__ = ["Sample", "LoadReport", "sample_id", "load_samples", "read_samples", "to_sample",
           "write_samples", "EOT_MARKER", "FIELD_NAMES", "SHAREGPT_ROLES", "FILE_EXTENSIONS"]

PathLike = str | os.PathLike[str]
Rows = Iterator[tuple[str, Any]]

FILE_EXTENSIONS = (".jsonl", ".ndjson", ".json", ".parquet", ".csv")
_HF_MARKERS = ("dataset_info.json", "dataset_dict.json", "state.json")


@dataclass(frozen=True)
class LoadReport:
    """Samples read from a path (unique by id, first-seen order) and what was read."""

    samples: list[Sample]
    n_records: int
    n_duplicates: int
    paths: list[str]


# --------------------------------------------------------------------------- readers


def _decode(data: bytes, path: str) -> str:
    """UTF-8 decode (BOM dropped); a bad byte is reported with its line number."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _err(f"{path}:{line}", "not valid UTF-8") from None


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"malformed JSON ({exc.msg} at column {exc.colno})"
    if isinstance(exc, RecursionError):
        return "malformed JSON (nested too deeply)"
    return f"malformed JSON ({exc})"


def _jsonl_rows(path: str) -> Rows:
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if n == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8):]
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _err(f"{path}:{n}", "not valid UTF-8") from None
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except (ValueError, RecursionError) as exc:
                raise _err(f"{path}:{n}", _json_error(exc)) from None
            yield f"{path}:{n}", value


def _json_rows(path: str) -> Rows:
    with open(path, "rb") as fh:
        text = _decode(fh.read(), path)
    if not text.strip():
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _err(f"{path}:{exc.lineno}", _json_error(exc)) from None
    except (ValueError, RecursionError) as exc:
        raise _err(path, _json_error(exc)) from None
    if not isinstance(value, list):
        raise _err(path, f"top-level JSON must be a list of objects (got {_tname(value)})")
    for i, item in enumerate(value, 1):
        yield f"{path}:item {i}", item


def _csv_rows(path: str) -> Rows:
    with open(path, "rb") as fh:
        text = _decode(fh.read(), path)
    reader = csv.DictReader(io.StringIO(text, newline=""), restval="")
    row = 1  # the header is row 1
    try:
        for record in reader:
            row += 1
            if None in record:
                raise _err(f"{path}:row {row}", "more cells than header columns")
            yield f"{path}:row {row}", record
    except csv.Error as exc:
        raise _err(f"{path}:{reader.line_num}", f"malformed CSV ({exc})") from None


def _table_rows(path: str, batches: Iterator[Any], what: str) -> Rows:
    """Rows of an iterator of pyarrow tables/record batches, as plain Python dicts."""
    import pyarrow as pa

    n = 0
    while True:
        try:
            batch = next(batches, None)
            rows = [] if batch is None else batch.to_pylist()
        except (pa.ArrowException, OSError, ValueError, TypeError) as exc:
            raise _err(path, f"cannot read {what} ({exc})") from None
        if batch is None:
            return
        for record in rows:
            n += 1
            yield f"{path}:row {n}", record


def _parquet_rows(path: str) -> Rows:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pfile = pq.ParquetFile(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _err(path, f"cannot read parquet ({exc})") from None
    with pfile:
        yield from _table_rows(path, iter(pfile.iter_batches(batch_size=1024)), "parquet")


def _hf_source(path: str, split: str) -> tuple[str, Callable[[], Rows]]:
    """Load a `save_to_disk` directory; returns (name shown in messages, row factory)."""
    try:
        import datasets
    except ImportError:
        raise _err(path, "reading a Hugging Face dataset needs the 'datasets' package") from None
    try:
        obj = datasets.load_from_disk(path)
    except Exception as exc:  # datasets raises many unrelated types for a broken directory
        raise _err(path, f"cannot load Hugging Face dataset ({type(exc).__name__}: {exc})") from None
    name = path
    if isinstance(obj, datasets.DatasetDict):
        if split not in obj:
            available = ", ".join(sorted(obj)) or "none"
            raise _err(path, f"no split '{split}' (available: {available})")
        obj, name = obj[split], os.path.join(path, split)
    if not isinstance(obj, datasets.Dataset):
        raise _err(path, f"unsupported Hugging Face dataset type {type(obj).__name__}")
    dataset = obj

    def rows() -> Rows:
        try:
            batches = iter(dataset.with_format("arrow").iter(batch_size=1024))
        except Exception as exc:  # same reason as above
            raise _err(name, f"cannot read Hugging Face dataset ({exc})") from None
        yield from _table_rows(name, batches, "Hugging Face dataset")

    return name, rows


_READERS: dict[str, Callable[[str], Rows]] = {
    ".jsonl": _jsonl_rows,
    ".ndjson": _jsonl_rows,
    ".json": _json_rows,
    ".parquet": _parquet_rows,
    ".csv": _csv_rows,
}


def _file_reader(path: str) -> Callable[[str], Rows] | None:
    return _READERS.get(os.path.splitext(path)[1].lower())


def _sources(path: str, split: str) -> list[tuple[str, Callable[[], Rows]]]:
    """The (file name, row factory) pairs making up the data set at `path`."""
    if not os.path.exists(path):
        raise _err(path, "no such file or directory")
    accepted = ", ".join(FILE_EXTENSIONS)
    if os.path.isdir(path):
        if any(os.path.isfile(os.path.join(path, m)) for m in _HF_MARKERS):
            return [_hf_source(path, split)]
        try:
            names = sorted(os.listdir(path))
        except OSError as exc:
            raise _err(path, f"cannot list directory ({exc.strerror or exc})") from None
        out: list[tuple[str, Callable[[], Rows]]] = []
        for entry in names:
            full = os.path.join(path, entry)
            reader = _file_reader(entry)
            if entry.startswith(".") or reader is None or not os.path.isfile(full):
                continue
            out.append((full, lambda r=reader, f=full: r(f)))
        if not out:
            raise _err(path, f"no data files in directory (accepted: {accepted})")
        return out
    reader = _file_reader(path)
    if reader is None:
        ext = os.path.splitext(path)[1] or "no extension"
        raise _err(path, f"unsupported file type '{ext}' (accepted: {accepted}, a Hugging Face "
                         "save_to_disk directory, or a directory of such files)")
    return [(path, lambda: reader(path))]


# --------------------------------------------------------------------------- public API


def read_samples(path: PathLike, *, split: str = "train", fields: dict[str, str] | None = None) -> LoadReport:
    """Read every record at `path`, validate it and collapse identical samples by id.
    fields: the records' own names of accepted keys (see to_sample)."""
    root = os.fspath(path)
    seen: set[str] = set()
    samples: list[Sample] = []
    paths: list[str] = []
    n_records = n_duplicates = 0
    for name, rows in _sources(root, split):
        paths.append(name)
        count = 0
        try:
            for where, record in rows():
                count += 1
                sample = to_sample(record, where, fields)
                if sample.id in seen:
                    n_duplicates += 1
                else:
                    seen.add(sample.id)
                    samples.append(sample)
        except OSError as exc:
            raise _err(name, f"cannot read ({exc.strerror or exc})") from None
        if count == 0:
            raise _err(name, "no samples")
        n_records += count
    return LoadReport(samples, n_records, n_duplicates, paths)


def load_samples(path: PathLike, *, split: str = "train", fields: dict[str, str] | None = None) -> list[Sample]:
    """The unique samples at `path` (see read_samples)."""
    return read_samples(path, split=split, fields=fields).samples


def write_samples(samples: Sequence[Sample], path: PathLike) -> None:
    """Write each sample's original record as one JSONL line, atomically (an empty list
    writes an empty file)."""
    target = os.fspath(path)
    lines = []
    for sample in samples:
        try:
            lines.append(json.dumps(sample.record, ensure_ascii=False) + "\n")
        except (TypeError, ValueError) as exc:
            raise _err(sample.source or target, f"record is not JSON-serialisable ({exc})") from None
    write_text(target, "".join(lines))
