"""Rows of the quality benchmarks' realistic pools (`make_claim_project.py --task pool`).

Pure functions of source rows and arguments, each seeded with its own `random.Random`, no global
state. A source is one template's rows in file order, None where the completion is empty, so a
row's position is its row number. Every record is {"prompt", "completion", "template", "defect",
"row"}: `template` is the template's name (the sample's group), `defect` one of DEFECTS and `row`
the row number in the template's file. Kinds:

- p0, clean and balanced: `per_template` rows of each template;
- p1, imbalanced: the template at rank r of a seeded shuffle gets max(3, round(head / r)) rows;
- p2, redundant: p0 plus sibling templates' rows at the row numbers of pool rows (the same
  example in another wording, "duplicate") and near-duplicates of 15 % of the rows (a small
  surface change of the prompt, the same completion, "near_duplicate");
- p3, noisy: p0 with 25 % of the rows of 6 templates wrong: another label of the template
  ("flipped") or, in free-text templates, the responses permuted among those rows ("swapped");
- realistic: p1's sizes, then p3's noise, then p2's duplicates and near-duplicates (of clean rows).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence

EOT = "<|endoftext|>"
TEST_START = 150  # pool rows are rows < TEST_START of their file, test rows rows >= TEST_START
DEFECTS = ("clean", "duplicate", "near_duplicate", "swapped", "flipped")
KINDS = ("p0", "p1", "p2", "p3", "realistic")
MAX_LABELS = 16  # a template with at most this many distinct normalised completions is a label format
MIN_ROWS = 3  # the smallest Zipf size

Rows = Sequence[dict | None]


def normalise(completion: str) -> str:
    """A completion as a label: without the end marker and outer whitespace, lower case, no final "."."""
    return completion.removesuffix(EOT).strip().lower().rstrip(".")


def content_key(row: Mapping) -> tuple[str, str]:
    """What the tool's sample id hashes: the prompt and the completion without its end marker."""
    return row["prompt"], row["completion"].removesuffix(EOT)


def record(template: str, row: int, source: Mapping, defect: str = "clean") -> dict:
    """The record of row `row` of `template` (its prompt and completion)."""
    return {"prompt": source["prompt"], "completion": source["completion"], "template": template,
            "defect": defect, "row": row}


def candidates(rows: Rows, start: int = 0, stop: int | None = None) -> list[int]:
    """Row numbers in [start, stop) with a non-empty completion, without exact repeats of an
    earlier row of that range (the tool would merge them: its ids are content hashes)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for i in range(start, len(rows) if stop is None else min(stop, len(rows))):
        row = rows[i]
        if row is None or content_key(row) in seen:
            continue
        seen.add(content_key(row))
        out.append(i)
    return out


def zipf_sizes(templates: Sequence[str], head: int, seed: int) -> dict[str, int]:
    """Template -> max(MIN_ROWS, round(head / r)), r the 1-based rank of the template in
    `random.Random(seed).shuffle` of `templates` (in the order of `templates`)."""
    order = list(templates)
    random.Random(seed).shuffle(order)
    rank = {name: r for r, name in enumerate(order, start=1)}
    return {name: max(MIN_ROWS, round(head / rank[name])) for name in templates}


def base_rows(sources: Mapping[str, Rows], sizes: Mapping[str, int], seed: int) -> list[dict]:
    """A seeded sample of sizes[t] candidate rows < TEST_START of each template t, by row number."""
    rng = random.Random(f"rows:{seed}")
    out = []
    for name, size in sizes.items():
        pool = candidates(sources[name], 0, TEST_START)
        if len(pool) < size:
            raise SystemExit(f"{name}: {len(pool)} usable rows before row {TEST_START}, {size} asked for")
        out += [record(name, i, sources[name][i]) for i in sorted(rng.sample(pool, size))]
    return out


def label_set(rows: Rows) -> dict[str, str] | None:
    """Normalised label -> its first completion, over the candidate rows < TEST_START; None for a
    free-text template (more than MAX_LABELS distinct labels)."""
    labels: dict[str, str] = {}
    for i in candidates(rows, 0, TEST_START):
        labels.setdefault(normalise(rows[i]["completion"]), rows[i]["completion"])
    return None if len(labels) > MAX_LABELS else labels


def _flip(out: list[dict], chosen: list[int], labels: Mapping[str, str], rng: random.Random) -> None:
    """Give each chosen record another label of the template (one no pool record has with its prompt)."""
    taken = {content_key(r) for r in out}
    for k in chosen:
        rec = out[k]
        own = normalise(rec["completion"])
        options = [lab for lab in sorted(labels)
                   if lab != own and (rec["prompt"], labels[lab].removesuffix(EOT)) not in taken]
        if not options:
            raise SystemExit(f"{rec['template']} row {rec['row']}: no other label to flip to")
        out[k] = {**rec, "completion": labels[rng.choice(options)], "defect": "flipped"}
        taken.add(content_key(out[k]))


def _fits(receiver: Mapping, donor: Mapping) -> bool:
    """Whether `donor`'s response is wrong for `receiver`: another prompt, another response."""
    return (donor["prompt"] != receiver["prompt"]
            and normalise(donor["completion"]) != normalise(receiver["completion"]))


