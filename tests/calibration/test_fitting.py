"""Tests for calibration.fitting.fit: hand-computed fits, thresholds and shrinkage, and properties."""

from __future__ import annotations

import doctest
import json
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import calibration.fitting.fit as F
import calibration.fitting.guarantee as G
from assistant.calibrated.maps import CalibrationMaps, DomainMap, load_maps, save_maps
from assistant.core.errors import DataError
from calibration.fitting.fit import (
    cross_validated_predictions,
    fit_maps,
    records_to_arrays,
    shrink_to_general,
)
from calibration.fitting.guarantee import clopper_pearson_upper, review_threshold
from tests.conftest import ROOT


def _records(domain, p, n, n_correct, **extra):
    """n records of one domain at raw confidence p, the first n_correct of them correct."""
    return [{"domain": domain, "raw_confidence": p, "correct": i < n_correct, **extra} for i in range(n)]


@pytest.mark.parametrize("module", [G], ids=["guarantee"])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.parametrize("errors, n, delta, expected", [
    (0, 29, 0.05, 1 - 0.05 ** (1 / 29)),  # zero errors: the bound solves (1 - u)^n = delta
    (0, 10, 0.05, 1 - 0.05 ** (1 / 10)),
    (0, 1, 0.5, 0.5),
    (3, 3, 0.05, 1.0),
    (0, 0, 0.05, 1.0),
    # one error in two: solves P(X <= 1 | u) = 1 - u^2 = delta -> u = sqrt(1 - delta)
    (1, 2, 0.05, 0.95 ** 0.5),
])
def test_clopper_pearson_upper(errors, n, delta, expected):
    assert clopper_pearson_upper(errors, n, delta) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("y, c, target, expected", [
    # 29 right at .9 (bound .0983 <= .1) and one wrong at .2: keep the .9s
    ([1] * 29 + [0], [0.9] * 29 + [0.2], 0.1, (0.9, 29 / 30, 1 - 0.05 ** (1 / 29))),
    # only 10 right answers: bound .259 > .1, no threshold qualifies -> flag everything
    ([1] * 10, [0.8] * 10, 0.1, (1.0, 0.0, 1.0)),
    # the same with a looser target: keep all
    ([1] * 10, [0.8] * 10, 0.3, (0.8, 1.0, 1 - 0.05 ** (1 / 10))),
    # 1.0 is reserved for "flag everything", so a qualifying 1.0 moves halfway down to the next candidate
    ([1] * 40 + [0] * 5, [1.0] * 40 + [0.3] * 5, 0.1, (0.65, 40 / 45, 1 - 0.05 ** (1 / 40))),
    ([1] * 40, [1.0] * 40, 0.1, (0.0, 1.0, 1 - 0.05 ** (1 / 40))),
    # few answers at 1.0 (bound .26 > .1): flag everything
    ([1] * 10 + [0] * 5, [1.0] * 10 + [0.3] * 5, 0.1, (1.0, 0.0, 1.0)),
    # fixed-sequence testing stops at the first failure: .9 passes (30 right), .7 fails (2 wrong of 32,
    # bound .18 > .1), so .5 is never tested although it would pass (2 wrong of 122): the guarantee needs that
    ([1] * 90 + [0, 0] + [1] * 30, [0.5] * 90 + [0.7] * 2 + [0.9] * 30, 0.1,
     (0.9, 30 / 122, clopper_pearson_upper(0, 30, 0.05))),
])
def test_review_threshold(y, c, target, expected):
    got = review_threshold(y, c, target_risk=target, delta=0.05)
    assert (got["threshold"], got["coverage"], got["risk_ucb"]) == pytest.approx(expected)


def test_shrink_to_general_by_hand():
    # identity domain map, general (0, .5, 1) -> (.2, .2, .8), w = .5 on the union of knots
    x, y = shrink_to_general(((0.0, 1.0), (0.0, 1.0)), ((0.0, 0.5, 1.0), (0.2, 0.2, 0.8)), 0.5)
    assert x == (0.0, 0.5, 1.0) and y == pytest.approx((0.1, 0.35, 0.9))
    general = DomainMap("general", (0.0, 0.5, 1.0), (0.2, 0.2, 0.8), 10, 0.5)
    assert shrink_to_general(((0.25, 0.75), (0.0, 1.0)), general, 1.0)[1] == pytest.approx((0, 0, 0.5, 1, 1))


def _two_domains():
    # math (n=50): .2 -> 5/25 right, .8 -> 20/25 ; factual (n=250): .2 -> 75/125, .8 -> 100/125
    return (_records("math", 0.2, 25, 5) + _records("math", 0.8, 25, 20)
            + _records("factual", 0.2, 125, 75) + _records("factual", 0.8, 125, 100))


