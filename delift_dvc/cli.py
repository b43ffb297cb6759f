"""`delift-dvc`: a thin click CLI over the package's functions.

Every DeliftError becomes one line on stderr and exit code 2; nothing is half-written.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import click

from .errors import DeliftError

PARAMS_HELP = "params.yaml of the DVC project (used when DATA is not given)."


def _budget(value: str) -> int | float:
    try:
        number = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number") from None
    if "." in value or "e" in value.lower():
        return number
    return int(number)


def _file_params(params_path, overrides: dict):
    """Params for file mode: params.yaml when present, with command-line overrides."""
    from pathlib import Path

    from .config import Params, _validate, load_params

    base = load_params(params_path) if params_path and Path(params_path).is_file() else Params()
    scoring = {k: v for k, v in overrides.items() if k in base.scoring.__dataclass_fields__ and v is not None}
    selection = {k: v for k, v in overrides.items() if k in base.selection.__dataclass_fields__ and v is not None}
    utility = {k: v for k, v in overrides.items() if k in base.utility.__dataclass_fields__ and v is not None}
    params = replace(base, scoring=replace(base.scoring, **scoring), utility=replace(base.utility, **utility),
                     selection=replace(base.selection, **selection))
    if overrides.get("store"):
        params = replace(params, store=overrides["store"])
    _validate(params, "options")
    return params


def scoring_options(func):
    for option in reversed([
        click.option("--store", help="Store directory (default: params.yaml's, else 'store')."),
        click.option("--model", help="'embedded' (SmolLM2-135M-Instruct), a model folder or .gguf file."),
        click.option("--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"])),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"])),
        click.option("--max-length", type=int, help="Tokens per scored sequence."),
        click.option("--batch-tokens", type=int, help="Padded tokens per forward batch."),
        click.option("--overflow", type=click.Choice(["error", "truncate"]),
                     help="A response longer than --max-length: error, or truncate it."),
        click.option("--segment-pairs", type=int, help="Values per stored segment."),
        click.option("--pairs", type=click.Choice(["dense", "knn"]),
                     help="dense: every pair; knn: each target with its --k nearest examples."),
        click.option("--k", type=int, help="Neighbours per target in knn mode."),
        click.option("--target-set", type=click.Path(), help="Task-specific: target-set samples (FLMI)."),
        click.option("--existing", type=click.Path(), help="Continual: samples already used (FLCG)."),
        click.option("--params", "params_path", default="params.yaml", show_default=True, help=PARAMS_HELP),
    ]):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="delift-dvc")
def cli() -> None:
    """Pick the most useful part of an LLM fine-tuning data set (DELIFT), incrementally."""


@cli.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, help=PARAMS_HELP)
def ingest(params_path: str) -> None:
    """Validate data.train, de-duplicate it and write data/prepared (DVC stage `ingest`).

    Example: delift-dvc ingest --params params.yaml
    """
    from .config import load_params
    from .pipeline import run_ingest

    click.echo(json.dumps(run_ingest(load_params(params_path)), sort_keys=True))


@cli.command()
@click.argument("data", required=False, type=click.Path())
@scoring_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
def score(data, params_path, quiet, target_set, existing, **overrides) -> None:
    """Score the d0 values and pairs a selection needs that the store lacks.

    With DATA (a .jsonl/.json/.parquet/.csv file, a folder or a saved HF dataset), score it
    directly; without, run the DVC stage `score` from params.yaml (record the version, plan the
    incremental update, score only missing pairs, select, record the subset).

    Example: delift-dvc score data.jsonl --store store --dtype bfloat16
    """
    if data is None:
        from .config import load_params
        from .pipeline import run_score

        result = run_score(load_params(params_path), progress=not quiet)
    else:
        from .filemode import score_file

        params = _file_params(params_path, overrides)
        result = score_file(params, data, target_set, existing, progress=not quiet)
    click.echo(json.dumps(result, sort_keys=True))


@cli.command()
@click.argument("data", required=False, type=click.Path())
@scoring_options
@click.option("--out", type=click.Path(), help="Output JSONL of the selected samples (input's shape).")
@click.option("--summary", type=click.Path(), help="Output JSON: ids, gains, objective, parameters.")
@click.option("--method", type=click.Choice(["delift", "delift_se", "random", "full"]))
@click.option("--budget", type=str, help="Fraction of the ground set (0.3) or a count (30).")
@click.option("--eta", type=float, help="FLMI magnification eta.")
@click.option("--nu", type=float, help="FLCG privacy hardness nu.")
@click.option("--scaling", type=click.Choice(["joint", "separate"]))
@click.option("--seed", type=int, help="Seed of the random baseline.")
def select(data, params_path, target_set, existing, out, summary, **overrides) -> None:
    """Select a subset with the stored utilities (scores nothing).

    With DATA, write the subset to --out and a summary to --summary; without, run the DVC stage
    `select` (export data/selected/train.jsonl, metrics/select.json, plots).

    Example: delift-dvc select data.jsonl --store store --budget 0.3 --out subset.jsonl --summary summary.json
    """
    if data is None:
        from .config import load_params
        from .pipeline import run_select

        click.echo(json.dumps(run_select(load_params(params_path)), sort_keys=True))
        return
    from .filemode import select_file

    if not out:
        raise DeliftError("--out: required when DATA is given")
    if overrides.get("budget") is not None:
        overrides["budget"] = _budget(overrides["budget"])
    params = _file_params(params_path, overrides)
    result = select_file(params, data, out, summary, target_set, existing)
    brief = {k: result[k] for k in ("method", "mode", "objective_name", "n_selected", "objective")}
    click.echo(json.dumps(brief, sort_keys=True))


@cli.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, help=PARAMS_HELP)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def finetune(params_path, quiet) -> None:
    """LoRA-tune the model on data/selected/train.jsonl (DVC stage `finetune`).

    Writes the adapter to finetune.adapter, metrics/train.json and plots/train_loss.csv.

    Example: delift-dvc finetune
    """
    from .config import load_params
    from .quality import run_finetune

    click.echo(json.dumps(run_finetune(load_params(params_path), progress=not quiet), sort_keys=True))


@cli.command()
@click.option("--params", "params_path", default="params.yaml", show_default=True, help=PARAMS_HELP)
@click.option("--initial", is_flag=True, help="Evaluate the base model alone (metrics/eval_initial.json).")
def evaluate(params_path, initial) -> None:
    """Evaluate on the held-out test set: NLL, ROUGE-L and embedding cosine (DVC stage `evaluate`).

    Without --initial: the fine-tuned adapter, and the base model with the nearest subset sample
    as a one-shot example (ICL) -> metrics/eval.json, plots/eval_samples.csv.

    Example: delift-dvc evaluate --initial
    """
    from .config import load_params
    from .quality import run_evaluate

    result = run_evaluate(load_params(params_path), initial=initial)
    click.echo(json.dumps(result, sort_keys=True))


@cli.command()
@click.option("--methods", default="delift,delift_se,random,full", show_default=True,
              help="Comma-separated selection methods.")
@click.option("--budgets", default="0.1,0.3,0.5", show_default=True, help="Comma-separated budgets.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Seeds of the random baseline.")
@click.option("--out", default="reports", show_default=True, help="Folder for compare.csv/.md/.png.")
@click.option("--params", "params_path", default="params.yaml", show_default=True, help=PARAMS_HELP)
@click.option("--dry-run", is_flag=True, help="Print the `dvc exp run` commands only.")
@click.option("--report-only", is_flag=True, help="Rebuild table and plot from OUT/compare.csv.")
def compare(methods, budgets, seeds, out, params_path, dry_run, report_only) -> None:
    """Run the method x budget (x seed) grid as `dvc exp run` experiments and tabulate quality.

    Each run re-selects from scratch (selection.mode=refresh), fine-tunes and evaluates; rows go
    to OUT/compare.csv as they finish, then OUT/compare.md (mean and spread) and OUT/compare.png.

    Example: delift-dvc compare --methods delift,random --budgets 0.3 --seeds 0,1,2
    """
    from .compare import grid, report, run_grid

    if report_only:
        click.echo(report(out))
        return
    runs = grid(_names(methods), [_budget(b) for b in _names(budgets)], [int(s) for s in _names(seeds)])
    run_grid(runs, out, params_path, dry_run=dry_run, echo=click.echo)
    if not dry_run:
        click.echo(report(out))


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@cli.command()
@click.option("--store", help="Store directory (default: params.yaml's, else 'store').")
@click.option("--params", "params_path", default="params.yaml", show_default=True, help=PARAMS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(store, params_path, as_json) -> None:
    """Versions, pairs stored, subset sizes.

    Example: delift-dvc status --json
    """
    from .reports import store_status, format_status

    report = store_status(_store_root(store, params_path))
    click.echo(json.dumps(report, indent=2, sort_keys=True) if as_json else format_status(report))


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--store", help="Store directory (default: params.yaml's, else 'store').")
@click.option("--params", "params_path", default="params.yaml", show_default=True, help=PARAMS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff(a, b, store, params_path, as_json) -> None:
    """What changed between versions A and B (names or sequence numbers) and their subsets.

    Example: delift-dvc diff 1 2
    """
    from .reports import format_diff, version_diff

    report = version_diff(_store_root(store, params_path), a, b)
    click.echo(json.dumps(report, indent=2, sort_keys=True) if as_json else format_diff(report))


@cli.command()
@click.argument("query")
@click.option("--store", help="Store directory (default: params.yaml's, else 'store').")
@click.option("--params", "params_path", default="params.yaml", show_default=True, help=PARAMS_HELP)
@click.option("--csv", "as_csv", is_flag=True, help="CSV output instead of a table.")
def sql(query, store, params_path, as_csv) -> None:
    """Run a SQL query on the store's DuckDB catalog (views: samples, versions,
    version_members, baselines, pairs, selections, utility).

    Example: delift-dvc sql "SELECT version, count(*) FROM selections GROUP BY version"
    """
    from .reports import run_sql

    click.echo(run_sql(_store_root(store, params_path), query, as_csv), nl=False)


def _store_root(store: str | None, params_path: str) -> str:
    from pathlib import Path

    from .config import load_params

    if store:
        return store
    return load_params(params_path).store if Path(params_path).is_file() else "store"


def main() -> None:
    """Entry point: one-line errors and exit code 2 for every DeliftError."""
    try:
        cli.main(standalone_mode=False)
    except DeliftError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("error: interrupted (stored segments are complete; run again to resume)", err=True)
        sys.exit(130)