def _swap(out: list[dict], chosen: list[int], members: list[int], rng: random.Random) -> None:
    """Permute the chosen records' responses so that none keeps its own (a derangement); a single
    chosen record takes the response of another record of its template."""
    receivers = [out[k] for k in chosen]
    if len(chosen) == 1:
        donors = [out[j] for j in members if j != chosen[0] and _fits(receivers[0], out[j])]
        picked = [rng.choice(donors)]
    else:
        for _ in range(10_000):
            picked = rng.sample(receivers, len(receivers))
            if all(_fits(r, d) for r, d in zip(receivers, picked, strict=True)):
                break
        else:
            raise SystemExit(f"{receivers[0]['template']}: no derangement of {len(chosen)} responses")
    for k, rec, donor in zip(chosen, receivers, picked, strict=True):
        out[k] = {**rec, "completion": donor["completion"], "defect": "swapped"}


def add_noise(pool: Sequence[dict], sources: Mapping[str, Rows], templates: Sequence[str], seed: int,
              n_templates: int = 6, fraction: float = 0.25) -> list[dict]:
    """`pool` with round(fraction * n) of the n clean records of each of `n_templates` seeded
    templates made wrong: "flipped" (label formats) or "swapped" (free text). Templates with a
    single label (nothing to flip to) are never chosen."""
    rng = random.Random(f"noise:{seed}")
    labels = {name: label_set(sources[name]) for name in templates}
    eligible = [name for name in templates if labels[name] is None or len(labels[name]) > 1]
    if len(eligible) < n_templates:
        raise SystemExit(f"only {len(eligible)} templates can be made noisy, {n_templates} asked for")
    out = [dict(r) for r in pool]
    for name in sorted(rng.sample(eligible, n_templates), key=list(templates).index):
        members = [k for k, r in enumerate(out) if r["template"] == name and r["defect"] == "clean"]
        count = round(fraction * len(members))
        if labels[name] is None:  # rows of distinct prompts, so that their responses can be permuted
            distinct = list({out[k]["prompt"]: k for k in reversed(members)}.values())[::-1]
            chosen = sorted(rng.sample(distinct if len(distinct) >= count else members, count))
        else:
            chosen = sorted(rng.sample(members, count))
        if not chosen:
            continue
        if labels[name] is None:
            _swap(out, chosen, members, rng)
        else:
            _flip(out, chosen, labels[name], rng)
    return out


def sibling_rows(pool: Sequence[dict], sources: Mapping[str, Rows], siblings: Mapping[str, Sequence[str]],
                 seed: int, fraction: float = 0.25) -> list[dict]:
    """For each sibling s of a template t (`siblings`: t -> its siblings), s's rows at a seeded
    max(1, round(fraction * n)) of the row numbers of t's n clean pool records ("duplicate")."""
    rng = random.Random(f"siblings:{seed}")
    taken = {content_key(r) for r in pool}
    out = []
    for base, names in siblings.items():
        at = sorted(r["row"] for r in pool if r["template"] == base and r["defect"] == "clean")
        if not at:
            continue
        for name in names:
            rows = sources[name]
            usable = [i for i in at if i < len(rows) and rows[i] is not None and content_key(rows[i]) not in taken]
            for i in sorted(rng.sample(usable, min(len(usable), max(1, round(fraction * len(at)))))):
                out.append(record(name, i, rows[i], "duplicate"))
                taken.add(content_key(rows[i]))
    return out


def _toggle_case(text: str, rng: random.Random) -> str | None:
    """One word (3+ letters) with its case changed: "word" -> "Word", "Word"/"WORD" -> "word"."""
    words = list(re.finditer(r"[A-Za-z]{3,}", text))
    if not words:
        return None
    m = rng.choice(words)
    word = m.group()
    new = word.capitalize() if word == word.lower() else word.lower()
    return text[: m.start()] + new + text[m.end():]


def _double_space(text: str, rng: random.Random) -> str | None:
    """One space doubled."""
    spaces = [i for i, c in enumerate(text) if c == " "]
    if not spaces:
        return None
    i = rng.choice(spaces)
    return text[:i] + " " + text[i:]


def _drop_final_punctuation(text: str, rng: random.Random) -> str | None:
    """The last punctuation mark before the trailing whitespace dropped."""
    m = re.search(r"[.?!:;,](\s*)$", text)
    return None if m is None else text[: m.start()] + m.group(1)


def perturb(text: str, rng: random.Random) -> str:
    """A small seeded surface change of `text`, never `text` itself."""
    edits = [_toggle_case, _double_space, _drop_final_punctuation]
    for edit in rng.sample(edits, len(edits)):
        new = edit(text, rng)
        if new is not None and new != text:
            return new
    return text + " "


def near_duplicates(pool: Sequence[dict], seed: int, fraction: float = 0.15) -> list[dict]:
    """Copies of a seeded round(fraction * len(pool)) of the clean records with a perturbed prompt
    and the same completion ("near_duplicate")."""
    rng = random.Random(f"near:{seed}")
    clean = [r for r in pool if r["defect"] == "clean"]
    chosen = sorted(rng.sample(range(len(clean)), min(len(clean), round(fraction * len(pool)))))
    return [{**clean[k], "prompt": perturb(clean[k]["prompt"], rng), "defect": "near_duplicate"} for k in chosen]