def test_fit_maps_shrinks_small_domains_by_hand():
    maps = fit_maps(_two_domains(), model="m", prompt="p", strict=False, target_risk=0.3, holdout=0.0)
    general, math_map, factual = maps.maps["general"], maps.maps["math"], maps.maps["factual"]
    # general: .2 -> 80/150, .8 -> 120/150
    assert general.y == pytest.approx((80 / 150, 0.8))
    # math: n = 50 < 200, w = 50 / (50 + 50) = .5 : .5 * .2 + .5 * 80/150 at .2 ; .5 * .8 + .5 * .8 at .8
    assert math_map.metrics["shrink_weight"] == 0.5
    assert math_map.x == (0.2, 0.8) and math_map.y == pytest.approx((0.1 + 40 / 150, 0.8))
    # factual: n = 250 >= 200, used as fitted
    assert factual.metrics["shrink_weight"] == 1.0 and factual.y == pytest.approx((0.6, 0.8))
    # factual threshold: keep .8 -> 25 errors in 125 (bound ~.27 <= .3); keep all -> 75 in 250 (.3 seen)
    assert factual.threshold == pytest.approx(0.8) and factual.metrics["coverage"] == 0.5
    assert factual.metrics["risk_ucb"] == pytest.approx(clopper_pearson_upper(25, 125, 0.05))
    assert maps.map_for("science")(0.8) == pytest.approx(0.8)  # no science records: general
    assert maps.model == "m" and maps.prompt == "p" and maps.version == "unsaved"


def test_fit_maps_counts_failures_and_skips_small_domains():
    records = (_records("math", 0.9, 40, 30) + _records("math", 0.4, 40, 10)
               + _records("math", None, 10, 5)
               + [{"domain": "math", "raw_confidence": 0.9, "correct": None}] * 10
               + _records("science", 0.9, 5, 5))
    maps = fit_maps(records, model="m", prompt="p", min_samples=30, holdout=0.0)
    assert set(maps.maps) == {"general", "math"}  # science has 5 < 30 usable records
    m = maps.maps["math"].metrics
    assert (m["n_total"], m["n"]) == (100, 80)
    assert (m["parse_failure_rate"], m["not_attempted_rate"]) == (0.1, 0.1)
    assert maps.maps["general"].n_samples == 85
    with pytest.raises(DataError, match="only 5 records"):
        fit_maps(_records("science", 0.9, 5, 5), model="m", prompt="p", min_samples=30)


@pytest.mark.parametrize("record, message", [
    ({"domain": "poetry", "raw_confidence": 0.5, "correct": True}, "field domain"),
    ({"raw_confidence": 0.5, "correct": True}, "field domain"),
    ({"domain": "math", "raw_confidence": 1.5, "correct": True}, "field raw_confidence"),
    ({"domain": "math", "raw_confidence": "high", "correct": True}, "field raw_confidence"),
    ({"domain": "math", "raw_confidence": 0.5, "correct": "yes"}, "field correct"),
    ("not a dict", "JSON object"),
])
def test_records_are_validated(record, message):
    with pytest.raises(DataError, match=message):
        records_to_arrays([{"domain": "math", "raw_confidence": 0.5, "correct": True}, record])


def test_cross_validated_predictions_are_out_of_fold():
    rng = np.random.default_rng(1)
    records = [{"domain": d, "raw_confidence": float(p), "correct": bool(rng.random() < p ** 2)}
               for d in ("math", "factual") for p in rng.choice([0.3, 0.5, 0.7, 0.9, 1.0], 150)]
    records[3]["raw_confidence"] = None
    conf = cross_validated_predictions(records, k=5, seed=0, min_samples=10)
    assert conf.shape == (300,) and np.isnan(conf[3]) and not np.isnan(np.delete(conf, 3)).any()
    again = cross_validated_predictions(records, k=5, seed=0, min_samples=10)
    assert np.array_equal(conf, again, equal_nan=True)
    # a record's own label never reaches its prediction: flipping it leaves the prediction unchanged
    for i in (0, 7, 200):
        flipped = [dict(r) for r in records]
        flipped[i]["correct"] = not flipped[i]["correct"]
        assert cross_validated_predictions(flipped, k=5, seed=0, min_samples=10)[i] == conf[i]
    with pytest.raises(ValueError, match="k must be"):
        cross_validated_predictions(records, k=1)


