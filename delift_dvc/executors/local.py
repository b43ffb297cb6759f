"""The local executor: one worker in this process, items one after another, in order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from delift_dvc.executors import Progress, Worker


class LocalExecutor:
    """Runs every item in this process with one worker, built on first use and kept. The
    factory's pool keywords (workers, threads, address, use_gpu, name, on_start) do not apply
    to one process and are ignored."""

    def __init__(self, workers: int = 1, **pool_options: Any) -> None:
        self._worker: Worker | None = None

    def run(self, make_worker: Callable[[], Worker], items: Iterable[Any],
            progress: Progress) -> Iterator[tuple[Any, Any]]:
        """(item, worker(item, progress)) for each item, in input order."""
        for item in items:
            if self._worker is None:
                self._worker = make_worker()
            yield item, self._worker(item, progress)

    def describe(self) -> str:
        """One line: where the work runs."""
        return "this process"

    def close(self) -> None:
        self._worker = None
