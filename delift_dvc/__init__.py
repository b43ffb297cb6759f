"""delift-dvc: DELIFT data selection for LLM fine-tuning, incremental inside DVC.

The package's folders follow the flow: data -> utility -> store -> selection -> quality, with
executors beside utility, kernel sources above them, and stages, experiments, the CLI and the
Python API (`delift_dvc.api`) on top.
"""

from delift_dvc.errors import DeliftError, InputError

__all__ = ["DeliftError", "InputError", "Sample", "Scorer", "load_samples", "maximize"]
__version__ = "0.3.0"

_LAZY = {
    "Sample": ("delift_dvc.data.samples", "Sample"),
    "load_samples": ("delift_dvc.data.samples", "load_samples"),
    "Scorer": ("delift_dvc.utility.scorer", "Scorer"),
    "maximize": ("delift_dvc.selection.greedy", "maximize"),
}


def __getattr__(name: str):
    # Lazy: `import delift_dvc` must not import torch or transformers.
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'delift_dvc' has no attribute {name!r}")
