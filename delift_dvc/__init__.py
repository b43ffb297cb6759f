"""delift-dvc: DELIFT data selection for LLM fine-tuning, incremental inside DVC."""

from .errors import DeliftError, InputError

__all__ = ["DeliftError", "InputError", "Sample", "Scorer", "load_samples"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy: `import delift_dvc` must not import torch or transformers.
    if name in ("Sample", "load_samples"):
        from . import samples

        return getattr(samples, name)
    if name == "Scorer":
        from .scoring import Scorer

        return Scorer
    raise AttributeError(f"module 'delift_dvc' has no attribute {name!r}")
