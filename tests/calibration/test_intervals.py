"""Issue 20 item 5: the range on the calibrated figure (assistant.calibrated.intervals): its bands, its coverage
on held-out answers against the nominal level, and what breaks it (few answers, a shifted population)."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.calibrated.intervals import NOMINAL, Bands, bin_coverage, bootstrap_bands, jeffreys, widen
from assistant.calibrated.isotonic import IsotonicCalibrator


def _fit(p, y, w=None):
    cal = IsotonicCalibrator().fit(p, y)
    return cal.x_thresholds_, cal.y_thresholds_


def _truth(s):
    return 0.05 + 0.6 * s ** 2  # the true rate of right answers at score s


def _population(n, rng, shift=0.0):
    p = rng.beta(2, 3, n)
    y = (rng.uniform(size=n) < np.clip(_truth(p) + shift, 0, 1)).astype(float)
    return p, y


def _ranges(bands, fit, q):
    point = np.interp(q, *fit)
    lh = np.array([bands.at(s, v) for s, v in zip(q, point)])
    return point, lh[:, 0], lh[:, 1]


def _held_out_coverage(n_fit, seeds, shift=0.0, n_held=600):
    """Mean (true-rate coverage, noise-aware bin coverage, literal bin coverage, width) over seeds."""
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        p, y = _population(n_fit, rng)
        bands = bootstrap_bands(p, y, _fit, n_boot=60, seed=seed)
        q, yq = _population(n_held, rng, shift)
        point, lo, hi = _ranges(bands, _fit(p, y), q)
        truth = np.clip(_truth(q) + shift, 0, 1)
        cov = bin_coverage(yq, point, lo, hi, n_bins=10)
        rows.append((np.mean((lo <= truth) & (truth <= hi)), cov.noise_aware, cov.literal, np.mean(hi - lo)))
    return np.mean(rows, axis=0)


def test_coverage_on_held_out_answers_is_near_nominal():
    """Fitted on 300 and on 1000 answers, checked on 600 held-out answers from the same population, 8
    seeds: the true rate lies inside about 9 ranges in 10 (measured 0.93 and 0.93: the floor errs on the
    wide side), and the held-out bins' accuracy inside the range widened by their own sampling error
    about as often (0.84, 0.94)."""
    for n in (300, 1000):
        true_rate, noise_aware, literal, _ = _held_out_coverage(n, range(8))
        assert NOMINAL - 0.05 <= true_rate <= NOMINAL + 0.07, (n, true_rate)
        assert abs(noise_aware - NOMINAL) <= 0.1, (n, noise_aware)
        assert literal <= noise_aware  # bins of 60 scatter around their rate: the literal check is stricter
    assert literal <= noise_aware  # bins of 60 scatter around their rate: the literal check is stricter


def test_few_answers_give_wide_ranges_that_still_cover():
    """Breaking it with a small fit: 40 answers. The ranges must widen (not claim precision they lack)
    and keep covering the true rate."""
    small_rate, _, _, small_width = _held_out_coverage(40, range(4))
    _, _, _, large_width = _held_out_coverage(600, range(2))
    assert small_width > 2 * large_width
    assert small_rate >= NOMINAL - 0.07, small_rate


def test_a_shifted_population_breaks_the_ranges_and_stretching_helps():
    """Breaking it with a shifted population (true rate 25 points higher than the fitting one): the
    ranges stop covering, which is why a question unlike the fitting ones is flagged and its range
    stretched (assistant.calibrated.ood). Stretching by 3 recovers part of the coverage, not all of it."""
    rng = np.random.default_rng(7)
    p, y = _population(300, rng)
    bands = bootstrap_bands(p, y, _fit, n_boot=60, seed=7)
    q, yq = _population(600, rng, shift=0.25)
    point, lo, hi = _ranges(bands, _fit(p, y), q)
    truth = np.clip(_truth(q) + 0.25, 0, 1)
    plain = np.mean((lo <= truth) & (truth <= hi))
    stretched = np.array([widen(c, a, b, 3.0) for c, a, b in zip(point, lo, hi)])
    wide = np.mean((stretched[:, 0] <= truth) & (truth <= stretched[:, 1]))
    assert plain < 0.3
    assert wide > plain + 0.2


def test_jeffreys_floor_where_every_answer_was_wrong():
    """All 200 fitting answers wrong: the bootstrap says 0% exactly, the range still allows a few percent."""
    p = np.linspace(0, 1, 200)
    bands = bootstrap_bands(p, np.zeros(200), _fit, n_boot=20)
    low, high = bands.at(0.5, 0.0)
    assert low == 0.0 and 0.01 < high < 0.1
    assert float(jeffreys(0.0, 40)[1]) == pytest.approx(0.047, abs=0.001)


def test_ranges_contain_the_figure_and_round_trip_as_json():
    rng = np.random.default_rng(1)
    p, y = _population(200, rng)
    bands = bootstrap_bands(p, y, _fit, n_boot=20)
    for s in (0.0, 0.2, 0.5, 0.9, 1.0):
        point = float(np.interp(s, *_fit(p, y)))
        low, high = bands.at(s, point)
        assert 0 <= low <= point <= high <= 1
    assert Bands.from_dict(bands.to_dict()) == bands
    assert bands.n == 200 and bands.n_boot == 20 and bands.level == NOMINAL


@pytest.mark.parametrize("change, words", [
    ({"x": [0.0, "a"]}, "x must be a non-empty list"),
    ({"lower": [0.5, 0.5], "upper": [0.2, 0.2]}, "lower must not exceed upper"),
    ({"x": [0.5, 0.5]}, "strictly increasing"),
    ({"level": 1.5}, "level must be a number strictly between 0 and 1"),
    ({"n_boot": -1}, "whole numbers"),
    ({"upper": [0.3]}, "equally long"),
])
def test_bad_bands_say_what_is_wrong(change, words):
    good = {"level": 0.9, "x": [0.0, 1.0], "lower": [0.1, 0.2], "upper": [0.3, 0.4], "n_boot": 10, "n": 50}
    with pytest.raises(ValueError, match=words):
        Bands.from_dict({**good, **change})


def test_bin_coverage_counts_bins_and_refuses_too_few_answers():
    y = np.array([1, 0, 0, 0] * 25, dtype=float)
    cov = bin_coverage(y, np.full(100, 0.25), np.full(100, 0.2), np.full(100, 0.3), n_bins=4)
    assert cov.n_bins == 4 and cov.literal == 1.0 and len(cov.bins) == 4
    far = bin_coverage(y, np.full(100, 0.8), np.full(100, 0.75), np.full(100, 0.85), n_bins=4)
    assert far.literal == 0.0 and far.noise_aware == 0.0
    assert bin_coverage([1.0], [0.5], [0.4], [0.6], n_bins=10).literal is None


def test_scores_closer_than_the_grid_rounding_still_give_valid_bands():
    """Found by the fit's property test: scores 1e-189 apart rounded onto one grid point (x not increasing)."""
    bands = bootstrap_bands([3e-189, 0.0, 1e-300], [0.0, 0.0, 1.0], _fit, n_boot=5)
    assert all(b > a for a, b in zip(bands.x, bands.x[1:]))
    assert Bands.from_dict(bands.to_dict()) == bands


