"""Build the DVC project of the quality comparison (issue 5) from ../shared/data.

    python benchmarks/make_claim_project.py --task p3 --dir ../claim-p3
    cd ../claim-p3 && dvc repro && delift-dvc compare --budgets 0.3 --seeds 0,1,2

`--task p3`: pool = the first --pool-per-template usable rows of 8 P3 templates, test = rows
150.. of the same templates (disjoint). `--task gsm8k`: the same pool, target set = the first
--targets rows of gsm8k/train (FLMI), test = the first --test rows of gsm8k/test. `--task cnn`:
the paper's single-template P3 setting, p3_t0/cnn_dailymail_3_0_0_sum_in_brief (pool = its first
--pool usable rows, test = its last --test rows, disjoint). `--task mixture`: the first
--pool-per-template rows of 12 P3 templates (p3 and p3_t0), test = rows 150.. of each; with --continual the
pool is the first 6 templates' rows (version 1) and data/update/v2.jsonl holds all 12 (version 2,
for `delift-dvc compare --update data/update/v2.jsonl`). `--task pool`: a pool of the 12 mixture
templates with the defects of real data, --pool-kind p0 (clean, --pool-per-template rows of each),
p1 (Zipf sizes: the template at rank r of a --pool-seed shuffle gets max(3, round(--zipf-head / r))
rows), p2 (redundant: sibling templates' rows at the row numbers of pool rows, and near-duplicates
of 15 % of the rows), p3 (noisy: 25 % of the rows of 6 templates get a wrong label or another row's
response) or realistic (all three), rows < 150; test = --test-per-template clean rows 150.. of each
template (disjoint from the pool, also through siblings); every record has `template` (the group:
data.group_by) and `defect`, and <dir>/pool_manifest.json counts the defects per template. The project
is this repository's dvc.yaml and params.yaml with the settings below; `--store` copies an
existing store in (the pool's utilities are content-keyed, so they are reused, not rescored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import yaml
from pools import KINDS, TEST_START, build_pool, check_disjoint, held_out_rows, manifest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
TEMPLATES = ["glue_mrpc_paraphrase", "common_gen_Given_concepts_type_1", "social_i_qa_Generate_answer",
             "rotten_tomatoes_Reviewer_Enjoyment", "app_reviews_convert_to_star_rating",
             "glue_qqp_duplicate_or_not", "quarel_choose_between", "gigaword_make_a_title"]
# 12 templates of p3 and p3_t0 ("folder/name"; a bare name is in p3), all with short samples (median
# 140-306 characters): trec_what_category_best_describe has no non-empty completion at all
MIXTURE = TEMPLATES + ["commonsense_qa_answer_to_question", "wiki_qa_Decide_good_answer",
                       "p3_t0/sciq_Direct_Question_Closed_Book_",
                       "p3_t0/dbpedia_14_given_a_list_of_category_what_does_the_title_belong_to"]
# sibling templates of 4 mixture templates: row i of a sibling is row i of the mixture template in
# another wording (same input, same answer). Checked over all 200 rows of each pair: of the words
# specific to a row (in < 10 % of its file's rows), ~100 % recur at the same row number, ~2 % one row on
SIBLINGS = {"glue_mrpc_paraphrase": ["p3_t0/glue_mrpc_equivalent", "p3_t0/glue_mrpc_same_thing"],
            "gigaword_make_a_title": ["p3_t0/gigaword_in_a_nutshell"],
            "quarel_choose_between": ["p3_t0/quarel_testing_students"],
            "social_i_qa_Generate_answer": ["p3_t0/social_i_qa_Show_choices_and_generate_answer"]}
REALISTIC_HEAD = 80  # --zipf-head of --pool-kind realistic: a pool of 250-350 records
CNN = SHARED / "p3_t0" / "cnn_dailymail_3_0_0_sum_in_brief.jsonl"


def usable_rows(path: Path) -> list[dict]:
    """The rows of a P3 file, those with an empty completion marked None (kept for row numbers)."""
    rows = [json.loads(line) for line in path.open(encoding="utf-8")]
    return [r if r["completion"].removesuffix("<|endoftext|>").strip() else None for r in rows]


def template_file(name: str) -> Path:
    """The file of a template named "folder/name" or "name" (in p3)."""
    folder, _, name = name.rpartition("/")
    return SHARED / (folder or "p3") / f"{name}.jsonl"


def short_name(name: str) -> str:
    """A template's name without its folder (its records' `template`)."""
    return name.rpartition("/")[2]


def p3_rows(first: int, count: int, templates: list[str] = TEMPLATES) -> list[dict]:
    """`count` rows with a non-empty completion from row `first` on, of each template."""
    out = []
    for name in templates:
        folder, _, name = name.rpartition("/")
        rows = usable_rows(SHARED / (folder or "p3") / f"{name}.jsonl")
        taken = [r for r in rows[first:] if r is not None][:count]
        if len(taken) < count:
            raise SystemExit(f"{folder or 'p3'}/{name}.jsonl: only {len(taken)} usable rows from row {first}")
        out += taken
    return out


def jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def sh(*args: str, cwd: Path) -> None:
    subprocess.run(list(args), cwd=cwd, check=True, capture_output=True)


def copy_pipeline(root: Path) -> None:
    """A new project folder with this checkout's dvc.yaml, params.yaml, .dvcignore and templates."""
    root.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "templates", root / "templates")


