"""The local executor and the executor factory: one worker built once, results in input order."""

from __future__ import annotations

import pytest

from delift_dvc.executors.factory import cpu_count, make_executor, resolve_threads
from delift_dvc.executors.local import LocalExecutor

BUILT = []


class Doubler:
    def __init__(self):
        BUILT.append(self)

    def __call__(self, item, progress):
        progress(1)
        return 2 * item


def test_one_worker_built_lazily_results_in_order_with_progress():
    BUILT.clear()
    ticks = []
    executor = make_executor("local", workers=4, threads=2)  # pool options do not apply in-process
    assert isinstance(executor, LocalExecutor) and executor.describe() == "this process"
    out = list(executor.run(Doubler, iter([3, 1, 2]), ticks.append))
    assert out == [(3, 6), (1, 2), (2, 4)] and ticks == [1, 1, 1] and len(BUILT) == 1
    assert list(executor.run(Doubler, [], ticks.append)) == [] and len(BUILT) == 1
    executor.close()
    list(executor.run(Doubler, [5], ticks.append))
    assert len(BUILT) == 2  # closed: a new worker


def test_threads_policy_and_unknown_kind():
    assert resolve_threads(3, "ray", 2) == 3
    assert resolve_threads("auto", "local", 8) == cpu_count()
    assert resolve_threads("auto", "ray", 2) == max(1, cpu_count() // 2)
    assert resolve_threads("auto", "ray", 10 * cpu_count()) == 1
    with pytest.raises(ValueError, match="kind 'dask'"):
        make_executor("dask")
