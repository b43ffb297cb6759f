"""Build an executor by kind, and the threads policy of scoring processes.

A kind is registered in :data:`delift_dvc.executors.EXECUTORS`; every executor class takes
`workers`, `threads`, `address`, `use_gpu`, `name` and `on_start` keywords, and one that runs
in this process ignores them.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from delift_dvc.executors import EXECUTORS, Executor

__all__ = ["cpu_count", "make_executor", "resolve_threads"]


def cpu_count() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_threads(threads: int | str, kind: str, workers: int) -> int:
    """Torch threads per scoring process: `threads`, or for "auto" the cores this process may
    use (in-process kinds) or those cores divided among the `workers` (pooled kinds, >= 1)."""
    if threads != "auto":
        return int(threads)
    if kind != "local":
        return max(1, cpu_count() // workers)
    return cpu_count()


def make_executor(kind: str, *, workers: int = 1, threads: int = 1, address: str | None = None,
                  use_gpu: bool = False, name: Callable[[Any], str] = repr,
                  on_start: Callable[[str], None] = lambda line: None) -> Executor:
    """The executor registered as `kind`: `workers` processes (actors) of `threads` threads,
    joining `address` (None: a private local cluster), one GPU each when `use_gpu` and the
    cluster has GPUs; `name(item)` names an item in errors. ValueError for an unknown kind."""
    if kind not in EXECUTORS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(EXECUTORS)}")
    module, cls = EXECUTORS[kind].split(":")
    executor_class = getattr(importlib.import_module(module), cls)
    return executor_class(workers, threads=threads, address=address, use_gpu=use_gpu, name=name,
                          on_start=on_start)
