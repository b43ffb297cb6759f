"""The scorer against hand-computed values and an independent, slow re-implementation."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from delift_dvc.errors import InputError
from delift_dvc.utility import models
from delift_dvc.utility.scorer import (DISTANCE_VERSION, NLL_DISTANCE_VERSION, Scorer, distance_from_probs,
                                       nll_from_probs)
from delift_dvc.utility.layout import NO_EXAMPLE_TEMPLATE, ONE_EXAMPLE_TEMPLATE

from tests.conftest import SHORT_P3, p3_records


def sample(prompt: str, response: str):
    return SimpleNamespace(prompt=prompt, response=response)


def test_distance_from_probs_by_hand():
    assert distance_from_probs(np.array([1.0, 1.0])) == 0.0
    assert distance_from_probs(np.array([0.0])) == 1.0
    assert distance_from_probs(np.array([0.5, 1.0, 0.0])) == pytest.approx(np.sqrt(1.25 / 3))


def test_nll_from_probs_by_hand():
    assert nll_from_probs(np.array([1.0, 1.0])) == 0.0
    assert nll_from_probs(np.array([0.5, 0.25])) == pytest.approx(1.5 * np.log(2.0))


def test_uniform_model_gives_one_minus_one_over_vocab(tiny_model_dir, tmp_path):
    """With the final norm zeroed, every logit is 0: p = 1/V at every position, d = 1 - 1/V."""
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        model.model.norm.weight.zero_()
    folder = tmp_path / "uniform"
    model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny_model_dir / name).read_bytes())
    scorer = Scorer(str(folder), dtype="float32")
    vocab = model.config.vocab_size
    items = [sample("Say yes.", "yes"), sample("Write a long answer please.", "one two three four five")]
    expected = 1.0 - 1.0 / vocab
    assert scorer.baseline(items) == pytest.approx([expected, expected], abs=1e-6)
    assert scorer.pairwise(items, items) == pytest.approx(np.full((2, 2), expected), abs=1e-6)
    nll = Scorer(str(folder), dtype="float32", distance="nll")  # -log(1/V) at every position
    assert nll.baseline(items) == pytest.approx([np.log(vocab)] * 2, abs=1e-5)
    assert nll.pairwise(items, items) == pytest.approx(np.full((2, 2), np.log(vocab)), abs=1e-5)


def reference_tokens(tokenizer, target, example, max_length: int = 10**9) -> tuple[list[int], int]:
    """(tokens, n_scored) as DESIGN.md defines them, written from the definition alone: format the
    whole text with str.format, tokenise it once, then eos, the response's own tokens and eos.

    Over max_length, the example is cut where its last E excess tokens (of the whole text's
    tokenisation) begin, and the text is tokenised again, until it fits."""
    eos = tokenizer.eos_token_id
    response = tokenizer.encode(target.response, add_special_tokens=False) + [eos]
    if example is None:
        text = NO_EXAMPLE_TEMPLATE.format(prompt=target.prompt)
        return tokenizer.encode(text, add_special_tokens=False) + [eos] + response, len(response)
    text = ONE_EXAMPLE_TEMPLATE.format(example_prompt=example.prompt, example_response=example.response,
                                       prompt=target.prompt)
    start = ONE_EXAMPLE_TEMPLATE.index("{example_prompt}")  # the example's text is [start, end)
    end = start + len(example.prompt) + 1 + len(example.response)  # "{example_prompt}\n{example_response}"
    assert text[start:end] == example.prompt + "\n" + example.response
    while True:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        excess = len(enc.input_ids) + 1 + len(response) - max_length
        if excess <= 0:
            return list(enc.input_ids) + [eos] + response, len(response)
        starts = [s for s, _ in enc.offset_mapping if start <= s < end]
        assert starts, "the reference only cuts examples"
        cut = starts[-excess] if excess <= len(starts) else start
        text, end = text[:cut] + text[end:], cut


def reference_distance(tokenizer, model, target, example, max_length: int = 10**9, distance: str = "l2") -> float:
    """One sequence at a time, full-vocabulary logits, an explicit loop over the scored tokens:
    sqrt(mean (1 - p)^2) for l2, mean -log p for nll."""
    tokens, n_scored = reference_tokens(tokenizer, target, example, max_length)
    with torch.no_grad():
        logits = model(torch.tensor([tokens])).logits[0].double()
    probs = torch.softmax(logits, dim=-1)
    total = 0.0
    for t in range(len(tokens) - n_scored, len(tokens)):
        p = probs[t - 1, tokens[t]].item()
        total += (1.0 - p) ** 2 if distance == "l2" else -math.log(p)
    return (total / n_scored) ** 0.5 if distance == "l2" else total / n_scored


# prompts that start with a digit, punctuation and a non-ASCII letter (folder, template, line)
SPECIAL_P3 = [("p3", "rotten_tomatoes_Reviewer_Enjoyment", 108), ("p3", "ag_news_classify_with_choices", 200),
              ("p3", "glue_qqp_duplicate_or_not", 49),
              ("p3_t0", "dbpedia_14_given_list_what_category_does_the_paragraph_belong_to", 34)]


@pytest.fixture(scope="module")
def real_samples(shared_data):
    from delift_dvc.data.samples import to_sample

    records = p3_records(shared_data, SHORT_P3, 1)
    for folder, name, line in SPECIAL_P3:
        with open(shared_data / folder / f"{name}.jsonl", encoding="utf-8") as handle:
            records.append(json.loads(handle.readlines()[line - 1]))
    return [to_sample(r, f"p3:{k}") for k, r in enumerate(records)]


@pytest.fixture(scope="module")
def reference_tokenizer(embedded_available):
    """The embedded model's tokenizer, loaded on its own (not through the scorer)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(models.dequantised_folder(models.resolve_model(None)))


