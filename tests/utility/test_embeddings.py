"""embed_samples: MiniLM vectors of prompt + response, read-only; and the plan context that
computes them once for every kernel source and option of one selection (no global memo)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from delift_dvc.kernels.base import PlanContext
from delift_dvc.kernels.knn import KnnSource
from delift_dvc.kernels.similarity import SimilaritySource, coverage_block, embedding_parts
from delift_dvc.selection.planning import Plan
from delift_dvc.utility import embeddings


class CountingEmbedder:
    """Stand-in for the Embedder: one-hot-ish unit vectors from text length, counting calls."""

    calls: list[int] = []

    def __init__(self, device: str = "auto") -> None:
        self.device = device

    def encode(self, texts):
        CountingEmbedder.calls.append(len(texts))
        out = np.zeros((len(texts), 384), dtype=np.float32)
        out[np.arange(len(texts)), [len(t) % 384 for t in texts]] = 1.0
        return out


@pytest.fixture
def counting(monkeypatch):
    monkeypatch.setattr(embeddings, "Embedder", CountingEmbedder)
    CountingEmbedder.calls = []
    return CountingEmbedder


def test_vectors_are_read_only_and_each_call_embeds(counting):
    by_id = {k: SimpleNamespace(prompt=f"p{k}", response="r" * n) for n, k in enumerate("abc")}
    first = embeddings.embed_samples(list("abc"), by_id, "cpu")
    with pytest.raises(ValueError):
        first[0, 0] = 2.0  # shared by the sources of a plan, so read-only
    embeddings.embed_samples(list("abc"), by_id, "cpu")
    assert counting.calls == [3, 3]  # no module-level memo


def test_one_plan_context_embeds_its_examples_once(counting):
    by_id = {k: SimpleNamespace(prompt=f"p{k}", response="r" * n) for n, k in enumerate("abcd")}
    plan = Plan("continual", "flcg", ["c", "d"], ["a", "b"], ["a", "b"], 1)
    ctx = PlanContext(plan, by_id, None, "cpu")
    t, e = KnnSource(None, k=2).candidates(ctx)
    sim, identity = SimilaritySource().read(ctx)
    cover = coverage_block(ctx, sim)
    parts = embedding_parts(ctx, 2, seed=0)
    assert counting.calls == [4] and identity == "all-MiniLM-L6-v2"
    vectors = ctx.vectors()  # rows in plan.examples' order (a, b, c, d); the ground is c, d
    assert np.array_equal(sim, vectors[[2, 3]].astype(np.float64) @ vectors.T.astype(np.float64))
    assert np.array_equal(cover, sim) and len(parts) == 2 and len(t) == len(e) == 4
    assert {(0, 2), (1, 3)} <= set(zip(t.tolist(), e.tolist()))  # each target keeps itself
    PlanContext(plan, by_id, None, "cpu").vectors()  # another plan: embedded again
    assert counting.calls == [4, 4]
