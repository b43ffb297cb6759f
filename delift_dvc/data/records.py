"""One record -> one Sample: the accepted shapes (alpaca with an optional system field,
prompt/completion as strings or TRL's conversational message lists, OpenAI chat messages,
ShareGPT conversations, question/answer), a `fields` mapping of other key names, and the
content id. Every bad record raises :class:`InputError` with one line naming where it is."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from delift_dvc.errors import InputError

EOT_MARKER = "<|endoftext|>"

# (shape name, prompt key, response key), in detection order.
_SHAPES = (
    ("alpaca", "instruction", "output"),
    ("prompt", "prompt", "completion"),
    ("qa", "question", "answer"),
)
_SHAPES_TEXT = "instruction/output, prompt/completion, messages, conversations, question/answer"
_MAX_REASON = 300


@dataclass(frozen=True)
class Sample:
    """One training sample: stable id, prompt/response text and the record it came from."""

    id: str
    prompt: str
    response: str
    record: dict = field(hash=False)
    source: str
    # the conversation before the response as (role, content) turns, where the record has one
    # (chat messages, ShareGPT, TRL conversational, a system field); () = one user turn, the prompt
    turns: tuple[tuple[str, str], ...] = field(default=(), hash=False, compare=False)


# --------------------------------------------------------------------------- helpers


def _err(where: str, reason: str) -> InputError:
    """An InputError "{where}: {reason}" squeezed onto one line."""
    reason = " ".join(str(reason).splitlines()).strip()
    if len(reason) > _MAX_REASON:
        reason = reason[: _MAX_REASON - 3] + "..."
    return InputError(" ".join(f"{where}: {reason}".splitlines()))


def _tname(value: Any) -> str:
    """JSON-ish type name for error messages."""
    return "null" if value is None else type(value).__name__


def sample_id(prompt: str, response: str) -> str:
    """First 8 bytes (16 hex digits) of sha256 over the canonical JSON of prompt/response."""
    canon = json.dumps({"prompt": prompt, "response": response}, sort_keys=True,
                       ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- records


def _text(record: dict, key: str, where: str, ctx: str = "") -> str:
    if key not in record:
        raise _err(where, f"missing '{key}'{ctx}")
    value = record[key]
    if not isinstance(value, str):
        raise _err(where, f"non-string '{key}'{ctx} (got {_tname(value)})")
    return value


def _response(value: str, key: str, where: str, ctx: str = "") -> str:
    if value.endswith(EOT_MARKER):
        value = value[: -len(EOT_MARKER)]
    if not value.strip():
        raise _err(where, f"empty '{key}'{ctx}")
    return value


# ShareGPT's speaker names (DEITA, axolotl, FastChat) -> chat roles
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "model": "assistant",
                  "system": "system"}
# data.fields: the names a mapping may rename (the accepted shapes' keys)
FIELD_NAMES = ("instruction", "input", "output", "system", "prompt", "completion", "question", "answer",
               "messages", "conversations")


def _sharegpt(record: dict, key: str, where: str) -> list:
    """ShareGPT `conversations` ({from, value} turns) as chat messages."""
    turns = record[key]
    if not isinstance(turns, list):
        raise _err(where, f"non-list '{key}' (got {_tname(turns)})")
    out = []
    for i, turn in enumerate(turns):
        ctx = f" in {key}[{i}]"
        if not isinstance(turn, dict):
            raise _err(where, f"{key}[{i}] is not an object (got {_tname(turn)})")
        speaker = _text(turn, "from", where, ctx)
        role = SHAREGPT_ROLES.get(speaker.lower())
        if role is None:
            raise _err(where, f"unknown 'from' value '{speaker}'{ctx} (expected human, gpt or system)")
        out.append({"role": role, "content": _text(turn, "value", where, ctx)})
    return out


def _chat(turns: Any, key: str, where: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """(flattened prompt, response, turns before the response) of chat messages: the response is
    the last assistant turn; the prompt is the one turn before it, or "role: content" lines."""
    if not isinstance(turns, list):
        raise _err(where, f"non-list '{key}' (got {_tname(turns)})")
    last = -1
    for i, turn in enumerate(turns):
        if isinstance(turn, dict) and turn.get("role") == "assistant":
            last = i
    if last < 0:
        raise _err(where, f"no 'assistant' turn in '{key}'")
    if last == 0:
        raise _err(where, f"no turn before the last 'assistant' turn in '{key}'")
    parts: list[tuple[str, str]] = []
    for i, turn in enumerate(turns[: last + 1]):
        ctx = f" in {key}[{i}]"
        if not isinstance(turn, dict):
            raise _err(where, f"{key}[{i}] is not an object (got {_tname(turn)})")
        parts.append((_text(turn, "role", where, ctx), _text(turn, "content", where, ctx)))
    response = _response(parts[-1][1], "content", where, f" in {key}[{last}]")
    before = parts[:-1]
    if len(before) == 1:
        prompt = before[0][1]
        if not prompt.strip():
            raise _err(where, f"empty 'content' in {key}[0]")
    else:
        prompt = "\n\n".join(f"{role}: {content}" for role, content in before)
    return prompt, response, tuple(before)


def _conversational(record: dict, pkey: str, rkey: str, where: str) -> tuple[str, str, tuple]:
    """TRL's conversational prompt/completion: both lists of messages, the completion's last
    assistant turn the response."""
    prompt, completion = record[pkey], record.get(rkey)
    if not isinstance(completion, list):
        raise _err(where, f"'{pkey}' is a list of messages but '{rkey}' is not (got {_tname(completion)})")
    if not any(isinstance(t, dict) and t.get("role") == "assistant" for t in completion):
        raise _err(where, f"no 'assistant' turn in '{rkey}'")
    return _chat(prompt + completion, f"{pkey}+{rkey}", where)


def to_sample(record: dict, where: str, fields: dict[str, str] | None = None) -> Sample:
    """Validate one record and turn it into a Sample; `where` prefixes error messages.
    fields: the record's own name of an accepted key (data.fields), e.g. {"prompt": "question_text"}."""
    if not isinstance(record, dict):
        raise _err(where, f"record is not a JSON object (got {_tname(record)})")
    names = {name: (fields or {}).get(name, name) for name in FIELD_NAMES}

    # A null value counts as absent: columnar sources (parquet, HF) holding records of
    # several shapes fill the other shapes' columns with nulls.
    def has(key: str) -> bool:
        return record.get(names[key]) is not None

    if has("messages") or has("conversations"):
        key = names["messages"] if has("messages") else names["conversations"]
        turns = record[key] if has("messages") else _sharegpt(record, key, where)
        prompt, response, before = _chat(turns, key, where)
        return Sample(sample_id(prompt, response), prompt, response, record, where, before)
    if has("prompt") and isinstance(record[names["prompt"]], list):
        prompt, response, before = _conversational(record, names["prompt"], names["completion"], where)
        return Sample(sample_id(prompt, response), prompt, response, record, where, before)
    # A shape with both keys wins (in order); otherwise the first partly present shape
    # names its missing key.
    shape = next((s for s in _SHAPES if has(s[1]) and has(s[2])), None)
    if shape is None:
        shape = next((s for s in _SHAPES if has(s[1]) or has(s[2])), None)
    if shape is None:
        keys = ", ".join(sorted(map(str, record)))[:120] or "none"
        mapped = f" (data.fields renames: {', '.join(f'{k}={v}' for k, v in fields.items())})" if fields else ""
        raise _err(where, f"record has none of the accepted shapes ({_SHAPES_TEXT}){mapped}; keys: {keys}")
    name, pkey, rkey = shape[0], names[shape[1]], names[shape[2]]
    prompt = _text(record, pkey, where)
    response = _response(_text(record, rkey, where), rkey, where)
    if not prompt.strip():
        raise _err(where, f"empty '{pkey}'")
    if name == "alpaca":
        extra = record.get(names["input"])
        if extra is not None and not isinstance(extra, str):
            raise _err(where, f"non-string '{names['input']}' (got {_tname(extra)})")
        if extra:
            prompt = prompt + "\n\n" + extra
    system = record.get(names["system"])
    if system is not None and not isinstance(system, str):
        raise _err(where, f"non-string '{names['system']}' (got {_tname(system)})")
    if system and system.strip():
        turns = (("system", system), ("user", prompt))
        prompt = system + "\n\n" + prompt
        return Sample(sample_id(prompt, response), prompt, response, record, where, turns)
    return Sample(sample_id(prompt, response), prompt, response, record, where)
