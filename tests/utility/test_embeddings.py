"""embed_samples: MiniLM vectors of prompt + response, computed once per selection."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

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


def test_the_same_samples_are_embedded_once_and_others_again(monkeypatch):
    monkeypatch.setattr(embeddings, "Embedder", CountingEmbedder)
    monkeypatch.setattr(embeddings, "_LAST", {})
    CountingEmbedder.calls = []
    by_id = {k: SimpleNamespace(prompt=f"p{k}", response="r" * n) for n, k in enumerate("abc")}
    first = embeddings.embed_samples(list("abc"), by_id, "cpu")
    again = embeddings.embed_samples(list("abc"), by_id, "cpu")
    assert again is first and CountingEmbedder.calls == [3]
    with pytest.raises(ValueError):
        first[0, 0] = 2.0  # shared, so read-only
    embeddings.embed_samples(list("ab"), by_id, "cpu")  # other ids
    by_id["a"] = SimpleNamespace(prompt="changed", response="")
    embeddings.embed_samples(list("ab"), by_id, "cpu")  # same ids, other text
    embeddings.embed_samples(list("ab"), by_id, "cuda")  # other device
    assert CountingEmbedder.calls == [3, 2, 2, 2]