def test_real_samples_cover_the_hard_starts(real_samples):
    firsts = [s.prompt[0] for s in real_samples]
    assert any(c.isdigit() for c in firsts)
    assert any(not c.isalnum() and not c.isspace() for c in firsts)
    assert any(ord(c) > 127 and c.isalpha() for c in firsts)
    assert len(real_samples) >= 12


def test_scorer_sequences_are_the_whole_text_tokens(real_scorer_f32, real_samples, reference_tokenizer):
    """Token for token: the scorer's sequences equal the definition's, d0 and pairs."""
    n = len(real_samples)
    for i, target in enumerate(real_samples):
        for example in (None, real_samples[(i + 1) % n], target):
            tokens, n_scored = reference_tokens(reference_tokenizer, target, example)
            enc = real_scorer_f32.encode(target, example)
            assert enc.tokens == tokens and enc.n_scored == n_scored


def test_scorer_matches_whole_text_reference_on_real_model(real_scorer_f32, real_samples, reference_tokenizer):
    scorer = real_scorer_f32
    d0 = scorer.baseline(real_samples)
    d = scorer.pairwise(real_samples, real_samples)
    model = scorer.model
    for i, target in enumerate(real_samples):
        assert d0[i] == pytest.approx(reference_distance(reference_tokenizer, model, target, None), abs=1e-5)
        for j in (i, (i + 3) % len(real_samples)):
            ref = reference_distance(reference_tokenizer, model, target, real_samples[j])
            assert d[i, j] == pytest.approx(ref, abs=1e-5)
    assert np.all((d >= 0) & (d <= 1))


def test_nll_distance_matches_reference_on_real_model(real_samples, reference_tokenizer):
    """scoring.distance nll: the mean -log p of the scored tokens, d0 and pairs, against the
    one-sequence reference; its UF is then the per-token log-likelihood gain."""
    scorer = Scorer(dtype="float32", distance="nll")
    few = real_samples[:4]
    d0 = scorer.baseline(few)
    d = scorer.pairwise(few, few)
    for i, target in enumerate(few):
        assert d0[i] == pytest.approx(reference_distance(reference_tokenizer, scorer.model, target, None,
                                                         distance="nll"), abs=1e-4)
        for j in range(len(few)):
            ref = reference_distance(reference_tokenizer, scorer.model, target, few[j], distance="nll")
            assert d[i, j] == pytest.approx(ref, abs=1e-4)
    assert np.all(d >= 0) and d.max() > 1.0  # not bounded by 1 as the l2 distance is


