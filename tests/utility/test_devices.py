"""GPU-facing scoring logic checked on the CPU: device and dtype resolution, the batch size from
free memory, and the out-of-memory back-off with a simulated out-of-memory error."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from delift_dvc.errors import DeviceMemoryError, InputError
from delift_dvc.utility import devices, models
from delift_dvc.utility.scorer import Scorer


def sample(prompt: str, response: str):
    return SimpleNamespace(prompt=prompt, response=response)


ITEMS = [sample(f"Question {k}: is {k} even? " + "word " * k, "yes" if k % 2 == 0 else "no") for k in range(12)]


# -- device and dtype -----------------------------------------------------------------------
def test_auto_device_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert models.resolve_device("auto") == "cuda"
    assert models.resolve_device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert models.resolve_device("auto") == "cpu"
    with pytest.raises(InputError, match="device 'cuda': no CUDA device"):
        models.resolve_device("cuda")
    with pytest.raises(InputError, match="device 'tpu'"):
        models.resolve_device("tpu")


def test_auto_dtype_on_cuda_is_bfloat16_where_supported_else_float16(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert models.resolve_dtype("auto", "cuda") is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert models.resolve_dtype("auto", "cuda") is torch.float16
    assert models.resolve_dtype("float32", "cuda") is torch.float32
    assert models.resolve_dtype("auto", "cpu") in (torch.bfloat16, torch.float32)


# -- batch size from free memory -------------------------------------------------------------
CONFIG = SimpleNamespace(hidden_size=8, intermediate_size=16, num_hidden_layers=3, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=100)


def test_token_bytes_by_hand():
    # per layer 4*8 + 3*16 + 2*2*4 = 96 elements; cache 2*3*1*4 = 24; logits 2*4*100/2 = 400
    # elements of 2 bytes at every position: (96 + 24 + 400) * 2 + 1
    assert devices.token_bytes(CONFIG, 2) == 1041
    # scored share 0.25: logits 100 elements -> (96 + 24 + 100) * 2 + 1
    assert devices.token_bytes(CONFIG, 2, scored_share=0.25) == 441


def test_auto_batch_tokens_is_a_power_of_two_within_limits():
    per = devices.token_bytes(CONFIG, 2)
    assert devices.auto_batch_tokens(CONFIG, 2, None) == devices.CPU_BATCH_TOKENS
    assert devices.auto_batch_tokens(CONFIG, 2, 2 * per * 5000) == 4096  # half the memory: 5000 tokens
    assert devices.auto_batch_tokens(CONFIG, 2, 2 * per * 4096) == 4096
    assert devices.auto_batch_tokens(CONFIG, 2, 2 * per * 4095) == 2048
    assert devices.auto_batch_tokens(CONFIG, 2, 10) == devices.MIN_BATCH_TOKENS
    assert devices.auto_batch_tokens(CONFIG, 2, 1 << 50) == devices.MAX_BATCH_TOKENS


def test_out_of_memory_is_told_apart():
    assert devices.is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert devices.is_out_of_memory(RuntimeError("HIP out of memory"))
    assert not devices.is_out_of_memory(RuntimeError("shape mismatch"))
    assert not devices.is_out_of_memory(ValueError("out of memory"))


# -- the scorer's back-off -------------------------------------------------------------------
def oom_above(scorer: Scorer, rows: int, calls: list):
    """Make the scorer's forward fail like a GPU when a batch has more than `rows` sequences."""
    forward = scorer._forward

    def fake(batch, prefix=None):
        calls.append(len(batch))
        if len(batch) > rows:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {len(batch)} GiB")
        return forward(batch, prefix)

    scorer._forward = fake


@pytest.mark.parametrize("prefix_reuse,pack", [(False, False), (True, False), (True, True)])
def test_out_of_memory_splits_batches_and_keeps_the_values(tiny_model_dir, prefix_reuse, pack):
    pairs = [(i, j) for i in range(len(ITEMS)) for j in range(3)] + [(i, None) for i in range(len(ITEMS))]
    plain = Scorer(str(tiny_model_dir), dtype="float32", batch_tokens=1 << 16, prefix_reuse=prefix_reuse)
    plain.pack_examples = pack
    expected = plain.score_pairs(ITEMS, ITEMS, pairs)
    assert plain.stats["oom_splits"] == 0
    scorer = Scorer(str(tiny_model_dir), dtype="float32", batch_tokens=1 << 16, prefix_reuse=prefix_reuse)
    scorer.pack_examples = pack
    calls: list[int] = []
    scorer.layout  # load first, then make the forward fail above 3 sequences
    oom_above(scorer, 3, calls)
    got = scorer.score_pairs(ITEMS, ITEMS, pairs)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert scorer.stats["oom_splits"] > 0
    assert max(calls) > 3 and scorer.batch_tokens < 1 << 16  # later batches were planned smaller
    assert scorer.stats["sequences"] == len(pairs)  # a failed batch is not counted
    assert plain.stats["sequences"] == len(pairs)


