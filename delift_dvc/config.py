"""`params.yaml`: every key, its type, range and allowed values, checked in one place.

Each key is a dataclass field whose metadata holds its check; `load_params` reads the file,
rejects unknown keys (with a did-you-mean), checks every value and names `section.key` in a
one-line InputError. The allowed values of each enum are defined by the module that owns them
and imported here and by the CLI.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from delift_dvc.errors import ArgumentError, InputError
from delift_dvc.executors import EXECUTORS
from delift_dvc.selection.balance import ALLOCATIONS, AUTO_ALLOCATION
from delift_dvc.selection.budget import BudgetError, check_budget
from delift_dvc.selection.planning import MODES
from delift_dvc.selection.scaling import SCALINGS
from delift_dvc.selection.methods import METHODS
from delift_dvc.selection.stratified import AUTO_TEMPERATURE, DRAW_TEMPERATURE, DRAWS, STRATA, resolve_temperature
from delift_dvc.kernels import PAIR_MODES
from delift_dvc.utility.layout import LAYOUTS, NO_EXAMPLE_TEMPLATE, ONE_EXAMPLE_TEMPLATE, OVERFLOWS, Templates
from delift_dvc.utility.models import DEVICES, DTYPES
from delift_dvc.utility.scorer import DISTANCES
from delift_dvc.utility.surrogate import STRATEGIES

__all__ = ["Params", "load_params", "check_params", "named_as_params", "option_name", "key_field", "DataParams",
           "ScoringParams", "UtilityParams", "SelectionParams", "FinetuneParams",
           "EvaluateParams"]

Check = Callable[[Any, str], Any]


# -- checks: each returns the value (normalised) or raises InputError naming the key ----------
def _bad(key: str, value: Any, expected: str) -> InputError:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return InputError(f"{key} {shown}: expected {expected}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(key, value, "a non-empty string")
    return value


def optional_path(value: Any, key: str) -> str | None:
    if value is None:
        return None
    return text(value, key)


def integer(low: int, high: int | None = None) -> Check:
    def check(value: Any, key: str) -> int:
        limits = f">= {low}" if high is None else f"in [{low}, {high}]"
        if not _is_int(value) or value < low or (high is not None and value > high):
            raise _bad(key, value, f"an integer {limits}")
        return value

    return check


def optional_integer(low: int) -> Check:
    inner = integer(low)

    def check(value: Any, key: str) -> int | None:
        return None if value is None else inner(value, key)

    return check


def number(low: float, high: float | None = None, *, low_open: bool = False, high_open: bool = False) -> Check:
    def check(value: Any, key: str) -> float:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        expected = f"a number in {lo}{low}, {'inf' if high is None else high}{hi}"
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise _bad(key, value, expected)
        if value < low or (low_open and value == low):
            raise _bad(key, value, expected)
        if high is not None and (value > high or (high_open and value == high)):
            raise _bad(key, value, expected)
        return float(value)

    return check


def optional_number(low: float) -> Check:
    inner = number(low)

    def check(value: Any, key: str) -> float | None:
        if value is None:
            return None
        try:
            return inner(value, key)
        except InputError:
            raise _bad(key, value, f"null or a number >= {low:g}") from None

    return check


def temperature(value: Any, key: str) -> float | str | None:
    """selection.temperature: auto, null or a number >= 0."""
    if value == AUTO_TEMPERATURE:
        return value
    try:
        return optional_number(0.0)(value, key)
    except InputError:
        raise _bad(key, value, f"{AUTO_TEMPERATURE}, null or a number >= 0") from None


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(key, value, "true or false")
    return value


def choice(allowed: tuple[str, ...]) -> Check:
    def check(value: Any, key: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _bad(key, value, f"one of {', '.join(allowed)}")
        return value

    check.allowed = allowed  # the enum, for the CLI's choices and the tests
    return check


def names(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
        raise _bad(key, value, "a non-empty list of names")
    return tuple(value)


def budget(value: Any, key: str) -> int | float:
    try:
        return check_budget(value)
    except BudgetError as exc:
        raise exc.renamed(key) from None


def auto_or_integer(value: Any, key: str) -> int | str:
    if value == "auto":
        return value
    if not _is_int(value) or value < 1:
        raise _bad(key, value, "auto or an integer >= 1")
    return value


def field_mapping(value: Any, key: str) -> dict[str, str] | None:
    """null, or {accepted record key: the records' own key} (data.fields)."""
    from delift_dvc.data.records import FIELD_NAMES

    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise _bad(key, value, f"null or a mapping of accepted keys ({', '.join(FIELD_NAMES)}) to your field names")
    for name, own in value.items():
        if name not in FIELD_NAMES:
            raise _bad(f"{key}.{name}", name, f"one of {', '.join(FIELD_NAMES)}")
        if not isinstance(own, str) or not own.strip():
            raise _bad(f"{key}.{name}", own, "a non-empty field name")
    return dict(value)


def model(value: Any, key: str) -> str:
    return text(value, key)


def optional_model(value: Any, key: str) -> str | None:
    return None if value is None else text(value, key)


def _key(default: Any, check: Check, help: str | None = None):
    """A params key: its default, its check, and (for keys the CLI offers) its one-line help."""
    return field(default=default, metadata={"check": check, "help": help})


def key_field(section: str | None, key: str):
    """The dataclass field of `section.key` (section None: a top-level key such as `store_dir`)."""
    if section is None:
        return next(f for f in fields(Params) if f.name == key)
    for f in fields(SECTIONS[section]):
        if f.name == key:
            return f
    raise KeyError(f"{section}.{key}")


def allowed_values(section: str, key: str) -> tuple[str, ...] | None:
    """The allowed values of an enum key (None for other keys)."""
    for f in fields(SECTIONS[section]):
        if f.name == key:
            return getattr(f.metadata["check"], "allowed", None)
    raise KeyError(f"{section}.{key}")


# -- sections ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataParams:
    train: str = _key("data/raw", text)  # training pool: a file or a directory of files
    split: str = _key("train", text)  # split of a saved Hugging Face DatasetDict
    target_set: str | None = _key(None, optional_path)  # task-specific target-set samples (FLMI)
    group_by: str | None = _key(None, optional_path)  # record field naming each sample's group (None: its file)
    fields: dict[str, str] | None = _key(None, field_mapping)  # accepted key -> the records' own key
    test: str | None = _key(None, optional_path)  # held-out test samples (None: hold out `holdout`)
    holdout: float = _key(0.0, number(0.0, 1.0, high_open=True))  # fraction of data.train held out
    holdout_seed: int = _key(0, integer(0))  # salt of the content-hash split
    prepared: str = _key("data/prepared", text)
    selected: str = _key("data/selected", text)


@dataclass(frozen=True)
class ScoringParams:
    model: str = _key("embedded", model, "'embedded' (SmolLM2-135M-Instruct), a model folder or .gguf file.")
    dtype: str = _key("auto", choice(DTYPES), "Scoring dtype (auto: bfloat16 where supported, else float32).")
    device: str = _key("auto", choice(DEVICES), "Scoring device (auto: cuda when present, else cpu).")
    max_length: int = _key(2048, integer(8), "Tokens per scored sequence.")
    batch_tokens: int | str = _key(8192, auto_or_integer, "Padded tokens per forward batch (auto: from free GPU "
                                   "memory, 8192 on a CPU).")
    overflow: str = _key("error", choice(OVERFLOWS), "A response longer than --max-length: error, or truncate it.")
    distance: str = _key("l2", choice(tuple(DISTANCES)), "Teacher-forced distance: l2 (the paper's ||p - 1|| / "
                         "sqrt(T)) or nll (mean negative log-likelihood, nats/token).")
    segment_pairs: int = _key(2048, integer(1), "Values per stored segment (a block of work).")
    threads: int | str = _key("auto", auto_or_integer, "Torch threads per scoring process.")
    executor: str = _key("local", choice(tuple(EXECUTORS)), "Where blocks are scored.")
    workers: int = _key(2, integer(1), "Ray actors (with --executor ray).")  # Ray actors
    ray_address: str | None = _key(None, optional_path, "Ray cluster to join (auto, ray://host:port).")
    shared_store: str | None = _key("auto", optional_path, "Segment pool that every workspace of the project "
                                    "(queued and temp experiments too) shares: auto (beside DVC's cache), a "
                                    "folder, or null (off).")
    template: str = _key(NO_EXAMPLE_TEMPLATE, text)
    example_template: str = _key(ONE_EXAMPLE_TEMPLATE, text)


# scoring keys that say where and how fast values are computed, never what they are: no stage
# dependency in dvc.yaml (every other scoring key is one)
SCORING_RUNTIME = ("device", "batch_tokens", "segment_pairs", "threads", "executor", "workers", "ray_address",
                   "shared_store")


@dataclass(frozen=True)
class UtilityParams:
    pairs: str = _key("dense", choice(PAIR_MODES), "dense: every pair; knn: each target with its --k nearest "
                      "examples; surrogate: LM pairs + a learned surrogate.")
    k: int = _key(32, integer(1), "Candidates per target in the kernel (knn, surrogate).")
    lm_pairs: int = _key(8, integer(1), "Surrogate: LM-measured pairs per target (d0 not counted).")
    strategy: str = _key("active", choice(STRATEGIES), "Surrogate: which pairs the LM measures.")
    rounds: int = _key(3, integer(1), "Surrogate: measure-then-refit rounds (active).")
    trees: int = _key(300, integer(1))  # surrogate: LightGBM boosting rounds
    seed: int = _key(0, integer(0))  # surrogate: random pairs, projection and LightGBM seed
    embedding_model: str = _key("embedded", text, "Sentence embeddings (k-NN candidates, surrogate features, "
                                "delift_se, clusters, evaluation cosine): embedded all-MiniLM-L6-v2, or a "
                                "sentence-transformers model folder.")


@dataclass(frozen=True)
class SelectionParams:
    method: str = _key("delift", choice(tuple(METHODS)), "Selection method.")
    mode: str = _key("incremental", choice(MODES))
    budget: float | int = _key(0.3, budget, "Fraction of the ground set (0.3) or a count (30).")
    eta: float = _key(1.0, number(0.0), "FLMI magnification eta.")
    nu: float = _key(1.0, number(0.0), "FLCG privacy hardness nu.")
    scaling: str = _key("joint", choice(SCALINGS), "Kernel min-max scaling: joint or separate.")
    stop_at_zero_gain: bool = _key(False, boolean)
    seed: int = _key(0, integer(0), "Seed of the random baseline.")
    embedding_coverage: float = _key(0.0, number(0.0), "delift: add this weight times the objective on "
                                     "sentence-embedding similarity.")
    balance_clusters: int = _key(0, integer(0), "delift: split the budget across this many sentence-embedding "
                                 "clusters by size.")
    strata: str = _key("group_label", choice(STRATA), "delift, delift_se: split the budget across strata by "
                       "size (group, or group x answer label) and select inside each; none: off (the "
                       "paper's plain DELIFT).")
    temperature: float | str | None = _key(AUTO_TEMPERATURE, temperature, "Stratified selection: auto (a draw at "
                                           f"{DRAW_TEMPERATURE:g} with strata, the greedy without); null picks "
                                           "greedily; a number >= 0 draws with weights exp(temperature * z(gain)) "
                                           "(0: random).")
    draw: str = _key("independent", choice(DRAWS), "Tempered draw: independent (weights from each candidate's "
                     "gain alone) or sequential (each pick drawn by its gain given the picks so far, so "
                     "near-duplicates of a pick lose weight).")
    strata_clusters: int = _key(16, integer(2), "Strata when the data has a single group: MiniLM k-means "
                                "clusters (at most one per 8 samples).")
    allocation: str = _key(AUTO_ALLOCATION, choice((AUTO_ALLOCATION, *ALLOCATIONS)), "Stratified selection and "
                           "stratified_random: split the budget across the groups as equally as their sizes allow "
                           "(balanced) or in proportion to their size (proportional); auto: balanced across the "
                           "data's groups, proportional across the clusters that stand in for a single group.")


@dataclass(frozen=True)
class FinetuneParams:
    model: str | None = _key(None, optional_model)  # None: the scoring model
    epochs: int = _key(2, integer(1))
    steps: int | None = _key(None, optional_integer(1))  # set: exactly this many steps (equal compute)
    learning_rate: float = _key(3e-4, number(0.0, 1.0, low_open=True))
    lora_rank: int = _key(8, integer(1))
    lora_alpha: int = _key(16, integer(1))
    lora_dropout: float = _key(0.0, number(0.0, 1.0, high_open=True))
    lora_targets: tuple[str, ...] = _key(("q_proj", "k_proj", "v_proj", "o_proj"), names)
    max_length: int = _key(512, integer(8))
    batch_size: int = _key(8, integer(1))
    seed: int = _key(0, integer(0))
    dtype: str = _key("float32", choice(DTYPES))
    device: str = _key("auto", choice(DEVICES))
    adapter: str = _key("models/adapter", text)
    layout: str = _key("plain", choice(LAYOUTS))  # plain: the scoring templates | chat: the model's chat template


@dataclass(frozen=True)
class EvaluateParams:
    max_new_tokens: int = _key(64, integer(1))  # greedy generation budget per test query
    max_length: int = _key(1024, integer(8))  # tokens per evaluated sequence (ICL example cut first)
    batch_size: int = _key(8, integer(1))
    icl: bool = _key(True, boolean)  # also the base model with the nearest subset sample as example
    dtype: str = _key("float32", choice(DTYPES))
    device: str = _key("auto", choice(DEVICES))


SECTIONS = {"data": DataParams, "scoring": ScoringParams, "utility": UtilityParams,
            "selection": SelectionParams, "finetune": FinetuneParams, "evaluate": EvaluateParams}
TOP = {"store_dir": "store", "metrics": "metrics", "plots": "plots"}
# renamed top-level keys: old name -> new name (`delift-dvc upgrade` renames them in params.yaml and dvc.yaml)
RENAMED = {"store": "store_dir"}


@dataclass(frozen=True)
class Params:
    data: DataParams = field(default_factory=DataParams)
    scoring: ScoringParams = field(default_factory=ScoringParams)
    utility: UtilityParams = field(default_factory=UtilityParams)
    selection: SelectionParams = field(default_factory=SelectionParams)
    finetune: FinetuneParams = field(default_factory=FinetuneParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    store_dir: str = "store"  # was `store`: DVC filled a param named like the store dependency with its hash
    metrics: str = "metrics"
    plots: str = "plots"


def _unknown(key: str, known, where: str) -> InputError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(known), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
    return InputError(f"{where}: unknown key '{key}'{hint}")


def _section(cls, values: Any, name: str, where: str):
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise InputError(f"{where}: {name}: expected a mapping of keys, got {type(values).__name__}")
    known = {f.name: f for f in fields(cls)}
    for key in values:
        if key not in known:
            raise _unknown(f"{name}.{key}", known, where)
    kwargs = {}
    for key, value in values.items():
        try:
            kwargs[key] = known[key].metadata["check"](value, f"{name}.{key}")
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    return cls(**kwargs)


# -- library arguments -> keys: libraries raise ArgumentError naming their own parameters -------
ARGUMENT_KEYS = {
    "budget": "selection.budget",
    "group_by": "data.group_by",
    "scaling": "selection.scaling",
    "coverage_weight": "selection.embedding_coverage",
    "strata": "selection.strata",
    "temperature": "selection.temperature",
    "draw": "selection.draw",
    "allocation": "selection.allocation",
    "overflow": "scoring.overflow",
    "distance": "scoring.distance",
    "max_length": "scoring.max_length",
    "batch_tokens": "scoring.batch_tokens",
    "template": "scoring.template",
    "example_template": "scoring.example_template",
    "executor": "scoring.executor",
    "address": "scoring.ray_address",
    "chat": "finetune.layout",
    "lora_targets": "finetune.lora_targets",
}


def option_name(key: str) -> str:
    """The CLI option of a params key: selection.budget -> --budget."""
    return "--" + key.rsplit(".", 1)[-1].replace("_", "-")


@contextmanager
def named_as_params(*, options: bool = False, where: str | None = None) -> Iterator[None]:
    """Re-raise a library's ArgumentError naming its params.yaml key (with `options`: its CLI
    option; with `where`: prefixed by the file); an argument without a key is raised as it is.
    The one place where library argument names become keys, in stage and file mode alike."""
    try:
        yield
    except ArgumentError as exc:
        key = ARGUMENT_KEYS.get(exc.argument)
        if key is None:
            raise
        renamed = exc.renamed(option_name(key) if options else key)
        raise (InputError(f"{where}: {renamed}") if where else renamed) from None


def _cross_checks(params: Params, where: str) -> None:
    """Checks that involve more than one key, or parse a value."""
    with named_as_params(where=where):
        Templates(params.scoring.template, params.scoring.example_template)
    u = params.utility
    if u.embedding_model != "embedded" and not (Path(u.embedding_model) / "config.json").is_file():
        raise InputError(f"{where}: utility.embedding_model {u.embedding_model!r}: not a model folder (no "
                         "config.json; use embedded, or a folder saved by SentenceTransformer.save)")
    if u.pairs == "surrogate" and u.lm_pairs > u.k:
        raise InputError(f"{where}: utility.lm_pairs {u.lm_pairs}: more than the utility.k {u.k} candidates "
                         "per target it is chosen from")
    sel = params.selection
    for key, value, off in (("embedding_coverage", sel.embedding_coverage, 0.0),
                            ("balance_clusters", sel.balance_clusters, 0)):
        if value != off and sel.method != "delift":
            raise InputError(f"{where}: selection.{key} {value!r}: only used by selection.method delift, "
                             f"not {sel.method} (set it to {off!r})")
    if sel.method not in ("delift", "delift_se"):  # the defaults and "off" are ignored by the other methods
        for key, value, quiet in (("strata", sel.strata, ("none", SelectionParams.strata)),
                                  ("temperature", sel.temperature, (None, AUTO_TEMPERATURE)),
                                  ("draw", sel.draw, (SelectionParams.draw,))):
            if value not in quiet:
                off = {"temperature": "null", "draw": SelectionParams.draw}.get(key, "none")
                raise InputError(f"{where}: selection.{key} {value!r}: only used by selection.method delift or "
                                 f"delift_se, not {sel.method} (set it to {off})")
    elif sel.draw != SelectionParams.draw and resolve_temperature(sel.temperature, sel.strata) is None:
        raise InputError(f"{where}: selection.draw {sel.draw!r}: only used by a tempered draw, and "
                         f"selection.temperature {sel.temperature!r} with selection.strata {sel.strata} picks greedily "
                         f"(set selection.temperature to a number, or selection.draw to {SelectionParams.draw})")
    elif sel.strata != "none" or sel.temperature not in (None, AUTO_TEMPERATURE):
        turned_on = f"selection.strata {sel.strata}" if sel.strata != "none" else \
            f"selection.temperature {sel.temperature!r}"
        for other, on in (("embedding_coverage", sel.embedding_coverage != 0.0),
                          ("balance_clusters", sel.balance_clusters > 1)):
            if on:
                fix = "selection.strata: none" if sel.strata != "none" else "selection.temperature: null"
                raise InputError(f"{where}: selection.{other} with {turned_on}: a stratified selection already "
                                 f"allocates by strata (set {fix} to use selection.{other}, or "
                                 f"selection.{other} to 0)")
    if sel.allocation == "balanced" and not (
            sel.method == "stratified_random" or (sel.method in ("delift", "delift_se") and sel.strata != "none")):
        used = "selection.method stratified_random, or delift and delift_se with selection.strata group or group_label"
        raise InputError(f"{where}: selection.allocation {sel.allocation!r}: only used by {used}, not "
                         f"{sel.method} with selection.strata {sel.strata} (set it to {AUTO_ALLOCATION})")
    if params.scoring.executor == "local" and params.scoring.ray_address is not None:
        raise InputError(f"{where}: scoring.ray_address is set but scoring.executor is local "
                         "(set scoring.executor: ray)")


def check_params(params: Params, where: str = "options") -> Params:
    """Every key of an in-memory Params (e.g. params.yaml with command-line overrides)."""
    for name, cls in SECTIONS.items():
        section = getattr(params, name)
        for f in fields(cls):
            try:
                f.metadata["check"](getattr(section, f.name), f"{name}.{f.name}")
            except InputError as exc:
                raise InputError(f"{where}: {exc}") from None
    for key in TOP:
        try:
            text(getattr(params, key), key)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    _cross_checks(params, where)
    return params


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and check params.yaml (missing keys take their defaults)."""
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
    except UnicodeDecodeError:
        raise InputError(f"{path}: not valid UTF-8") from None
    if not isinstance(raw, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    where = str(path)
    for key in raw:
        if key in RENAMED:
            raise InputError(f"{where}: {key}: renamed to {RENAMED[key]} (run `delift-dvc upgrade`, which renames "
                             f"it here and ${{{key}}} in dvc.yaml)")
        if key not in SECTIONS and key not in TOP:
            raise _unknown(str(key), [*SECTIONS, *TOP], where)
    built = {name: _section(cls, raw.get(name), name, where) for name, cls in SECTIONS.items()}
    extras = {}
    for key, default in TOP.items():
        try:
            extras[key] = text(raw.get(key, default), key)
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
    built["scoring"] = _template_files(built["scoring"], path.parent, where)
    params = Params(**built, **extras)
    _cross_checks(params, where)
    return params


TEMPLATE_KEYS = ("template", "example_template")  # scoring.*: the template text, or a file of it


def _template_files(scoring: "ScoringParams", folder: Path, where: str) -> "ScoringParams":
    """scoring.template and scoring.example_template: a value with no "{prompt}" placeholder is
    the path of a UTF-8 text file holding the template (relative to params.yaml's folder), read
    byte for byte, so the text and the scorer's fingerprint are those of the file's content."""
    values = {}
    for key in TEMPLATE_KEYS:
        value = getattr(scoring, key)
        if "{prompt}" in value:
            continue
        file = folder / value
        if not file.is_file():
            raise InputError(f"{where}: scoring.{key} {value!r}: neither a template (no {{prompt}} placeholder) "
                             f"nor a template file ({file} not found)")
        try:
            values[key] = file.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{file}: not valid UTF-8 (the file of scoring.{key})") from None
    return replace(scoring, **values)


def override(params: Params, section: str, **values: Any) -> Params:
    """`params` with some keys of one section replaced (None values are ignored); unchecked."""
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return params
    return replace(params, **{section: replace(getattr(params, section), **values)})
