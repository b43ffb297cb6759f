"""The tool's code as a stage dependency: each stage's logic version sits in its `cmd`.

A stage's command in dvc.yaml reads `delift-dvc score --logic 1`. The number is the version of
what that stage computes for the same inputs; a release that changes a stage's results bumps its
number here. DVC re-runs a stage whose command changed, so after an upgrade `delift-dvc upgrade`
rewrites the numbers in dvc.yaml and `dvc repro` re-runs exactly the stages whose results
change (and what depends on them); a release that changes nothing a stage writes re-runs
nothing. Until then a stage refuses to run with an older number: its outputs would silently
mix two versions of the tool. A command without `--logic` (file mode, older pipelines) runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from delift_dvc.atomic import write_text
from delift_dvc.config import RENAMED
from delift_dvc.errors import InputError

# stage command -> logic version; bump a number when that command's outputs change for the same
# inputs and params (evaluate --initial is evaluate's logic). score 2: selection.strata's default
# group_label and selection.temperature's default auto (a params.yaml without them selects otherwise);
# score 3: selection.allocation's default auto (balanced across the data's groups)
LOGIC = {"ingest": 1, "score": 3, "select": 1, "report": 1, "finetune": 1, "evaluate": 1}

_CMD = re.compile(r"^(?P<head>\s*cmd:\s*delift-dvc\s+(?P<command>\w+))(?P<rest>[^\n#]*?)(?P<tail>\s*(#.*)?)$")
_LOGIC_FLAG = re.compile(r"\s+--logic\s+\S+")


def check_logic(command: str, given: int | None) -> None:
    """Raise an InputError when a stage's `--logic` is not this release's logic of `command`."""
    if given is None or given == LOGIC[command]:
        return
    from importlib.metadata import version

    what = (f"dvc.yaml: `delift-dvc {command} --logic {given}` was written for {command} logic {given}, "
            f"this delift-dvc ({version('delift-dvc')}) computes {command} logic {LOGIC[command]}")
    if given > LOGIC[command]:
        raise InputError(f"{what}: dvc.yaml is from a newer delift-dvc (pip install -U delift-dvc)")
    raise InputError(f"{what}: run `delift-dvc upgrade`, then `dvc repro` re-runs the stages whose results change")


class PipelineUpgrade(NamedTuple):
    """What upgrade_pipeline changed: {command: (old number or None, new number)} and the renamed
    param references ("${old} -> ${new}")."""

    logic: dict[str, tuple[int | None, int]]
    renamed: list[str]


def upgrade_pipeline(dvc_file: str | Path) -> PipelineUpgrade:
    """Rewrite every `delift-dvc <command>` stage command in dvc_file with this release's
    `--logic` number (added where missing), and `${old}` references of renamed keys
    (config.RENAMED) as `${new}`; the file is replaced atomically and only when something changed."""
    path = Path(dvc_file)
    if not path.is_file():
        raise InputError(f"{path}: not found (run `delift-dvc upgrade` in the DVC project)")
    lines, changed, renamed = [], {}, []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        body, end = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        for old_key, new_key in RENAMED.items():  # ${store} -> ${store_dir}
            if "${" + old_key + "}" in body:
                body = body.replace("${" + old_key + "}", "${" + new_key + "}")
                if f"${{{old_key}}} -> ${{{new_key}}}" not in renamed:
                    renamed.append(f"${{{old_key}}} -> ${{{new_key}}}")
        match = _CMD.match(body)
        if match and match["command"] in LOGIC:
            command, rest = match["command"], match["rest"]
            old = re.search(r"--logic\s+(\S+)", rest)
            new = LOGIC[command]
            body = f"{match['head']}{_LOGIC_FLAG.sub('', rest)} --logic {new}{match['tail']}"
            old_value = int(old[1]) if old and old[1].isdigit() else None
            if old_value != new:
                changed[command] = (old_value, new)
        lines.append(body + end)
    if changed or renamed:
        write_text(path, "".join(lines))
    return PipelineUpgrade(changed, renamed)


def upgrade_params(params_file: str | Path) -> list[str]:
    """Rename the renamed top-level keys (config.RENAMED) in params_file, comments and layout
    kept; replaced atomically and only when something changed. Returns ["old -> new", ...]."""
    path = Path(params_file)
    if not path.is_file():
        return []
    text, renamed = path.read_text(encoding="utf-8"), []
    for old_key, new_key in RENAMED.items():
        text, count = re.subn(rf"^{re.escape(old_key)}(?=\s*:)", new_key, text, flags=re.MULTILINE)
        if count:
            renamed.append(f"{old_key} -> {new_key}")
    if renamed:
        write_text(path, text)
    return renamed
