"""Issue 20 items 4-5, shown everywhere: the range on the calibrated figure and the "unlike the fitting
questions" flag in the Reply, `ask --json`-style output, the CLI text, the chat badge, the OpenAI
endpoint's `calibration` object and the dashboard; maps fitted without them still work and say so."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from types import SimpleNamespace

import numpy as np
import pytest

from assistant.answering.pipeline import Assistant
from assistant.answering.prompts import load_prompt
from assistant.calibrated.maps import CalibrationMaps, DomainMap
from assistant.calibrated.ood import fit_reference
from assistant.cli import format_reply
from assistant.core.reply import REASON_TEXT
from assistant.models.fake import FakeBackend
from assistant.web import charts, render
from assistant.web.dashboard import support_summary
from assistant.web.openai_api import calibration_of
from tests.conftest import FixedRouter

MODEL, DIM = "fake-model", 24
OUTPUT = "<answer>132</answer><confidence>90%</confidence>"
BANDS = {"level": 0.9, "n_boot": 100, "n": 300, "x": [0.0, 1.0], "lower": [0.0, 0.3], "upper": [0.2, 0.6]}


def _like(rng, n):
    rows = np.eye(DIM)[0] + np.eye(DIM)[1] + rng.normal(scale=0.1, size=(n, DIM))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


REFERENCE = fit_reference(_like(np.random.default_rng(0), 200), ["math"] * 200, dim=8).to_dict()
NEAR, FAR = _like(np.random.default_rng(1), 1)[0], np.eye(DIM)[5]


def make_maps(interval=BANDS, ood=REFERENCE):
    maps = {d: DomainMap(domain=d, x=(0.0, 1.0), y=(0.0, 0.5), n_samples=300, threshold=0.3, metrics={},
                         interval=interval) for d in ("math", "general")}
    return CalibrationMaps(model=MODEL, prompt="confidence_tags", version="v0009",
                           fitted_at="2026-12-02T00:00:00+00:00", maps=maps, ood=ood)


class EmbeddingRouter(FixedRouter):
    """FixedRouter whose Route also carries the question's embedding (as the real router's does)."""

    def __init__(self, embedding):
        super().__init__("math")
        self.embedding = embedding

    def route(self, question):
        return SimpleNamespace(**{**asdict(super().route(question)), "embedding": self.embedding})


def ask(embedding, maps):
    backend = FakeBackend(model_id=MODEL).enqueue(OUTPUT)
    return Assistant(backend, load_prompt("confidence_tags"), EmbeddingRouter(embedding), maps).ask("What is 12 times 11?")


def test_a_question_like_the_fitting_ones_gets_a_range_and_no_flag():
    reply = ask(NEAR, make_maps())
    assert reply.confidence == pytest.approx(0.45)
    assert reply.confidence_low == pytest.approx(0.27) and reply.confidence_high == pytest.approx(0.56)
    assert reply.range_level == 0.9 and reply.extrapolating is False and 0 < reply.ood_score <= 1
    assert not reply.needs_review
    data = json.loads(json.dumps(reply.to_dict()))  # what `ask --json` and /ask return
    assert {"confidence_low", "confidence_high", "range_level", "ood_score", "extrapolating"} <= set(data)
    title = render.badge_title(reply)
    assert "45% (27–56%) — answers like this were right" in title
    assert "9 times in 10, answers like this are right between 27% and 56%" in render.badge_text(reply, make_maps())
    assert "45% calibrated (range 27–56%, 9 times in 10)" in format_reply(reply)
    assert "Like fitting questions: yes" in format_reply(reply)


def test_a_question_unlike_the_fitting_ones_is_flagged_and_its_range_widened():
    near, far = ask(NEAR, make_maps()), ask(FAR, make_maps())
    assert far.extrapolating is True and far.ood_score > 1
    assert far.confidence == near.confidence
    assert far.confidence_high - far.confidence_low > near.confidence_high - near.confidence_low
    assert far.needs_review and "unlike_fitting" in far.review_reasons
    assert REASON_TEXT["unlike_fitting"] in render.badge_title(far)
    assert "This question is unlike the questions the figure was learned from" in render.badge_text(far, make_maps())
    assert "Like fitting questions: NO" in format_reply(far)
    cal = calibration_of(far, "r1")
    assert cal["extrapolating"] is True and cal["confidence_low"] == far.confidence_low
    assert REASON_TEXT["unlike_fitting"] in cal["summary"]


def test_maps_fitted_before_ranges_still_answer_and_say_so():
    old = make_maps(interval=None, ood=None)
    reply = ask(NEAR, old)
    assert reply.confidence == pytest.approx(0.45)
    assert (reply.confidence_low, reply.confidence_high, reply.ood_score, reply.extrapolating) == (None,) * 4
    assert "fitted without a range" in render.badge_text(reply, old)
    assert "was not measured" in render.badge_text(reply, old)
    assert "(no range: this map was fitted without one)" in format_reply(reply)
    assert "Like fitting questions: not measured" in format_reply(reply)
    assert calibration_of(reply, None)["confidence_low"] is None
    assert "fitted without ranges" in support_summary(old) and "no fitting questions" in support_summary(old)


def test_a_router_without_embeddings_gives_a_range_but_no_distance():
    backend = FakeBackend(model_id=MODEL).enqueue(OUTPUT)
    reply = Assistant(backend, load_prompt("confidence_tags"), FixedRouter(), make_maps()).ask("12 times 11?")
    assert reply.confidence_low is not None and reply.ood_score is None and reply.extrapolating is None


def test_a_stored_reply_row_without_the_new_fields_renders():
    row = {k: v for k, v in ask(NEAR, make_maps()).to_dict().items()
           if k not in ("confidence_low", "confidence_high", "range_level", "ood_score", "extrapolating")}
    assert "45% — answers like this" in render.badge_title(row)


def test_dashboard_shows_range_and_threshold_per_domain():
    maps = make_maps()
    row = charts.dashboard_rows(maps, {})[0]
    assert len(row) == len(charts.DASHBOARD_COLUMNS)
    cells = dict(zip(charts.DASHBOARD_COLUMNS, row))
    assert cells["range on the figure"].startswith("±") and "90%" in cells["range on the figure"]
    assert "nearest of 140 fitting questions" in cells["unlike the fitting questions beyond"]
    old_row = charts.dashboard_rows(replace(maps, ood=None), {})[0]
    assert dict(zip(charts.DASHBOARD_COLUMNS, old_row))["unlike the fitting questions beyond"].startswith("not")
    assert "90% range" in support_summary(maps) and "140 stored fitting questions" in support_summary(maps)


def test_the_terminal_says_every_answer_is_checked_where_no_cut_off_was_shown_safe():
    """A 100% cut-off means no cut-off held on held-out answers: the CLI must not call the figure too low."""
    from dataclasses import replace

    strict = make_maps()
    strict = replace(strict, maps={d: replace(m, threshold=1.0) for d, m in strict.maps.items()})
    reply = ask(NEAR, strict)
    assert reply.review_reasons == ("low_confidence",)
    said = format_reply(reply, maps=strict)
    assert f"  - {render.EVERY_ANSWER_CHECKED} (low_confidence)" in said and "below the cut-off" not in said
    assert "below the cut-off" in format_reply(reply)  # without the maps it cannot tell
