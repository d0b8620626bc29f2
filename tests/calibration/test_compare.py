"""`calibrate compare`: two runs over the same questions under one map, paired by question id."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from assistant.core.errors import DataError
from assistant.core.jsonl import write_jsonl
from calibration.fitting.fit import as_records, fit_maps
from calibration.measuring.compare import COMPARED, compare_runs, format_comparison
from tests.calibration.test_report import overconfident_records


@pytest.fixture(scope="module")
def maps():
    return fit_maps(overconfident_records(seed=1), model="m", prompt="p")


@pytest.fixture(scope="module")
def held_out():
    return [dataclasses.replace(r, answer=f"a-{r.id}") for r in as_records(overconfident_records(seed=2))]


def test_the_same_run_twice_changes_nothing(maps, held_out):
    comparison = compare_runs(held_out, held_out, maps, resamples=200)
    assert list(comparison["domains"]) == ["math", "factual", "science", "reasoning"]
    for section in [*comparison["domains"].values(), comparison["overall"]]:
        assert section["same_answer"] == section["n"] and section["grade_flips"] == 0
        for name in COMPARED:
            assert section[name]["change"] == 0 and section[name]["interval"] == [0, 0]
    assert comparison["overall"]["n"] == 1200 and comparison["overall"]["n_scored"] < 1200  # unstated, ungraded
    json.dumps(comparison, allow_nan=False)


def test_confidences_that_no_longer_rank_the_answers_show_as_a_change_outside_the_interval(maps, held_out):
    rng = np.random.default_rng(0)
    stated = [r.raw_confidence for r in held_out]
    shuffled = [stated[i] for i in rng.permutation(len(stated))]
    after = [dataclasses.replace(r, raw_confidence=c, signals={}) for r, c in zip(held_out, shuffled)]
    before = [dataclasses.replace(r, signals={}) for r in held_out]
    overall = compare_runs(before, after, maps, resamples=300)["overall"]
    auroc = overall["auroc"]
    assert auroc["before"] > 0.7 and auroc["after"] < 0.6 and auroc["interval"][1] < 0
    assert overall["same_answer"] < overall["n"] / 2  # the stated confidence counts as part of the answer


def test_flipped_grades_and_changed_answers_are_counted(maps, held_out):
    graded = [i for i, r in enumerate(held_out) if r.domain == "math" and r.correct is not None][:10]
    after = list(held_out)
    for i in graded:
        after[i] = dataclasses.replace(after[i], correct=not after[i].correct, answer="another")
    math = compare_runs(held_out, after, maps, resamples=50)["domains"]["math"]
    assert (math["grade_flips"], math["same_answer"]) == (10, math["n"] - 10)
    assert "math" in format_comparison(compare_runs(held_out, after, maps, resamples=50))


def test_runs_over_other_questions_are_refused(maps, held_out):
    other = [dataclasses.replace(r, id="x" + r.id) for r in held_out]
    with pytest.raises(DataError, match="share no question id"):
        compare_runs(held_out, other, maps)
    moved = [dataclasses.replace(r, domain="science" if r.domain == "math" else r.domain) for r in held_out]
    with pytest.raises(DataError, match="different domain"):
        compare_runs(held_out, moved, maps)


def test_cli_compares_and_refuses_maps_fitted_on_the_runs(tmp_path, capsys):
    from calibration.cli import main

    before, after, fitting = tmp_path / "before.jsonl", tmp_path / "after.jsonl", tmp_path / "fit.jsonl"
    write_jsonl(overconfident_records(seed=2), before)
    write_jsonl(overconfident_records(seed=2), after)
    write_jsonl(overconfident_records(seed=1), fitting)
    assert main(["--maps-dir", str(tmp_path / "maps"), "fit", "--records", str(fitting), "--holdout", "0",
                 "--out", str(tmp_path / "maps.json")]) == 0
    capsys.readouterr()
    assert main(["compare", "--records", str(before), "--against", str(after), "--maps", str(tmp_path / "maps.json"),
                 "--resamples", "50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["overall"]["grade_flips"] == 0
    assert main(["compare", "--records", str(fitting), "--against", str(after), "--maps",
                 str(tmp_path / "maps.json")]) == 2
    assert "fitted on some of these records" in capsys.readouterr().err
