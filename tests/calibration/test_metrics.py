"""Tests for assistant.calibrated.metrics: hand-computed values, edge cases, independent implementations."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, roc_auc_score

import assistant.calibrated.metrics as M


def test_doctests():
    result = doctest.testmod(M)
    assert result.attempted >= 11 and result.failed == 0


# (function, y_true, y_prob, kwargs, expected) — each computed by hand in the comment
HAND = [
    # bins (0.8,0.9]: conf .9 acc .5 (x2); (0.2,0.3]: conf .3 acc 1 (x2) -> (2*.4 + 2*.7)/4
    (M.expected_calibration_error, [1, 0, 1, 1], [0.9, 0.9, 0.3, 0.3], {}, 0.55),
    (M.maximum_calibration_error, [1, 0, 1, 1], [0.9, 0.9, 0.3, 0.3], {}, 0.7),
    # 1.0 sits in the top bin alone, 0.9 in the one below: |1-1|*1 + |0-.9|*1 over 2
    (M.expected_calibration_error, [1, 0], [1.0, 0.9], {}, 0.45),
    # with 2 bins, 0.5 is the top of the lower bin: bins {0.5} acc 0 and {1.0} acc 1
    (M.expected_calibration_error, [0, 1], [0.5, 1.0], {"n_bins": 2}, 0.25),
    # one bin: |mean conf .6 - acc .5|
    (M.expected_calibration_error, [1, 0], [0.8, 0.4], {"n_bins": 1}, 0.1),
    # equal mass, 2 bins: {.2,.4} acc .5 conf .3 -> .2 ; {.8,1} acc 1 conf .9 -> .1 ; mean .15
    (M.adaptive_calibration_error, [0, 1, 1, 1], [0.2, 0.4, 0.8, 1.0], {"n_bins": 2}, 0.15),
    # more bins than answers: every answer its own bin: (|1-.6| + |0-.2|)/2
    (M.adaptive_calibration_error, [1, 0], [0.6, 0.2], {}, 0.3),
    ((M.brier_score), [1, 0], [0.75, 0.5], {}, 0.15625),
    (M.brier_score, [1, 1, 0], [1.0, 1.0, 0.0], {}, 0.0),
    # pairs (pos, neg): (.6,.1)=1 (.6,.6)=.5 (.9,.1)=1 (.9,.6)=1 -> 3.5/4
    (M.auroc, [0, 0, 1, 1], [0.1, 0.6, 0.6, 0.9], {}, 0.875),
    (M.auroc, [1, 0], [0.2, 0.9], {}, 0.0),
    # AURC: coverage .5 risk 0, coverage 1 risk .5 -> .5*0 + .5*.5
    (M.aurc, [1, 0], [0.9, 0.1], {}, 0.25),
    # tie group {.9,.9} kept together: risk .5 over width .5; then 3/4 risk 1/3; then 1 risk .5
    (M.aurc, [1, 0, 1, 0], [0.9, 0.9, 0.5, 0.1], {}, 0.5 * 0.5 + 0.25 / 3 + 0.25 * 0.5),
    (M.overconfidence, [1, 0], [0.9, 0.9], {}, 0.4),
    (M.overconfidence, [1, 1], [0.5, 0.7], {}, -0.4),
    (M.selective_risk, [1, 0, 1, 0], [0.9, 0.8, 0.5, 0.1], {"threshold": 0.5}, 1 / 3),
    (M.coverage, [1, 0, 1, 0], [0.9, 0.8, 0.5, 0.1], {"threshold": 0.8}, 0.5),
]


@pytest.mark.parametrize("func, y, p, kwargs, expected", HAND)
def test_hand_computed(func, y, p, kwargs, expected):
    assert func(y, p, **kwargs) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("p, bin_lo", [(0.0, 0.0), (0.05, 0.0), (0.1, 0.0), (0.3, 0.2), (0.30001, 0.3),
                                       (0.7, 0.6), (0.9, 0.8), (0.95, 0.9), (1.0, 0.9)])
def test_bin_edges(p, bin_lo):
    (lo, _, count, conf, acc), = M.reliability_bins([1], [p])
    assert (lo, count, conf, acc) == (pytest.approx(bin_lo), 1, p, 1.0)


def test_empty_bins_are_skipped():
    bins = M.reliability_bins([1, 0, 1], [0.05, 0.95, 1.0])
    assert [(lo, c) for lo, _, c, _, _ in bins] == [(0.0, 1), (0.9, 2)]
    # ECE: (1*|1-.05| + 2*|.5-.975|)/3
    assert M.expected_calibration_error([1, 0, 1], [0.05, 0.95, 1.0]) == pytest.approx((0.95 + 2 * 0.475) / 3)


def test_single_class():
    assert math.isnan(M.auroc([1, 1, 1], [0.2, 0.5, 0.9]))
    assert isinstance(M.auroc([0, 0], [0.2, 0.5]), float)
    assert M.expected_calibration_error([1, 1], [1.0, 1.0]) == 0.0
    assert math.isnan(M.selective_risk([1, 0], [0.2, 0.3], 0.5))
    assert M.coverage([1, 0], [0.2, 0.3], 0.5) == 0.0


@pytest.mark.parametrize("y, p, kwargs, message", [
    ([1, 0], [0.5], {}, "different lengths"),
    ([], [], {}, "empty"),
    ([1], [1.2], {}, r"\[0, 1\]"),
    ([1], [-0.1], {}, r"\[0, 1\]"),
    ([1], [float("nan")], {}, "NaN"),
    ([2], [0.5], {}, "0/1"),
    ([[1]], [[0.5]], {}, "1-D"),
    ([1], [0.5], {"n_bins": 0}, "n_bins"),
])
def test_validation(y, p, kwargs, message):
    for func in (M.expected_calibration_error, M.adaptive_calibration_error, M.maximum_calibration_error):
        with pytest.raises(ValueError, match=message):
            func(y, p, **kwargs)
    if not kwargs:
        for func in (M.brier_score, M.auroc, M.aurc, M.overconfidence, M.reliability_bins):
            with pytest.raises(ValueError, match=message):
                func(y, p)


def test_return_types_are_plain():
    y, p = [1, 0, 1], [0.9, 0.4, 0.6]
    for func in (M.expected_calibration_error, M.adaptive_calibration_error, M.maximum_calibration_error,
                 M.brier_score, M.auroc, M.aurc, M.overconfidence):
        assert type(func(y, p)) is float
    assert all(type(v) in (float, int) for row in M.reliability_bins(y, p) for v in row)


def _loop_ece(y, p, n_bins):
    """Straightforward ECE, written independently: bins (lo, hi], the first also holding 0."""
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        members = [i for i in range(len(p)) if (lo < p[i] <= hi) or (b == 0 and p[i] == 0.0)]
        if members:
            acc = sum(y[i] for i in members) / len(members)
            conf = sum(p[i] for i in members) / len(members)
            total += len(members) * abs(acc - conf)
    return total / len(p)


def _loop_aurc(y, p):
    """Geifman's AURC for distinct confidences: mean over k of the error rate of the k most confident."""
    order = sorted(range(len(p)), key=lambda i: -p[i])
    errors, risks = 0, []
    for k, i in enumerate(order, 1):
        errors += 1 - y[i]
        risks.append(errors / k)
    return sum(risks) / len(risks)


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_independent_implementations(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    p = rng.random(n)
    y = (rng.random(n) < p**2).astype(int)
    y[:2] = [0, 1]  # both classes present
    assert M.auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert M.brier_score(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    for n_bins in (5, 10, 15):
        expected = _loop_ece(y, p, n_bins)
        assert M.expected_calibration_error(y, p, n_bins=n_bins) == pytest.approx(expected, abs=1e-12)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10)
    bins = M.reliability_bins(y, p, 10)
    assert np.allclose([b[4] for b in bins], prob_true) and np.allclose([b[3] for b in bins], prob_pred)
    assert M.aurc(y, p) == pytest.approx(_loop_aurc(y, p), abs=1e-12)
    # verbalized-style confidences (a 10% grid) with many ties, against sklearn and the loop
    q = rng.integers(0, 11, n) / 10
    assert M.auroc(y, q) == pytest.approx(roc_auc_score(y, q), abs=1e-12)
    assert M.expected_calibration_error(y, q) == pytest.approx(_loop_ece(y, q, 10), abs=1e-12)
    assert M.maximum_calibration_error(y, q) >= M.expected_calibration_error(y, q)


def test_risk_coverage_curve_is_order_independent():
    y = np.array([1, 0, 1, 0, 1, 1])
    p = np.array([0.9, 0.9, 0.9, 0.5, 0.5, 0.1])
    perm = np.array([5, 3, 1, 0, 4, 2])
    a, b = M.risk_coverage_curve(y, p), M.risk_coverage_curve(y[perm], p[perm])
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert a[0].tolist() == pytest.approx([0.5, 5 / 6, 1.0])
    assert a[1].tolist() == pytest.approx([1 / 3, 2 / 5, 2 / 6])


def test_ece_if_calibrated_is_exceeded_one_time_in_ten_by_right_figures_and_mostly_by_wrong_ones():
    """The noise level `calibrate report` names beside a missed ECE target: figures that are exactly
    right show a larger ECE about 10% of the time; on the same 60 answers, figures 20 points too high
    show one more than 3 times in 4 (this is all a set of 60 can tell)."""
    ece_if_calibrated, expected_calibration_error = M.ece_if_calibrated, M.expected_calibration_error
    rng = np.random.default_rng(3)
    right_over, wrong_over = 0, 0
    for _ in range(300):
        p = rng.uniform(0.05, 0.75, 60)
        level = ece_if_calibrated(p, draws=500, seed=int(rng.integers(1 << 30)))
        right_over += expected_calibration_error(rng.random(60) < p, p) > level
        wrong_over += expected_calibration_error(rng.random(60) < p, np.minimum(p + 0.2, 1.0)) > \
            ece_if_calibrated(np.minimum(p + 0.2, 1.0), draws=500)
    assert 0.05 <= right_over / 300 <= 0.15
    assert wrong_over / 300 >= 0.75
