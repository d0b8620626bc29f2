"""Confidence signals: hand-computed cases on scripted evidence, and the real default model's own."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assistant.answering.evidence import compute_signals, expected_percent
from assistant.answering.parsing import parse_output
from assistant.calibrated.fusion import FEATURES, Combiner, feature_matrix
from assistant.core.signals import SIGNAL_NAMES, Signals
from assistant.models.backend import TokenEvidence
from calibration.fitting.fusion_fit import fit_fused


@pytest.mark.parametrize("first, written, expected", [
    ({"8": 0.6, "9": 0.3, "7": 0.1}, "85", 0.6 * 0.85 + 0.3 * 0.95 + 0.1 * 0.75),
    ({"1": 0.5, "9": 0.5}, "100", 0.5 * 1.0 + 0.5 * 0.90),  # "9" + "00" is over 100: read as 90
    ({"8": 1.0}, "", 0.80),  # nothing written (a probe that wrote no digit): tens
    ({"5": 0.2, "6": 0.2}, "5", 0.055),  # a one-digit number: 5% or 6%, renormalised
    ({}, "85", None),
])
def test_expected_percent(first, written, expected):
    got = expected_percent(first, written)
    assert got == pytest.approx(expected) if expected is not None else got is None


def _evidence(pieces, logprobs, numbers=None, probe=None):
    return TokenEvidence(tuple(pieces), tuple(logprobs), numbers or {}, probe)


def test_signals_from_a_tagged_answer_by_hand():
    pieces = ["It", " is", " <", "answer", ">", "Par", "is", "</", "answer", "> <", "confidence", ">", "8", "5",
              "%", "</", "confidence", ">"]
    logprobs = [-0.1] * len(pieces)
    logprobs[5], logprobs[6] = -0.5, -1.5  # "Par", "is": the answer's tokens
    numbers = {12: {"8": 0.6, "9": 0.3, "7": 0.1}, 13: {"5": 0.9, "0": 0.1}}
    parsed = parse_output("".join(pieces))
    s = compute_signals(parsed, _evidence(pieces, logprobs, numbers))
    assert s.stated == 0.85 and s.stated_ev == pytest.approx(0.6 * 0.85 + 0.3 * 0.95 + 0.1 * 0.75)
    assert s.probe_ev is None
    assert (s.answer_mean_logp, s.answer_min_logp, s.answer_first_logp) == pytest.approx((-1.0, -1.5, -0.5))
    assert s.verbal == s.stated_ev


def test_a_probe_gives_a_confidence_where_none_was_written():
    pieces = ["The", " answer", " is", " 12", "."]
    parsed = parse_output("".join(pieces))
    s = compute_signals(parsed, _evidence(pieces, [-0.2] * 5, probe=("70", {"7": 0.5, "9": 0.5})))
    assert s.stated is None and s.stated_ev is None and s.probe_ev == pytest.approx(0.8)
    assert s.verbal == pytest.approx(0.8)


def test_without_evidence_only_the_stated_confidence_is_known():
    s = compute_signals(parse_output("<answer>5</answer> <confidence>60%</confidence>"), None)
    assert s == Signals(stated=0.6) and Signals.from_dict(s.to_dict()) == s
    assert set(s.to_dict()) == set(SIGNAL_NAMES)


def _one_domain_combiner(signals, y) -> Combiner:
    n = len(y)
    return fit_fused(signals, y, labels=["science"] * n, fit=np.ones(n, dtype=bool), weights=np.ones(n)).combiners[
        "science"]


def test_combiner_round_trip_missing_signals_and_constant_fallback():
    signals = [{"stated": 0.9, "answer_mean_logp": -0.1}, {"stated": 0.2, "answer_mean_logp": -2.0}, {}] * 20
    y = [1, 0, 0] * 20
    combiner = _one_domain_combiner(signals, y)
    again = Combiner.from_dict(combiner.to_dict())
    assert again == combiner and combiner({"stated": 0.9, "answer_mean_logp": -0.1}) > combiner({})
    x = feature_matrix([{}])
    assert x.shape == (1, len(FEATURES)) and math.isnan(x[0, 0]) and x[0, 1] == 1.0
    constant = _one_domain_combiner(signals[:6], [1, 0, 0, 0, 0, 0])  # one right answer: the base rate
    assert constant.coef == (0.0,) * len(FEATURES)
    assert constant({"stated": 0.9}) == pytest.approx(constant({}))
    with pytest.raises(ValueError, match="scale"):
        Combiner.from_dict({**combiner.to_dict(), "scale": [0.0] * len(FEATURES)})


@pytest.mark.slow
def test_real_model_evidence_and_signals():
    """The default SmolLM2 GGUF through llama.cpp: token probabilities, digit distributions, the probe."""
    pytest.importorskip("llama_cpp")
    from assistant.answering.prompts import load_prompt
    from assistant.core.config import ModelConfig
    from assistant.models.backend import GenerationOptions
    from assistant.models.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(ModelConfig(threads=2))
    prompt = load_prompt("confidence_tags")
    with_probe = GenerationOptions(max_new_tokens=96, probe=prompt.probe)
    plain_text, _ = backend.stream(prompt.messages("What is 12 times 11?"),
                                              GenerationOptions(max_new_tokens=96)).drain()
    text, stats = backend.stream(prompt.messages("What is 12 times 11?"), with_probe).drain()
    assert text == plain_text  # reading the evidence and the probe never changes the answer
    ev = stats.evidence
    assert "".join(ev.pieces) == text and len(ev.logprobs) == stats.tokens == len(ev.pieces)
    assert all(lp <= 1e-6 for lp in ev.logprobs)
    for position, dist in ev.numbers.items():
        assert ev.pieces[position].isdigit() and 0.0 < sum(dist.values()) <= 1.0 + 1e-6
        assert max(dist, key=dist.get) == ev.pieces[position]  # greedy: the written digit is the likeliest
    parsed = parse_output(text)
    signals = compute_signals(parsed, ev)
    if parsed.raw_confidence is not None:  # this model does write a confidence for this question
        assert ev.probe is None and signals.stated_ev is not None
        written = text.split("<confidence>")[-1].split("%")[0]
        first = next(p for p in sorted(ev.numbers) if "".join(ev.pieces[:p]).endswith("<confidence>"))
        assert signals.stated_ev == pytest.approx(expected_percent(ev.numbers[first], written), abs=1e-6)
    assert signals.answer_mean_logp is not None and signals.answer_min_logp <= signals.answer_mean_logp <= 0
    # A question it answers without a tag still gets a confidence, from the probe.
    _, untagged = backend.stream(
        [{"role": "user", "content": "Say hello to me in French, in one word."}], with_probe).drain()
    assert untagged.evidence.probe is not None
    digits, first = untagged.evidence.probe
    assert first and 0.0 < sum(first.values()) <= 1.0 + 1e-6 and (digits == "" or digits.isdigit())
    backend.close()
