"""The report's flags and its data-update facts, on hand-made reports."""

from __future__ import annotations

from delift_dvc.reporting.page import html, markdown
from delift_dvc.reporting.selection import GroupRow, SelectionReport, expected_picks, flag


def test_flags_by_hand():
    assert flag(10, 0, 0.4) == "no pick"  # a group with no pick is flagged whatever its share
    assert flag(10, 1, 2.0) == ""  # half of the proportional share is enough
    assert flag(10, 1, 2.1) == "few picks"
    assert flag(10, 0, 0.0) == "no pick" and flag(0, 0, 0.0) == ""
    assert flag(3, 0, 0.9) == "no pick" and flag(3, 1, 0.9) == ""


def test_expected_picks_follow_the_allocation():
    # 15 picks from groups of 100, 5 and 5: proportional 13.64 / 0.68 / 0.68, balanced 5 / 5 / 5
    proportional = expected_picks([100, 5, 5], 15)
    assert [round(x, 4) for x in proportional] == [round(100 * 15 / 110, 4), round(75 / 110, 4), round(75 / 110, 4)]
    assert expected_picks([100, 5, 5], 15, "balanced") == [5.0, 5.0, 5.0]
    assert expected_picks([100, 5, 5], 4, "balanced") == [2.0, 1.0, 1.0]  # the extra pick to the largest
    # a balanced subset's 5 picks of the large group are "few" only against the proportional share
    assert flag(100, 5, proportional[0]) == "few picks" and flag(100, 5, 5.0) == ""


def report(mode: str, counts: dict) -> SelectionReport:
    groups = [GroupRow("a|b", 8, 0, 2.0, "no pick"), GroupRow("c", 12, 5, 3.0, "")]
    return SelectionReport(method="delift", mode=mode, budget=5, n_samples=20, n_selected=5, objective_name="flcg",
                           objective=1.5, scorer="f" * 64, version="v2", counts=counts, n_added=2, n_kept=3,
                           gains=[1.0, 0.5, 0.0, 0.0, 0.0], histogram=[(-0.5, 3), (0.5, 7)], groups=groups)


def test_a_data_update_says_what_changed():
    text = markdown(report("continual", {"n_new": 4, "n_kept": 16, "n_removed": 1}))
    assert "- **data update**: 4 new, 16 kept, 1 removed samples; subset: 3 kept, 2 added" in text
    assert "| a\\|b | 8 | 0 | 2.0 | no pick |" in text  # a pipe in a group name stays inside its cell
    assert "**1 of 2 groups have no or few picks:** a\\|b" in text
    assert "data update" not in markdown(report("initial", {"n_new": 20, "n_kept": 0, "n_removed": 0}))
    page = html(report("continual", {"n_new": 4, "n_kept": 16, "n_removed": 1}))
    assert page.count('<tr data-group="') == 2 and "a|b" in page and "<script" not in page
    assert "http://" not in page and "https://" not in page