record_strategy = st.fixed_dictionaries({
    "domain": st.sampled_from(["math", "factual", "science", "reasoning", "general"]),
    "raw_confidence": st.one_of(st.none(), st.floats(0, 1), st.sampled_from([0.0, 0.5, 0.9, 1.0])),
    "correct": st.one_of(st.none(), st.booleans()),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(record_strategy, min_size=1, max_size=80), strict=st.booleans(),
       min_samples=st.integers(1, 10))
def test_any_records_give_valid_maps(records, strict, min_samples, tmp_path_factory):
    usable = sum(r["raw_confidence"] is not None and r["correct"] is not None for r in records)
    if usable < min_samples:
        with pytest.raises(DataError):
            fit_maps(records, model="m", prompt="p", min_samples=min_samples)
        return
    maps = fit_maps(records, model="m", prompt="p", min_samples=min_samples, strict=strict)
    for m in maps.maps.values():
        assert all(b > a for a, b in pairwise(m.x))
        assert all(b >= a for a, b in pairwise(m.y))
        assert all(0 <= v <= 1 for v in m.x + m.y) and 0 <= m.threshold <= 1
        grid = [m(p) for p in np.linspace(0, 1, 21)]
        assert all(b >= a for a, b in pairwise(grid))
    assert CalibrationMaps.from_dict(json.loads(json.dumps(maps.to_dict(), allow_nan=False))) == maps
    path = tmp_path_factory.mktemp("maps") / "m.json"
    save_maps(maps, path)
    assert load_maps(path) == maps


def _signal_records(rng, n, domain="science"):
    """A domain where the answer-token probability carries the signal and the stated confidence is noise."""
    out = []
    for i in range(n):
        quality = rng.uniform(0, 1)
        right = rng.uniform(0, 1) < quality
        out.append({"id": f"{domain}-{i}", "domain": domain, "raw_confidence": 0.9, "correct": bool(right),
                    "signals": {"stated": 0.9, "answer_mean_logp": float(np.log(0.05 + 0.9 * quality)),
                                "answer_min_logp": float(np.log(0.02 + 0.9 * quality))}})
    return out


def test_fused_maps_learn_which_signal_ranks_and_stay_monotone():
    from assistant.calibrated import metrics as M

    rng = np.random.default_rng(0)
    train, test = _signal_records(rng, 900), _signal_records(rng, 400)
    fused = fit_maps(train, model="m", prompt="p", signals="fused")
    stated = fit_maps(train, model="m", prompt="p", signals="stated")
    y = [r["correct"] for r in test]
    c_fused = [fused.calibrate_signals("science", r["signals"]) for r in test]
    c_stated = [stated.calibrate_signals("science", r["signals"]) for r in test]
    assert M.auroc(y, c_fused) > 0.7 > M.auroc(y, c_stated) - 0.2  # the stated 0.9 cannot rank at all
    assert M.expected_calibration_error(y, c_fused) < 0.08
    dmap = fused.maps["science"]
    assert dmap.combiner is not None and any(dmap.combiner["coef"])
    assert all(b >= a for a, b in zip(dmap.y, dmap.y[1:])) and fused.signals == "fused"
    # a domain with too few right answers borrows the pooled weights (never the stated figure alone)
    few = [{**r, "domain": "math", "correct": i < 8} for i, r in enumerate(_signal_records(rng, 200, "math"))]
    maps = fit_maps(train + few, model="m", prompt="p", signals="fused")
    math_fit = maps.maps["math"].metrics["combiner_fit"]
    assert math_fit["weights"] == "pooled weights, own intercept" and math_fit["right"] < 15
    assert maps.maps["math"].combiner["coef"] == maps.maps["general"].combiner["coef"]


def test_v1_map_files_still_load_and_read_the_stated_confidence(tmp_path):
    import json

    from assistant.calibrated.maps import load_maps

    v1 = json.loads((ROOT / "assistant" / "data" / "maps" / "v0001.json").read_text())
    assert v1["schema_version"] == 1 and "signals" not in v1
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1))
    maps = load_maps(path)
    assert maps.signals == "stated" and all(m.combiner is None for m in maps.maps.values())
    assert maps.calibrate_signals("math", {"stated": 0.9}) == maps.map_for("math")(0.9)
    assert maps.calibrate_signals("math", {"stated": None, "probe_ev": 0.8}) is None


def test_a_map_names_its_records_without_this_machines_absolute_paths(tmp_path, monkeypatch):
    from calibration.fitting.fit import describe_sources, source_path

    data, work, elsewhere = tmp_path / "data", tmp_path / "work", tmp_path / "elsewhere"
    for folder in (data / "runs", work, elsewhere):
        folder.mkdir(parents=True)
    monkeypatch.chdir(work)
    paths = [data / "runs" / "calib.jsonl", work / "reviews.jsonl", elsewhere / "old.jsonl"]
    for path in paths:
        path.write_text('{"id": "a"}\n')
    assert [source_path(p, data) for p in paths] == ["runs/calib.jsonl", "reviews.jsonl", "old.jsonl"]
    (first, *_) = describe_sources(paths, data)
    assert first["sha256"] == F.file_sha256(paths[0]) and not any(str(tmp_path) in s["path"]
                                                                  for s in describe_sources(paths, data))