def test_truncated_example_matches_reference_on_real_model(real_samples, reference_tokenizer):
    """A long example cut to fit max_length: same tokens and distance as the reference's cut."""
    scorer = Scorer(dtype="float32", max_length=96)
    target = min(real_samples, key=lambda s: len(s.prompt) + len(s.response))
    example = max(real_samples, key=lambda s: len(s.prompt) + len(s.response))
    enc = scorer.encode(target, example)
    tokens, n_scored = reference_tokens(reference_tokenizer, target, example, max_length=96)
    assert enc.truncated and len(enc.tokens) <= 96
    assert enc.tokens == tokens and enc.n_scored == n_scored
    got = scorer.score_pairs([target], [example], [(0, 0)])[0]
    assert got == pytest.approx(reference_distance(reference_tokenizer, scorer.model, target, example, 96), abs=1e-5)


def test_padding_does_not_change_numbers(real_scorer_f32, real_samples):
    scorer = real_scorer_f32
    pairs = [(i, (i * 5) % len(real_samples)) for i in range(len(real_samples))]
    together = scorer.score_pairs(real_samples, real_samples, pairs)
    alone = [scorer.score_pairs(real_samples, real_samples, [p])[0] for p in pairs]
    assert together == pytest.approx(alone, abs=1e-5)


def test_truncation_cuts_the_example_then_the_prompt(tiny_model_dir):
    scorer = Scorer(str(tiny_model_dir), dtype="float32", max_length=64)
    target = sample("Short question?", "Short answer.")
    example = sample("word " * 200, "an example answer")
    full = Scorer(str(tiny_model_dir), dtype="float32", max_length=4096)
    long_enc, short_enc = full.encode(target, example), scorer.encode(target, example)
    assert len(short_enc.tokens) == 64
    assert short_enc.tokens[-14:] == long_enc.tokens[-14:]  # target prompt + response intact
    assert short_enc.n_scored == long_enc.n_scored
    long_target = sample("ask " * 300, "Short answer.")
    enc = scorer.encode(long_target, None)
    assert len(enc.tokens) == 64 and enc.n_scored == full.encode(long_target, None).n_scored
    assert np.isfinite(scorer.score_pairs([target, long_target], [example], [(0, 0), (1, None)])).all()


def test_response_overflow_is_an_error_or_truncated(tiny_model_dir):
    target = sample("Q?", "answer " * 100)
    with pytest.raises(InputError, match="max_length"):
        Scorer(str(tiny_model_dir), dtype="float32", max_length=32).encode(target, None)
    scorer = Scorer(str(tiny_model_dir), dtype="float32", max_length=32, overflow="truncate")
    enc = scorer.encode(target, None)
    assert len(enc.tokens) == 32
    value = scorer.baseline([target])[0]
    assert 0.0 <= value <= 1.0


def test_fingerprint_covers_what_changes_numbers(tiny_model_dir):
    base = Scorer(str(tiny_model_dir), dtype="float32")
    same = Scorer(str(tiny_model_dir), dtype="float32", batch_tokens=100, prefix_reuse=False, threads=1)
    assert base.fingerprint == same.fingerprint
    others = [
        Scorer(str(tiny_model_dir), dtype="bfloat16"),
        Scorer(str(tiny_model_dir), dtype="float32", max_length=512),
        Scorer(str(tiny_model_dir), dtype="float32", template="Q: {prompt}\nA:"),
        Scorer(str(tiny_model_dir), dtype="float32",
               example_template="{example_prompt} {example_response}\n{prompt}"),
        Scorer(str(tiny_model_dir), dtype="float32", distance="nll"),
    ]
    assert len({base.fingerprint, *[o.fingerprint for o in others]}) == 6
    assert base.describe()["distance"] == DISTANCE_VERSION == "delift-l2/whole-text-v2"
    assert others[-1].describe()["distance"] == NLL_DISTANCE_VERSION == "delift-nll/whole-text-v2"


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"template": "no field"}, "template"),
        ({"example_template": "{prompt} {example_prompt}"}, "example_template"),
        ({"dtype": "int8"}, "dtype"),
        ({"overflow": "drop"}, "overflow"),
        ({"max_length": 2}, "max_length"),
        ({"distance": "kl"}, "distance"),
    ],
)
def test_bad_scorer_arguments_name_the_argument_then_the_key(tiny_model_dir, kwargs, key):
    from delift_dvc.config import named_as_params

    with pytest.raises(InputError, match=f"^{key}"):
        Scorer(str(tiny_model_dir), **kwargs)
    if key != "dtype":  # checked by models.resolve_dtype, which names no key
        with pytest.raises(InputError, match=f"^scoring.{key}"), named_as_params():
            Scorer(str(tiny_model_dir), **kwargs)


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no weight files"):
        Scorer(str(tmp_path))


