"""Tests for `calibrate compare-models` (calibration.measuring.models and calibration.cli.models).

Fast tests compare synthetic runs: the same run twice, a run that is right more often, confidences that
stop ranking, and every input the command must refuse. The slow test collects two real pairs with the
default model, resumes without loading it, and writes the report.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from assistant.core.errors import DataError
from assistant.core.jsonl import write_jsonl
from calibration.fitting.fit import as_records
from calibration.measuring.models import COLUMN_GROUPS, METRICS, Run, compare_models, format_markdown
from tests.calibration.test_report import overconfident_records


@pytest.fixture(scope="module")
def first():
    return as_records(overconfident_records(n_per_domain=120, seed=3, prompt="reasoning"))


def test_the_same_answers_twice_differ_by_nothing(first):
    result = compare_models([Run("a", first), Run("b", first)], resamples=100)
    assert list(result["domains"]) == ["math", "factual", "science", "reasoning"] and result["overall"]["n"] == 480
    for section in [*result["domains"].values(), result["overall"]]:
        for name in METRICS:
            cell = section["pairs"][1][name]
            assert cell["change"] == 0 and cell["interval"] == [0, 0]
            assert "change" not in section["pairs"][0][name]
    json.dumps(result, allow_nan=False)


def test_a_pair_right_more_often_and_one_whose_confidence_ranks_nothing_show_outside_the_noise(first):
    rng = np.random.default_rng(0)
    better = [dataclasses.replace(r, correct=True if r.correct is not None and rng.random() < 0.5 else r.correct)
              for r in first]
    stated = [r.raw_confidence for r in first]
    shuffled = [dataclasses.replace(r, raw_confidence=stated[i], signals={})
                for r, i in zip(first, rng.permutation(len(first)))]
    overall = compare_models([Run("first", first), Run("better", better), Run("shuffled", shuffled)],
                             resamples=300)["overall"]["pairs"]
    assert overall[1]["accuracy"]["change"] > 0 and overall[1]["accuracy"]["interval"][0] > 0
    assert overall[1]["right"] > overall[0]["right"]
    assert overall[2]["raw_auroc"]["interval"][1] < 0  # stated confidences that no longer rank the answers
    assert overall[2]["accuracy"]["change"] == 0


def test_i_dont_know_counts_as_not_right_and_has_its_own_rate(first):
    idk = [dataclasses.replace(r, correct=None, issues=("not_attempted",)) if r.domain == "math" else r for r in first]
    math = compare_models([Run("a", first), Run("idk", idk)], resamples=50)["domains"]["math"]["pairs"][1]
    assert math["accuracy"]["value"] == 0 and math["idk_rate"]["value"] == 1 and math["no_answer_rate"]["value"] == 0
    assert math["ece"]["value"] is None  # nothing graded: no calibration figure


def test_the_markdown_shows_a_row_per_pair_and_marks_changes_within_noise(first):
    text = format_markdown(compare_models([Run("a", first), Run("b", first)], resamples=50))
    assert text.count("| a |") == text.count("| b |") == 10  # two tables each for four domains and overall
    assert "~)" in text and "(+0.000 [+0.000, +0.000] ~)" in text
    assert sorted(sum(COLUMN_GROUPS, ())) == sorted(METRICS)  # every metric is in exactly one table


@pytest.mark.parametrize("runs, error", [
    (lambda r: [Run("a", r)], "at least two"),
    (lambda r: [Run("a", r), Run("a", r)], "share a name"),
    (lambda r: [Run("a", r), Run("b", [dataclasses.replace(x, id="other-" + x.id) for x in r])], "share no question"),
    (lambda r: [Run("a", r), Run("b", [dataclasses.replace(x, domain="science") for x in r])], "another domain"),
])
def test_runs_that_cannot_be_compared_are_refused(first, runs, error):
    with pytest.raises(DataError, match=error):
        compare_models(runs(first))


def test_cli_reports_on_collected_runs_and_refuses_bad_pairs_before_loading_anything(tmp_path, capsys, first):
    from calibration.cli import main

    runs = tmp_path / "runs"
    write_jsonl([r.to_dict() for r in first], runs / "a.jsonl")
    write_jsonl([{**r.to_dict(), "prompt": "direct"} for r in first], runs / "b.jsonl")
    out = tmp_path / "docs" / "comparison.md"
    assert main(["compare-models", "--runs", str(runs), "--pair", "a", "--pair", "b --prompt direct",
                 "--resamples", "50", "--out", str(out)]) == 0
    report = out.read_text()
    assert "calibrate compare-models --runs" in report and "| b | `m` | `direct` |" in report
    assert (tmp_path / "docs" / "comparison" / "compare-models.png").stat().st_size > 10_000
    capsys.readouterr()
    for pair, said in (("Bad --prompt x", "lower-case letters"), ("c --no-such-flag", "unrecognized arguments"),
                       ("c", "no records of pair 'c'"), ("", "lower-case letters")):
        assert main(["compare-models", "--runs", str(runs), "--pair", "a", "--pair", pair]) == 2
        assert said in capsys.readouterr().err


@pytest.mark.slow
def test_two_real_pairs_are_collected_once_and_compared(tmp_path, capsys):
    """The default model under two prompts, one question per domain of our everyday held-out set."""
    from calibration.cli import main
    from tests.conftest import ROOT

    runs, out = tmp_path / "runs", tmp_path / "report.md"
    everyday = sorted((ROOT / "calibration" / "everyday").glob("heldout-*.jsonl"))
    argv = ["compare-models", "--data", *map(str, everyday), "--per-domain", "1", "--runs", str(runs),
            "--pair", "direct --prompt direct --max-new-tokens 24",
            "--pair", "reasoning --prompt confidence_tags --max-new-tokens 48",
            "--resamples", "20", "--quiet", "--out", str(out)]
    assert main(argv) == 0
    first = capsys.readouterr().err
    assert first.count("questions to answer") == 2
    records = [json.loads(line) for line in (runs / "reasoning.jsonl").read_text().splitlines()]
    assert len({r["domain"] for r in records}) == len(records) and records[0]["model"].startswith("SmolLM2")
    assert main(argv) == 0  # everything is there: no model is loaded, nothing is answered again
    assert "questions to answer" not in capsys.readouterr().err
    assert "| reasoning | `SmolLM2-135M-Instruct.Q4_1` | `confidence_tags` |" in out.read_text()
