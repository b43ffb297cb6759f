"""`utility.pairs: dense`: the LM utility of every (ground target, example) pair."""

from __future__ import annotations

from delift_dvc.kernels.base import Block, Candidates, PlanContext, Scored
from delift_dvc.kernels.driver import score_missing
from delift_dvc.kernels.lm import LMScoring
from delift_dvc.kernels.utility import dense_utility, sparse_utility
from delift_dvc.progress import Reporter

__all__ = ["DenseSource"]


class DenseSource:
    """Scores d0 of every ground target and UF over ground x examples; reads the dense block."""

    def __init__(self, scoring: LMScoring) -> None:
        self.scoring = scoring

    @classmethod
    def from_params(cls, params) -> "DenseSource":
        return cls(LMScoring.from_params(params))

    def candidates(self, ctx: PlanContext) -> Candidates | None:
        """The pairs this kind scores, as (target idx, example idx); None: all of them."""
        return None

    def score(self, ctx: PlanContext, reporter: Reporter) -> Scored:
        spec = self.scoring.spec
        scorer = spec.build()
        plan = ctx.plan
        with self.scoring.running(reporter) as executor:
            candidates = self.candidates(ctx)
            counts = score_missing(ctx.store, scorer, ctx.samples, plan.ground, plan.ground, plan.examples,
                                   candidates=candidates, segment_pairs=self.scoring.segment_pairs,
                                   executor=executor, spec=spec, reporter=reporter)
        return Scored(counts, scorer.fingerprint, candidates)

    def read(self, ctx: PlanContext, scored: Scored | None = None) -> tuple[Block, str]:
        if scored is not None and scored.identity is not None:
            fingerprint, candidates = scored.identity, scored.candidates
        else:
            fingerprint, candidates = self.scoring.fingerprint, self.candidates(ctx)
        plan = ctx.plan
        if candidates is not None:  # sparse all the way: no n x n array
            return sparse_utility(ctx.store, fingerprint, plan.ground, plan.examples, candidates), fingerprint
        return dense_utility(ctx.store, fingerprint, plan.ground, plan.examples), fingerprint
