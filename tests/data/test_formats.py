"""Users' own record shapes, each from a small real-shaped fixture in tests/data/formats/:
ShareGPT conversations, TRL conversational prompt/completion, Alpaca with a system field,
multi-turn OpenAI messages, and other field names through a data.fields mapping. Expected
prompts and ids are written from the definition (DESIGN.md's id: sha256 of the canonical JSON of
prompt and response)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from delift_dvc.data.samples import load_samples, to_sample
from delift_dvc.errors import InputError

FORMATS = Path(__file__).parent / "formats"


def expected_id(prompt: str, response: str) -> str:
    canon = json.dumps({"prompt": prompt, "response": response}, sort_keys=True, ensure_ascii=False,
                       separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]


def check(sample, prompt: str, response: str, turns: tuple) -> None:
    assert (sample.prompt, sample.response, sample.turns) == (prompt, response, turns)
    assert sample.id == expected_id(prompt, response)


def test_sharegpt_conversations():
    one, two = load_samples(FORMATS / "sharegpt.jsonl")
    check(one, "Who are you?", "I am an assistant trained to answer questions.", (("user", "Who are you?"),))
    turns = (("system", "You are a concise assistant."), ("user", "Name a primary colour."),
             ("assistant", "Red."), ("user", "And another one?"))
    check(two, "\n\n".join(f"{r}: {c}" for r, c in turns), "Blue.", turns)
    assert two.record["id"] == "alpaca_12"  # the record is kept as it came


def test_sharegpt_and_openai_messages_of_one_conversation_are_one_sample():
    sharegpt = json.loads((FORMATS / "sharegpt.jsonl").read_text().splitlines()[1])
    role = {"system": "system", "human": "user", "gpt": "assistant"}
    messages = {"messages": [{"role": role[t["from"]], "content": t["value"]} for t in sharegpt["conversations"]]}
    assert to_sample(sharegpt, "a").id == to_sample(messages, "b").id


def test_trl_conversational_prompt_completion():
    one, two = load_samples(FORMATS / "trl_conversational.jsonl")
    check(one, "What color is the sky?", "It is blue.", (("user", "What color is the sky?"),))
    turns = (("system", "Answer in one word."), ("user", "Where is the sun?"))
    check(two, "system: Answer in one word.\n\nuser: Where is the sun?", "Sky.", turns)


def test_alpaca_system_is_kept():
    one, two = load_samples(FORMATS / "alpaca_system.json")
    user = "Add the numbers.\n\n2 and 3"
    check(one, "You are a helpful math tutor.\n\n" + user, "5", (("system", "You are a helpful math tutor."),
                                                                  ("user", user)))
    check(two, "Give a synonym of happy.", "Glad", ())  # an empty system is no system


def test_multi_turn_messages_keep_their_turns():
    (sample,) = load_samples(FORMATS / "messages_multiturn.jsonl")
    turns = (("system", "You translate English to French."), ("user", "cat"), ("assistant", "chat"),
             ("user", "dog"))
    check(sample, "\n\n".join(f"{r}: {c}" for r, c in turns), "chien", turns)


def test_other_field_names_through_a_mapping():
    path = FORMATS / "custom_fields.jsonl"
    with pytest.raises(InputError, match=r"custom_fields.jsonl:1: record has none of the accepted shapes.*"
                                         r"keys: query, reply, topic"):
        load_samples(path)
    one, two = load_samples(path, fields={"prompt": "query", "completion": "reply"})
    check(one, "What is the capital of France?", "Paris", ())
    check(two, "What is 7 times 6?", "42", ())
    assert one.record == {"query": "What is the capital of France?", "reply": "Paris", "topic": "geography"}
    # the alpaca names map too; a mapped key that a record lacks is named by the record's own name
    (alpaca,) = load_samples(path, fields={"instruction": "query", "output": "reply", "input": "topic"})[:1]
    check(alpaca, "What is the capital of France?\n\ngeography", "Paris", ())
    with pytest.raises(InputError, match=r"custom_fields.jsonl:1: missing 'answer_text'"):
        load_samples(path, fields={"prompt": "query", "completion": "answer_text"})


def test_a_mapping_for_chat_messages():
    record = {"dialog": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    check(to_sample(record, "x", {"messages": "dialog"}), "hi", "hello", (("user", "hi"),))
    with pytest.raises(InputError, match="data.fields renames: messages=dialog"):
        to_sample({"other": 1}, "x", {"messages": "dialog"})