def test_out_of_memory_while_caching_prefixes_splits_them(tiny_model_dir):
    """Packed prefix reuse computes several examples' prefixes in one forward: one that runs
    out of memory is split in halves, with the same values."""
    pairs = [(i, j) for i in range(len(ITEMS)) for j in range(4)]
    expected = Scorer(str(tiny_model_dir), dtype="float32", prefix_reuse=False).score_pairs(ITEMS, ITEMS, pairs)
    scorer = Scorer(str(tiny_model_dir), dtype="float32")
    scorer.pack_examples = True
    base = scorer.model.base_model
    forward, rows = base.forward, []

    @functools.wraps(forward)
    def fake(*args, use_cache=None, **kwargs):
        if use_cache and kwargs["input_ids"].shape[0] > 1:  # the prefix forward, above one row
            rows.append(kwargs["input_ids"].shape[0])
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 GiB")
        return forward(*args, use_cache=use_cache, **kwargs)

    base.forward = fake
    got = scorer.score_pairs(ITEMS, ITEMS, pairs)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    assert rows and scorer.stats["oom_splits"] >= len(rows)


def test_packing_holds_a_bounded_window_of_prefix_caches(tiny_model_dir, monkeypatch):
    """Packed prefix reuse caches at most CACHED_PREFIX_TOKENS prefix tokens at once: a small
    bound gives more windows, more prefix forwards and the same values."""
    from delift_dvc.utility import scorer as scorer_module

    pairs = [(i, j) for i in range(len(ITEMS)) for j in range(6)]
    whole = Scorer(str(tiny_model_dir), dtype="float32")
    whole.pack_examples = True
    expected = whole.score_pairs(ITEMS, ITEMS, pairs)
    width = max(e.prefix for e in whole.encode_pairs(ITEMS, ITEMS, pairs))
    monkeypatch.setattr(scorer_module, "CACHED_PREFIX_TOKENS", 2 * width)
    windows = Scorer(str(tiny_model_dir), dtype="float32")
    windows.pack_examples = True
    cached = []
    caches = windows._prefix_caches
    windows._prefix_caches = lambda prefixes: cached.append(sum(map(len, prefixes))) or caches(prefixes)
    np.testing.assert_allclose(windows.score_pairs(ITEMS, ITEMS, pairs), expected, rtol=0, atol=1e-6)
    assert len(cached) >= 3 and max(cached) <= 2 * width
    assert windows.stats["forwards"] > whole.stats["forwards"]


def test_out_of_memory_on_one_sequence_is_a_one_line_error(tiny_model_dir):
    scorer = Scorer(str(tiny_model_dir), dtype="float32", prefix_reuse=False)
    scorer.layout
    oom_above(scorer, 0, [])
    with pytest.raises(DeviceMemoryError) as info:
        scorer.baseline(ITEMS[:2])
    message = str(info.value)
    assert "\n" not in message and "single sequence of" in message and "max_length" in message


def test_other_errors_in_a_forward_are_not_retried(tiny_model_dir):
    scorer = Scorer(str(tiny_model_dir), dtype="float32", prefix_reuse=False)
    scorer.layout
    calls: list[int] = []

    def broken(batch, prefix=None):
        calls.append(len(batch))
        raise RuntimeError("shape mismatch")

    scorer._forward = broken
    with pytest.raises(RuntimeError, match="shape mismatch"):
        scorer.baseline(ITEMS[:4])
    assert calls == [4]


def test_auto_batch_tokens_on_the_cpu(tiny_model_dir):
    scorer = Scorer(str(tiny_model_dir), dtype="float32", batch_tokens="auto")
    assert scorer.batch_tokens is None
    scorer.baseline(ITEMS[:2])
    assert scorer.batch_tokens == devices.CPU_BATCH_TOKENS
    with pytest.raises(InputError, match="batch_tokens 'big'"):
        Scorer(str(tiny_model_dir), batch_tokens="big")


def test_a_hub_id_not_in_the_cache_says_how_to_fetch_it(tmp_path, monkeypatch):
    from delift_dvc.errors import ModelUnavailableError

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelUnavailableError) as info:
        models.resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct")
    message = str(info.value)
    assert "\n" not in message and message.startswith("model 'HuggingFaceTB/SmolLM2-360M-Instruct': not in the local")
    assert "`hf download HuggingFaceTB/SmolLM2-360M-Instruct`" in message and "local model folder" in message
