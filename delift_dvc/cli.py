"""`delift-dvc`: a thin click CLI over the stages.

Every DeliftError and every usage error becomes one line on stderr and exit code 2; nothing is
half-written. A command refuses an option it would ignore.
"""

from __future__ import annotations

import json
import os
import sys

import click

from delift_dvc.errors import DeliftError, InputError
from delift_dvc.selection.budget import BudgetError, check_budget
from delift_dvc.selection.stratified import DRAW_TEMPERATURE

PARAMS_HELP = "params.yaml of the DVC project (file mode: defaults for every option)."


class BudgetType(click.ParamType):
    """A fraction in (0, 1] ("0.3") or a count ("30"), by the one budget rule."""

    name = "budget"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return value
        text = str(value).strip()
        try:
            number = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            self.fail(f"{value!r} is not a number (a fraction like 0.3 or a count like 30)", param, ctx)
        try:
            return check_budget(number)
        except BudgetError as exc:
            self.fail(exc.detail, param, ctx)


BUDGET = BudgetType()


class AutoIntType(click.ParamType):
    """"auto" or an integer (threads, batch_tokens); the range is the params key's own check."""

    name = "auto|integer"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            self.fail(f"{value!r}: expected auto or an integer", param, ctx)


AUTO_INT = AutoIntType()


class TemperatureType(click.ParamType):
    """selection.temperature on the command line: a number, or `auto` / `null` as params.yaml
    reads them, then checked by the params key's own check (config.temperature)."""

    name = "auto|null|number"

    def convert(self, value, param, ctx):
        import yaml

        from delift_dvc.config import temperature

        parsed = value
        if isinstance(value, str):  # a number as click's float reads it, else auto / null as YAML does
            try:
                parsed = float(value)
            except ValueError:
                try:
                    parsed = yaml.safe_load(value)
                except yaml.YAMLError:
                    pass
        try:
            return temperature(parsed, param.opts[0])
        except InputError as exc:
            self.fail(f"{value!r}: {str(exc).split(': ', 1)[-1]}", param, ctx)


TEMPERATURE = TemperatureType()

# file-mode options (delift_dvc.api.OPTION_KEYS names their params section): each option's type,
# choices and help come from config's key metadata, so a key and its help are written once
SCORE_KEYS = ["store", "model", "dtype", "device", "max_length", "batch_tokens", "overflow", "distance",
              "segment_pairs", "threads", "executor", "workers", "ray_address", "pairs", "k", "lm_pairs", "strategy",
              "rounds", "budget", "embedding_model"]
SELECT_KEYS = ["store", "model", "dtype", "device", "max_length", "overflow", "distance", "pairs", "k", "lm_pairs",
               "strategy", "rounds", "method", "budget", "eta", "nu", "scaling", "seed", "embedding_coverage",
               "balance_clusters", "strata", "temperature", "draw", "strata_clusters", "allocation", "embedding_model"]
STORE_HELP = "Store directory (default: params.yaml's, else 'store')."
# how a key's annotation reads on the command line (threads, batch_tokens: auto or a count; budget: the budget rule)
CLICK_TYPES = {"int": int, "float": float, "str": str, "str | None": str, "int | str": AUTO_INT, "float | int": BUDGET,
               "float | None": float, "float | str | None": TEMPERATURE}
PARAMS_OPTION = click.option("--params", "params_path", default="params.yaml", show_default=True, help=PARAMS_HELP)


def logic_option(command: str):
    """--logic N: the stage's logic version as dvc.yaml's command states it (stages/logic.py);
    checked before anything runs, so an upgraded tool never mixes its outputs with an old run's."""
    def check(ctx, param, value):
        from delift_dvc.stages.logic import check_logic

        check_logic(command, value)
        return value

    return click.option("--logic", type=int, default=None, expose_value=False, callback=check, is_eager=True,
                        help="The stage's logic version in dvc.yaml (`delift-dvc upgrade` writes it).")


def key_option(name: str):
    """The click option of a file-mode option (`budget` -> --budget, from selection.budget's
    metadata: type, choices and help)."""
    from delift_dvc.api import OPTION_KEYS, TOP_OPTIONS
    from delift_dvc.config import key_field, option_name

    section = OPTION_KEYS[name]
    f = key_field(section, TOP_OPTIONS.get(name, name) if section is None else name)
    allowed = getattr(f.metadata.get("check"), "allowed", None)
    kind = click.Choice(list(allowed)) if allowed else CLICK_TYPES[str(f.type)]
    help_text = STORE_HELP if section is None else f.metadata["help"]
    return click.option(option_name(name), name, type=kind, help=help_text)


