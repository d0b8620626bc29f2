"""The four public benchmarks, read from their source repositories' own files into data items.

A sources folder holds the repositories in their own layout under ``<owner>/<name>/``, so an
item's ``source`` is the file's path inside that folder (as in ``../shared/*/SOURCES.md``):

    openai/grade-school-math/grade_school_math/data/{train,test}.jsonl         GSM8K, `#### answer`
    google-research-datasets/natural-questions/nq_open/NQ-open.dev.jsonl       NQ-open, answer lists
    stanford-cs336/assignment5-alignment/data/mmlu/{dev,val,test}/<subject>_<split>.csv   MMLU rows
    suzgunmirac/BIG-Bench-Hard/bbh/<task>.json                                 BIG-Bench-Hard tasks

Ids are ``<source>-<n>`` with ``n`` the 0-based line, row or example index in the file
(``gsm8k_train-3729``, ``nq_open_dev-531``, ``mmlu-astronomy-104``, ``bbh-navigate-78``), so every
item traces back to its source line and matches the ids of ``../shared``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant.core.errors import DataError

__all__ = ["BBH_TASKS", "BENCHMARKS", "MMLU_SUBJECTS", "Benchmark", "read_benchmark"]

MMLU_SUBJECTS = ("astronomy", "college_biology", "college_chemistry", "college_physics", "conceptual_physics",
                 "high_school_biology", "high_school_chemistry", "high_school_physics")
# The BIG-Bench-Hard tasks whose targets the grader reads: a letter, yes/no/true/false or a number.
BBH_TASKS = ("date_understanding", "logical_deduction_three_objects", "boolean_expressions", "navigate",
             "causal_judgement", "web_of_lies", "sports_understanding", "object_counting",
             "temporal_sequences", "tracking_shuffled_objects_three_objects")
_GSM8K = "openai/grade-school-math"
_NQ = "google-research-datasets/natural-questions"
_MMLU = "stanford-cs336/assignment5-alignment"
_BBH = "suzgunmirac/BIG-Bench-Hard"
_MMLU_PREFIX = {"test": "mmlu", "val": "mmlu_val", "dev": "mmlu_dev"}
_BOOLEANS = {"true", "false", "yes", "no"}
_OPTION = re.compile(r"^\(([A-Z])\) (.*)$")


@dataclass(frozen=True)
class SourceFile:
    """One file of a source repository and how its items are named."""

    path: str  # inside the sources folder: <owner>/<name>/<path in the repository>
    prefix: str  # the id before `-<n>`
    license: str  # short form, copied onto every item


@dataclass(frozen=True)
class Benchmark:
    """One benchmark: the domain it fills and its files, in the order their items are pooled."""

    name: str  # as the CLI prints it
    domain: str  # the data items' domain
    repository: str  # <owner>/<name>, where to get the files
    files: tuple[SourceFile, ...]


BENCHMARKS = (
    Benchmark("GSM8K", "math", _GSM8K, tuple(
        SourceFile(f"{_GSM8K}/grade_school_math/data/{split}.jsonl", prefix, "MIT")
        for split, prefix in (("train", "gsm8k_train"), ("test", "gsm8k")))),
    Benchmark("NQ-open", "factual", _NQ, (
        SourceFile(f"{_NQ}/nq_open/NQ-open.dev.jsonl", "nq_open_dev", "CC BY-SA 3.0"),)),
    Benchmark("MMLU", "science", _MMLU, tuple(
        SourceFile(f"{_MMLU}/data/mmlu/{split}/{subject}_{split}.csv", f"{prefix}-{subject}", "MIT")
        for split, prefix in _MMLU_PREFIX.items() for subject in MMLU_SUBJECTS)),
    Benchmark("BIG-Bench-Hard", "reasoning", _BBH, tuple(
        SourceFile(f"{_BBH}/bbh/{task}.json", f"bbh-{task}", "MIT") for task in BBH_TASKS)),
)


def _item(source: SourceFile, n: int, domain: str, question: str, answer: str, answer_type: str,
          aliases: list[str] | None = None, choices: list[str] | None = None) -> dict:
    item = {"id": f"{source.prefix}-{n}", "domain": domain, "question": question, "answer": answer,
            "aliases": aliases or [], "answer_type": answer_type}
    if choices is not None:
        item["choices"] = choices
    return item | {"source": source.path, "license": source.license}


def _json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f):
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{n + 1}: not a JSON line ({exc.msg}); is this the original file?") from exc


def _gsm8k(path: Path, source: SourceFile) -> Iterator[dict]:
    for n, row in _json_lines(path):
        solution = row.get("answer", "") if isinstance(row, dict) else ""
        if "####" not in solution or not isinstance(row.get("question"), str):
            raise DataError(f"{path}:{n + 1}: expected {{'question', 'answer'}} with '#### <answer>' at the end")
        answer = solution.rsplit("####", 1)[1].strip().replace(",", "")
        yield _item(source, n, "math", row["question"].strip(), answer, "number")


def _nq_open(path: Path, source: SourceFile) -> Iterator[dict]:
    for n, row in _json_lines(path):
        answers = row.get("answer") if isinstance(row, dict) else None
        if not isinstance(row.get("question"), str) or not isinstance(answers, list) or not answers:
            raise DataError(f"{path}:{n + 1}: expected {{'question', 'answer': [at least one string]}}")
        yield _item(source, n, "factual", row["question"], answers[0], "text", aliases=answers[1:])


def _mmlu(path: Path, source: SourceFile) -> Iterator[dict]:
    with path.open(encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f)):
            if len(row) != 6 or row[5] not in "ABCD" or len(row[5]) != 1:
                raise DataError(f"{path}: row {n + 1}: expected 6 columns (question, A, B, C, D, answer letter)")
            stem, choices = row[0].replace("\r\n", "\n").strip(), [text.strip() for text in row[1:5]]
            options = "\n".join(f"{letter}) {text}" for letter, text in zip("ABCD", choices))
            yield _item(source, n, "science", f"{stem}\n{options}", row[5], "choice", choices=choices)


def _bbh_item(source: SourceFile, n: int, text: str, target: str) -> dict:
    lines = text.split("\n")
    options = [m for m in map(_OPTION.match, lines) if m]
    if target.startswith("(") and options:
        question = "\n".join(f"{m[1]}) {m[2]}" if (m := _OPTION.match(line)) else line for line in lines)
        return _item(source, n, "reasoning", question, target.strip("()"), "choice",
                     choices=[m[2] for m in options])
    if target.lower() in _BOOLEANS:
        return _item(source, n, "reasoning", text, target, "boolean")
    if re.fullmatch(r"-?\d+", target):
        return _item(source, n, "reasoning", text, target, "number")
    raise DataError(f"{source.path}: example {n}: target {target!r} is no letter, yes/no/true/false or number; "
                    f"only these tasks can be graded: {', '.join(BBH_TASKS)}")


def _bbh(path: Path, source: SourceFile) -> Iterator[dict]:
    try:
        examples = json.loads(path.read_text(encoding="utf-8"))["examples"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: expected the task JSON {{'examples': [{{'input', 'target'}}, …]}} ({exc})") from exc
    for n, example in enumerate(examples):
        yield _bbh_item(source, n, example["input"], example["target"])


_READERS = {"math": _gsm8k, "factual": _nq_open, "science": _mmlu, "reasoning": _bbh}


def read_benchmark(benchmark: Benchmark, sources: Path) -> Iterator[dict]:
    """Every item of `benchmark` whose file is under `sources`, in file order; missing files are skipped."""
    reader = _READERS[benchmark.domain]
    for source in benchmark.files:
        path = sources / source.path
        if path.is_file():
            yield from reader(path, source)