def test_prefix_reuse_equals_plain_path_on_real_model(real_samples):
    """Shared example prefixes computed once: same numbers as full sequences (float32),
    with mixed lengths, a truncated example (falls back to the plain path) and d0 mixed in."""
    plain = Scorer(dtype="float32", max_length=160, prefix_reuse=False)
    reuse = Scorer(dtype="float32", max_length=160, prefix_reuse=True)
    n = len(real_samples)
    pairs = [(i, j) for j in range(3) for i in range(n)] + [(i, None) for i in range(3)]
    encoded = [plain.encode(real_samples[i], None if j is None else real_samples[j]) for i, j in pairs]
    assert any(e.prefix == 0 for e, (_, j) in zip(encoded, pairs) if j is not None), "need a truncated case"
    assert any(e.prefix > 0 for e in encoded)
    expected = plain.score_pairs(real_samples, real_samples, pairs)
    got = reuse.score_pairs(real_samples, real_samples, pairs)
    assert got == pytest.approx(expected, abs=1e-5)
    assert reuse.stats["sequences"] == len(pairs) and reuse.fingerprint == plain.fingerprint


def test_packed_prefix_reuse_equals_plain_path_on_real_model(real_samples):
    """Many examples' targets in one forward, each row on its own example's cache (padded to
    the longest prefix, positions continuing from its own): the numbers of full sequences
    (float32, packing forced on), in fewer forwards than one example per forward."""
    plain = Scorer(dtype="float32", max_length=160, prefix_reuse=False)
    packed = Scorer(dtype="float32", max_length=160, prefix_reuse=True)
    apart = Scorer(dtype="float32", max_length=160, prefix_reuse=True)
    assert not packed.pack_examples  # float32 keeps one example per forward by default
    packed.pack_examples = True
    n = len(real_samples)
    pairs = [(i, j) for j in range(4) for i in range(n)] + [(i, None) for i in range(3)]
    widths = {e.prefix for e in packed.encode_pairs(real_samples, real_samples, pairs) if e.prefix}
    assert len(widths) > 1, "need examples with different prefix lengths"
    expected = plain.score_pairs(real_samples, real_samples, pairs)
    got = packed.score_pairs(real_samples, real_samples, pairs)
    assert got == pytest.approx(expected, abs=1e-5)
    apart.score_pairs(real_samples, real_samples, pairs)
    assert packed.stats["sequences"] == len(pairs) and packed.stats["forwards"] < apart.stats["forwards"]


def test_packing_is_for_half_precision():
    assert Scorer(dtype="bfloat16").pack_examples and Scorer(dtype="float16", device="cpu").pack_examples
    assert not Scorer(dtype="float32").pack_examples


def test_large_requests_are_scored_in_bounded_chunks(tiny_model_dir, monkeypatch):
    from delift_dvc.utility import scorer as scorer_module

    items = [sample(f"Question number {k}?", f"Answer {k}.") for k in range(9)]
    whole = Scorer(str(tiny_model_dir), dtype="float32").pairwise(items, items)
    monkeypatch.setattr(scorer_module, "CHUNK_PAIRS", 10)
    chunked = Scorer(str(tiny_model_dir), dtype="float32").pairwise(items, items)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
