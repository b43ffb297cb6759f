"""`delift-dvc compare`: the grid as `dvc exp run` experiments (tiny model, real DVC), resume,
harvest into tables, and the report's statistics by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from tests.conftest import SHORT_P3, p3_records
from tests.helpers.projects import commit, make_project, sh
from tests.stages.test_quality_dvc import add_test_file, read_csv

@pytest.fixture(scope="module")
def grid_run(tmp_path_factory, shared_data, tiny_model_dir):
    records = p3_records(shared_data, SHORT_P3[:3], 6)
    root = make_project(
        tmp_path_factory.mktemp("grid") / "repo", records, {"model": str(tiny_model_dir), "dtype": "float32"},
        data={"holdout": 0.25}, finetune={"epochs": 1, "batch_size": 4},
        evaluate={"max_new_tokens": 4},
    )
    sh("dvc", "repro", cwd=root)
    commit(root, "baseline run")
    params_before = (root / "params.yaml").read_bytes()
    done = sh("delift-dvc", "compare", "--methods", "delift,random,full", "--budgets", "0.5",
              "--seeds", "0,1", cwd=root)
    return root, done.stdout, params_before


def test_compare_runs_the_grid_as_experiments(grid_run):
    root, stdout, params_before = grid_run
    rows = read_csv(root / "reports/compare.csv")
    runs = {(r["method"], r["budget"], r["seed"]) for r in rows if r["method"] != "initial"}
    assert runs == {(m, b, s) for m, b in (("delift", "0.5"), ("random", "0.5"), ("full", "1.0")) for s in "01"}
    assert sum(r["method"] == "initial" for r in rows) == 1
    assert {r["variant"] for r in rows} == {"initial", "finetuned", "icl"}
    assert (root / "params.yaml").read_bytes() == params_before  # restored after the sweep
    exps = sh("dvc", "exp", "list", "--name-only", cwd=root).stdout.split()
    assert len(exps) == 6
    samples = read_csv(root / "reports/compare_samples.csv")
    n_test = json.loads((root / "metrics/eval.json").read_text())["n_test"]
    assert len([r for r in samples if r["method"] == "delift" and r["variant"] == "finetuned"]) == 2 * n_test
    assert "fine-tuning protocol: epochs" in stdout and "| delift | 0.5 | random |" in stdout
    subsets = read_csv(root / "reports/compare_subsets.csv")
    trained = {(r["method"], r["budget"], r["seed"]): int(r["n_train"]) for r in rows if r["method"] != "initial"}
    for key, n_train in trained.items():
        ids = [r["id"] for r in subsets if (r["method"], r["budget"], r["seed"]) == key]
        assert len(ids) == len(set(ids)) == n_train, key
    random_ids = [{r["id"] for r in subsets if r["method"] == "random" and r["seed"] == s} for s in "01"]
    assert random_ids[0] != random_ids[1]  # the seed is the random baseline's selection seed
    assert "| delift | 0.5 | full |" in stdout
    for name in ("compare.md", "compare.png", "quality_vs_budget.csv"):
        assert (root / "reports" / name).stat().st_size > 0
    assert "| random | 0.5 |" in stdout and "±" in stdout
    curves = read_csv(root / "reports/quality_vs_budget.csv")
    assert [r["budget"] for r in curves] == ["0.5"] and curves[0]["delift_se_finetuned"] == ""
    plots = json.loads(sh("dvc", "plots", "show", "--json", "reports/quality_vs_budget.csv", cwd=root).stdout)
    assert "reports/quality_vs_budget.csv" in plots["data"] and not plots.get("errors")


def test_compare_resumes_and_skips_finished_runs(grid_run):
    root, _, _ = grid_run
    done = sh("delift-dvc", "compare", "--methods", "delift,random", "--budgets", "0.5",
              "--seeds", "0,1", cwd=root)
    assert "4 runs, 4 already in" in done.stdout


def test_paired_differences_by_hand():
    from delift_dvc.experiments.grid import against
    from delift_dvc.quality.report import paired_table
    from delift_dvc.quality.stats import paired_difference

    same = paired_difference(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
    assert (same.mean, same.low, same.high, same.verdict) == (0.0, 0.0, 0.0, "no difference")
    up = paired_difference(np.arange(50.0) + 5, np.arange(50.0))
    assert up.mean == 5.0 and up.verdict == "better"
    loss = paired_difference(np.arange(50.0) + 5, np.arange(50.0), higher_is_better=False)
    assert loss.mean == 5.0 and loss.verdict == "worse"  # a higher loss
    noisy = paired_difference(np.array([10.0, -10.0, 10.0, -10.0]), np.zeros(4))
    assert noisy.low < 0 < noisy.high and noisy.verdict == "no difference"

    def row(method, budget, seed, sample, rouge):
        return {"method": method, "budget": budget, "seed": seed, "variant": "finetuned", "id": sample,
                "nll": "1", "rouge_l": str(rouge), "cosine": "0"}

    rows = [row("delift", "0.3", s, f"t{i}", 30 + i) for s in "01" for i in range(40)]
    rows += [row("random", "0.3", s, f"t{i}", 10 + i + int(s)) for s in "01" for i in range(40)]
    rows += [row("full", "1.0", s, f"t{i}", 40 + i) for s in "01" for i in range(40)]
    table = {(r["against"]): r for r in paired_table(rows, against)}
    assert table["random"]["mean"] == pytest.approx(19.5) and table["random"]["verdict"] == "better"
    assert table["full"]["mean"] == pytest.approx(-10.0) and table["full"]["verdict"] == "worse"
    for r in rows:  # the same numbers read as NLL: lower is better, so the verdicts turn round
        r["nll"] = r["rouge_l"]
    nll = {(r["against"]): r for r in paired_table(rows, against, metric="nll")}
    assert nll["random"]["mean"] == pytest.approx(19.5) and nll["random"]["verdict"] == "worse"
    assert nll["full"]["verdict"] == "better"
    rows += [row("delift_cov", "0.3", s, f"t{i}", 31 + i) for s in "01" for i in range(40)]
    cov = {r["against"]: r for r in paired_table(rows, against) if r["method"] == "delift_cov"}
    assert set(cov) == {"random", "full", "delift"} and cov["delift"]["mean"] == pytest.approx(1.0)
    continual = [row(m, "0.3", "0", f"t{i}", base + i) for m, base in
                 (("flcg", 12), ("refresh", 10), ("random_additions", 11)) for i in range(40)]
    pairs = {(r["method"], r["against"]): r["mean"] for r in paired_table(continual, against)}
    assert pairs == pytest.approx({("flcg", "random_additions"): 1.0, ("flcg", "refresh"): 2.0,
                                   ("refresh", "random_additions"): -1.0})


def test_rows_are_added_without_twins_and_a_failed_write_keeps_the_file(tmp_path, monkeypatch):
    from delift_dvc.experiments import harvest as compare

    path = tmp_path / "reports" / "compare.csv"

    def row(method, seed, rouge):
        return {"method": method, "budget": "0.3", "seed": seed, "n_train": "3", "variant": "finetuned",
                "nll": "1.0", "rouge_l": rouge, "cosine": "0.5"}

    compare.append_rows(path, [row("delift", "0", "10")], compare.COLUMNS, 5)
    compare.append_rows(path, [row("delift", "0", "99"), row("random", "0", "20")], compare.COLUMNS, 5)
    assert [(r["method"], r["rouge_l"]) for r in compare.read_rows(path)] == [("delift", "10"), ("random", "20")]
    before = path.read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(compare, "write_text", killed)
    with pytest.raises(KeyboardInterrupt):
        compare.append_rows(path, [row("full", "0", "30")], compare.COLUMNS, 5)
    assert path.read_bytes() == before and [f.name for f in path.parent.iterdir()] == ["compare.csv"]


def test_summary_mean_and_spread_by_hand():
    from delift_dvc.quality.report import markdown, summarize

    def row(method, budget, seed, rouge):
        return {"method": method, "budget": budget, "seed": seed, "n_train": "3", "variant": "finetuned",
                "nll": "1.0", "rouge_l": rouge, "cosine": "0.5"}

    summary = summarize([row("random", "0.3", "0", "10"), row("random", "0.3", "1", "20"),
                         row("delift", "0.3", "0", "30")])
    by = {e["method"]: e for e in summary}
    assert by["random"]["rouge_l"] == 15.0 and by["random"]["rouge_l_sd"] == pytest.approx(7.0710678)
    assert by["delift"]["rouge_l_sd"] == 0.0 and by["random"]["runs"] == 2
    assert "| random | 0.3 | 3 | finetuned | 2 | 15.00 ± 7.07 | 0.500 ± 0.000 | 1.000 ± 0.000 |" in markdown(summary)


def test_grid_composition_and_unknown_method():
    from delift_dvc.experiments.grid import against, grid
    from delift_dvc.errors import InputError

    runs = grid(["delift", "random", "full"], [0.1, 0.3], [0, 1, 2])
    assert len(runs) == 6 + 6 + 3  # every method with every seed; full at budget 1.0
    assert [(r.method, r.budget, r.seed) for r in runs[:7]] == [  # seed by seed: a stopped sweep leaves whole seeds
        ("delift", 0.1, 0), ("random", 0.1, 0), ("full", 1.0, 0), ("delift", 0.1, 1), ("random", 0.1, 1),
        ("full", 1.0, 1), ("delift", 0.1, 2)]
    assert [(r.method, r.budget, r.seed) for r in runs[9:11]] == [("delift", 0.3, 0), ("random", 0.3, 0)]
    assert sorted(r.key() for r in runs) == sorted({r.key() for r in runs})  # no run twice
    assert "finetune.seed=2" in runs[6].overrides() and "selection.mode=refresh" in runs[0].overrides()
    update = grid([], [0.3], [0, 1], update="data/v2.jsonl")
    assert [r.method for r in update] == ["flcg", "refresh", "random_additions", "stratified_additions"] * 2
    assert [r.seed for r in update] == [0] * 4 + [1] * 4
    assert {"data.train=data/v2.jsonl", "selection.method=random", "selection.mode=incremental"} <= set(update[-2].overrides())
    assert {"data.train=data/v2.jsonl", "selection.method=stratified_random", "selection.mode=incremental",
            "selection.strata=none", "selection.temperature=null"} <= set(update[-1].overrides())
    assert "selection.strata=none" not in update[0].overrides()  # flcg runs the project's own selection
    chosen = grid([], [0.3], [0], update="data/v2.jsonl", variants=["stratified_additions", "flcg"])
    assert [r.method for r in chosen] == ["flcg", "stratified_additions"]  # CONTINUAL's order
    with pytest.raises(InputError, match="unknown continual variant 'delift'"):
        grid([], [0.3], [0], update="data/v2.jsonl", variants=["delift"])
    with pytest.raises(InputError, match="unknown method 'best'"):
        grid(["best"], [0.3], [0])
    plain, covered = grid(["delift", "delift_cov"], [0.3], [0], coverage=0.5)
    assert {"selection.method=delift", "selection.embedding_coverage=0"} <= set(plain.overrides())
    assert {"selection.method=delift", "selection.embedding_coverage=0.5"} <= set(covered.overrides())
    assert covered.key() == ("delift_cov", "0.3", "0")
    with pytest.raises(InputError, match="--embedding-coverage"):
        grid(["delift_cov"], [0.3], [0], coverage=0.0)
    plain, balanced = grid(["delift", "delift_bal"], [0.3], [0], clusters=8)
    assert {"selection.balance_clusters=0", "selection.embedding_coverage=0"} <= set(plain.overrides())
    assert {"selection.method=delift", "selection.balance_clusters=8"} <= set(balanced.overrides())
    with pytest.raises(InputError, match="--balance-clusters 1: expected a whole number >= 2"):
        grid(["delift_bal"], [0.3], [0], clusters=1)
    tempered, sequential = grid(["delift_temp", "delift_seq"], [0.3], [0], temperature=2.0)
    assert {"selection.strata=group_label", "selection.temperature=2", "selection.draw=independent"} <= \
        set(tempered.overrides())
    assert {"selection.method=delift", "selection.strata=group_label", "selection.temperature=2",
            "selection.draw=sequential"} <= set(sequential.overrides())
    assert "selection.draw=independent" in plain.overrides() and "delift_temp" in against("delift_seq")
    with pytest.raises(InputError, match="--temperature -1.0: expected a number >= 0"):
        grid(["delift_seq"], [0.3], [0], temperature=-1.0)
    tempered, balanced, balanced_random, stratified = grid(
        ["delift_temp", "delift_balanced", "balanced_random", "stratified_random"], [0.3], [0])
    assert "selection.allocation=proportional" in tempered.overrides()
    assert {"selection.method=delift", "selection.strata=group_label", "selection.temperature=1",
            "selection.allocation=balanced"} <= set(balanced.overrides())
    assert {"selection.method=stratified_random", "selection.allocation=balanced", "selection.strata=none"} <= \
        set(balanced_random.overrides())
    assert {"selection.method=stratified_random", "selection.allocation=proportional"} <= \
        set(stratified.overrides())
    assert {"delift_temp", "balanced_random", "random", "stratified_random"} <= set(against("delift_balanced"))
    assert against("balanced_random") == [] and "balanced_additions" in against("flcg")
    added = grid([], [0.3], [0], update="data/v2.jsonl", variants=["flcg", "balanced_additions"])
    assert [r.method for r in added] == ["flcg", "balanced_additions"]
    assert {"selection.method=stratified_random", "selection.allocation=balanced", "selection.mode=incremental"} <= \
        set(added[1].overrides())
    assert "selection.allocation=proportional" in update[-1].overrides()
    two_budgets = grid([], [0.1, 0.3], [0], update="data/v2.jsonl")
    assert [(r.budget, r.method) for r in two_budgets] == [
        (b, m) for b in (0.1, 0.3) for m in ("flcg", "refresh", "random_additions", "stratified_additions")]


def test_compare_refuses_to_mix_coverage_weights(tmp_path, monkeypatch):
    from delift_dvc.errors import InputError
    from delift_dvc.experiments.grid import grid
    from delift_dvc.experiments.harvest import COLUMNS
    from delift_dvc.experiments.runner import run_grid

    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("{}\n")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "compare.csv").write_text(",".join(COLUMNS) + "\ndelift_cov,0.3,0,3,finetuned,1.0,20.0,0.5,,\n")
    (reports / "protocol.json").write_text('{"embedding_coverage": 0.25, "protocol": "steps"}\n')
    lines = []
    with pytest.raises(InputError, match="holds delift_cov runs at 0.25"):
        run_grid(grid(["delift_cov"], [0.3], [0, 1], coverage=0.5), "reports", dry_run=True, echo=lines.append)
    run_grid(grid(["delift_cov"], [0.3], [0, 1], coverage=0.25), "reports", dry_run=True, echo=lines.append)
    assert lines[0] == "2 runs, 1 already in reports/compare.csv, 1 to run"
    (reports / "compare.csv").write_text(",".join(COLUMNS) + "\ndelift_bal,0.3,0,3,finetuned,1.0,20.0,0.5,,\n")
    (reports / "protocol.json").write_text('{"balance_clusters": 12, "protocol": "steps"}\n')
    with pytest.raises(InputError, match="--balance-clusters 8: reports/protocol.json holds delift_bal runs at 12"):
        run_grid(grid(["delift_bal"], [0.3], [0, 1], clusters=8), "reports", dry_run=True, echo=lines.append)


def test_continual_compare_reselects_the_first_version_at_each_budget(tmp_path, monkeypatch):
    from delift_dvc.experiments.grid import grid
    from delift_dvc.experiments.runner import run_grid

    monkeypatch.chdir(tmp_path)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "params.yaml").write_text("{}\n")
    lines = []
    run_grid(grid([], [0.1, 0.3], [0, 1], update="v2.jsonl"), "reports", dry_run=True, echo=lines.append)
    firsts = [k for k, line in enumerate(lines) if "first version" in line]
    assert len(firsts) == 2 and firsts[0] == 1 and firsts[1] == 10  # before each budget's 8 runs
    assert lines[1].endswith("-S ++data.train=data/raw -S ++selection.budget=0.1 -S ++selection.method=delift "
                             "-S ++selection.mode=refresh score")
    assert all("selection.budget=0.1" in line for line in lines[2:10])
    assert all("selection.budget=0.3" in line for line in lines[11:])


@pytest.fixture(scope="module")
def continual_grid(tmp_path_factory, shared_data, tiny_model_dir):
    """A v1 of two templates, a v2 adding two more, and `compare --update` at two budgets."""
    records = p3_records(shared_data, SHORT_P3[:4], 10)
    pool = [r for k, r in enumerate(records) if k % 10 < 8]
    test = [r for k, r in enumerate(records) if k % 10 >= 8]
    v1 = pool[:16]
    root = make_project(
        tmp_path_factory.mktemp("continual") / "repo", v1, {"model": str(tiny_model_dir), "dtype": "float32"},
        finetune={"steps": 2, "batch_size": 4}, evaluate={"max_new_tokens": 4},
    )
    add_test_file(root, test)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for key in ("embedding_coverage", "balance_clusters"):  # a project made before these keys
        del params["selection"][key]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "data/v2").mkdir(parents=True)
    (root / "data/v2/train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in pool))
    commit(root, "v1 project, v2 data")
    done = sh("delift-dvc", "compare", "--update", "data/v2/train.jsonl", "--budgets", "0.25,0.5",
              "--seeds", "0", cwd=root)
    return root, done.stdout


def test_continual_compare_runs_from_the_same_first_subset_at_equal_size(continual_grid):
    from delift_dvc.selection.budget import resolve_budget
    from delift_dvc.store import Store

    root, stdout = continual_grid
    rows = [r for r in read_csv(root / "reports/compare.csv") if r["variant"] == "finetuned"]
    assert {(r["method"], r["budget"]) for r in rows} == {
        (m, b) for m in ("flcg", "refresh", "random_additions", "stratified_additions") for b in ("0.25", "0.5")}
    with Store(root / "store") as store:
        v1_ids = next(set(store.version_ids(v.seq)) for v in store.versions() if v.n == 16)
    subsets = read_csv(root / "reports/compare_subsets.csv")
    for budget in (0.25, 0.5):
        size = {r["method"]: int(r["n_train"]) for r in rows if float(r["budget"]) == budget}
        assert len(set(size.values())) == 1, size  # one size per budget: the fraction of the whole update
        assert size["refresh"] == resolve_budget(budget, 32)
        ids = {m: [r["id"] for r in subsets if r["method"] == m and float(r["budget"]) == budget]
               for m in ("flcg", "random_additions", "stratified_additions")}
        kept = [i for i in ids["flcg"] if i in v1_ids]
        assert len(kept) == resolve_budget(budget, 16)  # v1's DELIFT subset at this budget
        for additions in ("random_additions", "stratified_additions"):
            assert ids["flcg"][:len(kept)] == kept == [i for i in ids[additions] if i in v1_ids]
    assert "| flcg | 0.25 | random_additions |" in stdout and "| flcg | 0.25 | stratified_additions |" in stdout
