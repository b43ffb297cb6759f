"""The contract of a kernel source, and the plan context that sources share.

A :class:`PlanContext` holds one plan's inputs (the plan, its samples, the store) and computes
the plan's sentence embeddings at most once, for every source and selection option that reads
them (knn candidates, the surrogate's features, the coverage term, balance clusters).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from delift_dvc.kernels.driver import ScoreCounts
from delift_dvc.selection.planning import Plan
from delift_dvc.selection.sparse import SparseKernel
from delift_dvc.progress import Reporter
from delift_dvc.store import Store

Candidates = tuple[np.ndarray, np.ndarray]  # (target idx, example idx) of a sparse block
Block = np.ndarray | SparseKernel  # a kernel block [|ground|, |examples|]


@dataclass
class PlanContext:
    """One plan's inputs: `samples` maps every id of the plan to a Sample (prompt, response);
    `store` is None for kernels that need none; `device` runs the sentence embedder;
    `embeddings` [|examples|, 384], when given, are plan.examples' vectors computed elsewhere;
    `groups` maps each ground sample to its group (None: not known); `embedding_model`:
    "embedded" (all-MiniLM-L6-v2) or a sentence-transformers model folder."""

    plan: Plan
    samples: Mapping[str, object]
    store: Store | None = None
    device: str = "auto"
    embeddings: np.ndarray | None = field(default=None, repr=False)
    groups: Mapping[str, str] | None = None
    embedding_model: str = "embedded"

    def vectors(self) -> np.ndarray:
        """Unit-norm sentence vectors [|examples|, dim] of plan.examples (computed once)."""
        if self.embeddings is None:
            from delift_dvc.utility.embeddings import embed_samples

            self.embeddings = embed_samples(self.plan.examples, self.samples, self.device, self.embedding_model)
        return self.embeddings

    def ground_rows(self, vectors: np.ndarray) -> np.ndarray:
        """The rows of `vectors` [|examples|, d] of the ground samples, in plan.ground's order."""
        position = {e: k for k, e in enumerate(self.plan.examples)}
        return vectors[[position[i] for i in self.plan.ground]]


@dataclass
class Scored:
    """What scoring a plan did: counts, the kernel's identity (scorer fingerprint), knn
    candidates, and in surrogate mode the kernel itself and the surrogate's metrics."""

    counts: ScoreCounts = field(default_factory=ScoreCounts)
    identity: str | None = None
    candidates: Candidates | None = None
    kernel: Block | None = None
    metrics: dict | None = None


class KernelSource(Protocol):
    """Scores what a plan's kernel needs and reads it back."""

    def score(self, ctx: PlanContext, reporter: Reporter) -> Scored:
        """Score the values ctx.plan needs that ctx.store lacks (writes the store)."""
        ...

    def read(self, ctx: PlanContext, scored: Scored | None = None) -> tuple[Block, str]:
        """(block [|ground|, |examples|], identity) of ctx.plan, scoring nothing; `scored`:
        what score() returned for this plan, if it ran."""
        ...
