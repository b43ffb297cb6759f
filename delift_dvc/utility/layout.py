"""The one sequence layout of scoring, fine-tuning and evaluation.

A sample (prompt, response), optionally with an in-context example (example_prompt,
example_response), becomes

    context = tokens(text) + [eos]        target = tokens(response) + [eos]

where `text` is the whole formatted template (`template.format(prompt=...)`, or the one-example
template with the example filled in), tokenised once without special tokens, and the response is
tokenised alone. The scored (or trained) positions are the target's. This is DESIGN.md's
definition token for token: nothing is tokenised in pieces.

Too long (context + target + `reserve` generation tokens over `max_length`): with E tokens in
excess, the example is cut where its last E tokens of the whole-text tokenisation begin, the
text is tokenised again, and this repeats while it is still too long; once no example is left,
the query prompt loses its first tokens the same way. A response too long by itself is an
error, or (`overflow="truncate"`) is cut from its end, its final eos first.

Prefix sharing: for a one-example sequence whose example was not cut, `prefix` is the number of
leading tokens equal to the tokenisation of the text before the target's prompt (template head,
example, middle): those tokens are the same for every target of that example, so their KV
cache can be computed once. It is checked per sequence and is 0 where the whole-text tokens do
not start with the prefix tokens (a merge across the boundary).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from delift_dvc.errors import ArgumentError, InputError

__all__ = ["NO_EXAMPLE_TEMPLATE", "ONE_EXAMPLE_TEMPLATE", "OVERFLOWS", "LAYOUTS", "Templates", "Encoded", "Layout"]

NO_EXAMPLE_TEMPLATE = (
    "Instruction: Please generate a response to the following query.\n\n\nQuery: {prompt}\n"
)
ONE_EXAMPLE_TEMPLATE = (
    "Instruction:\nUse the following example as a guide to answer the query in the same format "
    "and style, providing a clear and concise response.\n\n\nExample:\n{example_prompt}\n"
    "{example_response}\n\n\nQuery:\n{prompt}\n"
)
OVERFLOWS = ("error", "truncate")
# plain: the templates above (DELIFT's layout, always the scorer's); chat: the model's own chat
# template (user turn, then the assistant's answer), for fine-tuning, evaluation and ICL
LAYOUTS = ("plain", "chat")
_ONE_FIELDS = ["example_prompt", "example_response", "prompt"]


def _literal_parts(template: str, expected: list[str], key: str) -> list[str]:
    """The literal texts around the fields of `template` ([len(expected) + 1] strings);
    InputError naming `key` unless the fields are exactly `expected`, in that order."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ArgumentError(key, f"malformed template ({exc})", sep=": ") from None
    names = [name for _, name, _, _ in parsed if name is not None]
    specs = [(spec, conv) for _, name, spec, conv in parsed if name is not None]
    if names != expected:
        wanted = ", ".join("{" + n + "}" for n in expected)
        raise ArgumentError(key, f"needs the fields {wanted} once each in that order, found {names}", sep=": ")
    if any(spec or conv for spec, conv in specs):
        raise ArgumentError(key, "fields take no format spec or conversion", sep=": ")
    parts = [""]
    for literal, name, _, _ in parsed:
        parts[-1] += literal
        if name is not None:
            parts.append("")
    return parts


@dataclass(frozen=True)
class Templates:
    """The no-example and one-example templates (str.format fields {prompt}; {example_prompt},
    {example_response}, {prompt})."""

    no_example: str = NO_EXAMPLE_TEMPLATE
    one_example: str = ONE_EXAMPLE_TEMPLATE

    def __post_init__(self) -> None:
        _literal_parts(self.no_example, ["prompt"], "template")
        _literal_parts(self.one_example, _ONE_FIELDS, "example_template")

    def pieces(self, prompt: str, example: tuple[str, str] | None) -> tuple[str, str, str, str]:
        """(head, example block, query lead, tail): the formatted text is their concatenation
        with the prompt between lead and tail. Untruncated, head + block + lead + prompt + tail
        == template.format(...); the block is the only part truncation shortens."""
        if example is None:
            head, tail = _literal_parts(self.no_example, ["prompt"], "template")
            return head, "", "", tail
        head, between, middle, tail = _literal_parts(self.one_example, _ONE_FIELDS, "example_template")
        return head, example[0] + between + example[1], middle, tail

    def text(self, prompt: str, example: tuple[str, str] | None = None) -> str:
        """The whole formatted text of `prompt` (with `example` in the one-example template)."""
        if example is None:
            return self.no_example.format(prompt=prompt)
        return self.one_example.format(example_prompt=example[0], example_response=example[1], prompt=prompt)

    def prefix_text(self, example: tuple[str, str]) -> str:
        """The one-example text before the target's prompt: the same for every target."""
        head, block, lead, _ = self.pieces("", example)
        return head + block + lead


