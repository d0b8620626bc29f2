"""One map's knots from scores and outcomes: isotonic regression, blended with Platt scaling for a
fused map, shrunk toward the general map for a small stated-confidence domain.

`map_knots` is the whole fit of one map's curve; `calibration.fitting.fit` fits every map with it, and
`assistant.calibrated.intervals.bootstrap_bands` refits it on resamples for the range on the figures.
"""

from __future__ import annotations

import math

import numpy as np

from assistant.calibrated.isotonic import IsotonicCalibrator
from assistant.calibrated.maps import DomainMap
from calibration.fitting.fusion_fit import logistic_fit

__all__ = ["PLATT_K", "map_knots", "platt_blend", "shrink_to_general"]

PLATT_K = 20  # a fused map is isotonic with weight m / (m + PLATT_K), m the rarer outcome's count


def shrink_to_general(domain: DomainMap | tuple, general: DomainMap | tuple, weight: float) -> tuple:
    """Blend two monotone maps: ``weight * domain(x) + (1 - weight) * general(x)``.

    Evaluated on the union of both maps' knots; both maps are linear between
    those knots, so the blend is exact there. A convex combination of
    non-decreasing maps is non-decreasing, and stays in [0, 1].

    Returns
    -------
    (x, y) : tuple of float tuples
    """
    dx, dy = (domain.x, domain.y) if isinstance(domain, DomainMap) else domain
    gx, gy = (general.x, general.y) if isinstance(general, DomainMap) else general
    x = np.union1d(dx, gx)
    y = weight * np.interp(x, dx, dy) + (1 - weight) * np.interp(x, gx, gy)
    y = np.clip(np.maximum.accumulate(y), 0.0, 1.0)  # guard against rounding; a no-op in exact arithmetic
    return tuple(x.tolist()), tuple(y.tolist())


def platt_blend(p, y, x, yk, w=None) -> tuple[tuple, tuple]:
    """The isotonic knots (x, yk) blended with a one-variable logistic fit on logit(p) (Platt scaling):
    ``w * isotonic + (1 - w) * platt``, ``w = m / (m + PLATT_K)`` for m the rarer outcome's count.

    With few right (or wrong) answers isotonic regression pools nearly everything into one flat
    block, and the ties throw away the score's ranking; the logistic part rises strictly (its slope
    is kept >= 0), so the blend stays monotone and keeps the ranking while the isotonic part takes
    over as data grow. Evaluated on a grid of the scores' quantiles plus the isotonic knots."""
    right = int(y.sum())
    m = min(right, len(y) - right)
    if m == 0:
        return x, yk
    z = np.log(np.clip(p, 1e-4, 1 - 1e-4) / (1 - np.clip(p, 1e-4, 1 - 1e-4)))
    weights = np.ones(len(y)) if w is None else np.asarray(w, dtype=float)
    # scikit-learn's LogisticRegression(C=1): an L2 pull of 1/2 on the slope against the summed log loss
    a, b = logistic_fit(np.column_stack([np.ones(len(z)), z]), y, weights,
                        np.array([0.0, 1.0 / weights.sum()]), np.zeros(2)).tolist()
    if b < 0:  # the score ranks backwards here: no slope, just the base rate (the map must not fall)
        a, b = math.log(right / (len(y) - right)), 0.0
    grid = np.unique(np.concatenate([[0.0, 1.0], np.quantile(p, np.linspace(0, 1, 41)), x]))
    zg = np.log(np.clip(grid, 1e-4, 1 - 1e-4) / (1 - np.clip(grid, 1e-4, 1 - 1e-4)))
    w = m / (m + PLATT_K)
    blended = w * np.interp(grid, x, yk) + (1 - w) / (1 + np.exp(-(a + b * zg)))
    blended = np.clip(np.maximum.accumulate(blended), 0.0, 1.0)
    return tuple(grid.tolist()), tuple(blended.tolist())


def map_knots(p, y, w, *, strict, combiner, general, weight) -> tuple[tuple, tuple]:
    """One map's knots fitted on (p, y) weighted by `w` (None: equal): isotonic, blended with Platt
    scaling for a fused map (`platt_blend`), shrunk toward `general` when `weight` < 1."""
    cal = IsotonicCalibrator(strict=strict).fit(p, y, sample_weight=w)
    x, yk = tuple(cal.x_thresholds_.tolist()), tuple(cal.y_thresholds_.tolist())
    if combiner is not None:
        x, yk = platt_blend(p, y, x, yk, w)
    if general is not None and weight < 1.0:
        x, yk = shrink_to_general((x, yk), general, weight)
    return x, yk
