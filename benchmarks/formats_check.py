"""Each accepted record shape through a real `dvc repro` with the embedded model (issue 20).

From the first Self-Instruct seed tasks in ../shared/data, writes one pool per shape (Alpaca with
`system`, ShareGPT `conversations`, TRL conversational prompt/completion, OpenAI multi-turn
`messages`, and other field names mapped by `data.fields`), builds a DVC project for each from
this checkout's dvc.yaml and params.yaml, runs the whole pipeline (ingest -> score -> select ->
report -> finetune -> evaluate; the conversational shapes with `finetune.layout: chat`), and
checks that every line of `data/selected/train.jsonl` is byte for byte one of the input's records
as `json.dumps(record, ensure_ascii=False)` writes it. Prints one table row per shape.

    python benchmarks/formats_check.py --dir ../formats-check [--records 12]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_claim_project import copy_pipeline, init_repo  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SEED_TASKS = REPO.parent / "shared" / "data" / "self_instruct" / "seed_tasks.jsonl"
SYSTEM = "You are a helpful, concise assistant."


def seed_rows(n: int) -> list[tuple[str, str, str]]:
    """(instruction, input, output) of the first n seed tasks with a short output (<= 400 chars)."""
    rows = []
    for line in SEED_TASKS.read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        inst = task["instances"][0]
        if len(inst["output"]) <= 400 and len(inst["input"]) <= 400:
            rows.append((task["instruction"], inst["input"], inst["output"]))
        if len(rows) == n:
            break
    return rows


def prompt_of(instruction: str, given: str) -> str:
    return f"{instruction}\n\n{given}" if given else instruction


def shapes(rows: list[tuple[str, str, str]]) -> dict[str, tuple[list[dict], dict, str]]:
    """shape -> (records, data.fields mapping, finetune.layout)."""
    follow = rows[1:] + rows[:1]  # a second turn for the multi-turn shapes: the next task
    return {
        "alpaca_system": ([{"system": SYSTEM, "instruction": i, "input": x, "output": o} for i, x, o in rows],
                          {}, "plain"),
        "sharegpt": ([{"conversations": [{"from": "system", "value": SYSTEM},
                                         {"from": "human", "value": prompt_of(i2, x2)}, {"from": "gpt", "value": o2},
                                         {"from": "human", "value": prompt_of(i, x)}, {"from": "gpt", "value": o}]}
                      for (i, x, o), (i2, x2, o2) in zip(rows, follow)], {}, "chat"),
        "trl_conversational": ([{"prompt": [{"role": "system", "content": SYSTEM},
                                            {"role": "user", "content": prompt_of(i, x)}],
                                 "completion": [{"role": "assistant", "content": o}]} for i, x, o in rows], {}, "chat"),
        "openai_messages": ([{"messages": [{"role": "system", "content": SYSTEM},
                                           {"role": "user", "content": prompt_of(i2, x2)},
                                           {"role": "assistant", "content": o2},
                                           {"role": "user", "content": prompt_of(i, x)},
                                           {"role": "assistant", "content": o}]}
                             for (i, x, o), (i2, x2, o2) in zip(rows, follow)], {}, "chat"),
        "custom_fields": ([{"query": prompt_of(i, x), "reply": o, "source": "self_instruct"} for i, x, o in rows],
                          {"prompt": "query", "completion": "reply"}, "plain"),
    }


def build(root: Path, records: list[dict], fields: dict, layout: str, as_list: bool) -> list[str]:
    """A DVC project at root over records; returns the records' lines as the subset writes them."""
    copy_pipeline(root)
    (root / "data/raw").mkdir(parents=True)
    lines = [json.dumps(r, ensure_ascii=False) + "\n" for r in records]
    if as_list:  # a .json list file: its records' bytes are json.dumps's, not the file's
        (root / "data/raw/train.json").write_text(json.dumps(records, indent=1, ensure_ascii=False), encoding="utf-8")
        train = "data/raw/train.json"
    else:
        (root / "data/raw/train.jsonl").write_text("".join(lines), encoding="utf-8")
        train = "data/raw/train.jsonl"
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["data"].update({"train": train, "fields": fields or None, "holdout": 0.25})
    params["finetune"].update({"epochs": 1, "layout": layout})
    params["evaluate"].update({"max_new_tokens": 16, "icl": False})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    init_repo(root, "pool")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, type=Path)
    ap.add_argument("--records", type=int, default=12)
    ap.add_argument("--only", help="comma-separated shapes")
    args = ap.parse_args()
    if not SEED_TASKS.is_file():
        raise SystemExit(f"error: {SEED_TASKS}: not found (the team's shared data beside the checkout)")
    if args.dir.exists():
        raise SystemExit(f"error: {args.dir}: exists; pick a new --dir")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    rows = seed_rows(args.records)
    chosen = set(args.only.split(",")) if args.only else None
    print("| shape | records | pool / test | selected | subset lines = input records, bytes | finetuned NLL | seconds |")
    print("|---|---|---|---|---|---|---|")
    failed = False
    for shape, (records, fields, layout) in shapes(rows).items():
        if chosen and shape not in chosen:
            continue
        root = args.dir / shape
        lines = build(root, records, fields, layout, as_list=shape == "alpaca_system")
        start = time.time()
        run = subprocess.run(["dvc", "repro"], cwd=root, capture_output=True, text=True)
        seconds = time.time() - start
        if run.returncode:
            errors = [ln for ln in (run.stdout + run.stderr).splitlines() if "error" in ln.lower()]
            print(f"| {shape} | {len(records)} | dvc repro failed: {errors[-1] if errors else run.returncode} |")
            failed = True
            continue
        subset = (root / "data/selected/train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        same = all(line in lines for line in subset)
        ingest = json.loads((root / "metrics/ingest.json").read_text())
        nll = json.loads((root / "metrics/eval.json").read_text())["finetuned"]["nll"]
        failed |= not same or not subset
        print(f"| {shape} | {len(records)} | {ingest['n_samples']} / {ingest['n_test']} | {len(subset)} | "
              f"{'yes' if same else 'NO'} ({sum(line in lines for line in subset)} of {len(subset)}) | "
              f"{nll:.3f} | {seconds:.0f} |")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
