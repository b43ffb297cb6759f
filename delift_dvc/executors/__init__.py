"""Executors run items of work with stateful workers and hand back results as they finish.

They know nothing of what an item means. A worker is built once per process (actor) by
`make_worker()`, a picklable factory, and called as `worker(item, progress)`, where
`progress(n)` reports n finished units (e.g. scored sequences) as they happen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

Progress = Callable[[int], None]
Worker = Callable[[Any, Progress], Any]

__all__ = ["EXECUTORS", "Executor", "Progress", "Worker"]

# kind -> "module:class" (imported on use: Ray is optional); the factory is executors.factory
EXECUTORS = {"local": "delift_dvc.executors.local:LocalExecutor", "ray": "delift_dvc.executors.ray:RayExecutor"}


class Executor(Protocol):
    def run(self, make_worker: Callable[[], Worker], items: Iterable[T],
            progress: Progress) -> Iterator[tuple[T, Any]]:
        """(item, result) for every item, in completion order."""
        ...

    def describe(self) -> str:
        """One line: where the work runs."""
        ...

    def close(self) -> None: ...
