"""LoRA fine-tuning of a causal LM on instruction samples (peft + a plain torch loop).

Each sample becomes the one sequence layout of :mod:`delift_dvc.utility.layout` (the scorer's):
`template(prompt)` tokenised whole, eos, response, eos. The loss is the mean cross-entropy
(nats per token, token-weighted within a batch) over the response tokens and the final eos
only; prompt and padding positions carry the label -100.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from delift_dvc.atomic import replace_dir, temp_dir
from delift_dvc.data.samples import Sample
from delift_dvc.errors import ArgumentError, InputError
from delift_dvc.utility import models
from delift_dvc.utility.layout import Encoded, Layout, Templates

os.environ.setdefault("HF_HUB_OFFLINE", "1")

IGNORE = -100  # label of positions without loss
TRAIN_LOG = "train_log.json"


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters of one LoRA run (learning rate constant, AdamW without weight decay)."""

    epochs: int = 1
    steps: int | None = None  # a fixed number of optimizer steps instead of epochs
    learning_rate: float = 2e-4
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: tuple[str, ...] = ("q_proj", "v_proj")
    max_length: int = 512
    batch_size: int = 8
    seed: int = 0
    dtype: str = "float32"
    device: str = "auto"
    layout: str = "plain"  # plain (the scorer's templates) or chat (the model's chat template)


# --------------------------------------------------------------------------- sequences


def encode_samples(layout: Layout, samples: Sequence[Sample]) -> list[Encoded]:
    """The training sequences of `samples` (context, then response + eos as the target; the
    chat layout gives the model's chat template the samples' own turns)."""
    return layout.encode_many([(s.prompt, s.response, None) for s in samples], ids=[s.id for s in samples],
                              turns=[s.turns for s in samples])


