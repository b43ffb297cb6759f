"""The realistic pools of benchmarks/pools.py on synthetic templates: sizes, defects and the
test set checked against their definitions (module docstring), not against the builder."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import pools  # noqa: E402

EOT = "<|endoftext|>"
LABELS = ["yes", "no", "maybe"]


def template_rows(name: str, label: bool, n: int = 200, empty: tuple[int, ...] = ()) -> list:
    rows = []
    for i in range(n):
        if i in empty:
            rows.append(None)
            continue
        completion = LABELS[(i * 7) % 3] if label else f"answer {i} of {name} in words"
        rows.append({"prompt": f"Question {i} about {name.split('_')[0]}: what is it?", "completion": completion + EOT})
    return rows


@pytest.fixture(scope="module")
def sources():
    out = {f"t{k}": template_rows(f"t{k}", label=k < 3, empty=(5,) if k == 4 else ()) for k in range(8)}
    out["t0_sib"] = [None if r is None else {**r, "prompt": "In other words: " + r["prompt"]} for r in out["t0"]]
    out["t5_sib"] = [None if r is None else {**r, "prompt": "Put differently: " + r["prompt"]} for r in out["t5"]]
    return out


TEMPLATES = [f"t{k}" for k in range(8)]
SIBLINGS = {"t0": ["t0_sib"], "t5": ["t5_sib"]}


def build(kind, sources, seed=0, **kw):
    return pools.build_pool(kind, sources, TEMPLATES, SIBLINGS, per_template=kw.pop("per_template", 20),
                            head=kw.pop("head", 60), seed=seed, **kw)


def original(sources, rec):
    return sources[rec["template"]][rec["row"]]


def test_p0_is_clean_balanced_and_from_the_pool_rows(sources):
    pool = build("p0", sources)
    assert Counter(r["template"] for r in pool) == dict.fromkeys(TEMPLATES, 20)
    for rec in pool:
        assert rec["defect"] == "clean" and rec["row"] < pools.TEST_START
        assert (rec["template"], rec["row"]) != ("t4", 5)  # an empty completion is never used
        src = original(sources, rec)
        assert (rec["prompt"], rec["completion"]) == (src["prompt"], src["completion"])
    assert len({(r["prompt"], r["completion"]) for r in pool}) == len(pool)
    assert build("p0", sources) == pool and build("p0", sources, seed=1) != pool


def test_p1_sizes_follow_a_seeded_zipf_law(sources):
    pool = build("p1", sources, seed=3, head=60)
    order = list(TEMPLATES)
    random.Random(3).shuffle(order)
    want = {t: max(3, round(60 / (order.index(t) + 1))) for t in TEMPLATES}
    assert Counter(r["template"] for r in pool) == want
    assert sorted(want.values(), reverse=True)[:3] == [60, 30, 20] and min(want.values()) == 8


def test_p3_makes_a_quarter_of_six_templates_wrong(sources):
    pool = build("p3", sources, seed=2)
    noisy = Counter(r["template"] for r in pool if r["defect"] != "clean")
    assert len(noisy) == 6 and set(noisy.values()) == {5}  # round(0.25 * 20)
    by_template: dict[str, set] = {}
    for rec in pool:
        by_template.setdefault(rec["template"], set()).add(original(sources, rec)["completion"])
    for rec in pool:
        src = original(sources, rec)
        assert rec["prompt"] == src["prompt"]
        if rec["defect"] == "clean":
            assert rec["completion"] == src["completion"]
            continue
        assert pools.normalise(rec["completion"]) != pools.normalise(src["completion"])  # now wrong
        if rec["defect"] == "flipped":  # another label of its (label) template
            assert rec["template"] in ("t0", "t1", "t2") and pools.normalise(rec["completion"]) in LABELS
        else:  # swapped: another pool row's response of the same free-text template
            assert rec["defect"] == "swapped" and rec["template"] not in ("t0", "t1", "t2")
            assert rec["completion"] in by_template[rec["template"]]


def test_p2_adds_sibling_rows_at_pool_row_numbers_and_near_duplicates(sources):
    pool = build("p2", sources, seed=1)
    counts = Counter(r["defect"] for r in pool)
    assert counts["clean"] == 160 and counts["duplicate"] == 2 * round(0.25 * 20)
    assert counts["near_duplicate"] == round(0.15 * 160)
    clean = {(r["template"], r["row"]): r for r in pool if r["defect"] == "clean"}
    for rec in pool:
        if rec["defect"] == "duplicate":
            base = rec["template"].removesuffix("_sib")
            assert rec["template"] in ("t0_sib", "t5_sib") and (base, rec["row"]) in clean
            assert rec == {**pools.record(rec["template"], rec["row"], original(sources, rec)), "defect": "duplicate"}
        elif rec["defect"] == "near_duplicate":
            twin = clean[(rec["template"], rec["row"])]
            assert rec["completion"] == twin["completion"] and rec["prompt"] != twin["prompt"]
            assert rec["prompt"].lower().split() == twin["prompt"].lower().split() or \
                rec["prompt"].rstrip("?.!:;, ") == twin["prompt"].rstrip("?.!:;, ")
    assert len({(r["prompt"], r["completion"]) for r in pool}) == len(pool)


def test_realistic_has_every_defect_and_a_disjoint_balanced_test_set(sources):
    pool = build("realistic", sources, seed=0, head=80)
    assert {r["defect"] for r in pool} == set(pools.DEFECTS)
    test = pools.held_out_rows(sources, TEMPLATES, 20, pool)
    assert Counter(r["template"] for r in test) == dict.fromkeys(TEMPLATES, 20)
    assert all(r["row"] >= pools.TEST_START and r["defect"] == "clean" for r in test)
    assert not {r["prompt"] for r in test} & {r["prompt"] for r in pool}
    pools.check_disjoint(pool, test, {"t0_sib": "t0", "t5_sib": "t5"})
    info = pools.manifest("realistic", 0, {}, pool, test)
    assert info["pool"] == len(pool) and sum(info["defects"].values()) == len(pool)
    assert sum(t["pool"] for t in info["templates"].values()) == len(pool)


def test_overlap_between_test_and_pool_is_refused(sources):
    pool = build("p0", sources)
    leaked = [dict(pool[0])]
    with pytest.raises(SystemExit, match="share a prompt"):
        pools.check_disjoint(pool, leaked, {})
    sibling = [{**pools.record("t0", pool[0]["row"], sources["t0"][pool[0]["row"]]), "prompt": "fresh"}]
    sibling[0]["template"] = "t0_sib"
    assert pool[0]["template"] == "t0"
    with pytest.raises(SystemExit, match="the same example"):
        pools.check_disjoint(pool, sibling, {"t0_sib": "t0"})
    with pytest.raises(SystemExit, match="pool kind"):
        build("p9", sources)


def test_make_claim_project_without_the_shared_data_is_a_one_line_error(tmp_path):
    import shutil
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[2] / "benchmarks"
    copy = tmp_path / "repo" / "benchmarks"  # a checkout with no ../shared beside it
    copy.mkdir(parents=True)
    for name in ("make_claim_project.py", "pools.py"):
        shutil.copy(bench / name, copy / name)
    done = subprocess.run([sys.executable, str(copy / "make_claim_project.py"), "--task", "pool",
                           "--dir", str(tmp_path / "project")], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().count("\n") == 0 and "shared" in done.stderr and "not found" in done.stderr
    assert not (tmp_path / "project").exists()