def test_coverage_on_held_out_benchmark_fitting_answers():
    """The real fused fit (calibration.fitting.fit.fit_maps) on two thirds of the committed fitting-side records
    (calibration/records/calib, 1,600 benchmark answers), its ranges checked on the other third: 10 equal-count
    bins pooled over domains. Measured over 3 folds: literal 0.8, noise-aware 0.9 (nominal 0.9)."""
    import json
    from pathlib import Path

    from calibration.fitting.fit import as_records, fit_maps, fold_numbers

    folder = Path(__file__).resolve().parents[2] / "calibration" / "records" / "calib"
    records = [json.loads(line) for f in sorted(folder.glob("*.jsonl")) for line in f.read_text().splitlines()]
    records = [r for r in records if r.get("correct") is not None]
    folds = fold_numbers(records, k=3, seed=0)
    maps = fit_maps([r for r, f in zip(records, folds) if f != 0], model="m", prompt="p", signals="fused", n_boot=50)
    rows = []
    for r in as_records([r for r, f in zip(records, folds) if f == 0]):
        dmap = maps.map_for(r.domain)
        score = dmap.score(r.signals_or_stated())
        point = dmap(score)
        low, high = dmap.range(score, point)
        assert low <= point <= high
        rows.append((float(r.correct), point, low, high))
    cov = bin_coverage(*np.array(rows).T, n_bins=10)
    assert cov.noise_aware >= 0.7, cov
    assert cov.literal >= 0.5, cov
