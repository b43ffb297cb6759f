"""params.yaml: every key of the shipped file checked in one place, with one-line errors that
name `section.key`, exit 2, no traceback, and the store untouched."""

from __future__ import annotations

import hashlib
import math
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from delift_dvc import cli
from delift_dvc.config import SECTIONS, allowed_values, load_params
from delift_dvc.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))

# Values of the wrong type or out of range, by the shipped value's type; keys whose valid values
# are special get their own list.
SPECIAL = {
    "scoring.threads": ["many", 0, -2, 1.5, True],
    "scoring.batch_tokens": ["many", 0, -2, 1.5, True, None],
    "scoring.ray_address": [5, ["x"], ""],
    "scoring.shared_store": [5, ["x"], ""],  # null is valid (off)
    "utility.embedding_model": [5, ["x"], "", None, "no/such/folder"],
    "data.target_set": [5, ["x"], ""],
    "selection.temperature": ["abc", True, -1.0, math.inf, math.nan, [1.0]],
    "data.group_by": [5, ["x"], ""],
    "data.fields": [5, "prompt", ["x"], {}, {"nonsense": "q"}, {"prompt": 5}, {"prompt": ""}],
    "data.test": [5, ["x"], ""],
    "finetune.model": [5, ["x"], ""],
    "finetune.steps": ["abc", 0, 1.5, True, -1],
    "scoring.template": [5, "", "no field", "{prompt} {prompt}"],
    "scoring.example_template": [5, "", "{prompt}", "{example_response} {example_prompt} {prompt}"],
    "selection.budget": ["abc", True, 0, -3, 0.0, 1.5, math.nan, [0.3]],
    "data.holdout": ["abc", True, -0.1, 1.0, 2],
    "evaluate.max_length": ["abc", 1.5, True, 4],
    "finetune.max_length": ["abc", 1.5, True, 4],
    "scoring.max_length": ["abc", 1.5, True, 4],
}


def mutations(key: str, value) -> list:
    if key in SPECIAL:
        return SPECIAL[key]
    if isinstance(value, bool):
        return ["yes", 1, None]
    if isinstance(value, int):
        return ["abc", 1.5, True, -5, None]
    if isinstance(value, float):
        return ["abc", True, -1.0, math.inf, None]
    if isinstance(value, list):
        return ["q_proj", [], [1], None]
    if isinstance(value, str):
        bad = [123, ["x"], "", None]
        return bad + (["nonsense"] if allowed_values(*key.split(".")) else [])
    raise AssertionError(f"no mutations for {key} = {value!r}")


CASES = [(f"{section}.{key}", bad) for section, values in SHIPPED.items() if isinstance(values, dict)
         for key, value in values.items() for bad in mutations(f"{section}.{key}", value)]
CASES += [(key, bad) for key, value in SHIPPED.items() if not isinstance(value, dict) for bad in (5, "", None)]