def init_repo(root: Path, message: str) -> None:
    """git + DVC (analytics off) in root, everything in it committed."""
    sh("git", "init", "-q", cwd=root)
    sh("git", "config", "user.name", "delift", cwd=root)
    sh("git", "config", "user.email", "delift@example.invalid", cwd=root)
    sh("dvc", "init", "-q", cwd=root)
    sh("dvc", "config", "core.analytics", "false", cwd=root)
    sh("git", "add", "-A", cwd=root)
    sh("git", "commit", "-qm", message, cwd=root)


def p3_task(args, root: Path, params: dict, stages: dict) -> tuple[list, list, int]:
    """8 P3 templates: pool = their first rows, test = rows TEST_START.. (pool, test, new tokens)."""
    return p3_rows(0, args.pool_per_template), p3_rows(TEST_START, args.test_per_template), 32


def gsm8k_task(args, root: Path, params: dict, stages: dict) -> tuple[list, list, int]:
    """The P3 pool with gsm8k/train's first --targets rows as the target set (FLMI), gsm8k test."""
    gsm = [json.loads(line) for line in (SHARED / "gsm8k/train.jsonl").open(encoding="utf-8")]
    jsonl(root / "data/target/gsm8k_train.jsonl", gsm[: args.targets])
    test = [json.loads(line) for line in (SHARED / "gsm8k/test.jsonl").open(encoding="utf-8")]
    params["data"]["target_set"] = "data/target/gsm8k_train.jsonl"
    stages["stages"]["ingest"]["deps"].append("${data.target_set}")
    return p3_rows(0, args.pool_per_template), test[: args.test], 128


def cnn_task(args, root: Path, params: dict, stages: dict) -> tuple[list, list, int]:
    """The paper's single template: its first --pool usable rows, its last --test rows."""
    rows = usable_rows(CNN)
    if args.pool + args.test > len(rows):
        raise SystemExit(f"--pool + --test: {CNN.name} has {len(rows)} rows")
    pool = [r for r in rows[: args.pool] if r is not None]
    return pool, [r for r in rows[len(rows) - args.test:] if r is not None], 64


def mixture_task(args, root: Path, params: dict, stages: dict) -> tuple[list, list, int]:
    """12 templates; with --continual the pool is the first 6 and data/update/v2.jsonl all 12.
    Every record keeps its `template` (the group, `data.group_by`)."""
    pool = tagged(MIXTURE, 0, args.pool_per_template)
    if args.continual:
        jsonl(root / "data/update/v2.jsonl", pool)
        pool = tagged(MIXTURE[:6], 0, args.pool_per_template)
    params["data"]["group_by"] = "template"
    return pool, tagged(MIXTURE, TEST_START, args.test_per_template), 32


def tagged(templates: list[str], first: int, count: int) -> list[dict]:
    """p3_rows of each template, each record with its template's short name as `template`."""
    return [{**row, "template": short_name(name)} for name in templates for row in p3_rows(first, count, [name])]


