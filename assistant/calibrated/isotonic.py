"""The isotonic calibrator: a monotone map from a confidence score to the observed rate of right answers."""

from __future__ import annotations

import numpy as np

__all__ = ["IsotonicCalibrator"]


class IsotonicCalibrator:
    """Monotone map from raw confidence to the observed rate of correct answers.

    Follows scikit-learn: `__init__` stores parameters, `fit(p, y)` returns
    self, learned knots are `x_thresholds_` (strictly increasing) and
    `y_thresholds_` (non-decreasing), and `predict` interpolates linearly
    between knots, clipping inputs to the knot range and outputs to [0, 1].

    With ``strict=False`` the knots are those of
    ``sklearn.isotonic.IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1)``:
    pooled blocks are flat, so distinct raw confidences collapse into ties.
    With ``strict=True`` (default) each pooled block is replaced by one knot at
    its count-weighted mean x (centred isotonic regression, Oron & Flournoy
    2017), so the map rises strictly between the first and last block centre
    and keeps the ranking of distinct confidences, which AUROC and thresholds
    need; outside the centres it stays flat at the end blocks' values.
    When every training confidence is equal the map is constant, with knots
    at 0 and 1 so that every map has at least two knots.
    """

    def __init__(self, strict: bool = True):
        self.strict = strict

    def fit(self, p, y, sample_weight=None) -> IsotonicCalibrator:
        """Fit on raw confidences `p` in [0, 1] and outcomes `y` in [0, 1] (1 = correct), each weighted
        by `sample_weight` (positive; None: equal)."""
        from sklearn.isotonic import IsotonicRegression

        p = np.asarray(p, dtype=float)
        y = np.asarray(y, dtype=float)
        if p.ndim != 1 or p.shape != y.shape or len(p) == 0:
            raise ValueError(f"p and y must be 1-D, non-empty and equally long, got {p.shape} and {y.shape}")
        if not (np.all((p >= 0) & (p <= 1)) and np.all((y >= 0) & (y <= 1))):
            raise ValueError("p and y must lie in [0, 1] (no NaN)")
        w = np.ones_like(p) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if w.shape != p.shape or not np.all(w > 0):
            raise ValueError("sample_weight must hold one positive weight per confidence")
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True).fit(p, y, sample_weight=w)
        if not self.strict:
            x_knots, y_knots = iso.X_thresholds_, iso.y_thresholds_
        else:
            x_knots, y_knots = _centred_knots(p, iso.predict(np.unique(p)), w)
        if len(x_knots) < 2:
            x_knots, y_knots = np.array([0.0, 1.0]), np.repeat(y_knots[:1], 2)
        self.x_thresholds_ = np.asarray(x_knots, dtype=float)
        self.y_thresholds_ = np.clip(np.asarray(y_knots, dtype=float), 0.0, 1.0)
        return self

    def predict(self, p) -> np.ndarray:
        """Calibrated confidence for each raw confidence; NaN raises ValueError."""
        if not hasattr(self, "x_thresholds_"):
            raise ValueError("IsotonicCalibrator is not fitted; call fit(p, y) first")
        p = np.asarray(p, dtype=float)
        if np.isnan(p).any():
            raise ValueError("p contains NaN")
        return np.clip(np.interp(np.clip(p, 0.0, 1.0), self.x_thresholds_, self.y_thresholds_), 0.0, 1.0)


def _centred_knots(p: np.ndarray, fitted: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One knot per block of equal fitted values, at the block's weighted mean x (`w`: each p's weight)."""
    ux, inverse = np.unique(p, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=w)
    starts = np.flatnonzero(np.concatenate([[True], fitted[1:] != fitted[:-1]]))
    ends = np.append(starts[1:], len(ux))
    # a one-value block keeps its x exactly (an average can be off by one ulp and make near-duplicate knots)
    xs = [ux[s] if e - s == 1 else np.average(ux[s:e], weights=counts[s:e]) for s, e in zip(starts, ends)]
    ys = [fitted[s] for s in starts]
    # keep the map's domain equal to the data range: flat from the data's ends to the end centres
    if xs[0] > ux[0]:
        xs, ys = [ux[0], *xs], [ys[0], *ys]
    if xs[-1] < ux[-1]:
        xs, ys = [*xs, ux[-1]], [*ys, ys[-1]]
    return np.array(xs), np.array(ys)
