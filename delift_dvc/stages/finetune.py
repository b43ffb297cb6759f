"""Stage `finetune`: LoRA-tune the model on the selected subset."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from delift_dvc.config import Params, named_as_params
from delift_dvc.data.samples import Sample, load_samples
from delift_dvc.errors import InputError
from delift_dvc.stages.ingest import prepared_fields
from delift_dvc.stages.outputs import LIVE_DIR, LIVE_LOSS, METRICS, TRAIN_LOSS, SELECTED_TRAIN, write_csv, write_json
from delift_dvc.progress import Reporter
from delift_dvc.utility.layout import Templates

TRAIN_METRICS = ("n_samples", "protocol", "steps", "first_loss", "last_loss", "mean_loss_first_epoch",
                 "mean_loss_last_epoch", "trainable_params", "train_tokens")


def finetune_config(params: Params):
    """The FinetuneConfig of params.finetune (model and adapter path excluded)."""
    from delift_dvc.quality.finetune import FinetuneConfig

    f = params.finetune
    return FinetuneConfig(
        epochs=f.epochs, steps=f.steps, learning_rate=f.learning_rate, lora_rank=f.lora_rank, lora_alpha=f.lora_alpha,
        lora_dropout=f.lora_dropout, lora_targets=f.lora_targets, max_length=f.max_length,
        batch_size=f.batch_size, seed=f.seed, dtype=f.dtype, device=f.device, layout=f.layout,
    )


def templates(params: Params) -> Templates:
    """The scoring templates, which fine-tuning and evaluation use too (one layout)."""
    return Templates(params.scoring.template, params.scoring.example_template)


def model_name(params: Params) -> str | None:
    """The model fine-tuned and evaluated: finetune.model, else scoring.model (None = embedded)."""
    name = params.finetune.model or params.scoring.model
    return None if name == "embedded" else name


def selected_subset(params: Params) -> list[Sample]:
    """data.selected/train.jsonl ([] for an empty subset); an InputError before `select` ran."""
    path = Path(params.data.selected) / SELECTED_TRAIN
    if not path.is_file():
        raise InputError(f"{path}: not found (run `delift-dvc select` first)")
    fields = prepared_fields(params.data.prepared)  # the subset's records are the pool's
    return load_samples(path, fields=fields) if path.read_bytes().strip() else []


@contextlib.contextmanager
def live_loss(metrics_dir: Path) -> Iterator[Callable[[int, float], None]]:
    """A step callback that logs the training loss through DVCLive into metrics_dir/live
    (metrics.json: the last step; plots/metrics/train/loss.tsv: one row per step, no
    timestamps, so the files are the same on every run), live in `dvc exp show` and
    DVC's VS Code extension while the stage runs. DVCLive writes no dvc.yaml and makes
    no experiment of its own: the stage's outputs declare its files. With no step (an
    empty subset) the loss file holds its header only, so the declared plot exists."""
    from dvclive import Live

    with Live(dir=str(metrics_dir / LIVE_DIR), save_dvc_exp=False, dvcyaml=None, report=None) as live:
        def log(step: int, loss: float) -> None:
            live.step = step
            live.log_metric("train/loss", round(loss, 6))
            live.next_step()  # writes metrics.json and signals the step to `dvc exp` / VS Code

        yield log
    if not (metrics_dir / LIVE_LOSS).is_file():
        write_csv(metrics_dir / LIVE_LOSS, ["step", "loss"], [], delimiter="\t")


def run_finetune(params: Params, reporter: Reporter | None = None) -> dict:
    """LoRA-tune the model on data/selected/train.jsonl; the adapter goes to finetune.adapter,
    the summary to metrics/train.json and the per-step loss (nats/token) to plots/train_loss.csv.
    An empty subset saves the untrained adapter (it changes nothing) and says so."""
    with named_as_params():
        return _run_finetune(params, reporter or Reporter("finetune", quiet=True))


def _run_finetune(params: Params, reporter: Reporter) -> dict:
    from delift_dvc.quality.finetune import TRAIN_LOG, finetune

    samples = selected_subset(params)
    if not samples:
        reporter.phase("the subset is empty: saving the untrained adapter (0 steps)")
    else:
        length = f"{params.finetune.steps} steps" if params.finetune.steps else f"{params.finetune.epochs} epochs"
        reporter.phase(f"LoRA on {len(samples)} samples, {length}")
    with live_loss(Path(params.metrics)) as on_step:
        summary = finetune(model_name(params), samples, params.finetune.adapter, finetune_config(params),
                           progress=not reporter.quiet and reporter.tty, templates=templates(params),
                           on_step=on_step)
    log = json.loads((Path(params.finetune.adapter) / TRAIN_LOG).read_text(encoding="utf-8"))
    metrics = {k: summary[k] for k in TRAIN_METRICS}
    write_json(Path(params.metrics) / METRICS["finetune"], metrics)
    write_csv(Path(params.plots) / TRAIN_LOSS, ["step", "loss"],
              [(k + 1, round(loss, 6)) for k, loss in enumerate(log["losses"])])
    reporter.phase(f"{summary['steps']} steps in {summary['seconds']:.0f} s")
    return metrics
