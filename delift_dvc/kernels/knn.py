"""`utility.pairs: knn`: each ground target with its k nearest examples (MiniLM cosine)."""

from __future__ import annotations

from delift_dvc.kernels.base import Candidates, PlanContext
from delift_dvc.kernels.dense import DenseSource
from delift_dvc.kernels.lm import LMScoring
from delift_dvc.utility.knn import knn_from_vectors

__all__ = ["KnnSource"]


class KnnSource(DenseSource):
    """The dense source restricted to each target's `k` nearest examples (itself included):
    scores and reads only those pairs, as a sparse block (no n x n array)."""

    def __init__(self, scoring: LMScoring, k: int) -> None:
        super().__init__(scoring)
        self.k = k

    @classmethod
    def from_params(cls, params) -> "KnnSource":
        return cls(LMScoring.from_params(params), params.utility.k)

    def candidates(self, ctx: PlanContext) -> Candidates | None:
        plan = ctx.plan
        if not plan.ground:
            return None
        vectors = ctx.vectors()
        return knn_from_vectors(plan.ground, plan.examples, ctx.ground_rows(vectors), vectors, self.k)
