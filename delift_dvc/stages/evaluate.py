"""Stages `evaluate_initial` and `evaluate`: quality on the held-out test set of the base model
alone, of the fine-tuned adapter, and of one-shot ICL with the subset as the example pool.

With no test set (data.holdout 0 and no data.test, or a split that held nothing out) both stages
record that in their metrics and say so in one line. Metrics files hold no wall-clock seconds,
so identical runs give byte-identical outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

from delift_dvc.atomic import write_text
from delift_dvc.config import Params, named_as_params
from delift_dvc.stages.finetune import model_name, templates
from delift_dvc.data.samples import Sample
from delift_dvc.errors import InputError
from delift_dvc.stages.finetune import selected_subset
from delift_dvc.stages.ingest import prepared_test
from delift_dvc.stages.outputs import GENERATIONS, METRICS, PLOTS, write_csv, write_json
from delift_dvc.progress import Reporter

SUMMARY_KEYS = ("n", "nll", "rouge_l", "cosine", "exact", "n_tokens")
NO_TEST = "no test set (set data.test to a file, or data.holdout > 0)"


def run_evaluate(params: Params, initial: bool = False, reporter: Reporter | None = None) -> dict:
    """Evaluate on data/prepared/test.jsonl. initial=True: the base model alone ->
    metrics/eval_initial.json. Else the fine-tuned adapter (and, with evaluate.icl, the base model
    with the nearest subset sample as one-shot example) -> metrics/eval.json, per-sample scores
    to plots/eval_samples.csv and generations to metrics/generations.jsonl."""
    with named_as_params():
        return _run_evaluate(params, initial, reporter or Reporter("evaluate", quiet=True))


def _run_evaluate(params: Params, initial: bool, reporter: Reporter) -> dict:
    test = prepared_test(params)
    metrics_dir, plots_dir = Path(params.metrics), Path(params.plots)
    out = metrics_dir / METRICS["evaluate_initial" if initial else "evaluate"]
    rows_path = plots_dir / PLOTS["eval_initial_samples" if initial else "eval_samples"]
    subset: list[Sample] = []
    if not initial:
        subset = selected_subset(params)
        adapter = Path(params.finetune.adapter)
        if not (adapter / "adapter_config.json").is_file():
            raise InputError(f"{adapter}: no adapter (run `delift-dvc finetune` first)")
    results: dict[str, dict] = {}
    if test:
        results = _measure(params, test, subset, initial, reporter)
    else:
        reporter.phase(f"{NO_TEST}: recorded in {out}")
    summary = {name: {k: result[k] for k in SUMMARY_KEYS} for name, result in results.items()}
    summary["n_test"] = len(test)
    if not test:
        summary["test_set"] = "none"
    if not initial:
        select = metrics_dir / METRICS["select"]
        chosen = json.loads(select.read_text(encoding="utf-8")) if select.is_file() else {}
        summary["subset"] = {"method": chosen.get("method", params.selection.method),
                             "budget": params.selection.budget, "n_train": len(subset)}
    write_json(out, summary)
    _write_per_sample(rows_path, results)
    if not initial:
        _write_generations(metrics_dir / GENERATIONS, test, results)
    return summary


def _measure(params: Params, test: list[Sample], subset: list[Sample], initial: bool,
             reporter: Reporter) -> dict[str, dict]:
    from delift_dvc.quality.evaluate import evaluate
    from delift_dvc.quality.finetune import attach_adapter
    from delift_dvc.utility import models
    from delift_dvc.utility.embeddings import Embedder

    ev = params.evaluate
    options = dict(max_new_tokens=ev.max_new_tokens, max_length=ev.max_length,
                   embedder=Embedder(device=ev.device, model=params.utility.embedding_model), batch_size=ev.batch_size, templates=templates(params),
                   chat=params.finetune.layout == "chat")
    tokenizer, base, _, _ = models.load_named(model_name(params), ev.dtype, ev.device)
    results: dict[str, dict] = {}
    if initial:
        reporter.phase(f"base model on {len(test)} test samples")
        results["initial"] = evaluate(tokenizer, base, test, **options)
        return results
    if ev.icl and subset:
        reporter.phase(f"base model with one-shot examples from the subset, {len(test)} test samples")
        results["icl"] = evaluate(tokenizer, base, test, examples=subset, **options)
    reporter.phase(f"fine-tuned model on {len(test)} test samples")
    # the same base weights, wrapped with the adapter (one model load for both variants)
    results["finetuned"] = evaluate(tokenizer, attach_adapter(base, params.finetune.adapter), test, **options)
    return results


def _write_per_sample(path: Path, results: dict[str, dict]) -> None:
    names = sorted(results)
    header = ["id"] + [f"{name}_{metric}" for name in names for metric in ("nll", "rouge_l", "cosine", "exact")]
    rows = []
    if names:
        for k, row in enumerate(results[names[0]]["per_sample"]):
            values = [row["id"]]
            for name in names:
                other = results[name]["per_sample"][k]
                values += [round(other["nll"], 6), round(other["rouge_l"], 4), round(other["cosine"], 6),
                           int(other["exact"])]
            rows.append(values)
    write_csv(path, header, rows)


def _write_generations(path: Path, test: list[Sample], results: dict[str, dict]) -> None:
    lines = []
    for k, sample in enumerate(test):
        row = {"id": sample.id, "prompt": sample.prompt, "reference": sample.response}
        for name in sorted(results):
            found = results[name]["per_sample"][k]
            row[name] = found["generation"]
            if "example" in found:
                row[f"{name}_example"] = found["example"]
        lines.append(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    write_text(path, "".join(lines))
