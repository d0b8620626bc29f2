"""Issue 20 items 4-5 end to end with the real default model and the real embedding model: maps fitted
with `fit_maps` (fused signals, question features from the router's embedder) give an everyday question a
range on its figure, and flag a question unlike every fitting question as extrapolating."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.answering.pipeline import Assistant
from assistant.core.config import ModelConfig
from assistant.models.backend import GenerationOptions
from assistant.web import render
from calibration.fitting.fit import fit_maps
from calibration.labelling.question_text import question_features

RECORDS = Path(__file__).resolve().parents[2] / "calibration" / "records"


@pytest.mark.slow
def test_real_model_gives_a_range_and_flags_an_unlike_question():
    assistant = Assistant.from_config(ModelConfig(), allow_uncalibrated=True,
                                      options=GenerationOptions(max_new_tokens=96))
    records = [json.loads(line) for path in (RECORDS / "calib" / "math.jsonl", RECORDS / "everyday" / "fit-math.jsonl")
               for line in path.read_text(encoding="utf-8").splitlines()]
    questions = question_features(records)  # the everyday records carry their text; benchmark ones only ids
    assistant.maps = fit_maps(records, model=assistant.backend.model_id, prompt=assistant.prompt.id,
                              signals="fused", questions=questions, n_boot=20)
    assert assistant.maps.ood is not None and assistant.maps.map_for("math").interval is not None

    everyday = assistant.ask("What is 12 times 11?")
    assert everyday.confidence is not None, everyday.raw_output
    assert everyday.confidence_low <= everyday.confidence <= everyday.confidence_high
    assert everyday.confidence_high > everyday.confidence_low and everyday.range_level == 0.9
    assert everyday.extrapolating is False, everyday.ood_score
    assert f"{render.pct(everyday.confidence)}{render.figure_range(everyday)}" in render.badge_title(everyday)

    unlike = assistant.ask("Write a limerick about a cat who hates Mondays.")
    assert unlike.extrapolating is True and unlike.ood_score > 1
    assert unlike.needs_review and "unlike_fitting" in unlike.review_reasons