@dataclass(frozen=True)
class Encoded:
    """One sequence: `context` (prompt tokens + eos) then `target` (response tokens + eos, or
    fewer when truncated; empty for generation). `prefix`: leading context tokens shared by all
    targets of this sequence's example (0: none). `truncated`: the example or query was cut."""

    context: list[int]
    target: list[int]
    prefix: int = 0
    truncated: bool = False

    @property
    def tokens(self) -> list[int]:
        """context + target [len(context) + len(target)]."""
        return self.context + self.target

    @property
    def n_scored(self) -> int:
        """Scored positions: the target's tokens."""
        return len(self.target)


class Layout:
    """Encodes (prompt, response[, example]) with one tokenizer, templates and length limit.

    chat=True uses the tokenizer's chat template instead of the templates: a system turn first,
    the example (if any) as a user turn and an assistant turn, then the sample's turns (or its
    prompt as a user turn) and the generation prompt; the target is the response and eos (the
    model's end of turn). Too long: the example turns go first, then the earliest turns after the
    system turn, then the last turn loses tokens from its start. There is no shared prefix."""

    def __init__(self, tokenizer: Any, templates: Templates = Templates(), max_length: int = 2048,
                 overflow: str = "error", chat: bool = False) -> None:
        if overflow not in OVERFLOWS:
            raise InputError(f"overflow '{overflow}': expected one of {', '.join(OVERFLOWS)}")
        if tokenizer.eos_token_id is None:
            raise InputError("tokenizer: no eos token")
        if chat and not getattr(tokenizer, "chat_template", None):
            raise ArgumentError("chat", "the model's tokenizer has no chat template (use the plain layout)", sep=": ")
        self.tokenizer = tokenizer
        self.templates = templates
        self.max_length = max_length
        self.overflow = overflow
        self.chat = chat
        self.eos = int(tokenizer.eos_token_id)
        self._prefixes: dict[tuple[str, str], list[int]] = {}

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text, tokenised whole, without special tokens."""
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(texts, add_special_tokens=False).input_ids]

    def encode_many(self, items: list[tuple[str, str | None, tuple[str, str] | None]], *, reserve: int = 0,
                    ids: list[str] | None = None, turns: list[tuple] | None = None) -> list[Encoded]:
        """Encode (prompt, response or None, example or None) items; texts are tokenised in one
        batch call. `reserve` tokens are kept free for generation. ids name samples in errors.
        turns: per item, the (role, content) turns before the response (Sample.turns; () = the
        prompt as one user turn), used by the chat layout only: the plain layout's text is the
        prompt."""
        turns = turns or [()] * len(items)
        convs = [self._conversation(p, t) if self.chat else None for (p, _, _), t in zip(items, turns)]
        texts = [self._chat_text(c, e) if self.chat else self.templates.text(p, e)
                 for (p, _, e), c in zip(items, convs)]
        responses = [r for _, r, _ in items if r is not None]
        whole = self.tokenize(texts)
        resp_tokens = iter(self.tokenize(responses))
        out = []
        for k, ((prompt, response, example), tokens) in enumerate(zip(items, whole)):
            target = [] if response is None else next(resp_tokens) + [self.eos]
            who = ids[k] if ids else "?"
            out.append(self._fit(convs[k] if self.chat else prompt, example, tokens, target, reserve, who))
        return out

    @staticmethod
    def _conversation(prompt: str, turns) -> list[dict]:
        """Chat messages before the response: the sample's turns, or the prompt as a user turn."""
        if not turns:
            return [{"role": "user", "content": prompt}]
        return [{"role": role, "content": content} for role, content in turns]

    def _chat_text(self, conversation: list[dict], example: tuple[str, str] | None) -> str:
        """The chat template's text: system turns first, the example as a user and an assistant
        turn, then the conversation, then the generation prompt."""
        system = conversation[:1] if conversation[0]["role"] == "system" else []
        rest = conversation[len(system):]
        shown = [] if example is None else [{"role": "user", "content": example[0]},
                                            {"role": "assistant", "content": example[1]}]
        return self.tokenizer.apply_chat_template(system + shown + rest, add_generation_prompt=True, tokenize=False)

    def encode(self, prompt: str, response: str | None, example: tuple[str, str] | None = None, *,
               reserve: int = 0, sample_id: str = "?") -> Encoded:
        """One sequence (see encode_many)."""
        return self.encode_many([(prompt, response, example)], reserve=reserve, ids=[sample_id])[0]

    # -- truncation and prefix ----------------------------------------------------------------
    def _fit(self, prompt, example, tokens: list[int], target: list[int], reserve: int,
             who: str) -> Encoded:
        limit = self.max_length - reserve
        eos_after = 0 if self.chat else 1  # the chat text ends with the generation prompt, no eos
        truncated = len(tokens) + eos_after + len(target) > limit
        if truncated:
            cut = self._cut_chat if self.chat else self._cut
            tokens = cut(prompt, example, len(target) + eos_after, limit)
        excess = len(tokens) + eos_after + len(target) - limit
        if excess > 0:
            if reserve or self.overflow == "error" or not target:
                what = f"generation budget of {reserve}" if reserve else f"response of {len(target)}"
                raise InputError(f"sample {who}: {what} tokens does not fit max_length={self.max_length}"
                                 + ("" if reserve else " (overflow: truncate cuts the response)"))
            keep = len(target) - excess  # the final eos goes first
            if keep < 1:
                raise InputError(f"sample {who}: max_length={self.max_length} leaves no room for a response")
            target = target[:keep]
        if self.chat:
            return Encoded(tokens, target, 0, truncated)
        prefix = 0 if (example is None or truncated) else self._shared_prefix(example, tokens)
        return Encoded(tokens + [self.eos], target, prefix, truncated)

    def _cut(self, prompt: str, example, tail_tokens: int, limit: int) -> list[int]:
        """Tokens of the text with its example, then its query prompt, shortened until
        len(tokens) + tail_tokens <= limit (see the module docstring)."""
        head, block, lead, tail = self.templates.pieces(prompt, example)
        while True:
            text = head + block + lead + prompt + tail
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            tokens, offsets = list(enc.input_ids), enc.offset_mapping
            excess = len(tokens) + tail_tokens - limit
            if excess <= 0:
                return tokens
            if block:  # tokens starting inside the block, from its end
                start, end = len(head), len(head) + len(block)
                inside = [s for s, _ in offsets if start <= s < end]
                cut = inside[-excess] if excess <= len(inside) else start
                block = block[: cut - start]
                continue
            start = len(head) + len(lead)  # the block is empty by now
            starts = [s for s, _ in offsets if start <= s < start + len(prompt)]
            if not prompt or not starts:
                return tokens  # nothing left to cut: the caller reports what does not fit
            drop = min(excess, len(starts))
            cut = starts[drop] if drop < len(starts) else start + len(prompt)
            prompt = prompt[cut - start :]

    def _cut_chat(self, conversation: list[dict], example, tail_tokens: int, limit: int) -> list[int]:
        """Chat tokens with the example turns dropped, then the conversation's earliest turns
        after its system turn, then the last turn cut from its start."""
        conversation = list(conversation)
        while True:
            tokens = self.tokenize([self._chat_text(conversation, example)])[0]
            excess = len(tokens) + tail_tokens - limit
            if excess <= 0:
                return tokens
            if example is not None:
                example = None
                continue
            first = 1 if conversation[0]["role"] == "system" and len(conversation) > 1 else 0
            if len(conversation) - first > 1:
                del conversation[first]
                continue
            last = conversation[-1]["content"]
            starts = [s for s, _ in self.tokenizer(last, add_special_tokens=False,
                                                   return_offsets_mapping=True).offset_mapping]
            if len(starts) <= 1:
                return tokens  # nothing left to cut: the caller reports what does not fit
            conversation[-1] = {**conversation[-1], "content": last[starts[min(excess, len(starts) - 1)]:]}

    def _shared_prefix(self, example: tuple[str, str], tokens: list[int]) -> int:
        key = example
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = self.tokenize([self.templates.prefix_text(example)])[0]
            if len(self._prefixes) > 50_000:
                self._prefixes.clear()
            self._prefixes[key] = prefix
        n = len(prefix)
        return n if 0 < n < len(tokens) and tokens[:n] == prefix else 0