def pool_task(args, root: Path, params: dict, stages: dict) -> tuple[list, list, int]:
    """The --pool-kind pool of the 12 mixture templates (pools.py), the balanced clean test set,
    <dir>/pool_manifest.json; the sample's group is its `template`."""
    names = MIXTURE + [s for sibs in SIBLINGS.values() for s in sibs]
    sources = {short_name(n): usable_rows(template_file(n)) for n in names}
    templates = [short_name(n) for n in MIXTURE]
    siblings = {short_name(b): [short_name(s) for s in sibs] for b, sibs in SIBLINGS.items()}
    head = args.zipf_head or (REALISTIC_HEAD if args.pool_kind == "realistic" else 60)
    pool = build_pool(args.pool_kind, sources, templates, siblings, per_template=args.pool_per_template,
                      head=head, seed=args.pool_seed)
    test = held_out_rows(sources, templates, args.test_per_template, pool)
    check_disjoint(pool, test, {s: b for b, sibs in siblings.items() for s in sibs})
    arguments = {"pool_per_template": args.pool_per_template, "test_per_template": args.test_per_template,
                 "zipf_head": head, "siblings": siblings}
    info = manifest(args.pool_kind, args.pool_seed, arguments, pool, test)
    (root / "pool_manifest.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    params["data"]["group_by"] = "template"
    return pool, test, 32


TASKS = {"p3": p3_task, "gsm8k": gsm8k_task, "cnn": cnn_task, "mixture": mixture_task, "pool": pool_task}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=sorted(TASKS), default="p3")
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--pool-per-template", type=int, default=None, help="default: 20 (pool), 25 (others)")
    ap.add_argument("--test-per-template", type=int, default=None, help="default: 20 (pool), 10 (others)")
    ap.add_argument("--pool-kind", choices=KINDS, default="p0", help="pool: which defects (see above)")
    ap.add_argument("--pool-seed", type=int, default=0, help="pool: seed of the rows, ranks and defects")
    ap.add_argument("--zipf-head", type=int, default=None,
                    help=f"pool p1, realistic: rows of the largest template (default 60; realistic {REALISTIC_HEAD})")
    ap.add_argument("--targets", type=int, default=20, help="gsm8k: target-set size (from train)")
    ap.add_argument("--test", type=int, default=30, help="gsm8k, cnn: test-set size")
    ap.add_argument("--pool", type=int, default=150, help="cnn: pool size")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=None, help="finetune.steps (equal compute); default: epochs")
    ap.add_argument("--batch-size", type=int, default=None, help="finetune.batch_size")
    ap.add_argument("--max-length", type=int, default=None, help="finetune.max_length")
    ap.add_argument("--eval-dtype", default=None, help="evaluate.dtype (bfloat16: faster generation on CPUs with AMX)")
    ap.add_argument("--eval-batch-size", type=int, default=None, help="evaluate.batch_size")
    ap.add_argument("--utility", choices=["dense", "knn", "surrogate"], default="dense", help="utility.pairs")
    ap.add_argument("--continual", action="store_true", help="mixture: version 1 = 6 templates, v2 = 12")
    ap.add_argument("--no-icl", action="store_true", help="evaluate.icl: false (halves evaluation time)")
    ap.add_argument("--learning-rate", type=float, default=5e-4)
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: 32 (p3, mixture), 64 (cnn), 128 (gsm8k)")
    ap.add_argument("--store", type=Path, help="an existing store to copy in")
    args = ap.parse_args()
    pool_task_defaults = args.task == "pool"
    if args.pool_per_template is None:
        args.pool_per_template = 20 if pool_task_defaults else 25
    if args.test_per_template is None:
        args.test_per_template = 20 if pool_task_defaults else 10
    root: Path = args.dir
    if root.exists():
        raise SystemExit(f"{root}: exists; pick a new --dir")
    if not SHARED.is_dir():
        raise SystemExit(f"error: {SHARED}: not found (the team's shared data sets beside the checkout; "
                         "this script builds its projects from them)")
    copy_pipeline(root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    stages = yaml.safe_load((root / "dvc.yaml").read_text())
    pool, test, new_tokens = TASKS[args.task](args, root, params, stages)
    jsonl(root / "data/raw/train.jsonl", pool)
    jsonl(root / "data/test/test.jsonl", test)
    params["data"].update({"test": "data/test/test.jsonl", "holdout": 0.0})
    stages["stages"]["ingest"]["deps"].append("${data.test}")
    params["evaluate"]["max_new_tokens"] = args.max_new_tokens or new_tokens
    params["selection"]["mode"] = "refresh"  # as `compare` runs it: the first run is reused
    if args.task in ("p3", "gsm8k", "cnn"):  # the paper's settings reproduce the paper's plain DELIFT
        params["selection"].update({"strata": "none", "temperature": None})
    params["finetune"].update({"epochs": args.epochs, "learning_rate": args.learning_rate, "steps": args.steps})
    for section, key, value in (("finetune", "batch_size", args.batch_size), ("finetune", "max_length", args.max_length),
                                ("evaluate", "dtype", args.eval_dtype), ("evaluate", "batch_size", args.eval_batch_size)):
        if value is not None:
            params[section][key] = value
    params["utility"]["pairs"] = args.utility
    params["evaluate"]["icl"] = not args.no_icl
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / "dvc.yaml").write_text(yaml.safe_dump(stages, sort_keys=False))
    init_repo(root, f"claim project ({args.task}{' ' + args.pool_kind if args.task == 'pool' else ''})")
    if args.store:  # after the commit: the store is a DVC output, never a git file
        shutil.copytree(args.store, root / "store")
    print(f"{root}: {args.task} project ready; run: cd {root} && dvc repro && delift-dvc compare")


if __name__ == "__main__":
    main()