def test_every_shipped_key_is_covered():
    shipped = {f"{s}.{k}" for s, v in SHIPPED.items() if isinstance(v, dict) for k in v}
    known = {f"{s}.{f}" for s, cls in SECTIONS.items() for f in cls.__dataclass_fields__}
    assert shipped == known  # params.yaml documents every key, and nothing else
    assert {key for key, _ in CASES} >= shipped and len(CASES) > 200


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    """A store with samples, values, a version and a selection, to check it is left untouched."""
    from delift_dvc.store import Store

    root = tmp_path_factory.mktemp("project") / "store"
    ids = [hashlib.sha256(str(k).encode()).hexdigest()[:16] for k in range(4)]
    scorer = hashlib.sha256(b"scorer").hexdigest()
    with Store(root, write=True) as store:
        store.add_samples(ids, ["p"] * 4, ["r"] * 4, ["s"] * 4)
        store.write_baselines(scorer, ids, [0.5] * 4)
        store.write_pairs(scorer, ids, ids[::-1], [0.25] * 4)
        version = store.record_version("v1", ids)
        store.record_selection(version, "fl", "initial", ids[:2], [0.1, 0.05])
    return root


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_main(monkeypatch, capsys, *args) -> tuple[int, str]:
    monkeypatch.setattr(sys, "argv", ["delift-dvc", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("key, bad", CASES, ids=[f"{k}={b!r}" for k, b in CASES])
def test_a_bad_value_is_one_line_naming_the_key(tmp_path, monkeypatch, capsys, store_root, key, bad):
    params = yaml.safe_load(yaml.safe_dump(SHIPPED))
    if "." in key:
        section, name = key.split(".")
        params[section][name] = bad
    else:
        params[key] = bad
    params["store_dir"] = str(store_root) if key != "store_dir" else bad
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    shutil.copytree(REPO / "templates", tmp_path / "templates")  # the shipped scoring templates' files
    before = snapshot(store_root)
    for command in ("score", "select", "ingest", "finetune", "evaluate"):
        code, err = run_main(monkeypatch, capsys, command, "--params", path)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, (command, err)
        assert re.match(rf"error: {re.escape(str(path))}: {re.escape(key)}[ :.]", lines[0]), (command, lines[0])
    assert snapshot(store_root) == before


@pytest.mark.parametrize("text, message", [
    ("scoring:\n  dtpye: float32\n", "unknown key 'scoring.dtpye' (did you mean 'dtype'?)"),
    ("selection:\n  budgett: 0.3\n", "unknown key 'selection.budgett' (did you mean 'budget'?)"),
    ("scorng:\n  dtype: float32\n", "unknown key 'scorng' (did you mean 'scoring'?)"),
    ("scoring: 5\n", "scoring: expected a mapping of keys"),
    ("- a\n- b\n", "expected a mapping at the top level"),
    ("scoring:\n  dtype: [unclosed\n", ":3: malformed YAML"),
    ("scoring:\n  executor: local\n  ray_address: auto\n", "scoring.ray_address is set but scoring.executor is local"),
])
def test_unknown_keys_and_malformed_files(tmp_path, monkeypatch, capsys, text, message):
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    code, err = run_main(monkeypatch, capsys, "score", "--params", path)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_cli_options_are_the_config_keys_with_their_enums_and_help():
    from delift_dvc.api import OPTION_KEYS
    from delift_dvc.cli import SCORE_KEYS, SELECT_KEYS, key_option

    checked = 0
    for key in dict.fromkeys(SCORE_KEYS + SELECT_KEYS):
        param = key_option(key)(lambda: None).__click_params__[0]
        section, name = OPTION_KEYS[key], key
        assert param.opts == ["--" + name.replace("_", "-")] and param.name == name and param.help, key
        choices = getattr(param.type, "choices", None)
        if choices is not None:
            assert tuple(choices) == allowed_values(section, name), key
            checked += 1
    assert checked >= 7


@pytest.mark.parametrize("value, ok", [(0.3, True), (1.0, True), (30, True), (1, True), (0, False),
                                       (1.5, False), (-1, False), (0.0, False), (True, False)])
def test_one_budget_rule_for_config_cli_and_selection(tmp_path, value, ok):
    from delift_dvc.cli import BUDGET
    import click

    from delift_dvc.selection.budget import check_budget, resolve_budget

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"selection": {"budget": value}}))
    outcomes = []
    for attempt in (lambda: load_params(path),
                    lambda: BUDGET.convert(repr(value) if not isinstance(value, bool) else "true", None, None),
                    lambda: check_budget(value),
                    lambda: value == 0 or resolve_budget(value, 100)):  # count 0: "pick none" internally
        try:
            attempt()
            outcomes.append(True)
        except (InputError, click.BadParameter):  # BudgetError is an InputError
            outcomes.append(False)
    assert outcomes == [ok, ok, ok, ok or value == 0], outcomes


@pytest.mark.parametrize("text, expected", [("auto", "auto"), ("null", None), ("0", 0.0), ("1", 1.0), ("2.5", 2.5),
                                            ("-1", "bad"), ("abc", "bad"), ("1.5x", "bad"), (".inf", "bad")])
def test_one_temperature_check_for_params_and_cli(tmp_path, text, expected):
    """--temperature accepts exactly what selection.temperature accepts in params.yaml, with the same value."""
    import click

    from delift_dvc.cli import TEMPERATURE

    path = tmp_path / "params.yaml"
    path.write_text(f"selection:\n  strata: group\n  temperature: {text}\n")
    outcomes = []
    for attempt in (lambda: load_params(path).selection.temperature,
                    lambda: TEMPERATURE.convert(text, click.Option(["--temperature"]), None)):
        try:
            outcomes.append(attempt())
        except (InputError, click.BadParameter) as exc:
            outcomes.append("bad")
            assert "expected auto, null or a number >= 0" in str(exc)
    assert outcomes == [expected, expected], outcomes
