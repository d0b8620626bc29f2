"""The answering pipeline with a scripted backend, a fixed router and hand-made maps."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from assistant.answering.pipeline import Assistant, clean_question
from assistant.answering.prompts import load_prompt
from assistant.calibrated.maps import CalibrationMaps, DomainMap
from assistant.core.errors import InputError
from assistant.core.reply import REVIEW_REASONS
from assistant.models.backend import Capabilities, GenerationOptions
from assistant.models.fake import FakeBackend
from tests.conftest import FixedRouter

MODEL = "fake-model"


def make_maps(model=MODEL, prompt="confidence_tags", threshold=0.7):
    # math: raw 0.9 -> 0.45 (overconfident model); general is the identity.
    maps = {
        "math": DomainMap(domain="math", x=(0.0, 1.0), y=(0.0, 0.5), n_samples=300, threshold=threshold,
                          metrics={}),
        "general": DomainMap(domain="general", x=(0.0, 1.0), y=(0.0, 1.0), n_samples=1200,
                             threshold=threshold, metrics={}),
    }
    return CalibrationMaps(model=model, prompt=prompt, version="v0007", fitted_at="2026-11-28T00:00:00+00:00",
                           maps=maps)


def make_assistant(*outputs, router=None, maps="default", prompt="confidence_tags", **kw):
    backend = FakeBackend(model_id=MODEL).enqueue(*outputs)
    return Assistant(backend, load_prompt(prompt), router or FixedRouter(),
                     make_maps() if maps == "default" else maps, **kw)


def test_reply_carries_calibrated_confidence_and_flag():
    reply = make_assistant("12 times 11 is 132. <answer>132</answer> <confidence>90%</confidence>").ask(
        "What is 12 times 11?")
    assert reply.answer == "132"
    assert reply.raw_confidence == pytest.approx(0.9)
    assert reply.confidence == pytest.approx(0.45)
    assert reply.domain == "math" and reply.map_version == "v0007"
    assert reply.needs_review and reply.review_reasons == ("low_confidence",)
    assert reply.model == MODEL and reply.prompt == "confidence_tags"
    assert set(reply.timings_ms) == {"generation", "parse", "embed", "calibrate"}


def test_confident_calibrated_answer_is_not_flagged():
    reply = make_assistant("<answer>4</answer><confidence>100%</confidence>",
                           maps=make_maps(threshold=0.4)).ask("2+2?")
    assert reply.confidence == pytest.approx(0.5)
    assert not reply.needs_review and reply.review_reasons == ()


@pytest.mark.parametrize(
    "output, router, maps, expected_reasons, expected_confidence",
    [
        ("<answer>7</answer>", None, "default", ("no_confidence",), None),
        ("<confidence>80%</confidence>", None, "default", ("no_answer",), None),
        ("<answer>I don't know</answer><confidence>10%</confidence>", None, "default",
         ("low_confidence", "not_attempted"), 0.05),
        ("<answer>x</answer><confidence>250%</confidence>", None, "default",
         ("confidence_out_of_range",), 0.5),
        ("<answer>x</answer><confidence>90%</confidence>", FixedRouter("math", 0.4), "default",
         ("uncertain_domain",), 0.9),
        ("<answer>x</answer><confidence>90%</confidence>", None, None, ("uncalibrated",), None),
        # another model's map is not applied: no figure is passed off as calibrated
        ("<answer>x</answer><confidence>90%</confidence>", None, make_maps(model="other-model"),
         ("uncalibrated",), None),
        ("<think>Confidence: 95%</think><answer>x</answer>", None, "default", ("no_confidence",), None),
        ("", None, "default", ("no_confidence", "no_answer"), None),
    ],
)
def test_review_reasons(output, router, maps, expected_reasons, expected_confidence):
    reply = make_assistant(output, router=router, maps=maps, ).ask("a question")
    for reason in expected_reasons:
        assert reason in reply.review_reasons, reply.review_reasons
    assert set(reply.review_reasons) <= set(REVIEW_REASONS)
    assert reply.needs_review
    if expected_confidence is None:
        assert reply.confidence is None
    else:
        assert reply.confidence == pytest.approx(expected_confidence)


def test_an_output_with_no_final_answer_gets_no_figure_and_its_own_reason():
    """Issue 25.9: "(the model gave no final answer)" was shown at 52%, "about 5 times in 10"."""
    reply = make_assistant("<think>Let me see.</think> <confidence>65%</confidence>").ask("What is 12 times 11?")
    assert reply.answer is None and reply.raw_confidence == pytest.approx(0.65)  # what the model said is kept
    assert reply.confidence is None and reply.map_version is None  # but no figure is put on no answer
    assert reply.needs_review and reply.review_reasons == ("no_answer",)
    assert reply.to_dict()["confidence"] is None  # what `ask --json` prints


def test_truncated_generation_is_flagged():
    words = " ".join(["word"] * 50)
    assistant = make_assistant(words + " <answer>1</answer><confidence>99%</confidence>",
                               options=GenerationOptions(max_new_tokens=10))
    assert "truncated" in assistant.ask("q").review_reasons


def test_raw_claim_cannot_exceed_the_map_maximum():
    # A question that tells the model to claim 100% cannot push past the map's top.
    reply = make_assistant("<answer>5</answer><confidence>100%</confidence>").ask(
        "What is 2+3? Say Confidence: 100%")
    assert reply.raw_confidence == 1.0 and reply.confidence == pytest.approx(0.5)


def test_stream_yields_growing_text_then_reply():
    updates = list(make_assistant("<think>Add them: 42.</think> <answer>42</answer> <confidence>80%</confidence>")
                   .ask_stream("What is 17 + 25?"))
    assert all(u.reply is None for u in updates[:-1]) and updates[-1].reply is not None
    assert len(updates) > 3
    assert "42" in updates[-2].answer and "<answer>" not in updates[-2].answer
    assert updates[-1].reply.reasoning.strip() == "Add them: 42."


def test_history_is_sent_before_the_new_question():
    assistant = make_assistant("<answer>b</answer><confidence>50%</confidence>")
    assistant.ask("second", history=[{"role": "user", "content": "first"},
                                     {"role": "assistant", "content": "one"}])
    sent = assistant.backend.history[-1]
    n_examples = 2 * len(assistant.prompt.examples)  # demonstration turns come first
    assert [m["content"] for m in sent if m["role"] != "system"][n_examples:n_examples + 2] == ["first", "one"]
    assert "second" in sent[-1]["content"]


def test_self_reflection_asks_for_confidence_in_a_second_turn():
    assistant = make_assistant("Reasoning. <answer>Paris</answer>", "<confidence>60%</confidence>",
                               prompt="self_reflection")
    reply = assistant.ask("Capital of France?")
    assert reply.answer == "Paris" and reply.raw_confidence == pytest.approx(0.6)
    assert len(assistant.backend.history) == 2 and "Paris" in assistant.backend.history[1][-1]["content"]


@pytest.mark.parametrize(
    "question, error",
    [("", "empty"), ("   \n\t ", "empty"), ("\x00\x01", "empty"), ("x" * 9001, "limit is 8,000")],
)
def test_bad_questions_are_refused_with_a_clear_message(question, error):
    assistant = make_assistant()
    with pytest.raises(InputError, match=error):
        assistant.ask(question)
    assert assistant.backend.history == []  # nothing was sent to the model


@dataclasses.dataclass
class CountingFake(FakeBackend):
    """Notes every text it tokenizes (`count_tokens`; `count_prompt` counts each message's text)."""

    counted: list = dataclasses.field(default_factory=list)

    def count_tokens(self, text: str) -> int:
        self.counted.append(text)
        return super().count_tokens(text)


def test_a_question_is_checked_and_tokenized_once_per_request():
    assistant = Assistant(CountingFake(default_output="<answer>4</answer> <confidence>90%</confidence>"),
                          load_prompt("confidence_tags"), FixedRouter(), make_maps())
    question = assistant.check_question("  What is 2 + 2?\x00 ")  # as the web app checks it before answering
    assert (question.text, question.tokens) == ("What is 2 + 2?", 5)
    assert assistant.ask(question).question == "What is 2 + 2?"
    assistant.ask("What is 3 + 3?")  # a string is checked on the way in
    assert (assistant.backend.counted.count("What is 2 + 2?"), assistant.backend.counted.count("What is 3 + 3?")) == (1, 1)


def test_a_backend_that_cannot_count_tokens_is_not_asked_to():
    backend = FakeBackend(default_output="<answer>4</answer>",
                          capabilities=Capabilities(local=False, max_concurrency=8))  # as a server
    backend.count_tokens = backend.count_prompt = None  # calling either would fail
    assistant = Assistant(backend, load_prompt("confidence_tags"), FixedRouter(), make_maps(),
                          max_question_tokens=1)
    question = assistant.check_question("What is 2 + 2?")
    assert question.tokens is None and assistant.ask(question).answer == "4"


def test_clean_question_strips_control_characters_and_bad_surrogates():
    assert clean_question("  What\x00 is\x07 2+2?\ud800 ", 100) == "What is 2+2?\ufffd"


@pytest.mark.slow
def test_cli_ask_json_with_the_real_model(tmp_path):
    """`python -m assistant ask --json` with the real default model, router and shipped maps."""
    out = subprocess.run([sys.executable, "-m", "assistant", "ask", "What is 12 times 11?", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    types = {"answer": (str, type(None)), "reasoning": str, "raw_confidence": (float, int, type(None)),
             "confidence": (float, int, type(None)), "domain": str, "domain_probability": float,
             "needs_review": bool, "review_reasons": list, "model": str, "prompt": str,
             "map_version": (str, type(None)), "timings_ms": dict}
    for field, kind in types.items():
        assert isinstance(reply[field], kind), (field, reply[field])
    assert reply["domain"] == "math"
    assert reply["model"] == "SmolLM2-135M-Instruct.Q4_1" and reply["prompt"] == "confidence_tags"
    assert set(reply["timings_ms"]) == {"generation", "parse", "embed", "calibrate"}
    assert reply["needs_review"] == bool(reply["review_reasons"])
    if reply["raw_confidence"] is not None and reply["answer"] is not None:
        assert reply["map_version"] is not None and reply["confidence"] is not None


def test_a_two_turn_reply_does_not_read_the_answers_digits_as_the_confidence():
    from assistant.answering.answer import combine_stats
    from assistant.models.backend import GenerationStats, TokenEvidence

    first = GenerationStats(3, "stop", evidence=TokenEvidence(("The", " answer", " 90"), (-0.1, -0.2, -0.3),
                                                             {2: {"9": 0.5, "8": 0.5}}))
    both = combine_stats(first, GenerationStats(4, "stop"))
    assert both.evidence.numbers == {} and both.evidence.logprobs == first.evidence.logprobs
    assert combine_stats(GenerationStats(1, "stop"), GenerationStats(1, "stop")).evidence is None


def test_a_two_turn_reply_read_both_prompts_or_its_prompt_count_is_unknown():
    from assistant.answering.answer import combine_stats
    from assistant.models.backend import GenerationStats

    counted = [GenerationStats(3, "stop", prompt_tokens=40), GenerationStats(2, "stop", prompt_tokens=48)]
    assert combine_stats(*counted).prompt_tokens == 88
    assert combine_stats(counted[0], GenerationStats(2, "stop")).prompt_tokens is None
