"""Teacher-forced DELIFT distances with a causal LM: `d0[i]` and `d[i, j]`.

For target i the tokens are `prompt_tokens + [eos] + response_tokens + [eos]`, with
`prompt_tokens` the whole formatted template tokenised once (:mod:`delift_dvc.utility.layout`); the scored
positions are the response tokens and the final eos. With `p_t` the model's probability of the
ground-truth token at scored position t and T the number of scored positions,
`d = ||p - 1||_2 / sqrt(T)`, in [0, 1], lower is better (distance "l2", the paper's). Distance
"nll" is the mean negative log-likelihood `d = -(1/T) sum_t log p_t` in nats/token, >= 0, lower
is better; with it, UF = d0 - d is the per-token log-likelihood gain that example j gives
target i's response (the pointwise mutual information form). `d0[i]` uses the no-example template,
`d[i, j]` the one-example template with sample j as the in-context example.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import numpy as np

from delift_dvc.errors import ArgumentError, DeviceMemoryError
from delift_dvc.utility import devices, models
from delift_dvc.utility.layout import (NO_EXAMPLE_TEMPLATE, ONE_EXAMPLE_TEMPLATE, OVERFLOWS, Encoded,
                                       Layout, Templates)

# v2: the prompt tokens are the whole formatted text tokenised once (v1 tokenised it in pieces)
DISTANCE_VERSION = "delift-l2/whole-text-v2"
NLL_DISTANCE_VERSION = "delift-nll/whole-text-v2"
DISTANCES = {"l2": DISTANCE_VERSION, "nll": NLL_DISTANCE_VERSION}  # scoring.distance -> its fingerprint entry
MAX_PADDING = 0.05  # largest share of padding tokens in one batch
CHUNK_PAIRS = 4096  # pairs encoded at once (a block of work is never larger by default)
CACHED_PREFIX_TOKENS = 32768  # most prefix tokens whose KV caches are held at once when packing

Pair = tuple[int, "int | None"]  # (target index, example index or None for d0)


class TextPair(Protocol):
    prompt: str
    response: str


class PairScorer(Protocol):
    """The seam between scoring and everything that runs it: a backend that computes distances
    for (target, example) pairs and names everything that changes its numbers."""

    @property
    def fingerprint(self) -> str: ...

    def describe(self) -> dict: ...

    def score_pairs(self, targets: Sequence[TextPair], examples: Sequence[TextPair],
                    pairs: Sequence[Pair], progress=None) -> np.ndarray: ...


def distance_from_probs(probs: np.ndarray) -> float:
    """`||p - 1||_2 / sqrt(T)` for the probabilities p [T] of the ground-truth tokens."""
    probs = np.asarray(probs, dtype=np.float64)
    return float(np.sqrt(np.sum((1.0 - probs) ** 2) / probs.size))


def nll_from_probs(probs: np.ndarray) -> float:
    """`-(1/T) sum_t log p_t` (nats/token) for the probabilities p [T] of the ground-truth tokens."""
    probs = np.asarray(probs, dtype=np.float64)
    return float(-np.mean(np.log(probs)))


@dataclass(frozen=True)
class ScorerSpec:
    """How to build a Scorer: picklable, so that each worker process builds its own."""

    model: str | None = None  # None or "embedded": the embedded SmolLM2-135M-Instruct
    dtype: str = "auto"
    device: str = "auto"
    max_length: int = 2048
    template: str = NO_EXAMPLE_TEMPLATE
    example_template: str = ONE_EXAMPLE_TEMPLATE
    overflow: str = "error"
    batch_tokens: int | str = 8192
    prefix_reuse: bool = True
    threads: int | None = None
    distance: str = "l2"

    def build(self) -> "Scorer":
        """A Scorer with these settings (the model loads on first use)."""
        return Scorer(self.model, **{k: v for k, v in asdict(self).items() if k != "model"})


class Scorer:
    """Computes DELIFT distances with one causal LM through transformers (loaded lazily).

    model: None for the embedded SmolLM2-135M-Instruct, else a local folder, a .gguf file or a
    hub name present in the local cache. dtype: "auto" (bfloat16 where supported), "float32",
    "bfloat16", "float16". max_length: tokens per sequence. overflow: what to do when a target's
    response alone does not fit ("error" or "truncate" it from the end). distance: "l2" (the
    paper's) or "nll" (mean negative log-likelihood, nats/token); part of the fingerprint.
    batch_tokens: padded tokens per forward batch, or "auto" (from free GPU memory on a GPU,
    8192 on a CPU; resolved when the model loads). A batch that runs out of GPU memory is split
    in halves and retried, and later batches stay within the size that fitted.
    prefix_reuse: compute the KV cache of each example's shared prefix once and reuse it for all
    its targets (same numbers as the plain path; not part of the fingerprint); in half precision
    the targets of many examples share a forward, each row reading its own example's cache
    (`pack_examples`). threads: torch CPU threads of this process (None: leave torch's
    setting). `stats` counts sequences, forward passes, tokens fed and padding tokens.
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
        batch_tokens: int | str = 8192,
        prefix_reuse: bool = True,
        threads: int | None = None,
        distance: str = "l2",
    ) -> None:
        if distance not in DISTANCES:
            raise ArgumentError("distance", f"'{distance}': expected one of {', '.join(DISTANCES)}")
        if overflow not in OVERFLOWS:
            raise ArgumentError("overflow", f"'{overflow}': expected one of {', '.join(OVERFLOWS)}")
        if not isinstance(max_length, int) or max_length < 8:
            raise ArgumentError("max_length", f"{max_length!r}: expected an integer >= 8")
        if batch_tokens != "auto" and (not isinstance(batch_tokens, int) or batch_tokens < 1):
            raise ArgumentError("batch_tokens", f"{batch_tokens!r}: expected auto or a positive integer")
        self.source = models.resolve_model(model)
        self.device = models.resolve_device(device)
        self.torch_dtype = models.resolve_dtype(dtype, self.device)
        self.max_length = max_length
        self.templates = Templates(template, example_template)
        self.overflow = overflow
        self.distance = distance
        self.batch_tokens: int | None = None if batch_tokens == "auto" else batch_tokens
        self.prefix_reuse = prefix_reuse
        # prefix reuse packs many examples' targets into one forward in half precision; float32
        # keeps one example's targets per forward, so its numbers stay bit for bit as before
        self.pack_examples = self.torch_dtype.itemsize < 4
        self.threads = threads
        self._layout: Layout | None = None
        self._model = None
        self.stats = {"sequences": 0, "forwards": 0, "tokens": 0, "padded_tokens": 0, "oom_splits": 0}

    # -- identity -------------------------------------------------------------------------------
    def describe(self) -> dict:
        """Everything that changes the numbers (the fingerprint's content)."""
        return {
            "model": self.source.name,
            "weights_sha256": self.source.weights_sha256,
            "dtype": str(self.torch_dtype).removeprefix("torch."),
            "max_length": self.max_length,
            "template": self.templates.no_example,
            "example_template": self.templates.one_example,
            "overflow": self.overflow,
            "distance": DISTANCES[self.distance],
        }

    @property
    def fingerprint(self) -> str:
        """sha256 (hex) of the canonical JSON of `describe()`."""
        canonical = json.dumps(self.describe(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def layout(self) -> Layout:
        """The sequence layout (loads the tokenizer and model on first use)."""
        self._load()
        return self._layout

    @property
    def model(self):
        """The causal LM (loaded on first use)."""
        self._load()
        return self._model

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
        pairs: Sequence[Pair],
        progress=None,
    ) -> np.ndarray:
        """Distances [len(pairs)] (float64) for (target index, example index or None = d0).
        progress: called with the number of sequences finished after each forward batch. Pairs
        are taken CHUNK_PAIRS at a time, grouped by example, so memory stays bounded."""
        out = np.empty(len(pairs), dtype=np.float64)
        if not pairs:
            return out
        if len(pairs) <= CHUNK_PAIRS:
            out[:] = self._score_chunk(targets, examples, pairs, progress)
            return out
        order = sorted(range(len(pairs)), key=lambda k: (pairs[k][1] is not None, pairs[k][1] or 0, k))
        for start in range(0, len(order), CHUNK_PAIRS):
            chunk = order[start : start + CHUNK_PAIRS]
            out[chunk] = self._score_chunk(targets, examples, [pairs[k] for k in chunk], progress)
        return out

    def _score_chunk(self, targets, examples, pairs, progress) -> np.ndarray:
        out = np.empty(len(pairs), dtype=np.float64)
        encoded = self.encode_pairs(targets, examples, pairs)
        groups: dict[int, list[int]] = {}
        if self.prefix_reuse:
            for k, (_, j) in enumerate(pairs):
                if j is not None and encoded[k].prefix:
                    groups.setdefault(j, []).append(k)
            groups = {j: ks for j, ks in groups.items() if len(ks) > 1}
        shared = {k for ks in groups.values() for k in ks}
        plain = [k for k in range(len(pairs)) if k not in shared]
        for batch in self._batches(_by_length(plain, encoded, 0), encoded, 0):
            out[batch] = self._forward_fitting([encoded[k] for k in batch])
            if progress:
                progress(len(batch))
        score_groups = self._score_packed if self.pack_examples else self._score_per_example
        score_groups(groups, encoded, out, progress)
        return out

    def _score_per_example(self, groups, encoded, out, progress) -> None:
        for j in sorted(groups):
            members = groups[j]
            width = encoded[members[0]].prefix
            prefix = Prefix(width, self._prefix_cache(encoded[members[0]].tokens[:width]))
            for batch in self._batches(_by_length(members, encoded, width), encoded, width):
                out[batch] = self._forward_fitting([encoded[k] for k in batch], [prefix] * len(batch))
                if progress:
                    progress(len(batch))

    def _score_packed(self, groups, encoded, out, progress) -> None:
        """Prefix reuse across examples: the prefixes are computed in padded batches, then the
        pairs of all examples are batched by the length after their prefix, each row reading its
        own example's cache (padded to the longest prefix in the batch, the padding masked).
        Examples are taken in windows of at most CACHED_PREFIX_TOKENS cached tokens."""
        window: dict[int, list[int]] = {}
        cached = 0
        for j in sorted(groups):
            width = encoded[groups[j][0]].prefix
            if window and cached + width > CACHED_PREFIX_TOKENS:
                self._score_window(window, encoded, out, progress)
                window, cached = {}, 0
            window[j] = groups[j]
            cached += width
        if window:
            self._score_window(window, encoded, out, progress)

    def _score_window(self, groups, encoded, out, progress) -> None:
        firsts = {j: encoded[ks[0]] for j, ks in groups.items()}
        prefixes: dict[int, Prefix] = {}
        order = sorted(groups, key=lambda j: (firsts[j].prefix, j))
        for batch in self._batches(order, None, 0, width=lambda j: firsts[j].prefix):
            for j, layers in zip(batch, self._prefix_caches([firsts[j].tokens[: firsts[j].prefix]
                                                              for j in batch])):
                prefixes[j] = Prefix(firsts[j].prefix, layers)
        example = {k: j for j, ks in groups.items() for k in ks}
        after = {k: len(encoded[k].tokens) - encoded[k].prefix for k in example}
        members = sorted(example, key=lambda k: (after[k], encoded[k].prefix, k))
        for batch in self._batches(members, None, 0, width=after.__getitem__):
            out[batch] = self._forward_fitting([encoded[k] for k in batch],
                                               [prefixes[example[k]] for k in batch])
            if progress:
                progress(len(batch))

    # -- sequences ------------------------------------------------------------------------------
    def encode_pairs(self, targets: Sequence[TextPair], examples: Sequence[TextPair],
                     pairs: Sequence[Pair]) -> list[Encoded]:
        """The sequence of each (target index, example index or None) pair, after truncation."""
        items = [(targets[i].prompt, targets[i].response,
                  None if j is None else (examples[j].prompt, examples[j].response)) for i, j in pairs]
        ids = [str(getattr(targets[i], "id", "?")) for i, _ in pairs]
        return self.layout.encode_many(items, ids=ids)

    def encode(self, target: TextPair, example: TextPair | None) -> Encoded:
        """The sequence of one (target, example or None) pair, after truncation."""
        return self.encode_pairs([target], [] if example is None else [example],
                                 [(0, None if example is None else 0)])[0]

    def _batches(self, order: list[int], encoded: list[Encoded] | None, offset: int, width=None):
        """Consecutive runs of `order` (ascending width) whose padded size stays within
        batch_tokens and whose padding stays under MAX_PADDING of the batch (length bucketing:
        on a CPU small batches cost little, padding costs). A member's width is its tokens after
        `offset`, or `width(member)` when given."""
        if width is None:
            width = lambda k: len(encoded[k].tokens) - offset  # noqa: E731
        batch: list[int] = []
        real = 0
        for k in order:  # ascending width: the last member sets the padded width
            size = (len(batch) + 1) * width(k)
            if batch and (size > self.batch_tokens or size - real - width(k) > MAX_PADDING * size):
                yield batch
                batch, real = [], 0
            batch.append(k)
            real += width(k)
        if batch:
            yield batch

    # -- model ----------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._model is None:
            if self.threads:
                models.set_threads(self.threads)
            tokenizer, self._model = models.load_model(self.source, self.torch_dtype, self.device)
            self._layout = Layout(tokenizer, self.templates, self.max_length, self.overflow)
            if self.batch_tokens is None:  # "auto"
                self.batch_tokens = self.auto_batch_tokens()

    def auto_batch_tokens(self) -> int:
        """Padded tokens per batch for batch_tokens "auto": from the free memory of this
        scorer's device and the loaded model's sizes (see devices.auto_batch_tokens)."""
        return devices.auto_batch_tokens(self.model.config, self.torch_dtype.itemsize,
                                         devices.free_bytes(self.device))

    def _forward_fitting(self, batch: list[Encoded], prefixes: "list[Prefix] | None" = None) -> np.ndarray:
        """`_forward`, splitting the batch in halves while the device runs out of memory;
        batches planned later are capped at the padded size of the half that is tried."""
        try:
            return self._forward(batch, prefixes)
        except Exception as exc:  # noqa: BLE001 - anything but out-of-memory is raised again
            if not devices.is_out_of_memory(exc):
                raise
        devices.release(self.device)  # outside the handler: the failed batch's tensors are freed
        skips = [p.width for p in prefixes] if prefixes else [0] * len(batch)
        width = max(len(e.tokens) - s for e, s in zip(batch, skips))
        if len(batch) == 1:
            raise self._memory_error(width)
        half = len(batch) // 2
        self.stats["oom_splits"] += 1
        self.batch_tokens = min(self.batch_tokens, half * width)
        return np.concatenate([self._forward_fitting(batch[:half], prefixes and prefixes[:half]),
                               self._forward_fitting(batch[half:], prefixes and prefixes[half:])])

    def _memory_error(self, tokens: int) -> DeviceMemoryError:
        return DeviceMemoryError(
            f"scoring ran out of {self.device} memory on a single sequence of {tokens} tokens: lower "
            f"max_length (now {self.max_length}), score in bfloat16, or use a smaller model")

    def _prefix_cache(self, tokens: list[int]):
        """Per-layer (keys, values) of a shared prefix [1, heads, len, dim]."""
        return self._prefix_caches([tokens])[0]

    def _prefix_caches(self, prefixes: list[list[int]]) -> list[list]:
        """Per prefix, its per-layer (keys, values) [1, heads, len, dim], from one right-padded
        forward (the padding comes after every real token, so causal attention never sees it);
        split in halves while the device runs out of memory."""
        import torch

        width = max(len(t) for t in prefixes)
        ids = torch.full((len(prefixes), width), self._layout.eos, dtype=torch.long)
        mask = torch.zeros((len(prefixes), width), dtype=torch.long)
        for r, tokens in enumerate(prefixes):
            ids[r, : len(tokens)] = torch.tensor(tokens)
            mask[r, : len(tokens)] = 1
        kwargs = {} if len(prefixes) == 1 else {"attention_mask": mask.to(self.device)}
        out = None
        try:
            with torch.inference_mode():
                out = self._model.base_model(input_ids=ids.to(self.device), use_cache=True, **kwargs)
        except Exception as exc:  # noqa: BLE001 - anything but out-of-memory is raised again
            if not devices.is_out_of_memory(exc):
                raise
        if out is None:
            devices.release(self.device)
            if len(prefixes) == 1:
                raise self._memory_error(width)
            half = len(prefixes) // 2
            self.stats["oom_splits"] += 1
            return self._prefix_caches(prefixes[:half]) + self._prefix_caches(prefixes[half:])
        layers = out[1].layers
        self.stats["forwards"] += 1
        self.stats["tokens"] += sum(len(t) for t in prefixes)
        self.stats["padded_tokens"] += len(prefixes) * width - sum(len(t) for t in prefixes)
        return [[(layer.keys[r : r + 1, :, : len(t)], layer.values[r : r + 1, :, : len(t)]) for layer in layers]
                for r, t in enumerate(prefixes)]

    def _forward(self, batch: list[Encoded], prefixes: "list[Prefix] | None" = None) -> np.ndarray:
        """Distances [len(batch)] for one padded batch: right padding, masked attention, and
        the output layer applied only at the scored positions. prefixes: per row, the cached
        tokens it starts with (then only the tokens after them are fed); rows with shorter
        prefixes than the longest have their cache padded and the padding masked."""
        import torch

        skips = [p.width for p in prefixes] if prefixes else [0] * len(batch)
        skip = max(skips)
        width = max(len(e.tokens) - 1 - s for e, s in zip(batch, skips))
        ids = torch.full((len(batch), width), self._layout.eos, dtype=torch.long)
        mask = torch.zeros((len(batch), skip + width), dtype=torch.long)
        rows, cols, gold = [], [], []
        for r, (e, s) in enumerate(zip(batch, skips)):
            n = len(e.tokens) - 1 - s
            ids[r, :n] = torch.tensor(e.tokens[s:-1])
            mask[r, :s] = 1
            mask[r, skip : skip + n] = 1
            start = n - e.n_scored  # position predicting the first scored token
            rows += [r] * e.n_scored
            cols += range(start, start + e.n_scored)
            gold += e.tokens[-e.n_scored :]
        kwargs = {}
        if prefixes:
            kwargs[_cache_argument(self._model.base_model)] = _batch_cache(prefixes, self.device)
            if any(s != skip for s in skips):  # each row's positions continue from its own prefix
                kwargs["position_ids"] = (torch.tensor(skips)[:, None] + torch.arange(width)).to(self.device)
        with torch.inference_mode():
            hidden = self._model.base_model(
                input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs
            ).last_hidden_state
            picked = hidden[torch.tensor(rows), torch.tensor(cols)]
            logits = self._model.get_output_embeddings()(picked).float()
            logp = torch.log_softmax(logits, dim=-1)
            gold_logp = logp.gather(1, torch.tensor(gold, device=logp.device)[:, None]).squeeze(1)
            if self.distance == "l2":
                terms = ((1.0 - gold_logp.exp().double()) ** 2).cpu()
            else:
                terms = (-gold_logp.double()).cpu()
        real = sum(len(e.tokens) - 1 - s for e, s in zip(batch, skips))  # counted once the batch has fitted
        self.stats["sequences"] += len(batch)
        self.stats["forwards"] += 1
        self.stats["tokens"] += real
        self.stats["padded_tokens"] += len(batch) * width - real
        counts = torch.tensor([e.n_scored for e in batch])
        means = torch.zeros(len(batch), dtype=torch.float64).index_add_(0, torch.tensor(rows), terms) / counts
        return (torch.sqrt(means) if self.distance == "l2" else means).numpy()


@dataclass(frozen=True, eq=False)
class Prefix:
    """The cached leading tokens of one example's sequences: their count and per-layer
    (keys, values) [1, heads, width, dim]."""

    width: int
    layers: list


def _by_length(members: list[int], encoded: list[Encoded], offset: int) -> list[int]:
    return sorted(members, key=lambda k: (len(encoded[k].tokens) - offset, k))


def _cache_argument(model) -> str:
    """The forward argument that takes a KV cache ("cache" in transformers 5, else
    "past_key_values")."""
    import inspect

    names = inspect.signature(model.forward).parameters
    return "cache" if "cache" in names else "past_key_values"


def _batch_cache(prefixes: list[Prefix], device):
    """A fresh DynamicCache with each row's prefix KV (the forward pass appends to it, so each
    batch gets its own). One prefix for all rows is broadcast; different prefixes are copied
    into zero-padded tensors as wide as the longest."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    if all(p is prefixes[0] for p in prefixes):
        for index, (keys, values) in enumerate(prefixes[0].layers):
            cache.update(keys.expand(len(prefixes), -1, -1, -1), values.expand(len(prefixes), -1, -1, -1), index)
        return cache
    width = max(p.width for p in prefixes)
    rows: dict[int, list[int]] = {}
    for r, p in enumerate(prefixes):
        rows.setdefault(id(p), []).append(r)
    distinct = {id(p): p for p in prefixes}
    for index, (keys, _) in enumerate(prefixes[0].layers):
        shape = (len(prefixes), keys.shape[1], width, keys.shape[3])
        padded = [torch.zeros(shape, dtype=keys.dtype, device=device) for _ in range(2)]
        for key, members in rows.items():
            where = torch.tensor(members, device=device)
            for tensor, part in zip(padded, distinct[key].layers[index]):
                tensor[where, :, : part.shape[2]] = part
        cache.update(padded[0], padded[1], index)
    return cache
