"""The `finetune` and `evaluate` DVC stages: LoRA-tune on the selected subset, then measure
quality on the held-out test set (initial model, fine-tuned model, and one-shot ICL with the
subset as the example pool).

Metrics files hold no wall-clock seconds, so identical runs give byte-identical outputs.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .config import Params, finetune_config, model_name
from .errors import InputError
from .pipeline import PREPARED_TEST, SELECTED_TRAIN, write_json
from .samples import Sample, load_samples

SUMMARY_KEYS = ("n", "nll", "rouge_l", "cosine", "n_tokens")


def _selected(params: Params) -> list[Sample]:
    path = Path(params.data.selected) / SELECTED_TRAIN
    if not path.is_file():
        raise InputError(f"{path}: not found (run `delift-dvc select` first)")
    return load_samples(path)


def _test_set(params: Params) -> list[Sample]:
    path = Path(params.data.prepared) / PREPARED_TEST
    if not path.is_file():
        raise InputError(
            f"{path}: no test set (set data.test to a file or data.holdout > 0 in params.yaml, then ingest)"
        )
    return load_samples(path)


# -- finetune -----------------------------------------------------------------------------------
def run_finetune(params: Params, progress: bool = True) -> dict:
    """LoRA-tune the model on data/selected/train.jsonl; the adapter goes to finetune.adapter,
    the summary to metrics/train.json and the per-step loss (nats/token) to plots/train_loss.csv."""
    from .finetune import TRAIN_LOG, finetune

    samples = _selected(params)
    summary = finetune(model_name(params), samples, params.finetune.adapter, finetune_config(params),
                       progress=progress)
    log = json.loads((Path(params.finetune.adapter) / TRAIN_LOG).read_text(encoding="utf-8"))
    metrics = {k: summary[k] for k in ("n_samples", "steps", "first_loss", "last_loss",
                                       "mean_loss_first_epoch", "mean_loss_last_epoch",
                                       "trainable_params", "train_tokens")}
    write_json(Path(params.metrics) / "train.json", metrics)
    _write_rows(Path(params.plots) / "train_loss.csv", ["step", "loss"],
                [(k + 1, round(loss, 6)) for k, loss in enumerate(log["losses"])])
    return {**metrics, "seconds": summary["seconds"]}


# -- evaluate -----------------------------------------------------------------------------------
def run_evaluate(params: Params, initial: bool = False) -> dict:
    """Evaluate on data/prepared/test.jsonl. initial=True: the base model alone ->
    metrics/eval_initial.json. Else the fine-tuned adapter (and, with evaluate.icl, the base model
    with the nearest subset sample as one-shot example) -> metrics/eval.json, per-sample scores
    to plots/eval_samples.csv and generations to metrics/generations.jsonl."""
    from . import models
    from .embeddings import Embedder
    from .evaluate import evaluate
    from .finetune import attach_adapter

    ev = params.evaluate
    test = _test_set(params)
    if not initial:
        subset = _selected(params)
        adapter = Path(params.finetune.adapter)
        if not (adapter / "adapter_config.json").is_file():
            raise InputError(f"{adapter}: no adapter (run `delift-dvc finetune` first)")
    embedder = Embedder(device=ev.device)
    options = dict(max_new_tokens=ev.max_new_tokens, max_length=ev.max_length, embedder=embedder,
                   batch_size=ev.batch_size)
    tokenizer, base, _, _ = models.load_named(model_name(params), ev.dtype, ev.device)
    results: dict[str, dict] = {}
    if initial:
        results["initial"] = evaluate(tokenizer, base, test, **options)
        out, rows_path = Path(params.metrics) / "eval_initial.json", Path(params.plots) / "eval_initial_samples.csv"
    else:
        if ev.icl:
            results["icl"] = evaluate(tokenizer, base, test, examples=subset, **options)
        # the same base weights, wrapped with the adapter (one model load for both variants)
        results["finetuned"] = evaluate(tokenizer, attach_adapter(base, adapter), test, **options)
        out, rows_path = Path(params.metrics) / "eval.json", Path(params.plots) / "eval_samples.csv"
    summary = {name: {k: result[k] for k in SUMMARY_KEYS} for name, result in results.items()}
    if not initial:
        select = Path(params.metrics) / "select.json"
        chosen = json.loads(select.read_text(encoding="utf-8")) if select.is_file() else {}
        summary["subset"] = {"method": chosen.get("method", params.selection.method),
                             "budget": params.selection.budget, "n_train": len(subset)}
    write_json(out, summary)
    _write_per_sample(rows_path, results)
    if not initial:
        _write_generations(Path(params.metrics) / "generations.jsonl", test, results)
    return summary


def _write_per_sample(path: Path, results: dict[str, dict]) -> None:
    names = sorted(results)
    header = ["id"] + [f"{name}_{metric}" for name in names for metric in ("nll", "rouge_l", "cosine")]
    first = results[names[0]]["per_sample"]
    rows = []
    for k, row in enumerate(first):
        values = [row["id"]]
        for name in names:
            other = results[name]["per_sample"][k]
            values += [round(other["nll"], 6), round(other["rouge_l"], 4), round(other["cosine"], 6)]
        rows.append(values)
    _write_rows(path, header, rows)


def _write_generations(path: Path, test: list[Sample], results: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for k, sample in enumerate(test):
            row = {"id": sample.id, "prompt": sample.prompt, "reference": sample.response}
            for name in sorted(results):
                found = results[name]["per_sample"][k]
                row[name] = found["generation"]
                if "example" in found:
                    row[f"{name}_example"] = found["example"]
            handle.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def _write_rows(path: Path, header: list[str], rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
