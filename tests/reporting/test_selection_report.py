"""`delift-dvc report` on a real DVC project: the numbers against the definition (counts per
group from the subset file, the allocation's expected shares, flags), the Markdown twin, and the HTML page
in a real headless browser (Debian's chromium through Selenium): it renders, draws its charts,
and fetches nothing."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import require
from tests.helpers.projects import make_project, sh

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def pool() -> list[dict]:
    """24 label samples of one task and 4 free-text samples of another."""
    sentiment = [{"instruction": f"Review {k}: is it good?", "output": "yes" if k % 2 else "no", "task": "sentiment"}
                 for k in range(24)]
    notes = [{"instruction": f"Summarise note {k} about the weather", "output": f"summary {k}", "task": "notes"}
             for k in range(4)]
    return sentiment + notes


@pytest.fixture(scope="module")
def project(tmp_path_factory, tiny_model_dir) -> Path:
    root = make_project(tmp_path_factory.mktemp("report") / "repo", pool(),
                        {"model": str(tiny_model_dir), "dtype": "float32"},
                        data={"group_by": "task"}, selection={"budget": 6})
    sh("dvc", "repro", "select", cwd=root)
    done = sh("delift-dvc", "report", "--out", "reports", cwd=root)
    assert json.loads(done.stdout)["n_groups"] == 2
    return root


def expected_rows(root: Path) -> dict[str, tuple[int, int, float]]:
    """group -> (pool, picked, expected picks), from the files themselves: the expected picks are
    the balanced allocation's (the default: the most equal counts, at most each group's size)."""
    picked = Counter(json.loads(line)["task"] for line in (root / "data/selected/train.jsonl").read_text().splitlines())
    sizes = Counter(r["task"] for r in pool())
    n = sum(picked.values())
    assert json.loads((root / "data/selected/selection.json").read_text())["params"]["allocation"] == "balanced"
    groups = sorted(sizes)
    best = min(((a, n - a) for a in range(n + 1) if a <= sizes[groups[0]] and n - a <= sizes[groups[1]]),
               key=lambda q: q[0] ** 2 + q[1] ** 2)
    return {g: (sizes[g], picked[g], float(q)) for g, q in zip(groups, best)}


def test_markdown_twin_counts_and_flags(project):
    text = (project / "reports/selection.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and cells[0] in ("sentiment", "notes"):
            rows[cells[0]] = (int(cells[1]), int(cells[2]), float(cells[3]), cells[4])
    expected = expected_rows(project)
    assert set(rows) == set(expected)
    for group, (size, picked, share) in expected.items():
        flag = "no pick" if picked == 0 else "few picks" if share >= 1 and picked < 0.5 * share else ""
        assert rows[group] == (size, picked, round(share, 1), flag)
    assert "- **method**: delift" in text and "- **selected**: 6 of 28 samples" in text


def test_a_project_without_a_selection_is_a_one_line_error(tmp_path):
    (tmp_path / "params.yaml").write_text("data:\n  train: data.jsonl\n")
    done = sh("delift-dvc", "report", cwd=tmp_path, check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "selection.json: not found (run `delift-dvc score` first)" in done.stderr
    assert not (tmp_path / "reports").exists()


@pytest.fixture(scope="module")
def browser():
    require(CHROMIUM is not None and DRIVER is not None,
            "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for a download
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def test_the_page_renders_its_tables_and_charts_and_fetches_nothing(project, browser):
    from selenium.webdriver.common.by import By

    page = project / "reports/selection.html"
    browser.get(page.as_uri())
    assert browser.title == "delift-dvc selection report"
    expected = expected_rows(project)
    rows = browser.find_elements(By.CSS_SELECTOR, "#composition tr[data-group]")
    shown = {r.get_attribute("data-group"): [c.text for c in r.find_elements(By.TAG_NAME, "td")] for r in rows}
    assert set(shown) == set(expected)
    for group, (size, picked, share) in expected.items():
        assert shown[group][1:4] == [str(size), str(picked), f"{share:.1f}"]
    # the gains curve: 0, then one point per pick; the histogram has 40 bins
    points = browser.find_element(By.CSS_SELECTOR, "svg#gains polyline").get_attribute("points").split()
    assert len(points) == 7
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg#utility rect")) == 40
    # per group: the first picks with their rank, and unpicked samples with their mean utility
    details = browser.find_elements(By.TAG_NAME, "details")
    assert [d.get_attribute("data-group") for d in details] == sorted(expected)
    for d in details:
        d.find_element(By.TAG_NAME, "summary").click()
        assert d.get_attribute("open") is not None
    cells = browser.find_elements(By.CSS_SELECTOR, "details tr.sample td:nth-child(5)")
    assert cells and all(c.text.strip() for c in cells)  # every shown sample has a mean UF
    # each shown sample names its own file and line (not its line in data/prepared), and that line holds it
    raw = (project / "data/raw/train.jsonl").read_text().splitlines()
    for row in browser.find_elements(By.CSS_SELECTOR, "details tr.sample"):
        cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
        path, _, line = cells[5].rpartition(":")
        assert path == "data/raw/train.jsonl", cells[5]
        assert json.loads(raw[int(line) - 1])["instruction"] == cells[1]
    # self-contained: no resource was fetched, no script ran, the console is clean
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert not browser.find_elements(By.TAG_NAME, "script")
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    assert browser.find_element(By.TAG_NAME, "body").size["height"] > 400


COMPARE_MD = """fine-tuning protocol: steps

| method | budget | runs | NLL (nats/token) |
|---|---|---|---|
| random | 0.3 | 3 | 2.711 ± 0.040 |
| stratified_random | 0.3 | 3 | 2.725 ± 0.026 |

Paired differences <script>alert(1)</script>:
"""


def write_compare(folder: Path) -> bytes:
    """A compare --out folder: its Markdown and a real PNG figure (matplotlib, as compare draws it)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir()
    (folder / "compare.md").write_text(COMPARE_MD)
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0.1, 0.3], [2.9, 2.7])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    (folder / "compare.png").write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_after_compare_the_page_shows_its_quality_table_and_figure(project, browser):
    from selenium.webdriver.common.by import By

    write_compare(project / "cmp")
    done = sh("delift-dvc", "report", "--out", "with_quality", "--compare", "cmp", cwd=project)
    assert json.loads(done.stdout)["quality"] is True
    twin = (project / "with_quality/selection.md").read_text()
    assert twin.endswith("## Quality after compare\n\n" + COMPARE_MD)
    browser.get((project / "with_quality/selection.html").as_uri())
    cells = [[c.text for c in r.find_elements(By.TAG_NAME, "td")]
             for r in browser.find_elements(By.CSS_SELECTOR, "#quality table tr")]
    assert [c for c in cells if c] == [["random", "0.3", "3", "2.711 ± 0.040"],
                                       ["stratified_random", "0.3", "3", "2.725 ± 0.026"]]
    image = browser.find_element(By.CSS_SELECTOR, "#quality img#quality-vs-budget")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) == 200
    assert not browser.find_elements(By.TAG_NAME, "script")  # the Markdown's raw HTML stays text
    assert "<script>alert(1)</script>" in browser.find_element(By.ID, "quality").text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    # without --compare (the report stage) the page has no quality section
    assert "Quality after compare" not in (project / "reports/selection.md").read_text()


def test_compare_without_its_files_is_a_one_line_error(project):
    done = sh("delift-dvc", "report", "--out", "q2", "--compare", "nowhere", cwd=project, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "--compare nowhere: no compare.md there (run `delift-dvc compare --out nowhere` first)" in done.stderr
    assert not (project / "q2").exists()
