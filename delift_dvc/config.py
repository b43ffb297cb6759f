"""`params.yaml`: every knob of the pipeline, validated with errors that name the key."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import InputError
from .selection import METHODS, SCALINGS
from .templates import NO_EXAMPLE_TEMPLATE, ONE_EXAMPLE_TEMPLATE

MODES = ("incremental", "refresh")


@dataclass(frozen=True)
class DataParams:
    train: str = "data/raw"  # training pool: a file or a directory of files
    split: str = "train"  # split of a saved Hugging Face DatasetDict
    target_set: str | None = None  # task-specific: samples of the target task (FLMI)
    test: str | None = None  # held-out test samples for `evaluate` (None: hold out `holdout`)
    holdout: float = 0.0  # fraction of data.train held out as the test set (by content hash)
    holdout_seed: int = 0  # salt of the content-hash split
    prepared: str = "data/prepared"
    selected: str = "data/selected"


@dataclass(frozen=True)
class ScoringParams:
    model: str = "embedded"
    dtype: str = "auto"
    device: str = "auto"
    max_length: int = 2048
    batch_tokens: int = 8192
    overflow: str = "error"
    segment_pairs: int = 2048  # pairs per stored segment: a killed run loses at most one
    template: str = NO_EXAMPLE_TEMPLATE
    example_template: str = ONE_EXAMPLE_TEMPLATE


@dataclass(frozen=True)
class UtilityParams:
    pairs: str = "dense"  # dense: every pair; knn: each target with its k nearest examples
    k: int = 32  # neighbours per target in knn mode (sentence-embedding kernel)


@dataclass(frozen=True)
class SelectionParams:
    method: str = "delift"
    mode: str = "incremental"
    budget: float = 0.3
    eta: float = 1.0
    nu: float = 1.0
    scaling: str = "joint"
    stop_at_zero_gain: bool = False
    seed: int = 0


@dataclass(frozen=True)
class FinetuneParams:
    model: str | None = None  # None: the scoring model
    epochs: int = 2
    learning_rate: float = 3e-4
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    max_length: int = 512
    batch_size: int = 8
    seed: int = 0
    dtype: str = "float32"
    device: str = "auto"
    adapter: str = "models/adapter"


@dataclass(frozen=True)
class EvaluateParams:
    max_new_tokens: int = 64  # greedy generation budget per test query
    max_length: int = 1024  # tokens per evaluated sequence (the ICL example is cut first)
    batch_size: int = 8
    icl: bool = True  # also evaluate the base model with the nearest subset sample as a one-shot example
    dtype: str = "float32"
    device: str = "auto"


@dataclass(frozen=True)
class Params:
    data: DataParams = field(default_factory=DataParams)
    scoring: ScoringParams = field(default_factory=ScoringParams)
    utility: UtilityParams = field(default_factory=UtilityParams)
    selection: SelectionParams = field(default_factory=SelectionParams)
    finetune: FinetuneParams = field(default_factory=FinetuneParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    store: str = "store"
    metrics: str = "metrics"
    plots: str = "plots"


def _section(cls, values: Any, where: str):
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise InputError(f"{where}: expected a mapping")
    known = {f.name: f for f in fields(cls)}
    for key in values:
        if key not in known:
            raise InputError(f"{where}.{key}: unknown key (known: {', '.join(known)})")
    kwargs = {}
    for key, value in values.items():
        default = known[key].default
        kwargs[key] = _check_type(value, default, f"{where}.{key}")
    return cls(**kwargs)


def _check_type(value: Any, default: Any, key: str) -> Any:
    if isinstance(default, tuple):
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise InputError(f"{key}: expected a non-empty list of strings, got {value!r}")
        return tuple(value)
    if default is None:
        if value is not None and not isinstance(value, str):
            raise InputError(f"{key}: expected a path or null, got {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise InputError(f"{key}: expected true or false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InputError(f"{key}: expected an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise InputError(f"{key}: expected a number, got {value!r}")
        return value
    if not isinstance(value, str):
        raise InputError(f"{key}: expected a string, got {value!r}")
    return value


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml (missing keys take their defaults)."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: not found (run inside a delift-dvc project or pass the data file)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise InputError(f"{path}{line}: malformed YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    sections = {"data": DataParams, "scoring": ScoringParams, "utility": UtilityParams,
                "selection": SelectionParams, "finetune": FinetuneParams, "evaluate": EvaluateParams}
    top = {"store": "store", "metrics": "metrics", "plots": "plots"}
    for key in raw:
        if key not in sections and key not in top:
            raise InputError(f"{path}: unknown key '{key}' (known: {', '.join([*sections, *top])})")
    built = {name: _section(cls, raw.get(name), f"{path}: {name}") for name, cls in sections.items()}
    extras = {key: _check_type(raw.get(key, default), default, f"{path}: {key}") for key, default in top.items()}
    params = Params(**built, **extras)
    _validate(params, str(path))
    return params


def _validate(params: Params, where: str) -> None:
    if params.utility.pairs not in ("dense", "knn"):
        raise InputError(f"{where}: utility.pairs '{params.utility.pairs}': expected dense or knn")
    if params.utility.k < 1:
        raise InputError(f"{where}: utility.k {params.utility.k}: expected an integer >= 1")
    sel = params.selection
    if sel.method not in METHODS:
        raise InputError(f"{where}: selection.method '{sel.method}': expected one of {', '.join(METHODS)}")
    if sel.mode not in MODES:
        raise InputError(f"{where}: selection.mode '{sel.mode}': expected one of {', '.join(MODES)}")
    if sel.scaling not in SCALINGS:
        raise InputError(f"{where}: selection.scaling '{sel.scaling}': expected one of {', '.join(SCALINGS)}")
    budget = sel.budget
    if not (isinstance(budget, int) and budget >= 1) and not (isinstance(budget, float) and 0 < budget <= 1):
        raise InputError(
            f"{where}: selection.budget {budget!r}: expected a fraction in (0, 1] or a count >= 1"
        )
    if sel.eta < 0 or sel.nu < 0:
        raise InputError(f"{where}: selection.eta and selection.nu must be >= 0")
    if not 0.0 <= params.data.holdout < 1.0:
        raise InputError(f"{where}: data.holdout {params.data.holdout!r}: expected a fraction in [0, 1)")
    ev = params.evaluate
    for key in ("max_new_tokens", "max_length", "batch_size"):
        if getattr(ev, key) < 1:
            raise InputError(f"{where}: evaluate.{key} {getattr(ev, key)!r}: expected an integer >= 1")
    try:
        finetune_config(params).validate()
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def finetune_config(params: Params):
    """The FinetuneConfig of params.finetune (model and adapter path excluded)."""
    from .finetune import FinetuneConfig

    f = params.finetune
    return FinetuneConfig(
        epochs=f.epochs, learning_rate=f.learning_rate, lora_rank=f.lora_rank, lora_alpha=f.lora_alpha,
        lora_dropout=f.lora_dropout, lora_targets=f.lora_targets, max_length=f.max_length,
        batch_size=f.batch_size, seed=f.seed, dtype=f.dtype, device=f.device,
    )


def model_name(params: Params) -> str | None:
    """The model fine-tuned and evaluated: finetune.model, else scoring.model (None = embedded)."""
    name = params.finetune.model or params.scoring.model
    return None if name == "embedded" else name
