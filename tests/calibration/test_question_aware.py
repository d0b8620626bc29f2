"""Issue 20: population weights, shrinkage toward pooled weights, question features, and a population
shift that tries to break the calibration claim."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.calibrated import metrics as M
from assistant.calibrated.fusion import Combiner
from assistant.calibrated.isotonic import IsotonicCalibrator
from assistant.calibrated.maps import CalibrationMaps
from assistant.calibrated.questions import QUESTION_FEATURES, QuestionFeatures
from assistant.core.record import Record
from assistant.routing.router import DomainRouter
from calibration.fitting.fit import fit_maps
from calibration.fitting.populations import population_of, population_weights
from calibration.labelling.question_text import question_features
from tests.assistant.test_routing import FakeEmbedder


def test_each_population_weighs_the_same_within_a_domain_but_a_few_records_are_capped():
    domains = ["math"] * 360 + ["factual"] * 10
    pops = ["benchmark"] * 300 + ["everyday"] * 60 + ["benchmark"] * 6 + ["review"] * 4
    w = population_weights(domains, pops, np.ones(len(domains), dtype=bool))
    assert w[:300].sum() == pytest.approx(w[300:360].sum()) and w[:360].mean() == pytest.approx(1.0)
    assert w[360:].mean() == pytest.approx(1.0) and w[366:].sum() == pytest.approx(w[360:366].sum())
    few = population_weights(["math"] * 303, ["benchmark"] * 300 + ["review"] * 3, np.ones(303, dtype=bool))
    assert few[300] / few[0] == pytest.approx(5.0)  # capped at MAX_WEIGHT: 3 reviews do not outweigh 300 answers
    masked = population_weights(["math"] * 4, ["benchmark"] * 4, np.array([True, True, False, False]))
    assert masked.tolist() == [1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("data, expected", [
    ({"id": "review-abc"}, "review"), ({"id": "gen-math-11-0"}, "generated"), ({"id": "everyday-math-001"}, "everyday"),
    ({"id": "gsm8k_train-1"}, "benchmark"), ({"id": "gsm8k_train-1", "population": "everyday"}, "everyday"),
])
def test_a_record_population_is_its_field_else_read_from_its_id(data, expected):
    record = Record.from_dict({"domain": "math", "raw_confidence": None, "correct": True, **data}, required=())
    assert population_of(record) == expected


def test_weighted_isotonic_equals_repeating_the_records():
    p, y = np.array([0.1, 0.2, 0.3, 0.4, 0.5]), np.array([0.0, 1.0, 0.0, 1.0, 1.0])
    weighted = IsotonicCalibrator().fit(p, y, sample_weight=[1, 3, 1, 1, 2])
    repeated = IsotonicCalibrator().fit(np.repeat(p, [1, 3, 1, 1, 2]), np.repeat(y, [1, 3, 1, 1, 2]))
    assert np.allclose(weighted.x_thresholds_, repeated.x_thresholds_)
    assert np.allclose(weighted.y_thresholds_, repeated.y_thresholds_)
    with pytest.raises(ValueError, match="sample_weight"):
        IsotonicCalibrator().fit(p, y, sample_weight=[1, 0, 1, 1, 1])


def _answers(rng, n, domain, accuracy, *, population="benchmark", direction=None, signal=2.0):
    """Records whose `answer_mean_logp` ranks right answers above wrong ones (by `signal`), and their
    question features: a 4-d embedding along `direction` (or none)."""
    out, questions = [], []
    for i in range(n):
        right = bool(rng.uniform() < accuracy)
        logp = float(np.clip(-1.5 + signal * 0.5 * right + rng.normal(0, 0.5), -6, 0))
        out.append({"id": f"{population}-{domain}-{i}", "domain": domain, "raw_confidence": 0.8, "correct": right,
                    "population": population,
                    "signals": {"stated": 0.8, "answer_mean_logp": logp, "answer_min_logp": logp - 0.3}})
        vector = None if direction is None else np.asarray(direction, float) + rng.normal(0, 0.05, 4)
        questions.append(QuestionFeatures.of(f"question {i} " + "word " * (3 if direction is None else 12), vector))
    return out, questions


def test_a_domain_with_three_right_answers_gets_pooled_weights_and_its_own_intercept():
    rng = np.random.default_rng(1)
    science, _ = _answers(rng, 600, "science", 0.4)
    math = [{**r, "correct": i < 3} for i, r in enumerate(_answers(rng, 150, "math", 0.0)[0])]
    maps = fit_maps(science + math, model="m", prompt="p", signals="fused", holdout=0.0)
    dmap = maps.maps["math"]
    assert dmap.metrics["combiner_fit"]["weights"] == "pooled weights, own intercept"
    assert dmap.metrics["right"] == 3 and dmap.metrics["wrong"] == 147
    assert dmap.combiner["coef"] == maps.maps["general"].combiner["coef"] and any(dmap.combiner["coef"])
    good, bad = {"stated": 0.8, "answer_mean_logp": -0.1}, {"stated": 0.8, "answer_mean_logp": -3.0}
    assert dmap.score(good) > dmap.score(bad)  # not constant: the pooled weights rank its answers
    assert dmap.combiner["intercept"] < maps.maps["science"].combiner["intercept"]  # its own, lower base rate
    assert maps.calibrate_signals("math", good) < 0.2  # and the figure stays near its base rate


def test_question_aware_combiner_round_trips_and_reads_missing_questions_at_the_mean():
    rng = np.random.default_rng(2)
    easy, q_easy = _answers(rng, 300, "math", 0.8, direction=[1, 0, 0, 0])
    hard, q_hard = _answers(rng, 300, "math", 0.1, direction=[0, 1, 0, 0])
    maps = fit_maps(easy + hard, model="m", prompt="p", signals="fused", questions=q_easy + q_hard, holdout=0.0)
    again = CalibrationMaps.from_dict(json.loads(json.dumps(maps.to_dict())))
    combiner = Combiner.from_dict(again.maps["math"].combiner)
    assert combiner.features[-2:] == QUESTION_FEATURES and combiner.difficulty is not None
    signals = easy[0]["signals"]
    on_easy, on_hard = combiner(signals, q_easy[0]), combiner(signals, q_hard[0])
    assert on_easy > on_hard + 0.2  # the same answer signals on an easy-looking and a hard-looking question
    assert on_hard < combiner(signals, None) < on_easy  # no question: its features at their mean
    with pytest.raises(ValueError, match="difficulty"):
        Combiner.from_dict({**again.maps["math"].combiner, "difficulty": {"coef": []}})
    with pytest.raises(ValueError, match="difficulty coef"):  # JSON's integers may exceed a float: was OverflowError
        Combiner.from_dict({**again.maps["math"].combiner, "difficulty": {"coef": [10 ** 400]}})


def _ece_by_population(maps, records, questions):
    y = np.array([r["correct"] for r in records], dtype=float)
    c = np.array([maps.calibrate_signals(r["domain"], r["signals"], q) for r, q in zip(records, questions)])
    return M.expected_calibration_error(y, c), M.auroc(y, c)


def test_population_shift_breaks_a_signal_only_fit_but_not_a_weighted_question_aware_one():
    """Tries to break the claim: 1,000 benchmark answers right 5% of the time and 60 everyday ones right
    60% of the time, the signals equally weak in both. Measured on fresh answers of each population
    apart, a count-weighted signal-only fit is far off on everyday questions; the population-weighted,
    question-aware fit is calibrated on both."""
    rng = np.random.default_rng(3)
    bench, q_bench = _answers(rng, 1000, "factual", 0.05, direction=[1, 0, 0, 0], signal=0.5)
    every, q_every = _answers(rng, 60, "factual", 0.6, population="everyday", direction=[0, 0, 1, 0], signal=0.5)
    test_b, tq_b = _answers(rng, 600, "factual", 0.05, direction=[1, 0, 0, 0], signal=0.5)
    test_e, tq_e = _answers(rng, 600, "factual", 0.6, population="everyday", direction=[0, 0, 1, 0], signal=0.5)
    blind = fit_maps(bench + every, model="m", prompt="p", signals="fused")
    aware = fit_maps(bench + every, model="m", prompt="p", signals="fused", questions=q_bench + q_every)
    blind_every = _ece_by_population(blind, test_e, [None] * len(test_e))[0]
    aware_bench, aware_every = (_ece_by_population(aware, t, q)[0] for t, q in ((test_b, tq_b), (test_e, tq_e)))
    assert blind_every > 0.3
    assert aware_bench < 0.06 and aware_every < 0.1
    tested = aware.maps["factual"].metrics["threshold_tested_on"]
    assert set(tested) == {"benchmark", "everyday"} and sum(tested.values()) == round((1000 + 60) / 3)


def test_question_features_read_text_by_id_embed_once_and_cache(tmp_path):
    questions = tmp_path / "calib.jsonl"
    questions.write_text(json.dumps({"id": "b-1", "question": "What is the m of f?"}) + "\n")
    records = [{"id": "b-1", "domain": "math", "raw_confidence": None, "correct": True},
               {"id": "e-1", "domain": "science", "raw_confidence": None, "correct": False, "question": "<b>s</b> s"},
               {"id": "x-9", "domain": "math", "raw_confidence": None, "correct": False}]
    embedder, cache = FakeEmbedder(), tmp_path / "cache.npz"
    feats = question_features(records, question_files=[questions], embedder=embedder, cache=cache)
    assert feats[0].text == "What is the m of f?" and feats[2] is None
    assert embedder.calls == [["What is the m of f?", "s s"]] or embedder.calls == [["s s", "What is the m of f?"]]
    assert np.allclose(np.linalg.norm(feats[1].embedding), 1.0)  # unit length, as the router embeds
    again = question_features(records, question_files=[questions], embedder=embedder, cache=cache)
    assert len(embedder.calls) == 1 and np.allclose(again[0].embedding, feats[0].embedding)


def test_the_router_hands_on_the_embedding_it_routed_with():
    router = DomainRouter(np.eye(4), np.zeros(4), embedder=FakeEmbedder())
    route = router.route("m")
    assert np.allclose(route.embedding, [1, 0, 0, 0])


def test_side_by_side_reports_each_set_and_domain_for_both_pipelines_and_names_missed_targets():
    from calibration.measuring.heldout import HeldoutSet, format_side_by_side, side_by_side

    rng = np.random.default_rng(4)
    train, q_train = _answers(rng, 400, "science", 0.4, direction=[0, 0, 1, 0])
    fused = fit_maps(train, model="m", prompt="p", signals="fused", questions=q_train)
    stated = fit_maps(train, model="m", prompt="p", signals="stated")
    bench, q_bench = _answers(rng, 200, "science", 0.4, direction=[0, 0, 1, 0])
    every, q_every = _answers(rng, 100, "math", 0.7, population="everyday", direction=[1, 0, 0, 0])
    sets = [HeldoutSet("benchmark", bench, q_bench), HeldoutSet("everyday", every, q_every)]
    result = side_by_side(sets, fused, stated)
    cell = result["fused"]["sets"]["benchmark"]["science"]
    assert cell["n"] == 200 and cell["right"] + cell["wrong"] == 200 and cell["no_confidence"] == 0.0
    assert cell["auroc"] > 0.7 and set(result["fused"]["sets"]["everyday"]) == {"math", "all"}
    assert result["baseline"]["auroc_together"] == pytest.approx(0.5)  # one stated figure for every answer
    text = format_side_by_side(result)
    assert "benchmark" in text and "everyday" in text and "stated-only baseline: maps" in text
    assert "AUROC over every set 0.500 < 0.75 by 0.250" in text


def test_the_guarantee_sentence_names_the_populations_it_was_tested_on():
    from assistant.calibrated.maps import DomainMap
    from assistant.web.render import guarantee_sentence

    metrics = {"target_risk": 0.1, "delta": 0.05, "n_checked": 30, "threshold_guaranteed": True,
               "threshold_tested_on": {"benchmark": 20, "everyday": 10}}
    general = DomainMap("general", (0.0, 1.0), (0.0, 1.0), 90, 0.5, metrics)
    maps = CalibrationMaps("m", "p", "v0009", "2026-12-02T00:00:00+00:00", {"general": general, "math": general})
    sentence = guarantee_sentence(maps, "math")
    assert "wrong at most 10% of the time" in sentence
    assert "tested on held-out answers to 20 benchmark questions and 10 everyday questions" in sentence
    assert "questions unlike those are not covered" in sentence
    old = CalibrationMaps("m", "p", "v0003", "2026-12-02T00:00:00+00:00",
                          {"general": DomainMap("general", (0.0, 1.0), (0.0, 1.0), 90, 0.5,
                                                {k: v for k, v in metrics.items() if k != "threshold_tested_on"})})
    assert "from 30 checked answers" in guarantee_sentence(old, "math")  # maps fitted before populations
