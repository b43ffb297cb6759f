"""The two scoring templates are the DELIFT reference's, verbatim: pinned to the literal text of
../shared/DESIGN.md (and written out here, so a change fails even without the shared folder)."""

from __future__ import annotations

import ast
import re

import yaml

from delift_dvc.config import ScoringParams
from delift_dvc.utility.layout import NO_EXAMPLE_TEMPLATE, ONE_EXAMPLE_TEMPLATE
from tests.conftest import SHARED_DATA, require
from tests.helpers.projects import REPO

NO_EXAMPLE = "Instruction: Please generate a response to the following query.\n\n\nQuery: {prompt}\n"
ONE_EXAMPLE = ("Instruction:\nUse the following example as a guide to answer the query in the same format and "
               "style, providing a clear and concise response.\n\n\nExample:\n{example_prompt}\n"
               "{example_response}\n\n\nQuery:\n{prompt}\n")


def test_templates_are_the_literals_everywhere_they_are_defaulted():
    params = yaml.safe_load((REPO / "params.yaml").read_text())["scoring"]
    assert NO_EXAMPLE_TEMPLATE == ScoringParams().template == params["template"] == NO_EXAMPLE
    assert ONE_EXAMPLE_TEMPLATE == ScoringParams().example_template == params["example_template"] == ONE_EXAMPLE


def test_templates_match_the_design_documents_literals():
    design = SHARED_DATA.parent / "DESIGN.md"
    require(design.is_file(), f"{design} is absent (the team's design document)")
    found = dict(re.findall(r'^(NO_EXAMPLE|ONE_EXAMPLE)\s*=\s*(".*")\s*$', design.read_text(), re.M))
    assert set(found) == {"NO_EXAMPLE", "ONE_EXAMPLE"}
    assert ast.literal_eval(found["NO_EXAMPLE"]) == NO_EXAMPLE_TEMPLATE
    assert ast.literal_eval(found["ONE_EXAMPLE"]) == ONE_EXAMPLE_TEMPLATE
