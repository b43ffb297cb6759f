"""Prompt templates of the DELIFT utility, split into the pieces that are tokenised separately.

A sequence is tokenised piece by piece, so that the part that depends only on the in-context
example (template head + example) is the same token prefix for every target, and so that
truncation can cut the example without re-tokenising anything:

    no example:  head | query                                      + eos + response + eos
    one example: head | example block | middle | query             + eos + response + eos

`query` is the target's prompt followed by the template's tail. Each piece is tokenised on its
own (no special tokens), and the pieces' tokens are concatenated.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from .errors import InputError

NO_EXAMPLE_TEMPLATE = (
    "Instruction: Please generate a response to the following query.\n\n\nQuery: {prompt}\n"
)
ONE_EXAMPLE_TEMPLATE = (
    "Instruction:\nUse the following example as a guide to answer the query in the same format "
    "and style, providing a clear and concise response.\n\n\nExample:\n{example_prompt}\n"
    "{example_response}\n\n\nQuery:\n{prompt}\n"
)


def cut_to_fit(block: list[int], query: list[int], excess: int) -> tuple[list[int], list[int], int]:
    """Drop `excess` tokens: first from the end of the example block, then from the start of the
    query. Returns (block, query, tokens still in excess)."""
    if excess > 0:
        cut = min(excess, len(block))
        block, excess = block[: len(block) - cut], excess - cut
        cut = min(excess, len(query))
        query, excess = query[cut:], excess - cut
    return block, query, excess


def _fields(template: str, key: str) -> list[tuple[str, str | None]]:
    try:
        return [(lit, field) for lit, field, _, _ in string.Formatter().parse(template)]
    except ValueError as exc:
        raise InputError(f"{key}: malformed template ({exc})") from None


@dataclass(frozen=True)
class NoExampleTemplate:
    """`head` + prompt + `tail`."""

    head: str
    tail: str

    @classmethod
    def parse(cls, template: str, key: str = "scoring.template") -> "NoExampleTemplate":
        parts = _fields(template, key)
        names = [field for _, field in parts if field is not None]
        if names != ["prompt"]:
            raise InputError(f"{key}: needs exactly one field {{prompt}}, found {names}")
        head = parts[0][0]
        tail = "".join(lit for lit, _ in parts[1:])
        return cls(head, tail)

    def query(self, prompt: str) -> str:
        return prompt + self.tail


@dataclass(frozen=True)
class OneExampleTemplate:
    """`head` + example_prompt + `between` + example_response + `middle` + prompt + `tail`."""

    head: str
    between: str
    middle: str
    tail: str

    @classmethod
    def parse(cls, template: str, key: str = "scoring.example_template") -> "OneExampleTemplate":
        parts = _fields(template, key)
        names = [field for _, field in parts if field is not None]
        expected = ["example_prompt", "example_response", "prompt"]
        if names != expected:
            raise InputError(
                f"{key}: needs the fields {{example_prompt}}, {{example_response}}, {{prompt}} "
                f"once each in that order, found {names}"
            )
        head, between, middle = parts[0][0], parts[1][0], parts[2][0]
        tail = "".join(lit for lit, _ in parts[3:])
        return cls(head, between, middle, tail)

    def example_block(self, example_prompt: str, example_response: str) -> str:
        return example_prompt + self.between + example_response

    def query(self, prompt: str) -> str:
        return prompt + self.tail
