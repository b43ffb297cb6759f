"""The Ray executor: an actor pool, one worker (one model) per actor, results as they finish.

Items are submitted as the caller's iterator yields them, with at most `in_flight` outstanding;
each result is handed back as soon as it completes. An actor that dies (killed, out of memory)
is replaced and its item is retried on another actor; an item that fails `retries + 1` times
stops the run with a one-line error naming it. An error raised by the worker itself (bad input)
stops the run at once with that error. Progress reported by workers reaches the caller through
a small counter actor that the driver polls.

Ray is optional (`pip install "delift-dvc[ray]"`); it starts with the dashboard and usage
statistics off. With no address a private local Ray is started (and shut down by `close`);
`auto` or `ray://host:port` joins a running cluster.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from delift_dvc.errors import ArgumentError, DeliftError
from delift_dvc.executors import Progress, Worker

INSTALL = 'pip install "delift-dvc[ray]"'
POLL_SECONDS = 0.5


def import_ray():
    """The ray module, or a one-line error that says what to install."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ArgumentError("executor", f"ray: Ray is not installed (run `{INSTALL}`)") from None
    return ray


class RayExecutor:
    """Runs items on `workers` Ray actors, each built once with `make_worker()`.

    threads: CPUs reserved per actor (also its torch threads). gpus: GPUs per actor (None:
    one when the cluster has GPUs and `use_gpu`, else none). address: None (private local
    Ray), "auto" or "ray://host:port". name(item): how errors name an item.
    """

    def __init__(self, workers: int = 2, *, threads: int = 1, address: str | None = None,
                 use_gpu: bool = False, in_flight: int | None = None, retries: int = 2,
                 name: Callable[[Any], str] = repr, on_start: Callable[[str], None] = lambda line: None) -> None:
        self.ray = import_ray()
        self.workers = workers
        self.threads = threads
        self.address = address
        self.use_gpu = use_gpu
        self.in_flight = in_flight or 2 * workers
        self.retries = retries
        self.name = name
        self.on_start = on_start
        self.started_here = False
        self.startup_seconds = 0.0
        self._actors: list = []
        self._pids: list = []
        self._counter = None

    # -- cluster ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start a private local Ray, or join the cluster at `address` (once; idempotent)."""
        ray = self.ray
        if ray.is_initialized():
            return
        start = time.perf_counter()
        quiet = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                     configure_logging=True)
        try:
            with _stderr_to_devnull():  # Ray's C++ start-up warnings would break our one-line phases
                if self.address is None:
                    cpus = max(self.workers * self.threads, os.cpu_count() or 1)
                    # a private Ray on this machine talks over loopback only
                    ray.init(num_cpus=cpus, _node_ip_address="127.0.0.1", **quiet)
                    self.started_here = True
                else:
                    ray.init(address=self.address, **{k: v for k, v in quiet.items() if k != "include_dashboard"})
        except Exception as exc:  # noqa: BLE001 - Ray raises many types when it cannot start
            where = self.address or "a local Ray"
            raise ArgumentError("address", f": cannot start or join {where} "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})", sep="") from None
        self.startup_seconds = time.perf_counter() - start
        self.on_start(f"Ray ready in {self.startup_seconds:.1f} s")

    def _gpus(self) -> float:
        if not self.use_gpu:
            return 0
        return 1 if self.ray.cluster_resources().get("GPU", 0) >= 1 else 0

    def _new_actor(self, make_worker):
        actor = _actor_class(self.ray).options(num_cpus=self.threads, num_gpus=self._gpus()).remote(
            make_worker, self.threads, self._counter)
        self._pids.append((actor, actor.pid.remote()))  # runs first, before any item
        return actor

    # -- running ------------------------------------------------------------------------------
    def run(self, make_worker: Callable[[], Worker], items: Iterable[Any],
            progress: Progress) -> Iterator[tuple[Any, Any]]:
        """(item, result) for each item, in completion order."""
        ray = self.ray
        self.start()
        if self._counter is None:
            self._counter = _counter_class(ray).remote()
        while len(self._actors) < self.workers:
            self._actors.append(self._new_actor(make_worker))
        source = iter(items)
        pending: dict = {}  # future -> (item, actor, attempt)
        idle = list(self._actors)
        retry: list[tuple[Any, int]] = []
        exhausted = False
        while True:
            while idle and len(pending) < self.in_flight and (retry or not exhausted):
                if retry:
                    item, attempt = retry.pop(0)
                else:
                    try:
                        item, attempt = next(source), 0
                    except StopIteration:
                        exhausted = True
                        break
                actor = idle.pop(0)
                pending[actor.run.remote(item)] = (item, actor, attempt)
            if not pending:
                break
            done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
            progress(ray.get(self._counter.take.remote()))
            for future in done:
                item, actor, attempt = pending.pop(future)
                try:
                    result = ray.get(future)
                except ray.exceptions.RayTaskError as exc:  # the worker raised: a real error
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, DeliftError):
                        raise type(cause)(str(cause)) from None
                    raise DeliftError(f"{self.name(item)}: worker failed "
                                      f"({str(exc).strip().splitlines()[-1][:200]})") from None
                except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
                        ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError) as exc:
                    self._replace(actor, make_worker)
                    idle.append(self._actors[-1])
                    if attempt >= self.retries:
                        raise DeliftError(f"{self.name(item)}: failed {attempt + 1} times "
                                          f"({type(exc).__name__}); stopping") from None
                    retry.append((item, attempt + 1))
                    continue
                idle.append(actor)
                yield item, result
        progress(ray.get(self._counter.take.remote()))

    def _replace(self, actor, make_worker) -> None:
        """Drop a dead actor and start a fresh one in its place."""
        try:
            self.ray.kill(actor)
        except Exception:  # noqa: BLE001 - it is gone already
            pass
        self._actors = [a for a in self._actors if a != actor]
        self._actors.append(self._new_actor(make_worker))

    def describe(self) -> str:
        """One line: where the work runs."""
        where = "a private local Ray" if self.address is None else f"Ray at {self.address}"
        threads = f"{self.threads} thread" + ("s" if self.threads != 1 else "")
        return f"{self.workers} Ray workers x {threads} on {where}"

    def actor_pids(self) -> list[int]:
        """Process ids of the live actors, oldest first (for tests and diagnostics)."""
        return self.ray.get([ref for actor, ref in self._pids if actor in self._actors])

    def close(self) -> None:
        """Stop the actors, and the local Ray when this executor started it."""
        for actor in self._actors:
            try:
                self.ray.kill(actor)
            except Exception:  # noqa: BLE001
                pass
        self._actors = []
        self._pids = []
        self._counter = None
        if self.started_here and self.ray.is_initialized():
            self.ray.shutdown()
            self.started_here = False


