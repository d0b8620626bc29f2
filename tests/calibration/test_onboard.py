"""Tests for `calibrate onboard` (calibration.cli.onboard), its gate and its calibration card.

Fast tests: the gate on synthetic maps (none active, the same maps, worse maps), what a domain still
lacks, and the command with a scripted model (card, resume, refusal, --force, bad input). Slow tests run
the README's path for real: `calibrate data` on benchmark files in their original formats, then
`calibrate onboard` through a real `llama_cpp.server`, and once with the local default model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from assistant.core.record import Record
from assistant.models.fake import FakeBackend
from calibration.fitting.fit import as_records, fit_maps
from calibration.labelling.datagen import make_questions
from calibration.measuring.gate import answers_needed, gate
from tests.calibration.test_report import overconfident_records
from tests.conftest import ROOT

SOURCES = ROOT / "tests" / "calibration" / "benchmark_sources"


@pytest.fixture(scope="module")
def held_out():
    return as_records(overconfident_records(n_per_domain=150, seed=5))


@pytest.fixture(scope="module")
def good():
    return fit_maps(overconfident_records(seed=1), model="m", prompt="p", version="v0001")


def test_with_no_active_maps_the_gate_passes_and_says_why(held_out, good):
    decision = gate(held_out, good, None)
    assert decision.passed and "no maps are active" in decision.reason and decision.checks == ()


def test_the_same_maps_are_never_worse(held_out, good):
    decision = gate(held_out, good, good, resamples=200)
    assert decision.passed and [c.metric for c in decision.checks] == ["brier", "ece"]
    assert all(c.interval == (0.0, 0.0) and not c.worse for c in decision.checks)


def test_maps_fitted_on_confidences_that_rank_nothing_are_refused(held_out, good):
    rng = np.random.default_rng(0)
    records = as_records(overconfident_records(seed=1))
    stated = [r.raw_confidence for r in records]
    shuffled = [dataclasses.replace(r, raw_confidence=stated[i], correct=not r.correct if r.correct is not None
                                    else None) for r, i in zip(records, rng.permutation(len(records)))]
    bad = fit_maps(shuffled, model="m", prompt="p", version="v0002")
    decision = gate(held_out, bad, good, resamples=200)
    assert not decision.passed and "worse than the active v0001" in decision.reason
    assert any(c.worse and "worse beyond noise" in c.line() for c in decision.checks)


def test_each_domain_is_told_what_its_fit_lacks():
    records = [Record(f"m{i}", "math", 0.5, i < 3, "m", "p") for i in range(30)]
    records += [Record(f"f{i}", "factual", 0.5, i % 2 == 0, "m", "p") for i in range(40)]
    records += [Record(f"s{i}", "science", 0.5, False, "m", "p") for i in range(10)]
    math, factual, science = answers_needed(records)
    assert math.startswith("math: 3 right, 27 wrong") and "about 120 more questions" in math
    assert factual == "factual: 20 right, 20 wrong: enough for its own signal weights"
    assert "no right answer yet" in science


# ---- the command, with a scripted model --------------------------------------------------------


def _questions(folder, per_domain: int = 6):
    for part, seed in (("fitting", 1), ("heldout", 2)):
        for domain in ("math", "factual"):
            items = make_questions(domain, per_domain, seed=seed)
            path = folder / part / f"{domain}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return folder


class _Scripted(FakeBackend):
    """Answers every other question right (with its gold answer), stating 90% when right and 40% when wrong."""

    def __init__(self, gold: dict[str, str]):
        super().__init__()
        self.gold, self.asked = gold, 0

    def stream(self, messages, options=None, cancel=None):
        question = messages[-1]["content"]
        answer = next((g for q, g in self.gold.items() if q in question), "none")
        self.asked += 1
        right = self.asked % 2 == 0
        self.enqueue(f"<answer>{answer if right else 'wrong'}</answer> <confidence>{90 if right else 40}%</confidence>")
        return super().stream(messages, options, cancel)


@pytest.fixture
def scripted(monkeypatch, tmp_path):
    folder = _questions(tmp_path / "questions")
    gold = {}
    for path in folder.glob("*/*.jsonl"):
        for line in path.read_text().splitlines():
            item = json.loads(line)
            gold[item["question"]] = item["answer"]
    backend = _Scripted(gold)
    monkeypatch.setattr("calibration.cli.onboard.load_backend", lambda config: backend)
    return folder, backend


def _onboard(folder, tmp_path, *extra):
    from calibration.cli import main

    return main(["--data-dir", str(tmp_path / "data"), "onboard", "--questions", str(folder), "--per-domain", "6",
                 "--heldout-per-domain", "6", "--min-samples", "4", "--no-question-features", "--no-everyday", "--quiet",
                 "--resamples", "100", *extra])


def test_onboard_collects_fits_writes_a_card_and_activates_then_resumes_without_asking_again(scripted, tmp_path,
                                                                                              capsys):
    folder, backend = scripted
    assert _onboard(folder, tmp_path) == 0
    out = capsys.readouterr().out
    assert "activated for fake-model / confidence_tags: no maps are active" in out
    assert backend.asked == 24
    card = next((tmp_path / "data" / "onboard").glob("*/card/card.md")).read_text()
    assert "# Calibration card: fake-model / confidence_tags" in card and "**Gate: activated" in card
    assert "fitted on 12 answers to fitting questions (12 generated;" in card and "**generated questions**" in card
    assert "| math | 6 | 3 |" in card and "![reliability_math](reliability_math.png)" in card
    assert "math: 3 right, 3 wrong: its own signal weights need 15" in card

    assert _onboard(folder, tmp_path) == 0  # everything collected: only the fit and the gate run again
    assert backend.asked == 24
    assert "not worse than the active" in capsys.readouterr().out


def test_refused_maps_stay_inactive_unless_forced(scripted, tmp_path, capsys, monkeypatch):
    from assistant.calibrated.mapstore import map_store
    from calibration.measuring.gate import Gate

    folder, _ = scripted
    assert _onboard(folder, tmp_path) == 0
    store = map_store(None, tmp_path / "data")
    before = store.active_version("fake-model", "confidence_tags")
    monkeypatch.setattr("calibration.cli.onboard.gate", lambda *a, **k: Gate(False, "worse on brier"))
    assert _onboard(folder, tmp_path) == 3
    assert "NOT activated" in capsys.readouterr().out
    assert store.active_version("fake-model", "confidence_tags") == before
    assert _onboard(folder, tmp_path, "--force") == 0
    assert "activated anyway (--force)" in capsys.readouterr().out
    assert store.active_version("fake-model", "confidence_tags") != before


def test_a_questions_folder_without_both_splits_is_one_clear_error_before_any_model_loads(tmp_path, capsys):
    from calibration.cli import main

    (tmp_path / "q" / "fitting").mkdir(parents=True)
    assert main(["--data-dir", str(tmp_path / "data"), "onboard", "--questions", str(tmp_path / "q")]) == 2
    assert "needs fitting/<domain>.jsonl and heldout/<domain>.jsonl" in capsys.readouterr().err
    assert not (tmp_path / "data" / "onboard").exists()


# ---- for real ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_readme_path_through_a_real_llama_cpp_server(tmp_path):
    """`calibrate data` on the benchmarks' own file formats, then `calibrate onboard` through llama_cpp.server, as
    the README runs it (without log probabilities: llama-cpp-python's server is several times slower with them)."""
    from tests.assistant.models.llama_server import ALIAS, KEY, KEY_ENV, serving

    env = {**os.environ, KEY_ENV: KEY}
    run = lambda *args: subprocess.run([sys.executable, "-m", "calibration", "--data-dir", str(tmp_path / "data"),  # noqa: E731
                                        *args], env=env, capture_output=True, text=True, timeout=900)
    made = run("data", "--sources", str(SOURCES), "--out", str(tmp_path / "q"), "--heldout", "2")
    assert made.returncode == 0, made.stderr
    with serving() as url:
        onboard = run("onboard", "--questions", str(tmp_path / "q"), "--backend", "openai", "--base-url", url,
                      "--model", ALIAS, "--api-key-env", KEY_ENV, "--no-logprobs", "--prompt", "direct", "--per-domain", "2",
                      "--heldout-per-domain", "2", "--min-samples", "4", "--resamples", "100", "--quiet")
    assert onboard.returncode == 0, onboard.stderr
    assert f"activated for {ALIAS}@127.0.0.1" in onboard.stdout
    card = next((tmp_path / "data" / "onboard").glob("*/card/card.md")).read_text()
    # two per domain from the benchmarks' files and two from the project's everyday set, each measured apart
    assert "fitted on 16 answers to fitting questions (8 benchmark, 8 everyday;" in card
    assert "**benchmark questions**" in card and "**everyday questions**" in card
    records = [json.loads(line) for line in next((tmp_path / "data" / "onboard").glob("*/heldout.jsonl")).open()]
    assert {r["domain"] for r in records} == {"math", "factual", "science", "reasoning"} and len(records) == 16
    assert any(r["raw_confidence"] is not None for r in records)  # as the README runs it: --no-logprobs
    assert all(r["signals"].get("answer_mean_logp") is None for r in records)


@pytest.mark.slow
def test_onboard_with_the_local_default_model(tmp_path):
    from calibration.cli import main

    questions = tmp_path / "q"
    assert main(["data", "--sources", str(SOURCES), "--out", str(questions), "--heldout", "2"]) == 0
    assert main(["--data-dir", str(tmp_path / "data"), "onboard", "--questions", str(questions), "--prompt", "direct",
                 "--per-domain", "2", "--heldout-per-domain", "1", "--min-samples", "4", "--threads", "1",
                 "--no-question-features", "--no-everyday",  # both covered through the server above
                 "--resamples", "100", "--quiet"]) == 0
    card = next((tmp_path / "data" / "onboard").glob("SmolLM2*--direct/card/card.md")).read_text()
    assert "# Calibration card: SmolLM2-135M-Instruct.Q4_1 / direct" in card and "**Gate: activated" in card
