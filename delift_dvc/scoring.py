"""Teacher-forced DELIFT distances with a causal LM: `d0[i]` and `d[i, j]`.

For target i the tokens are `prompt_tokens + [eos] + response_tokens + [eos]`; the scored
positions are the response tokens and the final eos. With `p_t` the model's probability of the
ground-truth token at scored position t and T the number of scored positions,
`d = ||p - 1||_2 / sqrt(T)`, in [0, 1], lower is better. `d0[i]` uses the no-example template,
`d[i, j]` the one-example template with sample j as the in-context example.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import models
from .errors import InputError
from .templates import (NO_EXAMPLE_TEMPLATE, ONE_EXAMPLE_TEMPLATE, NoExampleTemplate, OneExampleTemplate,
                        cut_to_fit)

DISTANCE_VERSION = "delift-l2/pieces-v1"
OVERFLOWS = ("error", "truncate")
MAX_PADDING = 0.05  # largest share of padding tokens in one batch


class TextPair(Protocol):
    prompt: str
    response: str


@dataclass(frozen=True)
class Encoded:
    """One sequence ready for the model: `tokens[-n_scored:]` are the scored tokens."""

    tokens: list[int]
    n_scored: int
    prefix: int = 0  # leading tokens that depend only on the example (0: none shareable)


def distance_from_probs(probs: np.ndarray) -> float:
    """`||p - 1||_2 / sqrt(T)` for the probabilities p [T] of the ground-truth tokens."""
    probs = np.asarray(probs, dtype=np.float64)
    return float(np.sqrt(np.sum((1.0 - probs) ** 2) / probs.size))


class Scorer:
    """Computes DELIFT distances with one causal LM (loaded lazily on first use).

    model: None for the embedded SmolLM2-135M-Instruct, else a local folder, a .gguf file or a
    hub name present in the local cache. dtype: "auto" (bfloat16 where supported), "float32",
    "bfloat16", "float16". max_length: tokens per sequence. overflow: what to do when a target's
    response alone does not fit ("error" or "truncate" it from the end).
    batch_tokens: padded tokens per forward batch. prefix_reuse: compute the KV cache of each
    example's prefix (template head + example) once and reuse it for all its targets (same
    numbers as the plain path; not part of the fingerprint).
    `stats` counts sequences, forward passes, tokens fed and padding tokens added.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        dtype: str = "auto",
        device: str = "auto",
        max_length: int = 2048,
        template: str = NO_EXAMPLE_TEMPLATE,
        example_template: str = ONE_EXAMPLE_TEMPLATE,
        overflow: str = "error",
        batch_tokens: int = 8192,
        prefix_reuse: bool = True,
        progress: bool = False,
    ) -> None:
        if overflow not in OVERFLOWS:
            raise InputError(f"scoring.overflow '{overflow}': expected one of {', '.join(OVERFLOWS)}")
        if not isinstance(max_length, int) or max_length < 8:
            raise InputError(f"scoring.max_length {max_length!r}: expected an integer >= 8")
        if not isinstance(batch_tokens, int) or batch_tokens < 1:
            raise InputError(f"scoring.batch_tokens {batch_tokens!r}: expected a positive integer")
        self.source = models.resolve_model(model)
        self.device = models.resolve_device(device)
        self.torch_dtype = models.resolve_dtype(dtype, self.device)
        self.max_length = max_length
        self.template_text, self.example_template_text = template, example_template
        self.template = NoExampleTemplate.parse(template)
        self.example_template = OneExampleTemplate.parse(example_template)
        self.overflow = overflow
        self.batch_tokens = batch_tokens
        self.prefix_reuse = prefix_reuse
        self.progress = progress
        self._tokenizer = None
        self._model = None
        self.stats = {"sequences": 0, "forwards": 0, "tokens": 0, "padded_tokens": 0}
        self._pieces: dict[str, list[int]] = {}

    # -- identity -------------------------------------------------------------------------------
    def describe(self) -> dict:
        """Everything that changes the numbers (the fingerprint's content)."""
        return {
            "model": self.source.name,
            "weights_sha256": self.source.weights_sha256,
            "dtype": str(self.torch_dtype).removeprefix("torch."),
            "max_length": self.max_length,
            "template": self.template_text,
            "example_template": self.example_template_text,
            "overflow": self.overflow,
            "distance": DISTANCE_VERSION,
        }

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) of the canonical JSON of `describe()`."""
        canonical = json.dumps(self.describe(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    # -- public scoring -------------------------------------------------------------------------
    def baseline(self, samples: Sequence[TextPair]) -> np.ndarray:
        """d0 [n] (float64): each sample's distance with the no-example template."""
        return self.score_pairs(samples, [], [(i, None) for i in range(len(samples))])

    def pairwise(self, targets: Sequence[TextPair], examples: Sequence[TextPair]) -> np.ndarray:
        """d [len(targets), len(examples)] (float64), d[i, j] = d(target i | example j)."""
        pairs = [(i, j) for i in range(len(targets)) for j in range(len(examples))]
        values = self.score_pairs(targets, examples, pairs)
        return values.reshape(len(targets), len(examples))

    def score_pairs(
        self,
        targets: Sequence[TextPair],
        examples: Sequence[TextPair],
        pairs: Sequence[tuple[int, int | None]],
    ) -> np.ndarray:
        """Distances [len(pairs)] (float64) for (target index, example index or None = d0)."""
        out = np.empty(len(pairs), dtype=np.float64)
        if not pairs:
            return out
        self._load()
        encoded = [self.encode(targets[i], None if j is None else examples[j]) for i, j in pairs]
        groups: dict[int, list[int]] = {}
        if self.prefix_reuse:
            for k, (_, j) in enumerate(pairs):
                if j is not None and encoded[k].prefix:
                    groups.setdefault(j, []).append(k)
            groups = {j: ks for j, ks in groups.items() if len(ks) > 1}
        shared = {k for ks in groups.values() for k in ks}
        plain = [k for k in range(len(pairs)) if k not in shared]
        bar = _progress_bar(len(pairs), self.progress)
        for batch in self._batches(_by_length(plain, encoded, 0), encoded, 0):
            out[batch] = self._forward([encoded[k] for k in batch])
            bar.update(len(batch))
        for j in sorted(groups):
            members = groups[j]
            width = encoded[members[0]].prefix
            cache = self._prefix_cache(encoded[members[0]].tokens[:width])
            for batch in self._batches(_by_length(members, encoded, width), encoded, width):
                out[batch] = self._forward([encoded[k] for k in batch], (width, cache))
                bar.update(len(batch))
        bar.close()
        return out

    # -- sequences ------------------------------------------------------------------------------
    def encode(self, target: TextPair, example: TextPair | None) -> Encoded:
        """Token ids of one (target, example) sequence after truncation."""
        self._load_tokenizer()
        tpl = self.template if example is None else self.example_template
        head = self._tok(tpl.head)
        query = self._tok(tpl.query(target.prompt))
        response = self._tok(target.response)
        if example is None:
            block, middle = [], []
        else:
            block = self._tok(self.example_template.example_block(example.prompt, example.response))
            middle = self._tok(self.example_template.middle)
        eos = [self._tokenizer.eos_token_id]
        full_block = len(block)
        excess = len(head) + len(block) + len(middle) + len(query) + len(response) + 2 - self.max_length
        final_eos = eos
        block, query, excess = cut_to_fit(block, query, excess)
        if excess > 0:
            if self.overflow == "error":
                raise InputError(
                    f"sample {getattr(target, 'id', '?')}: response of {len(response)} tokens does "
                    f"not fit scoring.max_length={self.max_length} (set scoring.overflow: truncate)"
                )
            response, final_eos = response[: len(response) - (excess - 1)], []  # the eos goes first
            if not response:
                raise InputError(f"scoring.max_length={self.max_length} leaves no room for a response")
        tokens = head + block + middle + query + eos + response + final_eos
        untruncated = example is not None and len(block) == full_block
        prefix = len(head) + len(block) + len(middle) if untruncated else 0
        return Encoded(tokens, len(response) + len(final_eos), prefix)

    def _tok(self, text: str) -> list[int]:
        ids = self._pieces.get(text)
        if ids is None:
            ids = self._tokenizer(text, add_special_tokens=False).input_ids
            if len(self._pieces) < 200_000:
                self._pieces[text] = ids
        return ids

    def _batches(self, order: list[int], encoded: list[Encoded], offset: int):
        """Consecutive runs of `order` (ascending length) whose padded size, counting tokens
        after `offset`, stays within batch_tokens and whose padding stays under MAX_PADDING
        of the batch (length bucketing: on a CPU small batches cost little, padding costs)."""
        batch: list[int] = []
        real = 0
        for k in order:  # ascending length: the last member sets the padded width
            width = len(encoded[k].tokens) - offset
            size = (len(batch) + 1) * width
            if batch and (size > self.batch_tokens or size - real - width > MAX_PADDING * size):
                yield batch
                batch, real = [], 0
            batch.append(k)
            real += width
        if batch:
            yield batch

    # -- model ----------------------------------------------------------------------------------
    def _load_tokenizer(self) -> None:
        if self._tokenizer is None:
            self._load()

    def _load(self) -> None:
        if self._model is None:
            self._tokenizer, self._model = models.load_model(self.source, self.torch_dtype, self.device)

    def _prefix_cache(self, tokens: list[int]):
        """Per-layer (keys, values) of a shared prefix [1, heads, len, dim]."""
        import torch

        with torch.inference_mode():
            out = self._model.base_model(input_ids=torch.tensor([tokens], device=self.device),
                                         use_cache=True)
        cache = out[1]
        self.stats["forwards"] += 1
        self.stats["tokens"] += len(tokens)
        return [(layer.keys, layer.values) for layer in cache.layers]

    def _forward(self, batch: list[Encoded], prefix=None) -> np.ndarray:
        """Distances [len(batch)] for one padded batch: right padding, masked attention, and
        the output layer applied only at the scored positions. prefix = (width, per-layer KV)
        of tokens shared by the whole batch, which then feeds only the tokens after it."""
        import torch

        skip = prefix[0] if prefix else 0
        width = max(len(e.tokens) for e in batch) - 1 - skip
        ids = torch.full((len(batch), width), self._tokenizer.eos_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), skip + width), dtype=torch.long)
        mask[:, :skip] = 1
        rows, cols, gold = [], [], []
        for r, e in enumerate(batch):
            n = len(e.tokens) - 1 - skip
            ids[r, :n] = torch.tensor(e.tokens[skip:-1])
            mask[r, skip : skip + n] = 1
            start = n - e.n_scored  # position predicting the first scored token
            rows += [r] * e.n_scored
            cols += range(start, start + e.n_scored)
            gold += e.tokens[-e.n_scored :]
        real = sum(len(e.tokens) - 1 - skip for e in batch)
        self.stats["sequences"] += len(batch)
        self.stats["forwards"] += 1
        self.stats["tokens"] += real
        self.stats["padded_tokens"] += len(batch) * width - real
        kwargs = {}
        if prefix:
            kwargs[_cache_argument(self._model.base_model)] = _expanded_cache(prefix[1], len(batch))
        with torch.inference_mode():
            hidden = self._model.base_model(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs
            ).last_hidden_state
            picked = hidden[torch.tensor(rows), torch.tensor(cols)]
            logits = self._model.get_output_embeddings()(picked).float()
            logp = torch.log_softmax(logits, dim=-1)
            p = logp.gather(1, torch.tensor(gold, device=logp.device)[:, None]).squeeze(1).exp()
            sq = ((1.0 - p.double()) ** 2).cpu()
        counts = torch.tensor([e.n_scored for e in batch])
        sums = torch.zeros(len(batch), dtype=torch.float64).index_add_(0, torch.tensor(rows), sq)
        return torch.sqrt(sums / counts).numpy()


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="seq", desc="scoring", leave=False)


def _by_length(members: list[int], encoded: list[Encoded], offset: int) -> list[int]:
    return sorted(members, key=lambda k: (len(encoded[k].tokens) - offset, k))


def _cache_argument(model) -> str:
    """The forward argument that takes a KV cache ("cache" in transformers 5, else
    "past_key_values")."""
    import inspect

    names = inspect.signature(model.forward).parameters
    return "cache" if "cache" in names else "past_key_values"


def _expanded_cache(layers, batch: int):
    """A fresh DynamicCache holding the prefix KV broadcast to `batch` rows (the forward pass
    appends to it, so each batch gets its own)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for index, (keys, values) in enumerate(layers):
        cache.update(keys.expand(batch, -1, -1, -1), values.expand(batch, -1, -1, -1), index)
    return cache