@contextlib.contextmanager
def _stderr_to_devnull():
    """Send file descriptor 2 (where C++ code logs) to /dev/null for the duration."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


_CLASSES: dict[str, Any] = {}


def _actor_class(ray):
    if "actor" not in _CLASSES:
        @ray.remote(max_restarts=0, max_task_retries=0)
        class WorkerActor:
            """One worker per actor process, built once (e.g. one loaded model)."""

            def __init__(self, make_worker, threads: int, counter) -> None:
                os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                try:
                    import torch

                    torch.set_num_threads(int(threads))
                except ImportError:
                    pass
                self.counter = counter
                self.worker = make_worker()

            def run(self, item):
                return self.worker(item, self.counter.add.remote)

            def pid(self) -> int:
                return os.getpid()

        _CLASSES["actor"] = WorkerActor
    return _CLASSES["actor"]


def _counter_class(ray):
    if "counter" not in _CLASSES:
        @ray.remote(num_cpus=0)
        class Counter:
            """Units of progress reported by workers since the driver last asked."""

            def __init__(self) -> None:
                self.n = 0

            def add(self, n: int) -> None:
                self.n += int(n)

            def take(self) -> int:
                n, self.n = self.n, 0
                return n

        _CLASSES["counter"] = Counter
    return _CLASSES["counter"]
