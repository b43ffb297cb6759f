"""A small Python API for notebooks and scripts, in the spirit of `dvc.api`: the file-mode
`score` and `select` on a file or a list of records, with the CLI's option names.

    from delift_dvc import api
    api.score("pool.jsonl", store="store", budget=0.3)
    chosen = api.select("pool.jsonl", store="store", budget=0.3)   # chosen["samples"]: the records

Options are the CLI's (`model`, `budget`, `method`, `pairs`, `k`, ...; `store`), defaulting to
params.yaml when one is at `params_path`, else to the built-in defaults. The CLI runs through
these same functions.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from delift_dvc.config import Params, check_params, load_params, override
from delift_dvc.errors import InputError
from delift_dvc.progress import Reporter

__all__ = ["score", "select", "options_params", "OPTION_KEYS"]

Data = str | Path | Sequence[Mapping[str, Any]]  # a file or folder, or records in memory

# option name -> (params section or None for a top-level key); what file mode may set
OPTION_KEYS = {
    "store": None, "model": "scoring", "dtype": "scoring", "device": "scoring", "max_length": "scoring",
    "batch_tokens": "scoring", "overflow": "scoring", "distance": "scoring", "segment_pairs": "scoring",
    "threads": "scoring", "executor": "scoring", "workers": "scoring", "ray_address": "scoring", "pairs": "utility",
    "k": "utility", "lm_pairs": "utility", "strategy": "utility", "rounds": "utility", "method": "selection",
    "budget": "selection", "eta": "selection", "nu": "selection", "scaling": "selection", "seed": "selection",
    "embedding_coverage": "selection", "balance_clusters": "selection", "strata": "selection",
    "temperature": "selection", "draw": "selection", "strata_clusters": "selection", "allocation": "selection",
    "embedding_model": "utility",
}


TOP_OPTIONS = {"store": "store_dir"}  # option name -> its top-level params key, where the two differ


def options_params(options: Mapping[str, Any], params_path: str | Path = "params.yaml") -> Params:
    """Params for file mode: params.yaml at `params_path` when present (else the defaults), with
    the given options (None: not given) set and every key checked."""
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise InputError(f"option {unknown[0]!r}: unknown (known: {', '.join(OPTION_KEYS)})")
    params = load_params(params_path) if Path(params_path).is_file() else Params()
    for name, value in options.items():
        if value is None:
            continue
        section = OPTION_KEYS[name]
        params = replace(params, **{TOP_OPTIONS.get(name, name): value}) if section is None else \
            override(params, section, **{name: value})
    return check_params(params, "options")


@contextmanager
def _as_file(data: Data | None, folder: Path, name: str) -> Iterator[str | None]:
    """`data` as a path: a path as it is, records written to a JSONL file in `folder`."""
    if data is None or isinstance(data, (str, Path)):
        yield None if data is None else str(data)
        return
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in data), encoding="utf-8")
    yield str(path)


def score(data: Data, *, target_set: Data | None = None, existing: Data | None = None,
          params_path: str | Path = "params.yaml", quiet: bool = True, **options: Any) -> dict:
    """Score every d0 and pair that selecting from `data` will read and the store lacks;
    returns the counts (what was scored, what was already stored) and the scorer."""
    from delift_dvc.stages.files import score_file

    params = options_params(options, params_path)
    with tempfile.TemporaryDirectory() as tmp, _as_file(data, Path(tmp), "data") as path, \
            _as_file(target_set, Path(tmp), "target_set") as target, _as_file(existing, Path(tmp), "existing") as used:
        return score_file(params, path, target, used, Reporter("score", quiet=quiet))


def select(data: Data, *, out: str | Path | None = None, summary: str | Path | None = None,
           target_set: Data | None = None, existing: Data | None = None,
           params_path: str | Path = "params.yaml", **options: Any) -> dict:
    """Select from `data` with the stored utilities (scores nothing). Returns the summary (ids,
    gains, objective, counts) plus `samples`: the selected records in the input's shape and
    selection order, also written to `out` (JSONL) when given, the summary to `summary`."""
    from delift_dvc.data.samples import load_samples
    from delift_dvc.stages.files import select_file

    params = options_params(options, params_path)
    with tempfile.TemporaryDirectory() as tmp, _as_file(data, Path(tmp), "data") as path, \
            _as_file(target_set, Path(tmp), "target_set") as target, _as_file(existing, Path(tmp), "existing") as used:
        destination = str(out) if out is not None else str(Path(tmp) / "selected.jsonl")
        result = select_file(params, path, destination, None if summary is None else str(summary), target, used)
        chosen = Path(destination)
        records = ([s.record for s in load_samples(chosen, fields=params.data.fields)]
                   if chosen.read_bytes().strip() else [])
    named = {"data": data, "target_set": target_set, "existing": existing}
    shown = {k: (str(v) if isinstance(v, (str, Path)) else None if v is None else "<records>") for k, v in named.items()}
    return {**result, **shown, "samples": records}
