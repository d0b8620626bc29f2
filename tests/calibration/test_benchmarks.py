"""`calibrate data`: the benchmarks' original files become fitting and held-out questions.

Fast tests read tests/calibration/benchmark_sources/, small files written for these tests in
each source repository's layout and format (invented text, no benchmark text). The slow test
converts the real source files (from git mirrors of the four repositories, at the commits
../shared/*/SOURCES.md names) and checks every ../shared item comes out identical.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from calibration.labelling.benchmarks import BENCHMARKS, read_benchmark
from calibration.labelling.items import validate_item
from calibration.labelling.splits import split_items
from tests.conftest import ROOT, SHARED, read_lines

FIXTURES = Path(__file__).parent / "benchmark_sources"
MIRRORS = Path(os.environ.get("CALIBRATED_CHAT_SOURCE_MIRRORS", "/work/.mirror"))


def converted() -> dict[str, dict]:
    return {item["id"]: item for b in BENCHMARKS for item in read_benchmark(b, FIXTURES)}


def calibrate(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "calibration", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=cwd, timeout=120)


@pytest.mark.parametrize("item_id, expected", [
    ("gsm8k_train-3", {"answer": "5015", "answer_type": "number", "domain": "math",
                       "question": "Pip keeps 5 jars with 1,003 beads each. How many beads?",
                       "source": "openai/grade-school-math/grade_school_math/data/train.jsonl", "license": "MIT"}),
    ("gsm8k-0", {"answer": "-2", "answer_type": "number"}),
    ("nq_open_dev-2", {"answer": "the Mocka", "aliases": ["Mocka River"], "answer_type": "text",
                       "license": "CC BY-SA 3.0"}),
    ("mmlu-astronomy-0", {"answer": "D", "choices": ["Zorb I", "Zorb II", "Zorb III", "Zorb IV"],
                          "question": "Which planet in the Zorb system is coldest?\nA) Zorb I\nB) Zorb II\n"
                                      "C) Zorb III\nD) Zorb IV"}),
    ("mmlu-astronomy-1", {"question": "What does a lumen-moss need most?\nI. Light\nII. Salt\nA) I only\n"
                                      "B) II only\nC) Both\nD) Neither"}),
    ("mmlu_val-high_school_physics-0", {"answer": "B", "domain": "science",
                                        "source": "stanford-cs336/assignment5-alignment/data/mmlu/val/"
                                                  "high_school_physics_val.csv"}),
    ("bbh-logical_deduction_three_objects-1", {"answer": "C", "answer_type": "choice",
                                               "choices": ["Ash is rightmost", "Bo is rightmost", "Cy is rightmost"]}),
    ("bbh-navigate-1", {"answer": "No", "answer_type": "boolean"}),
    ("bbh-sports_understanding-0", {"answer": "no", "answer_type": "boolean"}),
    ("bbh-object_counting-0", {"answer": "3", "answer_type": "number"}),
    ("bbh-boolean_expressions-0", {"answer": "False", "answer_type": "boolean",
                                   "source": "suzgunmirac/BIG-Bench-Hard/bbh/boolean_expressions.json"}),
])
def test_each_format_converts_to_a_traceable_item(item_id, expected):
    item = converted()[item_id]
    assert {k: item[k] for k in expected} == expected
    validate_item(item)


def test_bbh_options_are_rewritten_as_letter_lines():
    question = converted()["bbh-logical_deduction_three_objects-0"]["question"]
    assert question.endswith("Options:\nA) Ash is leftmost\nB) Bo is leftmost\nC) Cy is leftmost")


def test_cleaning_drops_conflicting_copies_and_repeated_stems():
    split = split_items(converted().values(), seed=1, heldout=1000)
    kept = {item["id"] for item in split.heldout}
    assert {"bbh-causal_judgement-0", "bbh-causal_judgement-1", "mmlu-astronomy-2"}.isdisjoint(kept)
    assert {"bbh-causal_judgement-2", "mmlu-astronomy-0"} <= kept
    assert split.dropped == 3


def test_split_is_disjoint_deterministic_and_keeps_scenarios_together(tmp_path):
    runs = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        result = calibrate("data", "--sources", FIXTURES, "--out", tmp_path / name, "--seed", seed, "--heldout", 3)
        assert result.returncode == 0, result.stderr
        runs[name] = {part: {d: [i["id"] for i in read_lines(tmp_path / name / part / f"{d}.jsonl")]
                             for d in ("math", "factual", "science", "reasoning")} for part in ("fitting", "heldout")}
    assert runs["a"] == runs["b"]
    assert runs["a"]["heldout"]["math"] != runs["c"]["heldout"]["math"]
    for domain in ("math", "factual", "science", "reasoning"):
        fitting, heldout = runs["a"]["fitting"][domain], runs["a"]["heldout"][domain]
        assert not set(fitting) & set(heldout) and len(heldout) == 3
    scenario = {"bbh-logical_deduction_three_objects-0", "bbh-logical_deduction_three_objects-1"}
    assert any(scenario <= set(runs["a"][part]["reasoning"]) for part in ("fitting", "heldout"))
    assert len(runs["a"]["fitting"]["math"]) + len(runs["a"]["heldout"]["math"]) == 7


@pytest.mark.parametrize("setup, message", [
    ("missing", "no such folder"),
    ("empty", "git clone https://github.com/openai/grade-school-math"),
    ("broken-gsm8k", "train.jsonl:2: expected {'question', 'answer'} with '#### <answer>'"),
    ("broken-mmlu", "astronomy_test.csv: row 1: expected 6 columns"),
])
def test_bad_sources_fail_with_one_line_and_write_nothing(tmp_path, setup, message):
    sources = tmp_path / "sources"
    if setup != "missing":
        sources.mkdir()
    if setup.startswith("broken"):
        shutil.copytree(FIXTURES, sources, dirs_exist_ok=True)
        if setup == "broken-gsm8k":
            path = sources / "openai/grade-school-math/grade_school_math/data/train.jsonl"
            path.write_text(path.read_text().splitlines()[0] + '\n{"question": "q", "answer": "no marker"}\n')
        else:
            (sources / "stanford-cs336/assignment5-alignment/data/mmlu/test/astronomy_test.csv").write_text("a,b\n")
    result = calibrate("data", "--sources", sources, "--out", tmp_path / "out")
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "out").exists()


def _extract_mirrors(into: Path) -> None:
    """The files `calibrate data` reads, from bare git mirrors named <owner>+<name>/repo."""
    for benchmark in BENCHMARKS:
        git = MIRRORS / benchmark.repository.replace("/", "+") / "repo"
        for source in benchmark.files:
            inside = source.path[len(benchmark.repository) + 1:]
            text = subprocess.run(["git", "--git-dir", str(git), "show", f"HEAD:{inside}"], check=True,
                                  capture_output=True).stdout
            (into / source.path).parent.mkdir(parents=True, exist_ok=True)
            (into / source.path).write_bytes(text)


@pytest.mark.slow
@pytest.mark.skipif(not (MIRRORS / "openai+grade-school-math").is_dir() or not SHARED.is_dir(),
                    reason="needs git mirrors of the four source repositories and ../shared")
def test_real_source_files_give_the_shared_items(tmp_path):
    _extract_mirrors(tmp_path / "src")
    result = calibrate("data", "--sources", tmp_path / "src", "--out", tmp_path / "q")
    assert result.returncode == 0, result.stderr
    every = {item["id"]: item for b in BENCHMARKS for item in read_benchmark(b, tmp_path / "src")}
    shared = [item for folder in ("data", "calib") for path in sorted((SHARED / folder).glob("*.jsonl"))
              for item in read_lines(path)]
    assert len(shared) == 5540
    assert [item["id"] for item in shared if every.get(item["id"]) != item] == []
    written = {part: [json.loads(line)["id"] for path in (tmp_path / "q" / part).glob("*.jsonl")
                      for line in path.open()] for part in ("fitting", "heldout")}
    assert not set(written["fitting"]) & set(written["heldout"]) and len(written["heldout"]) == 800
    assert set(written["fitting"]) | set(written["heldout"]) <= set(every)
