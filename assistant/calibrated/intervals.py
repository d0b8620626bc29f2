"""A range on the calibrated figure: how sure the figure itself is ("35% (22–49%)").

The calibrated confidence is a fitted map's reading at one score; the map rests on a finite
number of checked answers, so the figure is itself an estimate. `bootstrap_bands` measures that
at fit time, on a grid of scores:

- a bootstrap of the map: the fitting answers are resampled with replacement `n_boot` times,
  the same map-fitting function is refitted on each resample, and the (1 - level) / 2 and
  (1 + level) / 2 quantiles of the refitted maps are kept at each grid score;
- a floor for where the bootstrap cannot vary: a Jeffreys interval (Beta(k + 1/2, n - k + 1/2))
  for a rate at the map's value from the answers whose score lies near the grid score (within
  `WINDOW` of it in the fitting scores' own ranks). Where every nearby answer was wrong the
  bootstrap says 0% exactly; from 40 wrong answers the rate may still be up to about 5%.

The wider of the two is stored (`Bands`, numbers only, in the map file). A domain fitted on few
answers gets wide bands, a well-supported region narrow ones. `Bands.at` reads them live, and
`widen` stretches a range for a question unlike the fitting questions (assistant.calibrated.ood): the map
may not hold there at all, so the range grows with how far beyond the threshold it is.

`bin_coverage` checks the ranges on held-out answers: equal-count bins of held-out answers, the
share of bins whose accuracy lies inside the bins' mean stated range (`literal`), and the share
inside the range widened by the bin's own sampling error (`noise_aware`; the range is for the
rate, a bin of 30 answers scatters around its rate by up to ±15 points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from assistant.core.validate import is_finite, is_unit, is_whole

__all__ = ["NOMINAL", "WINDOW", "N_BOOT", "Bands", "bootstrap_bands", "jeffreys", "widen", "bin_coverage"]

NOMINAL = 0.9  # the level every stated range is computed at: the true rate lies inside 9 times in 10
WINDOW = 0.1  # the Jeffreys floor counts the answers within this share of the fitting scores' ranks
GRID = 41  # grid scores: this many quantiles of the fitting scores, plus 0 and 1
N_BOOT = 100  # bootstrap resamples per map

FitMap = Callable[[np.ndarray, np.ndarray, np.ndarray | None], tuple]  # (scores, outcomes, weights) -> (x, y knots)


def jeffreys(rate, n, level: float = NOMINAL) -> tuple[np.ndarray, np.ndarray]:
    """The Jeffreys interval of a rate seen as `rate` among `n` answers (arrays or numbers).

    >>> lo, hi = jeffreys(0.0, 40)
    >>> float(lo), round(float(hi), 3)
    (0.0, 0.047)
    >>> [round(float(v), 2) for v in jeffreys(0.5, 100)]
    [0.42, 0.58]
    """
    from scipy.stats import beta

    rate, n = np.asarray(rate, dtype=float), np.asarray(n, dtype=float)
    k = rate * n
    lo = np.where(k > 0, beta.ppf((1 - level) / 2, k + 0.5, n - k + 0.5), 0.0)
    hi = np.where(k < n, beta.ppf((1 + level) / 2, k + 0.5, n - k + 0.5), 1.0)
    return lo, hi


@dataclass(frozen=True)
class Bands:
    """Lower and upper ends of the stated range, at grid scores (apply light: numpy only)."""

    x: tuple[float, ...]  # grid scores, strictly increasing, in [0, 1]
    lower: tuple[float, ...]  # lower end of the range at each grid score
    upper: tuple[float, ...]  # upper end of the range at each grid score
    level: float = NOMINAL  # nominal coverage of the range
    n_boot: int = 0  # bootstrap resamples behind the bands
    n: int = 0  # fitting answers behind the bands

    def at(self, score: float, point: float) -> tuple[float, float]:
        """(low, high) of the figure `point` read at fused score `score`; low <= point <= high.

        >>> b = Bands((0.0, 1.0), (0.1, 0.5), (0.3, 0.9))
        >>> b.at(0.5, 0.4)
        (0.3, 0.6)
        """
        s = min(max(float(score), 0.0), 1.0)
        lo = float(np.interp(s, self.x, self.lower))
        hi = float(np.interp(s, self.x, self.upper))
        return round(min(lo, point), 4), round(max(hi, point), 4)

    def to_dict(self) -> dict:
        return {"level": self.level, "n_boot": self.n_boot, "n": self.n, "x": list(self.x),
                "lower": list(self.lower), "upper": list(self.upper)}

    @classmethod
    def from_dict(cls, data) -> "Bands":
        """Build from the map-file form; ValueError says what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("must be an object with level, x, lower and upper")
        arrays = {}
        for name in ("x", "lower", "upper"):
            values = data.get(name)
            if not isinstance(values, list) or not values or not all(map(is_unit, values)):
                raise ValueError(f"{name} must be a non-empty list of numbers in [0, 1]")
            arrays[name] = tuple(float(v) for v in values)
        if not len(arrays["x"]) == len(arrays["lower"]) == len(arrays["upper"]):
            raise ValueError("x, lower and upper must be equally long")
        if any(b <= a for a, b in zip(arrays["x"], arrays["x"][1:])):
            raise ValueError("x must be strictly increasing")
        if any(lo > hi for lo, hi in zip(arrays["lower"], arrays["upper"])):
            raise ValueError("lower must not exceed upper")
        level = data.get("level")
        if not is_finite(level) or not 0 < level < 1:
            raise ValueError(f"level must be a number strictly between 0 and 1, got {level!r}")
        counts = {k: data.get(k, 0) for k in ("n_boot", "n")}
        if not all(map(is_whole, counts.values())):
            raise ValueError("n_boot and n must be whole numbers >= 0")
        return cls(arrays["x"], arrays["lower"], arrays["upper"], float(level), **counts)


