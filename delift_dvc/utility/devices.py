"""Accelerator memory for scoring: a batch size from free GPU memory, and telling an
out-of-memory failure apart from any other so that the scorer can split the batch and retry.

Everything here is plain arithmetic or an exception test, so CPU tests cover it; only
`free_bytes` asks the device.
"""

from __future__ import annotations

CPU_BATCH_TOKENS = 8192  # "auto" on a CPU: the measured best of benchmarks/bench_scoring.py
MIN_BATCH_TOKENS = 512
MAX_BATCH_TOKENS = 1 << 18
MEMORY_SHARE = 0.5  # of the free memory, for one batch's activations (the rest: allocator slack)


def token_bytes(config, dtype_bytes: int, scored_share: float = 1.0) -> int:
    """Peak activation bytes per token fed in one inference forward of a decoder LM with
    transformers' `config` (hidden_size, intermediate_size, num_hidden_layers, heads,
    vocab_size): the residual stream and one layer's attention and MLP intermediates, the
    KV cache of every layer, and float32 logits plus log-softmax at the scored share of
    positions. An upper estimate: it sizes batches, it is no exact count."""
    hidden = config.hidden_size
    layers = config.num_hidden_layers
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    per_layer = 4 * hidden + 3 * config.intermediate_size + 2 * heads * head_dim  # live at once
    cache = 2 * layers * kv_heads * head_dim
    logits = 2 * 4 * config.vocab_size * scored_share / dtype_bytes  # two float32 [V] rows
    return int((per_layer + cache + logits) * dtype_bytes) + 1


def auto_batch_tokens(config, dtype_bytes: int, free: int | None) -> int:
    """Padded tokens per batch for `scoring.batch_tokens: auto`: CPU_BATCH_TOKENS without a
    GPU (free None), else MEMORY_SHARE of the free bytes over `token_bytes`, rounded down to
    a power of two in [MIN_BATCH_TOKENS, MAX_BATCH_TOKENS]."""
    if free is None:
        return CPU_BATCH_TOKENS
    fits = int(free * MEMORY_SHARE) // token_bytes(config, dtype_bytes)
    size = MIN_BATCH_TOKENS
    while size * 2 <= min(fits, MAX_BATCH_TOKENS):
        size *= 2
    return size


def free_bytes(device: str) -> int | None:
    """Free memory of a CUDA device in bytes (None on the CPU)."""
    if not device.startswith("cuda"):
        return None
    import torch

    return int(torch.cuda.mem_get_info(torch.device(device))[0])


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is an accelerator's out-of-memory failure (torch.cuda.OutOfMemoryError, or
    the RuntimeError that other backends raise with the same words)."""
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", None) or getattr(torch, "OutOfMemoryError", None)
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def release(device: str) -> None:
    """Return cached blocks to the device after an out-of-memory failure."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