def file_options(keys: list[str]):
    """Decorator adding the file-mode options of `keys`, plus --target-set/--existing/--params."""
    def wrap(func):
        options = [key_option(key) for key in keys] + [
            click.option("--target-set", type=click.Path(), help="Task-specific: target-set samples (FLMI)."),
            click.option("--existing", type=click.Path(), help="Continual: samples already used (FLCG)."),
            PARAMS_OPTION,
        ]
        for option in reversed(options):
            func = option(func)
        return func

    return wrap


def _file_params(params_path: str, options: dict):
    """Params for file mode: params.yaml when present (else the defaults), with the options."""
    from delift_dvc.api import options_params

    return options_params(options, params_path)


def _refuse_in_stage_mode(command: str, options: dict, extra: dict) -> None:
    """Stage mode reads params.yaml only: an option given there would be ignored."""
    given = [k for k, v in {**options, **extra}.items() if v is not None]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise InputError(f"{flag}: only with a DATA file; in a DVC project `delift-dvc {command}` "
                         f"reads params.yaml (set the key there, or pass DATA)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="delift-dvc")
def cli() -> None:
    """Pick the most useful part of an LLM fine-tuning data set (DELIFT), incrementally."""


@cli.command()
@PARAMS_OPTION
@logic_option("ingest")
def ingest(params_path: str) -> None:
    """Validate data.train, de-duplicate it and write data/prepared (DVC stage `ingest`).

    Example: delift-dvc ingest --params params.yaml
    """
    from delift_dvc.config import load_params
    from delift_dvc.stages.ingest import run_ingest

    click.echo(json.dumps(run_ingest(load_params(params_path)), sort_keys=True))


@cli.command()
@click.argument("data", required=False, type=click.Path())
@file_options(SCORE_KEYS)
@click.option("--quiet", is_flag=True, help="No progress lines.")
@logic_option("score")
def score(data, params_path, quiet, target_set, existing, **options) -> None:
    """Score the d0 values and pairs a selection needs that the store lacks.

    Without DATA, run the DVC stage `score` from params.yaml: record the version, plan the
    incremental update, score only missing pairs, select, record the subset. With DATA (a
    .jsonl/.json/.parquet/.csv file, a folder or a saved HF dataset), score it directly.

    Example: delift-dvc score data.jsonl --store store --dtype bfloat16
    """
    from delift_dvc.progress import Reporter

    reporter = Reporter("score", quiet=quiet)
    if data is None:
        from delift_dvc.config import load_params
        from delift_dvc.stages.score import run_score

        _refuse_in_stage_mode("score", options, {"target_set": target_set, "existing": existing})
        result = run_score(load_params(params_path), reporter)
    else:
        from delift_dvc.stages.files import score_file

        result = score_file(_file_params(params_path, options), data, target_set, existing, reporter)
    click.echo(json.dumps(result, sort_keys=True))


@cli.command()
@click.argument("data", required=False, type=click.Path())
@file_options(SELECT_KEYS)
@click.option("--out", type=click.Path(), help="Output JSONL of the selected samples (input's shape).")
@click.option("--summary", type=click.Path(), help="Output JSON: ids, gains, objective, parameters.")
@logic_option("select")
def select(data, params_path, target_set, existing, out, summary, **options) -> None:
    """Select a subset with the stored utilities (scores nothing).

    Without DATA, run the DVC stage `select` (export data/selected/train.jsonl,
    metrics/select.json, plots). With DATA, write the subset to --out and a summary to --summary.

    Example: delift-dvc select data.jsonl --store store --budget 0.3 --out subset.jsonl
    """
    if data is None:
        from delift_dvc.config import load_params
        from delift_dvc.stages.select import run_select

        _refuse_in_stage_mode("select", options, {"target_set": target_set, "existing": existing,
                                                  "out": out, "summary": summary})
        click.echo(json.dumps(run_select(load_params(params_path)), sort_keys=True))
        return
    from delift_dvc.stages.files import select_file

    if not out:
        raise InputError("--out: required when DATA is given")
    params = _file_params(params_path, options)
    result = select_file(params, data, out, summary, target_set, existing)
    brief = {k: result[k] for k in ("method", "mode", "objective_name", "n_selected", "objective")}
    click.echo(json.dumps(brief, sort_keys=True))


@cli.command()
@PARAMS_OPTION
@click.option("--quiet", is_flag=True, help="No progress lines.")
@logic_option("finetune")
def finetune(params_path, quiet) -> None:
    """LoRA-tune the model on data/selected/train.jsonl (DVC stage `finetune`).

    Writes the adapter to finetune.adapter, metrics/train.json and plots/train_loss.csv.

    Example: delift-dvc finetune
    """
    from delift_dvc.config import load_params
    from delift_dvc.stages.finetune import run_finetune
    from delift_dvc.progress import Reporter

    result = run_finetune(load_params(params_path), Reporter("finetune", quiet=quiet))
    click.echo(json.dumps(result, sort_keys=True))


@cli.command()
@PARAMS_OPTION
@click.option("--initial", is_flag=True, help="Evaluate the base model alone (metrics/eval_initial.json).")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@logic_option("evaluate")
def evaluate(params_path, initial, quiet) -> None:
    """Evaluate on the held-out test set: NLL, ROUGE-L and embedding cosine (DVC stage `evaluate`).

    Without --initial: the fine-tuned adapter, and the base model with the nearest subset sample
    as a one-shot example (ICL) -> metrics/eval.json, plots/eval_samples.csv.

    Example: delift-dvc evaluate --initial
    """
    from delift_dvc.config import load_params
    from delift_dvc.stages.evaluate import run_evaluate
    from delift_dvc.progress import Reporter

    name = "evaluate_initial" if initial else "evaluate"
    result = run_evaluate(load_params(params_path), initial=initial, reporter=Reporter(name, quiet=quiet))
    click.echo(json.dumps(result, sort_keys=True))


@cli.command()
@PARAMS_OPTION
@click.option("--out", default="reports", show_default=True, type=click.Path(), help="Folder for the report.")
@click.option("--compare", type=click.Path(), default=None,
              help="A `delift-dvc compare --out` folder: add its quality tables and figure to the page.")
@logic_option("report")
def report(params_path, out, compare) -> None:
    """Write a report of the recorded subset: OUT/selection.html (one self-contained page) and
    OUT/selection.md (its Markdown twin, for CI comments).

    Shows the pool and subset composition per group with the groups that got no or few picks,
    the gains curve, the utility histogram, and per group the first picks and a few unpicked
    samples with their mean utility as a one-shot example. Run it after `dvc repro select`
    (`dvc repro` runs it as the `report` stage). With --compare, after `delift-dvc compare`,
    the page also shows the quality table with its intervals and the quality-vs-budget figure.

    Example: delift-dvc report --out reports --compare reports
    """
    from delift_dvc.config import load_params
    from delift_dvc.reporting import write_report

    click.echo(json.dumps(write_report(load_params(params_path), out, compare), sort_keys=True))


@cli.command()
@click.option("--dvc-file", default="dvc.yaml", show_default=True, type=click.Path(), help="The pipeline file.")
@PARAMS_OPTION
def upgrade(dvc_file, params_path) -> None:
    """After installing a new delift-dvc: write its stage logic versions into dvc.yaml, and rename
    renamed keys (`store` is `store_dir` since 0.3.0) in params.yaml and dvc.yaml.

    Each stage command carries `--logic N`, the version of what it computes; a stage whose number
    changed is re-run by the next `dvc repro` (with what depends on it), the others are not.
    Prints {command: [old, new]} of the commands that changed ({} when none did), and under
    "renamed" the keys it renamed.

    Example: pip install -U delift-dvc && delift-dvc upgrade && dvc repro
    """
    from delift_dvc.stages.logic import upgrade_params, upgrade_pipeline

    pipeline = upgrade_pipeline(dvc_file)
    renamed = upgrade_params(params_path) + pipeline.renamed
    report = {k: list(v) for k, v in pipeline.logic.items()}
    if renamed:
        report["renamed"] = renamed
    click.echo(json.dumps(report, sort_keys=True))


@cli.command()
@click.option("--methods", default="delift_balanced,delift,delift_se,random,stratified_random,balanced_random,full",
              show_default=True,
              help="Comma-separated selection methods (with --update: continual variants, default the first four).")
@click.option("--budgets", default="0.1,0.3,0.5", show_default=True, help="Comma-separated budgets.")
@click.option("--seeds", default="0,1,2", show_default=True,
              help="Fine-tuning seeds, for every method (also the random baseline's selection seed).")
@click.option("--update", type=click.Path(), help="Continual comparison: data.train of the next version "
              "(flcg continuation, refresh, random_additions, stratified_additions; --methods picks among them).")
@click.option("--embedding-coverage", "coverage", type=float, default=0.25, show_default=True,
              help="selection.embedding_coverage of the delift_cov method (delift runs use 0).")
@click.option("--balance-clusters", "clusters", type=int, default=12, show_default=True,
              help="selection.balance_clusters of the delift_bal method (delift runs use 0).")
@click.option("--temperature", type=float, default=DRAW_TEMPERATURE, show_default=True,
              help="selection.temperature of the delift_temp, delift_seq and delift_balanced methods (strata "
              "group_label, tempered draw).")
@click.option("--out", default="reports", show_default=True, help="Folder for compare.csv/.md/.png.")
@PARAMS_OPTION
@click.option("--dry-run", is_flag=True, help="Print the `dvc exp run` commands only.")
@click.option("--report-only", is_flag=True, help="Rebuild table and plot from OUT/compare.csv.")
def compare(methods, budgets, seeds, update, coverage, clusters, temperature, out, params_path, dry_run,
            report_only) -> None:
    """Run the method x budget x seed grid as `dvc exp run` experiments and tabulate quality.

    Each run re-selects from scratch (selection.mode=refresh), fine-tunes with its seed and
    evaluates; rows go to OUT/compare.csv as they finish, then OUT/compare.md (mean and spread,
    paired differences with bootstrap intervals) and OUT/compare.png.

    Methods: delift (the paper's plain DELIFT: every option off), delift_se, random,
    stratified_random, balanced_random (stratified random with selection.allocation balanced),
    full, delift_cov (delift with --embedding-coverage) and delift_bal (delift
    with --balance-clusters), delift_strata (delift inside strata of group x answer label,
    selection.strata group_label, the greedy) and delift_temp (the same with a tempered draw at
    --temperature, the budget proportional to the groups), delift_seq (that draw made pick by pick,
    selection.draw sequential), delift_balanced (delift_temp with selection.allocation balanced:
    params.yaml's default selection on data with groups).
    With --update, the continual variants flcg and refresh (the project's own selection settings),
    random_additions and stratified_additions, and on request balanced_additions.

    Example: delift-dvc compare --methods delift_balanced,balanced_random,stratified_random,random --budgets 0.3
    """
    from delift_dvc.experiments.grid import grid
    from delift_dvc.experiments.report import report
    from delift_dvc.experiments.runner import run_grid

    prepared = _prepared(params_path)
    if report_only:
        click.echo(report(out, prepared))
        return
    budget_values = [BUDGET.convert(b, None, None) for b in _names(budgets)]
    chosen = click.get_current_context().get_parameter_source("methods") != click.core.ParameterSource.DEFAULT
    runs = grid(_names(methods), budget_values, [_seed(s) for s in _names(seeds)], update, coverage,
                clusters, temperature, variants=_names(methods) if update is not None and chosen else None)
    run_grid(runs, out, params_path, dry_run=dry_run, echo=click.echo)
    if not dry_run:
        click.echo(report(out, prepared))


def _prepared(params_path: str) -> str | None:
    """data.prepared of the project's params.yaml (None without one)."""
    from pathlib import Path

    from delift_dvc.config import load_params

    return load_params(params_path).data.prepared if Path(params_path).is_file() else None


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _seed(value: str) -> int:
    if not value.isdigit():
        raise InputError(f"--seeds: {value!r} is not a non-negative integer")
    return int(value)


@cli.command()
@click.option("--store", help=STORE_HELP)
@PARAMS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(store, params_path, as_json) -> None:
    """Versions, pairs stored, subset sizes.

    Example: delift-dvc status --json
    """
    from delift_dvc.stages.reports import format_status, store_status

    report = store_status(_store_root(store, params_path))
    click.echo(json.dumps(report, indent=2, sort_keys=True) if as_json else format_status(report))


@cli.command()
@click.argument("a")
@click.argument("b")
@click.option("--store", help=STORE_HELP)
@PARAMS_OPTION
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def diff(a, b, store, params_path, as_json) -> None:
    """What changed between versions A and B (names or sequence numbers) and their subsets.

    Example: delift-dvc diff 1 2
    """
    from delift_dvc.stages.reports import format_diff, version_diff

    report = version_diff(_store_root(store, params_path), a, b)
    click.echo(json.dumps(report, indent=2, sort_keys=True) if as_json else format_diff(report))


@cli.command()
@click.argument("query")
@click.option("--store", help=STORE_HELP)
@PARAMS_OPTION
@click.option("--csv", "as_csv", is_flag=True, help="CSV output instead of a table.")
def sql(query, store, params_path, as_csv) -> None:
    """Run a SQL query on the store's DuckDB catalog (views: samples, versions,
    version_members, baselines, pairs, selections, utility).

    Example: delift-dvc sql "SELECT version, count(*) FROM selections GROUP BY version"
    """
    from delift_dvc.stages.reports import run_sql

    click.echo(run_sql(_store_root(store, params_path), query, as_csv), nl=False)


def _store_root(store: str | None, params_path: str) -> str:
    from pathlib import Path

    from delift_dvc.config import load_params

    if store:
        return store
    return load_params(params_path).store_dir if Path(params_path).is_file() else "store"


def main() -> None:
    """Entry point: one-line errors and exit code 2 for every DeliftError and usage error."""
    # Before torch loads: idle OpenMP threads sleep instead of spinning, so a busy core slows
    # scoring down in proportion instead of collapsing it (benchmarks/bench_threads.py).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        cli.main(standalone_mode=False)
    except DeliftError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code or 2)
    except KeyboardInterrupt:
        click.echo("error: interrupted (stored segments are complete; run again to resume)", err=True)
        sys.exit(130)