def _local_counts(p: np.ndarray, grid: np.ndarray, window: float) -> np.ndarray:
    """How many fitting scores lie within `window` of each grid score, in the scores' own ranks."""
    ranks = np.searchsorted(np.sort(p), grid, side="left") / len(p)
    lo, hi = np.clip(ranks - window, 0, 1), np.clip(ranks + window, 0, 1)
    return np.maximum(np.round((hi - lo) * len(p)), 1.0)


def bootstrap_bands(p, y, fit_map: FitMap, *, weights=None, level: float = NOMINAL, n_boot: int = N_BOOT,
                    seed: int = 0, window: float = WINDOW) -> Bands:
    """The stated range at grid scores for the map `fit_map(p, y, weights)` (see the module docstring).

    `fit_map` must be the function that fitted the map itself (isotonic, blended, shrunk, weighted:
    as the fit does it), so the bootstrap varies what the fit varies; each resample passes its
    records' `weights` (None: equal weights).

    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=400); y = (rng.uniform(size=400) < p).astype(float)
    >>> from assistant.calibrated.isotonic import IsotonicCalibrator
    >>> def fit(p, y, w):
    ...     c = IsotonicCalibrator().fit(p, y)
    ...     return c.x_thresholds_, c.y_thresholds_
    >>> b = bootstrap_bands(p, y, fit, n_boot=50)
    >>> lo, hi = b.at(0.5, 0.5)
    >>> lo < 0.5 < hi and hi - lo < 0.4
    True
    """
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    if p.ndim != 1 or p.shape != y.shape or len(p) == 0:
        raise ValueError(f"p and y must be 1-D, non-empty and equally long, got {p.shape} and {y.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    grid = np.unique(np.round(np.concatenate([[0.0, 1.0], np.quantile(p, np.linspace(0, 1, GRID))]), 6))
    w = None if weights is None else np.asarray(weights, dtype=float)
    point = np.interp(grid, *fit_map(p, y, w))
    rng = np.random.default_rng(seed)
    curves = np.empty((n_boot, len(grid)))
    for b in range(n_boot):
        idx = rng.integers(0, len(p), len(p))
        curves[b] = np.interp(grid, *fit_map(p[idx], y[idx], None if w is None else w[idx]))
    if n_boot:
        boot_lo, boot_hi = np.quantile(curves, [(1 - level) / 2, (1 + level) / 2], axis=0)
    else:
        boot_lo, boot_hi = point, point
    floor_lo, floor_hi = jeffreys(np.clip(point, 0, 1), _local_counts(p, grid, window), level)
    lower = np.clip(np.minimum.reduce([boot_lo, floor_lo, point]), 0, 1)
    upper = np.clip(np.maximum.reduce([boot_hi, floor_hi, point]), 0, 1)
    return Bands(tuple(grid.tolist()), tuple(np.round(lower, 4).tolist()),
                 tuple(np.round(upper, 4).tolist()), float(level), int(n_boot), len(p))


def widen(point: float, low: float, high: float, factor: float) -> tuple[float, float]:
    """The range (low, high) around `point` stretched by `factor` (>= 1) on each side, within [0, 1].

    >>> widen(0.3, 0.2, 0.4, 2.0)
    (0.1, 0.5)
    >>> widen(0.3, 0.2, 0.4, 1.0)
    (0.2, 0.4)
    """
    factor = max(float(factor), 1.0)
    return (round(max(point - factor * (point - low), 0.0), 4), round(min(point + factor * (high - point), 1.0), 4))


@dataclass(frozen=True)
class Coverage:
    """How often held-out bins' accuracy fell inside the stated ranges (see `bin_coverage`)."""

    n_bins: int  # bins of held-out answers
    literal: float | None  # share of bins whose accuracy lies inside the bin's mean stated range
    noise_aware: float | None  # share inside that range widened by the bin's own sampling error
    level: float  # the ranges' nominal level
    bins: tuple = ()  # (n, accuracy, mean confidence, mean low, mean high) per bin


def bin_coverage(y, conf, low, high, *, n_bins: int = 10, level: float = NOMINAL) -> Coverage:
    """Coverage of stated ranges on held-out answers: `n_bins` equal-count bins by calibrated
    confidence `conf`; a bin is inside when its accuracy lies within [mean low, mean high]
    (`literal`), or within that range widened by the bin's sampling error at `level`
    (`noise_aware`: half-width sqrt(h² + (z·se)²), h the stated half-width on that side,
    se = sqrt(c(1 - c) / n) at the bin's mean confidence c).

    >>> c = bin_coverage([1, 0] * 50, [0.5] * 100, [0.4] * 100, [0.6] * 100, n_bins=2)
    >>> c.literal, c.noise_aware
    (1.0, 1.0)
    """
    from scipy.stats import norm

    arrays = [np.asarray(a, dtype=float) for a in (y, conf, low, high)]
    keep = np.all([~np.isnan(a) for a in arrays], axis=0)
    y, conf, low, high = (a[keep] for a in arrays)
    if len(y) < n_bins or n_bins < 1:
        return Coverage(0, None, None, level)
    z = float(norm.ppf((1 + level) / 2))
    rows, literal, aware = [], 0, 0
    for idx in np.array_split(np.argsort(conf, kind="stable"), n_bins):
        acc, c, lo, hi = (float(a[idx].mean()) for a in (y, conf, low, high))
        se = math.sqrt(max(c * (1 - c), 1e-6) / len(idx))
        half = (c - lo) if acc < c else (hi - c)
        literal += lo - 1e-9 <= acc <= hi + 1e-9
        aware += abs(acc - c) <= math.sqrt(half ** 2 + (z * se) ** 2) + 1e-9
        rows.append((len(idx), acc, c, lo, hi))
    return Coverage(n_bins, literal / n_bins, aware / n_bins, level, tuple(rows))
