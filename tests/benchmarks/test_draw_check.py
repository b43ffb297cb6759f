"""benchmarks/draw_check.py's twin count against its definition."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import draw_check  # noqa: E402


def test_twin_picks_are_picks_of_a_template_row_already_picked():
    records = {"a": {"template": "t1", "row": 3}, "a2": {"template": "t1", "row": 3},
               "a3": {"template": "t1", "row": 3}, "b": {"template": "t2", "row": 3},
               "c": {"template": "t1", "row": 4}}
    assert draw_check.twins(["a", "b", "c"], records) == 0  # same row, other template: a sibling, not a twin
    assert draw_check.twins(["a", "a2", "b"], records) == 1
    assert draw_check.twins(["a3", "a", "a2", "c"], records) == 2
    assert draw_check.twins([], records) == 0
