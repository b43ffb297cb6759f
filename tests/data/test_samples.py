"""Tests for delift_dvc.samples: shapes, formats, ids, duplicates, errors, real data."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import pytest

from delift_dvc.errors import InputError
from delift_dvc.data.samples import (LoadReport, Sample, load_samples, read_samples, sample_id,
                                to_sample, write_samples)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def shared_data(sub: str) -> Path:
    """Path under ../shared/data; skip when absent, but fail when $CI is set."""
    path = SHARED_DATA / sub
    if not path.exists():
        reason = f"shared data {path} not found"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (required when CI is set)")
        pytest.skip(reason)
    return path


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def expected_id(prompt: str, response: str) -> str:
    canon = json.dumps({"prompt": prompt, "response": response}, sort_keys=True,
                       ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).digest()[:8].hex()


def assert_input_error(exc: pytest.ExceptionInfo, *parts: str) -> str:
    """The error is one line and contains every part."""
    msg = str(exc.value)
    assert "\n" not in msg and "\r" not in msg, msg
    for part in parts:
        assert part in msg, (part, msg)
    return msg


def read_error(path: Path, *parts: str, split: str = "train") -> str:
    """read_samples(path) must raise a one-line InputError containing every part."""
    with pytest.raises(InputError) as exc:
        read_samples(path, split=split)
    return assert_input_error(exc, *parts)


RECORDS = [
    {"instruction": "Add", "input": "1+1", "output": "2", "extra": 7},
    {"instruction": "Say hi", "output": "hi"},
    {"prompt": "Q?", "completion": "yes<|endoftext|>"},
    {"question": "2*3?", "answer": "6"},
    {"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"}]},
]
EXPECTED = [("Add\n\n1+1", "2"), ("Say hi", "hi"), ("Q?", "yes"), ("2*3?", "6"), ("Hello", "Hi!")]


# --------------------------------------------------------------------------- ids and shapes


def test_sample_id_is_sha256_prefix() -> None:
    for prompt, response in [("a", "b"), ("héllo ✓", "wörld\n"), ("", "x")]:
        sid = sample_id(prompt, response)
        assert sid == expected_id(prompt, response)
        assert len(sid) == 16 and all(c in "0123456789abcdef" for c in sid)
    assert sample_id("a", "b") != sample_id("b", "a")


@pytest.mark.parametrize(("record", "prompt", "response"), [
    ({"instruction": "I", "output": "O"}, "I", "O"),
    ({"instruction": "I", "input": "", "output": "O"}, "I", "O"),
    ({"instruction": "I", "input": None, "output": "O"}, "I", "O"),
    ({"instruction": "I", "input": "X", "output": "O"}, "I\n\nX", "O"),
    ({"prompt": " P ", "completion": " C\n"}, " P ", " C\n"),
    ({"prompt": "P", "completion": "C<|endoftext|><|endoftext|>"}, "P", "C<|endoftext|>"),
    ({"prompt": "P", "completion": "<|endoftext|>C"}, "P", "<|endoftext|>C"),
    ({"question": "Q", "answer": "A #### 4"}, "Q", "A #### 4"),
    ({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                   {"role": "assistant", "content": "A"}]}, "system: S\n\nuser: U", "A"),
    ({"messages": [{"role": "user", "content": "U1"}, {"role": "assistant", "content": "A1"},
                   {"role": "user", "content": "U2"}, {"role": "assistant", "content": "A2"},
                   {"role": "user", "content": "trailing"}]},
     "user: U1\n\nassistant: A1\n\nuser: U2", "A2"),
    ({"messages": [{"role": "user", "content": "U"}, {"role": "assistant", "content": "A"},
                   {"role": "user", "content": "ignored"}]}, "U", "A"),
    # a complete later shape wins over an incomplete earlier one
    ({"prompt": "P", "completion": "C", "output": "x"}, "P", "C"),
    # null columns (mixed-shape parquet / HF tables) count as absent
    ({"messages": None, "instruction": None, "output": None, "input": None,
      "prompt": None, "completion": None, "question": "Q", "answer": "A"}, "Q", "A"),
])
def test_shapes(record: dict, prompt: str, response: str) -> None:
    sample = to_sample(record, "f.jsonl:1")
    assert (sample.prompt, sample.response) == (prompt, response)
    assert sample.id == expected_id(prompt, response)
    assert sample.record is record and sample.source == "f.jsonl:1"


@pytest.mark.parametrize(("record", "reason"), [
    ([1, 2], "record is not a JSON object (got list)"),
    ("text", "record is not a JSON object (got str)"),
    ({"foo": 1}, "record has none of the accepted shapes (instruction/output, prompt/completion, "
                 "messages, conversations, question/answer)"),
    ({"conversations": "hi"}, "non-list 'conversations' (got str)"),
    ({"conversations": [{"from": "robot", "value": "x"}]}, "unknown 'from' value 'robot' in conversations[0]"),
    ({"conversations": [{"from": "human"}]}, "missing 'value' in conversations[0]"),
    ({"conversations": [{"from": "human", "value": "Q"}]}, "no 'assistant' turn in 'conversations'"),
    ({"prompt": [{"role": "user", "content": "Q"}], "completion": "A"},
     "'prompt' is a list of messages but 'completion' is not (got str)"),
    ({"prompt": [{"role": "user", "content": "Q"}], "completion": [{"role": "user", "content": "A"}]},
     "no 'assistant' turn in 'completion'"),
    ({"instruction": "I", "output": "O", "system": 3}, "non-string 'system' (got int)"),
    ({"instruction": "I"}, "missing 'output'"),
    ({"output": "O"}, "missing 'instruction'"),
    ({"prompt": "P"}, "missing 'completion'"),
    ({"question": "Q"}, "missing 'answer'"),
    ({"instruction": "I", "output": 3}, "non-string 'output' (got int)"),
    ({"instruction": "I", "output": None}, "non-string 'output' (got null)"),
    ({"instruction": "I", "input": 5, "output": "O"}, "non-string 'input' (got int)"),
    ({"instruction": "I", "output": ""}, "empty 'output'"),
    ({"prompt": "P", "completion": "<|endoftext|>"}, "empty 'completion'"),
    ({"prompt": "", "completion": "C"}, "empty 'prompt'"),
    ({"messages": "hi"}, "non-list 'messages' (got str)"),
    ({"prompt": None, "completion": None}, "record has none of the accepted shapes"),
    ({"messages": [{"role": "user", "content": "U"}]}, "no 'assistant' turn"),
    ({"messages": [{"role": "assistant", "content": "A"}]}, "no turn before"),
    ({"messages": [{"role": "user"}, {"role": "assistant", "content": "A"}]},
     "missing 'content' in messages[0]"),
    ({"messages": [{"role": "user", "content": 1}, {"role": "assistant", "content": "A"}]},
     "non-string 'content' in messages[0] (got int)"),
    ({"messages": ["x", {"role": "assistant", "content": "A"}]}, "messages[0] is not an object"),
    ({"messages": [{"role": "user", "content": "U"}, {"role": "assistant", "content": ""}]},
     "empty 'content' in messages[1]"),
    # whitespace only is empty, exactly as a missing text
    ({"instruction": "I", "output": "  \n\t"}, "empty 'output'"),
    ({"instruction": " \n", "output": "O"}, "empty 'instruction'"),
    ({"prompt": "\t", "completion": "C"}, "empty 'prompt'"),
    ({"prompt": "P", "completion": "  <|endoftext|>"}, "empty 'completion'"),
    ({"question": "Q", "answer": "\u3000 "}, "empty 'answer'"),
    ({"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "A"}]},
     "empty 'content' in messages[0]"),
    ({"messages": [{"role": "user", "content": "U"}, {"role": "assistant", "content": "\n"}]},
     "empty 'content' in messages[1]"),
])
def test_bad_records(record: object, reason: str) -> None:
    with pytest.raises(InputError) as exc:
        to_sample(record, "data.jsonl:7")  # type: ignore[arg-type]
    assert_input_error(exc, "data.jsonl:7: ", reason)


# --------------------------------------------------------------------------- formats


def check_report(report: LoadReport, n: int = len(EXPECTED)) -> None:
    assert [(s.prompt, s.response) for s in report.samples] == EXPECTED[:n]
    assert report.n_records == n and report.n_duplicates == 0
    assert all(isinstance(s, Sample) and s.id == expected_id(s.prompt, s.response)
               for s in report.samples)


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text("\n" + "".join(json.dumps(r) + "\n\n  \n" for r in RECORDS), encoding="utf-8")
    report = read_samples(path)
    check_report(report)
    assert report.paths == [str(path)]
    assert report.samples[0].source == f"{path}:2"
    assert report.samples[0].record == RECORDS[0]
    assert load_samples(str(path)) == report.samples
    assert read_samples(path) == report  # deterministic


def test_ndjson_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "data.NDJSON"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(RECORDS[0]).encode() + b"\r\n")
    check_report(read_samples(path), 1)


def test_json_list(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(RECORDS, indent=2), encoding="utf-8")
    report = read_samples(path)
    check_report(report)
    assert report.samples[2].source == f"{path}:item 3"


def test_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "data.parquet"
    rows = [{"instruction": "Add", "input": "1+1", "output": "2", "n": 1},
            {"instruction": "Say hi", "input": None, "output": "hi", "n": 2}]
    pq.write_table(pa.Table.from_pylist(rows), path)
    report = read_samples(path)
    check_report(report, 2)
    assert report.samples[1].source == f"{path}:row 2"
    assert report.samples[0].record == rows[0] and type(report.samples[0].record["n"]) is int


def test_parquet_mixed_shapes(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "mixed.parquet"
    keys = sorted({k for r in RECORDS for k in r})
    pq.write_table(pa.table({k: [r.get(k) for r in RECORDS] for k in keys}), path)
    report = read_samples(path)
    check_report(report)
    assert report.samples[3].record["prompt"] is None  # the record keeps its nulls


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["instruction", "input", "output"])
        writer.writerow(["Add", "1+1", "2"])
        writer.writerow(["Say hi", "", "hi"])
    report = read_samples(path)
    check_report(report, 2)
    assert report.samples[1].source == f"{path}:row 3"
    assert report.samples[1].record == {"instruction": "Say hi", "input": "", "output": "hi"}


def test_hf_dataset_and_dict(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([RECORDS[2], {"prompt": "P", "completion": "C"}] * 2)
    ds.save_to_disk(str(tmp_path / "single"))
    report = read_samples(tmp_path / "single")
    assert [(s.prompt, s.response) for s in report.samples] == [EXPECTED[2], ("P", "C")]
    assert report.n_records == 4 and report.n_duplicates == 2
    assert report.samples[1].source == f"{tmp_path / 'single'}:row 2"

    test = datasets.Dataset.from_list([{"prompt": "T", "completion": "t"}])
    datasets.DatasetDict({"train": ds, "test": test}).save_to_disk(str(tmp_path / "dd"))
    assert len(load_samples(tmp_path / "dd")) == 2
    assert [(s.prompt, s.response) for s in load_samples(tmp_path / "dd", split="test")] == [("T", "t")]
    read_error(tmp_path / "dd", "dd", "'validation'", "test, train", split="validation")


def test_directory_of_files_collapses_duplicates(tmp_path: Path) -> None:
    data = tmp_path / "pool"
    data.mkdir()
    write_jsonl(data / "b.jsonl", [RECORDS[1], RECORDS[2]])
    (data / "a.json").write_text(json.dumps([RECORDS[0], RECORDS[1]]), encoding="utf-8")
    # same sample as RECORDS[2] in another shape: same id, counted as duplicate
    write_jsonl(data / "c.jsonl", [{"question": "Q?", "answer": "yes"}, RECORDS[3]])
    write_jsonl(data / ".hidden.jsonl", [{"bad": 1}])
    (data / "notes.txt").write_text("ignored")
    (data / "sub").mkdir()
    write_jsonl(data / "sub" / "x.jsonl", [{"bad": 1}])
    report = read_samples(data)
    assert report.paths == [str(data / n) for n in ("a.json", "b.jsonl", "c.jsonl")]
    assert [(s.prompt, s.response) for s in report.samples] == EXPECTED[:4]
    assert report.n_records == 6 and report.n_duplicates == 2
    assert report.samples[2].source == f"{data / 'b.jsonl'}:2"
    assert len({s.id for s in report.samples}) == 4


def test_duplicates_in_one_file(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [RECORDS[0], RECORDS[1], dict(RECORDS[0], extra=9)])
    report = read_samples(path)
    assert len(report.samples) == 2 and report.n_records == 3 and report.n_duplicates == 1
    assert report.samples[0].record["extra"] == 7  # first occurrence kept


# --------------------------------------------------------------------------- bad inputs


def test_malformed_json_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n\n{not json\n", encoding="utf-8")
    read_error(path, f"{path}:3: malformed JSON (")


@pytest.mark.parametrize("line, column", [
    ('{"prompt": "a", "completion": "b"', 34),  # unclosed: the error is at the line's end
    ('{"prompt": "a" "completion": "b"}', 16),
    ('{"prompt": "a", "completion": "b"},', 35),
])
def test_malformed_json_column_is_the_lines_own(tmp_path: Path, line: str, column: int) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + line + "\r\n", encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_samples(path)
    assert f"{path}:2: malformed JSON (" in str(exc.value)
    assert str(exc.value).endswith(f"at column {column})"), str(exc.value)


@pytest.mark.parametrize(("line", "reason"), [
    ('{"instruction": "I"}', "missing 'output'"),
    ('{"instruction": "I", "output": ""}', "empty 'output'"),
    ('{"instruction": "I", "output": 1}', "non-string 'output' (got int)"),
    ("[1, 2]", "record is not a JSON object"),
    ('{"x": 1}', "record has none of the accepted shapes"),
])
def test_bad_record_in_file(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + line + "\n", encoding="utf-8")
    read_error(path, f"{path}:2: ", reason)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    read_error(path, f"{path}: no samples")


@pytest.mark.parametrize("name", ["bad.jsonl", "bad.json", "bad.csv"])
def test_bad_encoding(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    head = {"bad.csv": b"prompt,completion\nP,C\n",
            "bad.json": b"[\n" + json.dumps(RECORDS[0]).encode() + b",\n",
            "bad.jsonl": b"\n".join(json.dumps(r).encode() for r in RECORDS[:2]) + b"\n"}[name]
    path.write_bytes(head + b'\xff\xfe{"prompt": "x"}\n')
    read_error(path, name, ":3:", "not valid UTF-8")


def test_json_errors(tmp_path: Path) -> None:
    path = tmp_path / "obj.json"
    path.write_text(json.dumps(RECORDS[0]), encoding="utf-8")
    read_error(path, "obj.json: top-level JSON must be a list")

    path = tmp_path / "broken.json"
    path.write_text('[\n{"prompt": "P",\n "completion" "C"}\n]', encoding="utf-8")
    read_error(path, "broken.json:3: malformed JSON")

    path = tmp_path / "items.json"
    path.write_text(json.dumps([RECORDS[0], 5]), encoding="utf-8")
    read_error(path, "items.json:item 2: record is not a JSON object (got int)")

    path = tmp_path / "empty.json"
    path.write_text("[]", encoding="utf-8")
    read_error(path, "empty.json: no samples")


def test_deep_nesting_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 100_000 + "\n", encoding="utf-8")
    read_error(path, "deep.jsonl:1: malformed JSON")


def test_csv_errors(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("prompt,completion\nP,C\nQ,D,extra\n", encoding="utf-8")
    read_error(path, "d.csv:row 3: more cells")

    path = tmp_path / "e.csv"
    path.write_text("instruction,output\nI,\n", encoding="utf-8")
    read_error(path, "e.csv:row 2: empty 'output'")

    path = tmp_path / "header.csv"
    path.write_text("prompt,completion\n", encoding="utf-8")
    read_error(path, "header.csv: no samples")


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not a parquet file at all")
    read_error(path, "bad.parquet: cannot read parquet")


def test_path_errors(tmp_path: Path) -> None:
    read_error(tmp_path / "missing.jsonl", "missing.jsonl: no such file or directory")

    path = tmp_path / "data.txt"
    path.write_text("x")
    read_error(path, "data.txt: unsupported file type '.txt'", ".jsonl", ".parquet", ".csv")

    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    (empty_dir / "readme.md").write_text("x")
    read_error(empty_dir, "nothing: no data files")

    broken_hf = tmp_path / "hf"
    broken_hf.mkdir()
    (broken_hf / "dataset_info.json").write_text("{")
    read_error(broken_hf, "hf: cannot load Hugging Face dataset")


def test_error_in_second_file_of_directory(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", RECORDS[:2])
    write_jsonl(tmp_path / "b.jsonl", [RECORDS[2], {"prompt": "P"}])
    read_error(tmp_path, "b.jsonl:2: missing 'completion'")


# --------------------------------------------------------------------------- writing


def test_write_samples_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "src.json"
    records = RECORDS + [{"prompt": "ünï", "completion": "✓<|endoftext|>", "meta": {"k": [1]}}]
    src.write_text(json.dumps(records), encoding="utf-8")
    samples = load_samples(src)
    out = tmp_path / "deep" / "dir" / "subset.jsonl"
    write_samples(samples[::-1], out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines == [json.dumps(r, ensure_ascii=False) for r in records[::-1]]
    assert "ünï" in lines[0]
    assert load_samples(out) == [
        Sample(s.id, s.prompt, s.response, s.record, f"{out}:{i}")
        for i, s in enumerate(samples[::-1], 1)
    ]
    write_samples(samples[:1], out)  # overwrite in place
    assert out.read_text(encoding="utf-8").count("\n") == 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["subset.jsonl"]  # no temp left


def test_write_samples_unserialisable_record(tmp_path: Path) -> None:
    sample = Sample("0" * 16, "p", "r", {"x": object()}, "in.parquet:row 4")
    with pytest.raises(InputError) as exc:
        write_samples([sample], tmp_path / "out.jsonl")
    assert_input_error(exc, "in.parquet:row 4: record is not JSON-serialisable")
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- real data

P3_FILES = ["dream_baseline.jsonl", "sciq_Direct_Question.jsonl", "gigaword_make_a_title.jsonl"]


def test_real_p3_files() -> None:
    p3 = shared_data("p3")
    for name in P3_FILES:
        report = read_samples(p3 / name)
        assert report.n_records > 0 and len(report.samples) > 0
        assert report.n_records == len(report.samples) + report.n_duplicates
        assert not any("<|endoftext|>" in s.response for s in report.samples)
        assert all(s.response and s.prompt for s in report.samples)


def test_real_p3_mixture_as_directory(tmp_path: Path) -> None:
    p3 = shared_data("p3")
    for name in P3_FILES:  # symlinks: the directory reader follows them
        (tmp_path / name).symlink_to(p3 / name)
    report = read_samples(tmp_path)
    singles = [read_samples(p3 / n) for n in P3_FILES]
    assert report.n_records == sum(r.n_records for r in singles)
    assert len(report.samples) == len({s.id for r in singles for s in r.samples})


def test_real_p3_trec_has_empty_completions() -> None:
    """The trec template's completions are all bare '<|endoftext|>': rejected, not loaded."""
    path = shared_data("p3") / "trec_what_category_best_describe.jsonl"
    read_error(path, f"{path}:1: empty 'completion'")


def test_real_gsm8k_test() -> None:
    report = read_samples(shared_data("gsm8k") / "test.jsonl")
    assert report.n_records == 1319 and len(report.samples) > 0
    assert all("####" in s.response for s in report.samples)
    assert not any("<|endoftext|>" in s.response for s in report.samples)
