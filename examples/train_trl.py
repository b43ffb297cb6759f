"""Fine-tune on the delift-dvc subset with TRL instead of the built-in LoRA loop.

The contract between delift-dvc and any trainer is two paths in params.yaml:
- input: `data.selected`/train.jsonl, the subset, each record in your data's own shape (read it
  with `delift_dvc.data.samples.load_samples`, which also applies `data.fields`);
- output: `finetune.adapter`, a PEFT adapter folder (adapter_config.json + weights), which
  `delift-dvc evaluate` loads onto the base model (finetune.model, else scoring.model).

This script reads the same finetune.* keys as the built-in loop (LoRA rank, alpha, dropout,
targets, learning rate, batch size, epochs or steps, seed, max_length, layout) and writes the
same files as the finetune stage declares: metrics/train.json, plots/train_loss.csv and the
DVCLive step loss in metrics/live/ (through the same logger as the built-in loop, as a
TrainerCallback), so it can replace the finetune stage's command in dvc.yaml
(`cmd: python examples/train_trl.py`). It needs `pip install trl`.

    python examples/train_trl.py            # in the DVC project's root, after `dvc repro select`
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path


def base_model(params) -> str:
    """A folder or hub id TRL can load: the embedded model's dequantised folder, or the name."""
    from delift_dvc.stages.finetune import model_name
    from delift_dvc.utility import models

    source = models.resolve_model(model_name(params))
    return models.dequantised_folder(source) if source.gguf_file else source.load_path


def rows(params, samples, eos: str) -> list[dict]:
    """TRL prompt/completion rows laid out like delift-dvc's own: the scoring template's text
    and eos, then the response (plain), or the sample's turns for the chat template (chat)."""
    from delift_dvc.utility.layout import Templates

    if params.finetune.layout == "chat":
        turns = [s.turns or (("user", s.prompt),) for s in samples]
        return [{"prompt": [{"role": r, "content": c} for r, c in t],
                 "completion": [{"role": "assistant", "content": s.response}]} for s, t in zip(samples, turns)]
    templates = Templates(params.scoring.template, params.scoring.example_template)
    return [{"prompt": templates.text(s.prompt, None) + eos, "completion": s.response} for s in samples]


def live_callback(on_step):
    """A transformers TrainerCallback that hands each logged training loss to on_step(step, loss)."""
    from transformers import TrainerCallback

    class LiveLoss(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                on_step(state.global_step, float(logs["loss"]))

    return LiveLoss()


def main() -> None:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from delift_dvc.atomic import write_json
    from delift_dvc.config import load_params
    from delift_dvc.stages.finetune import live_loss, selected_subset
    from delift_dvc.stages.outputs import METRICS, TRAIN_LOSS, write_csv

    params = load_params("params.yaml")
    ft = params.finetune
    samples = selected_subset(params)
    if not samples:
        raise SystemExit("error: the subset is empty: nothing to train on")
    folder = base_model(params)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=ft.dtype)
    epochs_or_steps = {"max_steps": ft.steps} if ft.steps else {"num_train_epochs": ft.epochs}
    from delift_dvc.utility.models import resolve_device

    cpu = resolve_device(ft.device) == "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        config = SFTConfig(
            output_dir=tmp, learning_rate=ft.learning_rate, per_device_train_batch_size=ft.batch_size,
            seed=ft.seed, max_length=ft.max_length, completion_only_loss=True, logging_steps=1,
            save_strategy="no", report_to=[],
            lr_scheduler_type="constant", use_cpu=cpu, bf16=ft.dtype == "bfloat16", fp16=ft.dtype == "float16",
            **epochs_or_steps)
        lora = LoraConfig(r=ft.lora_rank, lora_alpha=ft.lora_alpha, lora_dropout=ft.lora_dropout,
                          target_modules=list(ft.lora_targets), task_type="CAUSAL_LM")
        data = Dataset.from_list(rows(params, samples, tokenizer.eos_token))
        with live_loss(Path(params.metrics)) as on_step:
            trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tokenizer,
                                 peft_config=lora, callbacks=[live_callback(on_step)])
            trainer.train()
        trainer.model.save_pretrained(ft.adapter)  # the PEFT adapter folder `evaluate` loads
    losses = [(e["step"], e["loss"]) for e in trainer.state.log_history if "loss" in e]
    metrics = {"n_samples": len(samples), "steps": trainer.state.global_step, "trainer": "trl",
               "first_loss": losses[0][1], "last_loss": losses[-1][1]}
    write_json(Path(params.metrics) / METRICS["finetune"], metrics)
    write_csv(Path(params.plots) / TRAIN_LOSS, ["step", "loss"], losses)
    print(json.dumps(metrics, sort_keys=True))


if __name__ == "__main__":
    main()
