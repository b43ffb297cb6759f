"""LoRA fine-tuning on the tiny random Llama: loss goes down, runs are reproducible, the saved
adapter reloads to the same outputs, the loss mask covers exactly the response + final eos."""

from __future__ import annotations

import json

import pytest
import torch

from delift_dvc.errors import InputError
from delift_dvc.quality.finetune import (
    IGNORE,
    FinetuneConfig,
    collate,
    encode_samples,
    finetune,
    load_finetuned,
    save_adapter,
    train_adapter,
)
from delift_dvc.data.samples import Sample, sample_id
from delift_dvc.utility.layout import NO_EXAMPLE_TEMPLATE, Layout, Templates

HEAD = NO_EXAMPLE_TEMPLATE.split("{prompt}")[0]


def make(prompt: str, response: str) -> Sample:
    record = {"prompt": prompt, "completion": response}
    return Sample(sample_id(prompt, response), prompt, response, record, "t")


SAMPLES = [make(f"What is {i} plus {i}?", f"{i} plus {i} is {2 * i}.") for i in range(8)]
CONFIG = FinetuneConfig(epochs=3, learning_rate=1e-2, batch_size=4, device="cpu")


@pytest.fixture(scope="module")
def two_runs(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    steps: list[tuple[int, float]] = []  # run 2 reports each step to a callback (a live logger)
    results = [finetune(str(tiny_model_dir), SAMPLES, root / f"run{k}", CONFIG, progress=False,
                        on_step=(lambda step, loss: steps.append((step, loss))) if k == 2 else None)
               for k in (1, 2)]
    return root, results, steps


def test_training_lowers_the_loss(two_runs):
    root, (result, _), _ = two_runs
    assert result["n_samples"] == 8 and result["steps"] == 6
    assert result["mean_loss_last_epoch"] < result["mean_loss_first_epoch"]
    log = json.loads((root / "run1" / "train_log.json").read_text())
    assert len(log["losses"]) == 6 and log["losses"][0] == result["first_loss"]
    assert log["config"]["learning_rate"] == 1e-2 and log["n_samples"] == 8
    assert (root / "run1" / "adapter_model.safetensors").is_file()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []  # no temp folders left


def test_same_seed_gives_identical_adapters(two_runs):
    root, (a, b), _ = two_runs  # run 2 had a step callback: it changes nothing
    first = (root / "run1" / "adapter_model.safetensors").read_bytes()
    assert first == (root / "run2" / "adapter_model.safetensors").read_bytes()
    logs = [json.loads((root / r / "train_log.json").read_text())["losses"] for r in ("run1", "run2")]
    assert logs[0] == logs[1]
    assert a["last_loss"] == b["last_loss"]


def test_saved_adapter_reloads_to_same_outputs(tiny, tiny_model_dir, tmp_path):
    tokenizer, base = tiny()
    ids = torch.tensor([Layout(tokenizer, max_length=64).encode("What is 3 plus 3?", "6").tokens])
    with torch.no_grad():
        before = base(input_ids=ids).logits.clone()
    peft_model, log = train_adapter(tokenizer, base, SAMPLES, CONFIG, progress=False)
    save_adapter(peft_model, log, tmp_path / "adapter")
    save_adapter(peft_model, log, tmp_path / "adapter")  # overwriting an adapter works
    _, loaded = load_finetuned(str(tiny_model_dir), tmp_path / "adapter", "float32", "cpu")
    with torch.no_grad():
        trained = peft_model(input_ids=ids).logits
        reloaded = loaded(input_ids=ids).logits
    assert not torch.allclose(trained, before, atol=1e-4)  # the adapter changed something
    torch.testing.assert_close(reloaded, trained, rtol=0, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adapter"]


def test_encoding_layout_and_loss_mask(tiny):
    tokenizer, _ = tiny()
    eos = tokenizer.eos_token_id

    def tok(text):
        return tokenizer(text, add_special_tokens=False).input_ids

    pairs = [("Say hi.", "Hi there, friend!"), ("Name three colours of the rainbow, please.", "Red.")]
    encoded = encode_samples(Layout(tokenizer, max_length=128), [make(p, r) for p, r in pairs])
    for (p, r), e in zip(pairs, encoded):
        assert e.context == tok(NO_EXAMPLE_TEMPLATE.format(prompt=p)) + [eos]  # the whole text, once
        assert e.target == tok(r) + [eos]
    batch = collate(encoded, pad_id=eos)
    width = max(len(e.tokens) for e in encoded)
    assert batch["input_ids"].shape == batch["labels"].shape == (2, width)
    for row, (context, target) in enumerate((e.context, e.target) for e in encoded):
        n = len(context) + len(target)
        labels = batch["labels"][row].tolist()
        for pos in range(width):
            if len(context) <= pos < n:
                assert labels[pos] == target[pos - len(context)]
            else:  # prompt (including the eos after it) or padding
                assert labels[pos] == IGNORE
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (width - n)
        assert batch["input_ids"][row, :n].tolist() == context + target


@pytest.mark.parametrize("template", [NO_EXAMPLE_TEMPLATE, "Q: {prompt}\nA:"])
def test_layout_matches_the_scorer(tiny_model_dir, tiny, template):
    """Training sequences are the scorer's, custom templates included."""
    from delift_dvc.utility.scorer import Scorer

    tokenizer, _ = tiny()
    scorer = Scorer(str(tiny_model_dir), dtype="float32", device="cpu", max_length=40, template=template)
    samples = SAMPLES[:2] + [make("word " * 60, "The end.")]
    encoded = encode_samples(Layout(tokenizer, Templates(no_example=template), 40), samples)
    for sample, e in zip(samples, encoded):
        assert e.tokens == scorer.encode(sample, None).tokens and e.n_scored == scorer.encode(sample, None).n_scored


def test_truncation_keeps_the_response(tiny):
    tokenizer, _ = tiny()
    eos = tokenizer.eos_token_id
    response = "Keep all of this response."
    e = Layout(tokenizer, max_length=48).encode("many words " * 50, response)
    context, target = e.context, e.target
    assert len(context) + len(target) == 48
    assert target == tokenizer(response, add_special_tokens=False).input_ids + [eos]
    head = tokenizer(HEAD, add_special_tokens=False).input_ids
    assert context[: len(head)] == head and context[-1] == eos
    with pytest.raises(InputError, match="does not fit"):
        Layout(tokenizer, max_length=48).encode("q", "long response " * 40)


def test_the_step_callback_sees_every_step_and_its_loss(two_runs):
    root, _, steps = two_runs
    losses = json.loads((root / "run2" / "train_log.json").read_text())["losses"]
    assert steps == [(k + 1, loss) for k, loss in enumerate(losses)] and len(steps) == 6


def test_no_samples_saves_the_untrained_adapter(tiny_model_dir, tmp_path):
    result = finetune(str(tiny_model_dir), [], tmp_path / "a", CONFIG, progress=False)
    assert result["steps"] == 0 and result["first_loss"] is None
    assert (tmp_path / "a" / "adapter_config.json").is_file()


def test_bad_config(tiny_model_dir, tmp_path):
    with pytest.raises(InputError, match="lora_targets"):
        finetune(str(tiny_model_dir), SAMPLES, tmp_path / "a",
                 FinetuneConfig(lora_targets=("no_such_proj",), device="cpu"), progress=False)
    with pytest.raises(InputError, match="adapter"):
        load_finetuned(str(tiny_model_dir), tmp_path / "missing")
    assert not (tmp_path / "a").exists()


def test_schedule_epochs_and_equal_steps():
    from delift_dvc.quality.finetune import schedule

    by_epochs = list(schedule(10, FinetuneConfig(epochs=2, batch_size=4)))
    assert [p for p, _ in by_epochs] == [0, 0, 0, 1, 1, 1] and [len(b) for _, b in by_epochs] == [4, 4, 2] * 2
    assert sorted(sum((b for p, b in by_epochs if p == 0), [])) == list(range(10))
    small = list(schedule(3, FinetuneConfig(steps=7, batch_size=4)))  # cycles through a small subset
    assert len(small) == 7 and [p for p, _ in small] == list(range(7)) and all(len(b) == 3 for _, b in small)
    big = list(schedule(100, FinetuneConfig(steps=7, batch_size=4, epochs=9)))  # steps win over epochs
    assert len(big) == 7 and {p for p, _ in big} == {0}
    again = list(schedule(100, FinetuneConfig(steps=7, batch_size=4)))
    assert again == big  # seeded


def test_fixed_steps_train_that_many_steps(tiny_model_dir, tmp_path):
    result = finetune(str(tiny_model_dir), SAMPLES[:3], tmp_path / "a",
                      FinetuneConfig(steps=5, batch_size=2, device="cpu"), progress=False)
    assert result["steps"] == 5 and result["protocol"] == "steps"
