"""What every LM-utility source shares: how a plan's values are scored (scorer, blocks, executor)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from functools import cached_property

from delift_dvc.executors import Executor
from delift_dvc.executors.factory import make_executor, resolve_threads
from delift_dvc.progress import Reporter
from delift_dvc.utility.scorer import ScorerSpec

__all__ = ["LMScoring", "scorer_spec"]


def scorer_spec(scoring) -> ScorerSpec:
    """The ScorerSpec of params.yaml's `scoring` section, threads resolved by the executor policy."""
    names = {f.name for f in fields(ScorerSpec)} & set(vars(scoring))
    spec = ScorerSpec(**{name: getattr(scoring, name) for name in names})
    threads = resolve_threads(scoring.threads, scoring.executor, scoring.workers)
    return replace(spec, model=None if spec.model == "embedded" else spec.model, threads=threads)


def _block_name(item) -> str:
    return f"block {item[0].id}"


@dataclass(frozen=True)
class LMScoring:
    """How LM values are scored: the scorer `spec`, `segment_pairs` values per block (= per
    stored segment), and the executor (`executor` kind, `workers`, cluster `address`)."""

    spec: ScorerSpec
    segment_pairs: int = 2048
    executor: str = "local"
    workers: int = 1
    address: str | None = None

    @classmethod
    def from_params(cls, params) -> "LMScoring":
        s = params.scoring
        return cls(scorer_spec(s), s.segment_pairs, s.executor, s.workers, s.ray_address)

    @cached_property
    def fingerprint(self) -> str:
        """The scorer's fingerprint: the key of its values in the store."""
        return self.spec.build().fingerprint

    @contextmanager
    def running(self, reporter: Reporter) -> Iterator[Executor]:
        """An executor for the duration of a `with` block, closed after it."""
        executor = make_executor(self.executor, workers=self.workers, threads=self.spec.threads or 1,
                                 address=self.address, use_gpu=self.spec.device != "cpu", name=_block_name,
                                 on_start=reporter.phase)
        try:
            yield executor
        finally:
            executor.close()