def collate(encoded: Sequence[Encoded], pad_id: int) -> dict:
    """Right-padded batch: input_ids, attention_mask, labels [B, L] (int64); labels hold the
    target ids at target positions and -100 on context and padding positions."""
    import torch

    width = max(len(e.tokens) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    labels = torch.full((len(encoded), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(encoded):
        context, target = e.context, e.target
        n = len(context) + len(target)
        ids[row, :n] = torch.tensor(context + target)
        mask[row, :n] = 1
        labels[row, len(context) : n] = torch.tensor(target, dtype=torch.long)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def target_logits(model: Any, batch: dict):
    """Logits [T, vocab] (float32) at the T labelled positions of a collated batch, with their
    gold ids [T] and batch rows [T]; the output layer runs only at those positions."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    backbone, head = inner.base_model, inner.get_output_embeddings()
    if backbone is inner:
        raise InputError(f"model {type(inner).__name__}: no separate backbone to run")
    device = next(inner.parameters()).device
    hidden = backbone(
        input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
    ).last_hidden_state
    gold = batch["labels"][:, 1:].to(device)
    keep = gold != IGNORE
    logits = head(hidden[:, :-1][keep]).float()
    return logits, gold[keep], keep.nonzero()[:, 0]


# --------------------------------------------------------------------------- training


@contextlib.contextmanager
def _quiet_peft():
    """Silence the FutureWarning peft triggers through a deprecated transformers helper."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
        yield


def _seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def schedule(n: int, config: "FinetuneConfig"):
    """(pass index, sample indices) of each optimizer step: passes over the n samples in a
    seeded shuffled order, batches of batch_size; `epochs` passes, or with `steps` exactly that
    many steps, cycling through the subset (equal compute whatever the subset size)."""
    rng = random.Random(config.seed)
    done, pass_index = 0, 0
    while (config.steps and done < config.steps) or (not config.steps and pass_index < config.epochs):
        order = list(range(n))
        rng.shuffle(order)
        for first in range(0, n, config.batch_size):
            if config.steps and done == config.steps:
                return
            yield pass_index, order[first : first + config.batch_size]
            done += 1
        pass_index += 1


def train_adapter(
    tokenizer: Any, model: Any, samples: Sequence[Sample], config: FinetuneConfig, progress: bool = True,
    templates: Templates = Templates(), on_step: Callable[[int, float], None] | None = None,
) -> tuple[Any, dict]:
    """Wrap `model` (in place) with fresh LoRA adapters and train them on `samples` (none:
    the adapter stays at its initialisation, which changes nothing); returns (PeftModel in
    eval mode, log dict with per-step losses in nats/token). on_step(step, loss) is called
    after each optimizer step (step from 1, loss in nats/token), e.g. a live logger."""
    import torch
    from tqdm import tqdm

    encoded = encode_samples(Layout(tokenizer, templates, config.max_length, chat=config.layout == "chat"), samples)
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        _seed_all(config.seed)
        peft_model = _with_lora(model, config)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
        peft_model.train()
        losses: list[float] = []
        epoch_means: list[float] = []
        start = time.perf_counter()
        plan = list(schedule(len(encoded), config)) if encoded else []
        bar = tqdm(total=len(plan), disable=not progress or not encoded, desc="finetune", unit="step")
        epoch: list[float] = []
        for k, (pass_index, members) in enumerate(plan):
            batch = collate([encoded[m] for m in members], tokenizer.eos_token_id)
            logits, gold, _ = target_logits(peft_model, batch)
            loss = torch.nn.functional.cross_entropy(logits, gold)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            epoch.append(float(loss.item()))
            if on_step is not None:
                on_step(k + 1, epoch[-1])
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(epoch):.4f}")
            if k + 1 == len(plan) or plan[k + 1][0] != pass_index:  # a pass over the subset ends
                losses += epoch
                epoch_means.append(float(np.mean(epoch)))
                epoch = []
        bar.close()
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
    peft_model.eval()
    log = {
        "n_samples": len(encoded),
        "protocol": "steps" if config.steps else "epochs",
        "steps": len(losses),
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "mean_loss_first_epoch": epoch_means[0] if epoch_means else None,
        "mean_loss_last_epoch": epoch_means[-1] if epoch_means else None,
        "epoch_mean_losses": epoch_means,
        "losses": losses,
        "trainable_params": int(sum(p.numel() for p in params)),
        "train_tokens": int(sum(encoded[m].n_scored for _, members in plan for m in members)),
        "seconds": round(time.perf_counter() - start, 3),
        "config": asdict(config),
    }
    return peft_model, log


def _with_lora(model: Any, config: FinetuneConfig) -> Any:
    """`model` wrapped (in place) with fresh LoRA adapters of `config`'s rank, alpha and targets."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.lora_targets), bias="none", task_type="CAUSAL_LM")
    try:
        with _quiet_peft():
            return get_peft_model(model, lora)
    except ValueError as exc:
        raise ArgumentError("lora_targets", str(exc).splitlines()[0], sep=": ") from None


def save_adapter(peft_model: Any, log: dict, out_dir: str | Path) -> Path:
    """Write the adapter (save_pretrained) and train_log.json to a temp folder beside out_dir,
    then swap it in, so an interrupted run never leaves a partial adapter at out_dir."""
    tmp = temp_dir(out_dir)
    try:
        peft_model.save_pretrained(str(tmp))
        (tmp / TRAIN_LOG).write_text(json.dumps(log, indent=2, sort_keys=True) + "\n")
        return replace_dir(tmp, out_dir)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise


def finetune(
    model: str | None,
    samples: Sequence[Sample],
    out_dir: str | Path,
    config: FinetuneConfig,
    progress: bool = True,
    templates: Templates = Templates(),
    on_step: Callable[[int, float], None] | None = None,
) -> dict:
    """LoRA-tune `model` (None = embedded SmolLM2) on `samples`; save the adapter and
    train_log.json in out_dir. Returns the log summary (losses in nats/token, seconds).
    on_step(step, loss): see train_adapter."""
    tokenizer, base, source, device = models.load_named(model, config.dtype, config.device)
    peft_model, log = train_adapter(tokenizer, base, samples, config, progress, templates, on_step)
    log.update({"model": source.name, "weights_sha256": source.weights_sha256, "device": device,
                "templates": {"template": templates.no_example, "example_template": templates.one_example}})
    save_adapter(peft_model, log, out_dir)
    summary = {k: v for k, v in log.items() if k != "losses"}
    summary["adapter_dir"] = str(out_dir)
    return summary


def adapter_folder(adapter_dir: str | Path) -> Path:
    """adapter_dir as a Path; InputError when it holds no saved adapter."""
    folder = Path(adapter_dir)
    if not (folder / "adapter_config.json").is_file():
        raise InputError(f"{folder}: not an adapter folder (no adapter_config.json)")
    return folder


def attach_adapter(base: Any, adapter_dir: str | Path) -> Any:
    """The PeftModel (eval mode, on base's device) of `base` with the adapter at adapter_dir;
    `base` is modified in place."""
    from peft import PeftModel

    folder = adapter_folder(adapter_dir)
    device = next(base.parameters()).device
    with _quiet_peft():
        peft_model = PeftModel.from_pretrained(base, str(folder))
    peft_model.to(device)
    peft_model.eval()
    return peft_model


def load_finetuned(
    model: str | None, adapter_dir: str | Path, dtype: str = "float32", device: str = "auto"
) -> tuple[Any, Any]:
    """(tokenizer, PeftModel in eval mode): the base model with the adapter at adapter_dir."""
    adapter_folder(adapter_dir)  # fail before loading the model
    tokenizer, base, _, _ = models.load_named(model, dtype, device)
    return tokenizer, attach_adapter(base, adapter_dir)
