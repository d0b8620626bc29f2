"""The review threshold and its guarantee: among answers the app does not flag, the share that is
wrong stays at or below a target risk, with a stated confidence level.

`review_threshold` tests candidate thresholds on held-out answers in a fixed order (Learn Then
Test; Angelopoulos et al. 2021) with a one-sided Clopper–Pearson bound on each one's error rate,
and keeps the lowest that passes. `candidate_thresholds` picks that order from the fitting
answers alone, so the test never depends on the outcomes it tests.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["candidate_thresholds", "clopper_pearson_upper", "review_threshold"]

def clopper_pearson_upper(errors: int, n: int, delta: float) -> float:
    """One-sided Clopper–Pearson upper bound on an error rate at confidence level 1 - delta.

    Parameters
    ----------
    errors, n : int
        Observed errors among `n` answers.
    delta : float
        Allowed probability that the true rate exceeds the bound.

    Returns
    -------
    float in [0, 1]; 1.0 when n == 0 (no data bounds nothing).

    Examples
    --------
    >>> round(clopper_pearson_upper(0, 29, 0.05), 4)
    0.0981
    """
    from scipy.stats import beta

    if n == 0 or errors >= n:
        return 1.0
    return float(beta.ppf(1 - delta, errors + 1, n - errors))


def review_threshold(y_true, confidence, *, target_risk: float = 0.1, delta: float = 0.05,
                     candidates=None) -> dict:
    """The lowest calibrated-confidence threshold that fixed-sequence testing certifies.

    Answers with calibrated confidence >= t are kept (not flagged). The distinct
    confidences are tested from the highest down (Learn-then-Test, Angelopoulos et al.
    2021): t passes when the one-sided Clopper–Pearson upper bound (level 1 - delta) on
    the error rate of the answers it keeps is <= `target_risk`, which is the binomial test
    of "risk > target" at level delta; the scan stops at the first t that fails. Testing
    in a fixed order and stopping there controls the chance that *any* accepted t has a
    true risk above the target at delta, so the chosen (lowest accepted) threshold keeps
    its guarantee, provided `y_true`/`confidence` were not used to fit the map
    (`fit_maps` holds a share of the records out for this). When the highest candidate
    already fails, the threshold is 1.0, which `DomainMap.needs_review` reads as "flag
    everything". Since 1.0 is reserved for that, a qualifying candidate of exactly 1.0
    becomes the midpoint between 1.0 and the next lower candidate (keeping the same
    answers), or 0.0 when every answer has confidence 1.0.

    `candidates` fixes the thresholds to test (default: every distinct confidence). The
    sequence must not depend on these records' outcomes; `fit_maps` takes it from the
    fitting records, leaving out thresholds that keep too few answers to ever pass (from
    the very top a fine grid would stop at once: one kept answer never passes).

    Returns
    -------
    dict with ``threshold``, ``coverage`` (share kept), ``risk_ucb`` (bound at
    the threshold; 1.0 when nothing is kept), ``selective_risk`` (observed
    error rate of the kept answers; None when nothing is kept) and ``n_checked``
    (answers the test saw).

    Examples
    --------
    >>> review_threshold([1] * 29 + [0], [0.9] * 29 + [0.2])["threshold"]
    0.9
    """
    y = np.asarray(y_true, dtype=float)
    c = np.asarray(confidence, dtype=float)
    best = {"threshold": 1.0, "coverage": 0.0, "risk_ucb": 1.0, "selective_risk": None, "n_checked": len(c)}
    candidates = np.unique(c if candidates is None else np.asarray(candidates, dtype=float))[::-1]
    for i, t in enumerate(candidates):
        kept = c >= t
        errors, n = int(np.sum(1 - y[kept])), int(kept.sum())
        ucb = clopper_pearson_upper(errors, n, delta)
        if ucb > target_risk:
            break  # fixed-sequence testing: the first failure ends the scan
        if t >= 1.0:  # 1.0 means "flag everything"; any value above the next candidate keeps the same set
            t = (1.0 + candidates[i + 1]) / 2 if i + 1 < len(candidates) else 0.0
        best = {"threshold": float(t), "coverage": n / len(c), "risk_ucb": ucb, "selective_risk": errors / n,
                "n_checked": len(c)}
    return best


def candidate_thresholds(fitted: np.ndarray, n_held: int, target_risk: float, delta: float) -> np.ndarray:
    """Thresholds worth testing on `n_held` held-out answers, chosen from the fitting records only:
    the distinct calibrated values expected to keep three times as many held-out answers as the
    smallest set that could pass with no error at all, n >= log(delta) / log(1 - target_risk).
    (At exactly that size one error, or a slightly smaller sample, fails the first test and so
    ends the whole sequence; three times leaves room for both.)"""
    needed = 3 * math.log(delta) / math.log(1 - target_risk) if 0 < target_risk < 1 else 1.0
    values = np.unique(fitted)
    kept_share = np.array([(fitted >= v).mean() for v in values])
    return values[kept_share * n_held >= needed]
