"""embed_samples: MiniLM vectors of prompt + response, read-only; and the plan context that
computes them once for every kernel source and option of one selection (no global memo)."""

from __future__ import annotations

from pathlib import Path
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

    def __init__(self, device: str = "auto", model: str = "embedded") -> None:
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


@pytest.fixture(scope="module")
def small_encoder(tmp_path_factory, embedded_available) -> Path:
    """A 2-layer random BERT (hidden size 32) with MiniLM's tokenizer: a sentence-transformers-shaped
    model folder other than the embedded one."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(embeddings.embedding_model_dir())
    folder = tmp_path_factory.mktemp("models") / "small-encoder"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=64)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_another_embedding_model_is_mean_pooled_and_normalised(small_encoder):
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["a short one", "a somewhat longer sentence about the weather today", "x"]
    got = embeddings.Embedder(device="cpu", model=str(small_encoder)).encode(texts)
    assert got.shape == (3, 32) and got.dtype == np.float32
    tokenizer, model = AutoTokenizer.from_pretrained(small_encoder), AutoModel.from_pretrained(small_encoder).eval()
    for text, row in zip(texts, got):  # the definition, one text at a time (no padding at all)
        with torch.inference_mode():
            hidden = model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0]
        mean = hidden.mean(0).numpy()
        np.testing.assert_allclose(row, mean / np.linalg.norm(mean), atol=1e-5)


def test_the_similarity_kernel_names_its_embedding_model(small_encoder):
    samples = {f"s{k}": SimpleNamespace(prompt=f"prompt {k}", response=f"response {k}") for k in range(4)}
    plan = Plan("initial", "fl", list(samples), list(samples), [], 2, {})
    ctx = PlanContext(plan, samples, None, "cpu", embedding_model=str(small_encoder))
    block, identity = SimilaritySource().read(ctx)
    assert identity == "small-encoder" and block.shape == (4, 4) and ctx.vectors().shape == (4, 32)
    assert SimilaritySource().read(PlanContext(plan, samples, None, "cpu"))[1] == "all-MiniLM-L6-v2"


def test_file_mode_selects_with_another_embedding_model(small_encoder, tmp_path):
    import json
    import subprocess

    data = tmp_path / "pool.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"question {k}?", "output": f"answer {k}"}) + "\n"
                            for k in range(10)))
    done = subprocess.run(["delift-dvc", "select", str(data), "--method", "delift_se", "--budget", "3",
                           "--embedding-model", str(small_encoder), "--out", str(tmp_path / "subset.jsonl"),
                           "--summary", str(tmp_path / "summary.json")], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["scorer"] == "small-encoder" and len(summary["ids"]) == 3
    bad = subprocess.run(["delift-dvc", "select", str(data), "--method", "delift_se", "--embedding-model",
                          str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.jsonl")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "utility.embedding_model" in bad.stderr and "not a model folder" in bad.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_a_model_folder_that_does_not_load_is_a_one_line_error(tmp_path):
    from delift_dvc.errors import ModelUnavailableError

    (tmp_path / "broken").mkdir()
    (tmp_path / "broken/config.json").write_text("{}")
    with pytest.raises(ModelUnavailableError, match=r"broken: cannot load the embedding model"):
        embeddings.Embedder(device="cpu", model=str(tmp_path / "broken")).encode(["x"])
