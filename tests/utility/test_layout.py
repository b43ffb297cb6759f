"""The one sequence layout: whole-text tokens, per-sequence prefix check, truncation, templates."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from delift_dvc.errors import InputError
from delift_dvc.utility.layout import NO_EXAMPLE_TEMPLATE, ONE_EXAMPLE_TEMPLATE, Layout, Templates
from delift_dvc.utility.scorer import Scorer

PROMPTS = ["The cat sat.", "3D holograms crack forgeries", "'Madden' scores", "Æon Group (イオン)",
           " leading space", "\nnewline first", "tab\there", "ends with space "]


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def whole(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


@pytest.mark.parametrize("prompt", PROMPTS)
def test_context_is_the_whole_formatted_text(tokenizer, prompt):
    layout = Layout(tokenizer)
    eos = tokenizer.eos_token_id
    enc = layout.encode(prompt, "An answer.")
    assert enc.context == whole(tokenizer, NO_EXAMPLE_TEMPLATE.format(prompt=prompt)) + [eos]
    assert enc.target == whole(tokenizer, "An answer.") + [eos]
    ex = ("Example prompt?", "Example answer.")
    enc = layout.encode(prompt, "An answer.", ex)
    text = ONE_EXAMPLE_TEMPLATE.format(example_prompt=ex[0], example_response=ex[1], prompt=prompt)
    assert enc.context == whole(tokenizer, text) + [eos]


def test_pieces_would_differ_from_the_whole_text(tokenizer):
    """Why the layout tokenises whole: "Query: " | "The" is not "Query:" | " The"."""
    head, tail = NO_EXAMPLE_TEMPLATE.split("{prompt}")
    pieces = whole(tokenizer, head) + whole(tokenizer, "The cat sat." + tail)
    assert pieces != whole(tokenizer, NO_EXAMPLE_TEMPLATE.format(prompt="The cat sat."))


def test_prefix_is_checked_per_sequence(tokenizer):
    merging = Templates(one_example="Example: {example_prompt} => {example_response}\nQuery: {prompt}")
    layout = Layout(tokenizer, merging)
    ex = ("2 + 2", "4")
    prefix = whole(tokenizer, "Example: 2 + 2 => 4\nQuery: ")
    joined = layout.encode("The sum", "x", ex)  # " The" merges across the boundary
    assert joined.prefix == 0
    assert joined.context[: len(prefix)] != prefix
    apart = layout.encode("\nsum", "x", ex)
    assert apart.prefix == len(prefix) and apart.context[: len(prefix)] == prefix
    default = Layout(tokenizer).encode("The sum", "x", ex)
    assert default.prefix > 0  # the default template ends the prefix with a newline


def test_prefix_reuse_falls_back_where_the_boundary_merges(tiny_model_dir):
    """Same numbers with and without prefix reuse when some targets merge across the boundary."""
    template = "Example: {example_prompt} => {example_response}\nQuery: {prompt}"
    items = [SimpleNamespace(prompt=p, response=f"answer {k}") for k, p in enumerate(PROMPTS)]
    pairs = [(i, j) for j in range(3) for i in range(len(items))]
    plain = Scorer(str(tiny_model_dir), dtype="float32", example_template=template, prefix_reuse=False)
    reuse = Scorer(str(tiny_model_dir), dtype="float32", example_template=template, prefix_reuse=True)
    shared = [e.prefix for e in reuse.encode_pairs(items, items, pairs)]
    assert 0 in shared and any(shared)
    expected = plain.score_pairs(items, items, pairs)
    np.testing.assert_allclose(reuse.score_pairs(items, items, pairs), expected, atol=1e-6)


def test_truncation_cuts_the_example_first_then_the_prompt_never_the_response(tokenizer):
    layout = Layout(tokenizer, max_length=60)
    ex = ("word " * 100, "an example answer")
    enc = layout.encode("Short question?", "Short answer.", ex)
    assert enc.truncated and len(enc.tokens) == 60 and enc.prefix == 0
    assert enc.target == whole(tokenizer, "Short answer.") + [tokenizer.eos_token_id]
    text = tokenizer.decode(enc.context[:-1])
    assert text.endswith("Query:\nShort question?\n") and "Example:\nword" in text
    long_prompt = layout.encode("ask " * 200, "Short answer.")
    assert long_prompt.truncated and len(long_prompt.tokens) <= 60
    assert tokenizer.decode(long_prompt.context[:-1]).startswith("Instruction: Please")


def test_response_too_long_is_an_error_or_cut_from_its_end(tokenizer):
    with pytest.raises(InputError, match="sample s1: response of .* does not fit max_length=32"):
        Layout(tokenizer, max_length=32).encode("Q?", "answer " * 100, sample_id="s1")
    enc = Layout(tokenizer, max_length=32, overflow="truncate").encode("Q?", "answer " * 100)
    assert len(enc.tokens) == 32
    assert enc.target == whole(tokenizer, "answer " * 100)[: len(enc.target)]  # the eos went first
    with pytest.raises(InputError, match="generation budget of 40"):
        Layout(tokenizer, max_length=32).encode("Q?", None, reserve=40)


@pytest.mark.parametrize("kwargs, argument", [
    ({"no_example": "no field"}, "template"),
    ({"no_example": "{prompt} {prompt}"}, "template"),
    ({"no_example": "{prompt!r}"}, "template"),
    ({"one_example": "{prompt} {example_prompt} {example_response}"}, "example_template"),
    ({"one_example": "{example_prompt"}, "example_template"),
])
def test_bad_templates_name_the_scorer_argument_and_then_the_key(kwargs, argument):
    from delift_dvc.config import named_as_params

    with pytest.raises(InputError, match=f"^{argument}: "):
        Templates(**kwargs)
    with pytest.raises(InputError, match=f"^params.yaml: scoring.{argument}: "), named_as_params(where="params.yaml"):
        Templates(**kwargs)


def test_escaped_braces_are_literal(tokenizer):
    t = Templates(no_example="{{json}}: {prompt}")
    assert t.text("x") == "{json}: x"
    assert Layout(tokenizer, t).encode("x", "y").context[:-1] == whole(tokenizer, "{json}: x")


def test_chat_layout_uses_the_models_chat_template(tokenizer):
    layout = Layout(tokenizer, chat=True)
    eos = tokenizer.eos_token_id
    enc = layout.encode("What is 2 + 2?", "4")
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 2?"}],
                                         add_generation_prompt=True, tokenize=False)
    assert enc.context == whole(tokenizer, text) and enc.target == whole(tokenizer, "4") + [eos]
    assert tokenizer.decode(enc.context).endswith("<|im_start|>assistant\n") and enc.prefix == 0
    icl = layout.encode("What is 2 + 2?", "4", ("What is 1 + 1?", "2"))
    decoded = tokenizer.decode(icl.context)
    assert decoded.index("What is 1 + 1?") < decoded.index("<|im_start|>assistant\n2<|im_end|>") < decoded.index("2 + 2")


def test_chat_layout_cuts_the_example_turns_first(tokenizer):
    full = Layout(tokenizer, chat=True).encode("Short question?", "Short answer.", ("word " * 200, "ok"))
    short = Layout(tokenizer, max_length=80, chat=True).encode("Short question?", "Short answer.", ("word " * 200, "ok"))
    assert len(full.tokens) > 80 >= len(short.tokens) and short.truncated
    assert "word" not in tokenizer.decode(short.context) and "Short question?" in tokenizer.decode(short.context)
    long_prompt = Layout(tokenizer, max_length=80, chat=True).encode("ask " * 200, "Short answer.")
    assert len(long_prompt.tokens) <= 80 and long_prompt.target == full.target


TURNS = (("system", "You translate English to French."), ("user", "cat"), ("assistant", "chat"), ("user", "dog"))


def test_chat_layout_gives_the_template_the_samples_turns(tokenizer):
    layout = Layout(tokenizer, chat=True)
    (enc,) = layout.encode_many([("flattened prompt", "chien", None)], turns=[TURNS])
    text = tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in TURNS], add_generation_prompt=True,
                                         tokenize=False)
    assert enc.context == whole(tokenizer, text) and enc.target == whole(tokenizer, "chien") + [tokenizer.eos_token_id]
    assert "flattened prompt" not in tokenizer.decode(enc.context)
    # the plain layout scores the flattened prompt: turns do not change it
    plain = Layout(tokenizer)
    assert plain.encode_many([("flattened prompt", "chien", None)], turns=[TURNS]) == [plain.encode("flattened prompt", "chien")]
    # an in-context example goes after the system turn, before the sample's turns
    (icl,) = layout.encode_many([("p", "chien", ("horse", "cheval"))], turns=[TURNS])
    shown = [{"role": "system", "content": TURNS[0][1]}, {"role": "user", "content": "horse"},
             {"role": "assistant", "content": "cheval"}] + [{"role": r, "content": c} for r, c in TURNS[1:]]
    assert icl.context == whole(tokenizer, tokenizer.apply_chat_template(shown, add_generation_prompt=True, tokenize=False))


def test_chat_layout_drops_the_earliest_turns_after_the_system_turn(tokenizer):
    turns = (("system", "Be brief."), ("user", "word " * 60), ("assistant", "ok"), ("user", "Last question?"))
    (full,) = Layout(tokenizer, chat=True).encode_many([("p", "Yes.", None)], turns=[turns])
    (short,) = Layout(tokenizer, max_length=60, chat=True).encode_many([("p", "Yes.", None)], turns=[turns])
    assert len(full.tokens) > 60 >= len(short.tokens) and short.truncated
    decoded = tokenizer.decode(short.context)
    assert "Be brief." in decoded and "Last question?" in decoded and "word" not in decoded
    assert short.target == full.target
