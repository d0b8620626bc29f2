"""Calibration and selective-prediction metrics for binary correctness.

Every function takes `y_true` (1 = the answer was correct, 0 = wrong) and
`y_prob` (the stated or calibrated confidence in [0, 1]) and returns one fixed
type. Inputs are validated like `sklearn.calibration.calibration_curve`: a
length mismatch, an empty input, a non-binary label or a confidence outside
[0, 1] (NaN included) raises `ValueError`.

Equal-width bins are right-closed, ``(i/n, (i+1)/n]``, with the first bin also
holding 0.0, as in scikit-learn; so a confidence of exactly 1.0 lands in the
top bin, and the common verbalized values 0.1, 0.2, …, 0.9 each sit at the top
of their own bin instead of sharing one with the next value.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "expected_calibration_error",
    "ece_if_calibrated",
    "adaptive_calibration_error",
    "maximum_calibration_error",
    "brier_score",
    "auroc",
    "aurc",
    "risk_coverage_curve",
    "overconfidence",
    "reliability_bins",
    "selective_risk",
    "coverage",
]


def _check(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to 1-D float arrays (labels 0.0/1.0)."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_prob, dtype=float)
    if y.ndim != 1 or p.ndim != 1:
        raise ValueError(f"y_true and y_prob must be 1-D, got shapes {y.shape} and {p.shape}")
    if len(y) != len(p):
        raise ValueError(f"y_true and y_prob have different lengths: {len(y)} != {len(p)}")
    if len(y) == 0:
        raise ValueError("y_true and y_prob are empty")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y_true must contain only 0/1 (or False/True)")
    if not np.all((p >= 0) & (p <= 1)):  # NaN fails both comparisons
        raise ValueError("y_prob must lie in [0, 1] (no NaN)")
    return y, p


def _check_bins(n_bins: int) -> None:
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")


def _bin_ids(p: np.ndarray, n_bins: int) -> np.ndarray:
    # Edges k/n are correctly rounded, so p == 0.3 meets the edge 3/10 exactly
    # (np.linspace gives 0.30000000000000004 and would move 0.3 down a bin).
    edges = np.arange(1, n_bins) / n_bins
    return np.searchsorted(edges, p, side="left")


def reliability_bins(y_true, y_prob, n_bins: int = 10) -> list[tuple[float, float, int, float, float]]:
    """Per-bin counts, mean confidence and accuracy over equal-width bins.

    Parameters
    ----------
    y_true : array-like of {0, 1}
        1 where the answer was correct.
    y_prob : array-like of float in [0, 1]
        Confidence of each answer.
    n_bins : int, default 10
        Number of equal-width bins over [0, 1].

    Returns
    -------
    list of (lo, hi, count, mean_conf, accuracy)
        One tuple per non-empty bin, in increasing order; empty bins are left out.

    Examples
    --------
    >>> reliability_bins([1, 0, 1], [0.9, 0.9, 1.0], n_bins=2)
    [(0.5, 1.0, 3, 0.9333333333333332, 0.6666666666666666)]
    """
    y, p = _check(y_true, y_prob)
    _check_bins(n_bins)
    ids = _bin_ids(p, n_bins)
    out = []
    for b in np.unique(ids):
        mask = ids == b
        lo, hi = float(b / n_bins), float((b + 1) / n_bins)
        out.append((lo, hi, int(mask.sum()), float(p[mask].mean()), float(y[mask].mean())))
    return out


def expected_calibration_error(y_true, y_prob, *, n_bins: int = 10) -> float:
    """Expected calibration error over equal-width bins.

    The count-weighted mean of ``|accuracy - mean confidence|`` over the
    non-empty bins (empty bins are skipped). See the module docstring for
    where bin edges fall.

    Parameters
    ----------
    y_true : array-like of {0, 1}
    y_prob : array-like of float in [0, 1]
    n_bins : int, default 10

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> round(expected_calibration_error([1, 0, 1, 1], [0.9, 0.9, 0.3, 0.3]), 6)
    0.55
    """
    y, p = _check(y_true, y_prob)
    _check_bins(n_bins)
    gaps = [count * abs(acc - conf) for _, _, count, conf, acc in reliability_bins(y, p, n_bins)]
    return float(sum(gaps) / len(y))


def ece_if_calibrated(y_prob, *, n_bins: int = 10, level: float = 0.9, draws: int = 2000, seed: int = 0) -> float:
    """The ECE that these confidences would show `level` of the time or less if they were exactly right:
    outcomes drawn from the confidences themselves (answer i right with probability y_prob[i]), ECE
    computed on each draw (Bröcker & Smith 2007's consistency resampling). On a few dozen answers a
    perfectly calibrated figure shows an ECE of several points, so an ECE target below this cannot be
    told apart from noise on that set.

    >>> ece_if_calibrated([0.0] * 50 + [1.0] * 50)  # certain confidences leave nothing to chance
    0.0
    """
    p = np.asarray(y_prob, dtype=float)
    _check(np.zeros(len(p)), p)
    _check_bins(n_bins)
    onehot = np.eye(n_bins)[_bin_ids(p, n_bins)]  # answers × bins
    y = np.random.default_rng(seed).random((draws, len(p))) < p  # each draw: who is right
    gaps = np.abs((y - p) @ onehot).sum(axis=1) / len(p)
    return float(np.quantile(gaps, level))


def maximum_calibration_error(y_true, y_prob, *, n_bins: int = 10) -> float:
    """Largest ``|accuracy - mean confidence|`` over non-empty equal-width bins.

    Parameters
    ----------
    y_true : array-like of {0, 1}
    y_prob : array-like of float in [0, 1]
    n_bins : int, default 10

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> round(maximum_calibration_error([1, 0, 1, 1], [0.9, 0.9, 0.3, 0.3]), 6)
    0.7
    """
    y, p = _check(y_true, y_prob)
    _check_bins(n_bins)
    return float(max(abs(acc - conf) for _, _, _, conf, acc in reliability_bins(y, p, n_bins)))


def adaptive_calibration_error(y_true, y_prob, *, n_bins: int = 10) -> float:
    """Adaptive calibration error (ACE) over equal-mass bins.

    Answers are sorted by confidence and split into `n_bins` groups of (nearly)
    equal size (`numpy.array_split`; tied confidences may fall in neighbouring
    groups); ACE is the unweighted mean of ``|accuracy - mean confidence|`` over
    the non-empty groups (Nixon et al., 2019, for the single top-label class).

    Parameters
    ----------
    y_true : array-like of {0, 1}
    y_prob : array-like of float in [0, 1]
    n_bins : int, default 10

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> round(adaptive_calibration_error([0, 1, 1, 1], [0.2, 0.4, 0.8, 1.0], n_bins=2), 6)
    0.15
    """
    y, p = _check(y_true, y_prob)
    _check_bins(n_bins)
    order = np.argsort(p, kind="stable")
    groups = [g for g in np.array_split(order, n_bins) if len(g)]
    return float(np.mean([abs(y[g].mean() - p[g].mean()) for g in groups]))


def brier_score(y_true, y_prob) -> float:
    """Mean squared difference between confidence and correctness.

    Parameters
    ----------
    y_true : array-like of {0, 1}
    y_prob : array-like of float in [0, 1]

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> brier_score([1, 0], [0.75, 0.5])
    0.15625
    """
    y, p = _check(y_true, y_prob)
    return float(np.mean((p - y) ** 2))


def auroc(y_true, y_prob) -> float:
    """Area under the ROC curve of confidence as a predictor of correctness.

    The Mann–Whitney statistic with ties counted as one half: the chance that a
    random correct answer has a higher confidence than a random wrong one.

    Parameters
    ----------
    y_true : array-like of {0, 1}
    y_prob : array-like of float in [0, 1]

    Returns
    -------
    float in [0, 1], or ``nan`` when `y_true` holds a single class (the area
    is undefined; this never raises, so one-class domains can still be reported).

    Examples
    --------
    >>> auroc([0, 0, 1, 1], [0.1, 0.6, 0.6, 0.9])
    0.875
    >>> auroc([1, 1], [0.2, 0.9])
    nan
    """
    y, p = _check(y_true, y_prob)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(p)  # average ranks: ties count one half
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def risk_coverage_curve(y_true, y_prob) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Error rate among the answers kept at each confidence threshold.

    Parameters
    ----------
    y_true : array-like of {0, 1}
    y_prob : array-like of float in [0, 1]

    Returns
    -------
    coverage, risk, thresholds : ndarray
        For each distinct confidence `t` (decreasing), the share of answers with
        confidence >= t, and the error rate among them. Tied confidences are
        kept or dropped together, so the curve does not depend on input order.

    Examples
    --------
    >>> cov, risk, t = risk_coverage_curve([1, 0, 1, 0], [0.9, 0.9, 0.5, 0.1])
    >>> cov.tolist(), risk.tolist(), t.tolist()
    ([0.5, 0.75, 1.0], [0.5, 0.3333333333333333, 0.5], [0.9, 0.5, 0.1])
    """
    y, p = _check(y_true, y_prob)
    order = np.argsort(-p, kind="stable")
    p_sorted, errors = p[order], np.cumsum(1 - y[order])
    # the last position of each run of equal confidences
    ends = np.flatnonzero(np.append(p_sorted[1:] != p_sorted[:-1], True))
    kept = ends + 1
    return kept / len(y), errors[ends] / kept, p_sorted[ends]


def aurc(y_true, y_prob) -> float:
    """Area under the risk–coverage curve (lower is better).

    The mean, over all answers taken from most to least confident, of the error
    rate among the answers kept so far (Geifman et al., 2019); answers with tied
    confidence share the risk of keeping the whole tie group.

    Parameters
    ----------
    y_true : array-like of {0, 1}
    y_prob : array-like of float in [0, 1]

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> round(aurc([1, 0], [0.9, 0.1]), 6)
    0.25
    """
    cov, risk, _ = risk_coverage_curve(y_true, y_prob)
    widths = np.diff(np.concatenate([[0.0], cov]))
    return float(np.sum(widths * risk))


def overconfidence(y_true, y_prob) -> float:
    """Mean confidence minus accuracy (signed; > 0 means overconfident).

    Parameters
    ----------
    y_true : array-like of {0, 1}
    y_prob : array-like of float in [0, 1]

    Returns
    -------
    float in [-1, 1]

    Examples
    --------
    >>> overconfidence([1, 0], [0.9, 0.9])
    0.4
    """
    y, p = _check(y_true, y_prob)
    return float(p.mean() - y.mean())


def coverage(y_true, y_prob, threshold: float) -> float:
    """Share of answers with confidence >= `threshold` (the ones not flagged).

    Parameters
    ----------
    y_true : array-like of {0, 1}
    y_prob : array-like of float in [0, 1]
    threshold : float

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> coverage([1, 0, 1, 0], [0.9, 0.8, 0.5, 0.1], 0.8)
    0.5
    """
    _, p = _check(y_true, y_prob)
    return float(np.mean(p >= threshold))


def selective_risk(y_true, y_prob, threshold: float) -> float:
    """Error rate among answers with confidence >= `threshold`.

    Parameters
    ----------
    y_true : array-like of {0, 1}
    y_prob : array-like of float in [0, 1]
    threshold : float

    Returns
    -------
    float in [0, 1], or ``nan`` when no answer reaches the threshold.

    Examples
    --------
    >>> selective_risk([1, 0, 1, 0], [0.9, 0.8, 0.5, 0.1], 0.5)
    0.3333333333333333
    """
    y, p = _check(y_true, y_prob)
    kept = p >= threshold
    return float(np.mean(1 - y[kept])) if kept.any() else float("nan")
