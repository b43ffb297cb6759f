"""The two scoring templates are the DELIFT reference's, verbatim: pinned to the literal text of
../shared/DESIGN.md (and written out here, so a change fails even without the shared folder)."""

from __future__ import annotations

import ast
import re

import pytest
import yaml

from delift_dvc.config import ScoringParams, load_params
from delift_dvc.errors import InputError
from delift_dvc.utility.layout import NO_EXAMPLE_TEMPLATE, ONE_EXAMPLE_TEMPLATE
from tests.conftest import SHARED_DATA, require
from tests.helpers.projects import REPO

NO_EXAMPLE = "Instruction: Please generate a response to the following query.\n\n\nQuery: {prompt}\n"
ONE_EXAMPLE = ("Instruction:\nUse the following example as a guide to answer the query in the same format and "
               "style, providing a clear and concise response.\n\n\nExample:\n{example_prompt}\n"
               "{example_response}\n\n\nQuery:\n{prompt}\n")


def test_templates_are_the_literals_everywhere_they_are_defaulted():
    params = yaml.safe_load((REPO / "params.yaml").read_text())["scoring"]  # file paths, read byte for byte
    shipped = {key: (REPO / params[key]).read_bytes().decode("utf-8") for key in ("template", "example_template")}
    assert NO_EXAMPLE_TEMPLATE == ScoringParams().template == shipped["template"] == NO_EXAMPLE
    assert ONE_EXAMPLE_TEMPLATE == ScoringParams().example_template == shipped["example_template"] == ONE_EXAMPLE
    loaded = load_params(REPO / "params.yaml").scoring
    assert (loaded.template, loaded.example_template) == (NO_EXAMPLE, ONE_EXAMPLE)


def test_templates_match_the_design_documents_literals():
    design = SHARED_DATA.parent / "DESIGN.md"
    require(design.is_file(), f"{design} is absent (the team's design document)")
    found = dict(re.findall(r'^(NO_EXAMPLE|ONE_EXAMPLE)\s*=\s*(".*")\s*$', design.read_text(), re.M))
    assert set(found) == {"NO_EXAMPLE", "ONE_EXAMPLE"}
    assert ast.literal_eval(found["NO_EXAMPLE"]) == NO_EXAMPLE_TEMPLATE
    assert ast.literal_eval(found["ONE_EXAMPLE"]) == ONE_EXAMPLE_TEMPLATE


def test_a_template_is_its_text_or_the_file_holding_it(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t/q.txt").write_bytes("Frage: {prompt}\r\n".encode())  # read byte for byte
    (tmp_path / "params.yaml").write_text("scoring:\n  template: t/q.txt\n  example_template: "
                                          "\"{example_prompt} {example_response} {prompt}\"\n")
    scoring = load_params(tmp_path / "params.yaml").scoring
    assert scoring.template == "Frage: {prompt}\r\n"
    assert scoring.example_template == "{example_prompt} {example_response} {prompt}"


@pytest.mark.parametrize("value, content, message", [
    ("t/missing.txt", None, r"params.yaml: scoring.template 't/missing.txt': neither a template .* not found"),
    ("t/q.txt", b"no placeholder", r"scoring.template: .*\{prompt\}"),
    ("t/q.txt", b"\xff{prompt}", r"q.txt: not valid UTF-8 \(the file of scoring.template\)"),
])
def test_a_bad_template_file_names_the_key(tmp_path, value, content, message):
    (tmp_path / "t").mkdir()
    if content is not None:
        (tmp_path / "t/q.txt").write_bytes(content)
    (tmp_path / "params.yaml").write_text(f"scoring:\n  template: {value}\n")
    with pytest.raises(InputError, match=message):
        load_params(tmp_path / "params.yaml")