def build_pool(kind: str, sources: Mapping[str, Rows], templates: Sequence[str],
               siblings: Mapping[str, Sequence[str]], *, per_template: int, head: int, seed: int,
               noise_templates: int = 6, noise_fraction: float = 0.25, sibling_fraction: float = 0.25,
               near_fraction: float = 0.15) -> list[dict]:
    """The pool of `kind` (KINDS) from the `templates`' rows (and their `siblings`' for p2, realistic)."""
    if kind not in KINDS:
        raise SystemExit(f"pool kind {kind!r}: one of {', '.join(KINDS)}")
    zipf = kind in ("p1", "realistic")
    sizes = zipf_sizes(templates, head, seed) if zipf else dict.fromkeys(templates, per_template)
    pool = base_rows(sources, sizes, seed)
    if kind in ("p3", "realistic"):
        pool = add_noise(pool, sources, templates, seed, noise_templates, noise_fraction)
    if kind in ("p2", "realistic"):
        pool = (pool + sibling_rows(pool, sources, siblings, seed, sibling_fraction)
                + near_duplicates(pool, seed, near_fraction))
    check_unique(pool)
    return pool


def held_out_rows(sources: Mapping[str, Rows], templates: Sequence[str], per_template: int,
              pool: Sequence[dict]) -> list[dict]:
    """The first `per_template` candidate rows from TEST_START on of each template whose prompt
    is no pool prompt ("clean")."""
    prompts = {r["prompt"] for r in pool}
    out = []
    for name in templates:
        rows = sources[name]
        taken = [i for i in candidates(rows, TEST_START) if rows[i]["prompt"] not in prompts][:per_template]
        if len(taken) < per_template:
            raise SystemExit(f"{name}: {len(taken)} usable test rows from row {TEST_START}, {per_template} asked for")
        out += [record(name, i, rows[i]) for i in taken]
    return out


def check_unique(pool: Sequence[dict]) -> None:
    """SystemExit unless every pool record is distinct to the tool (prompt and completion)."""
    seen: dict[tuple[str, str], dict] = {}
    for rec in pool:
        other = seen.setdefault(content_key(rec), rec)
        if other is not rec:
            raise SystemExit(f"pool: {rec['template']} row {rec['row']} ({rec['defect']}) repeats "
                             f"{other['template']} row {other['row']} ({other['defect']})")


def check_disjoint(pool: Sequence[dict], test: Sequence[dict], dataset: Mapping[str, str]) -> None:
    """SystemExit if a test prompt is a pool prompt, or a test row's number is one a pool record of
    the same data set uses (`dataset`: template -> its data set; absent: the template itself)."""
    prompts = {r["prompt"] for r in pool}
    used = {(dataset.get(r["template"], r["template"]), r["row"]) for r in pool}
    for rec in test:
        if rec["prompt"] in prompts:
            raise SystemExit(f"test and pool share a prompt: {rec['template']} row {rec['row']}")
        key = (dataset.get(rec["template"], rec["template"]), rec["row"])
        if key in used:
            raise SystemExit(f"test row {rec['row']} of {rec['template']}: the pool has row {rec['row']} "
                             f"of data set {key[0]} (the same example)")


def manifest(kind: str, seed: int, arguments: Mapping, pool: Sequence[dict], test: Sequence[dict]) -> dict:
    """Per template its pool counts by defect (and its total and test count), with the kind, seed, arguments."""
    counts: dict[str, Counter] = {}
    for rec in pool:
        counts.setdefault(rec["template"], Counter())[rec["defect"]] += 1
    tests = Counter(r["template"] for r in test)
    templates = {name: {"pool": sum(c.values()), **{d: c[d] for d in DEFECTS if c[d]}, "test": tests[name]}
                 for name, c in counts.items()}
    totals = Counter(r["defect"] for r in pool)
    return {"kind": kind, "seed": seed, "arguments": dict(arguments), "pool": len(pool), "test": len(test),
            "defects": {d: totals[d] for d in DEFECTS}, "templates": templates}


def project_samples(project, data: str, needs: Sequence[str], field: str, after: str) -> list:
    """The samples of a `--task pool` project's `data` file (e.g. data/prepared/train.jsonl),
    after checking that `data` and every path of `needs` (relative to the project) exist and that
    every record carries `field`; SystemExit with a one-line reason otherwise. `after`: the
    command that writes them (said in the message)."""
    from pathlib import Path

    from delift_dvc.data.samples import load_samples

    project = Path(project)
    if not all((project / p).is_file() for p in (data, *needs)):
        raise SystemExit(f"{project}: needs {' and '.join((data, *needs))} (a --task pool project after `{after}`)")
    samples = load_samples(project / data)
    if any(field not in s.record for s in samples):
        raise SystemExit(f"{project / data}: records without a `{field}` field (not a --task pool project)")
    return samples
