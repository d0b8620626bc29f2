"""Fuse an answer's confidence signals into one score per domain: a logistic regression on a few
features of them, whose output then goes through the domain's isotonic map.

Signals come as a dict keyed by `assistant.core.signals.SIGNAL_NAMES` (None where missing).
Features, each standardised with the training mean and scale:

- `verbal_logit`: logit of the model's own confidence (stated_ev, else probe_ev, else stated);
- `verbal_missing`, `verbal_from_probe`: where that confidence came from;
- `answer_mean_logp`, `answer_min_logp`, `answer_first_logp`: token log probabilities inside
  the answer, and `answer_missing` when there are none.

A missing value takes the training mean, so it adds nothing beyond its indicator; an answer
with no signal at all scores the domain's accuracy on such answers. The combiner is stored
as JSON in the map file (`Combiner.to_dict`); applying it needs only numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assistant.core.signals import VERBAL_ORDER

__all__ = ["FEATURES", "SIGNAL_COLUMNS", "Combiner", "feature_matrix", "fit_combiner", "signal_matrix"]

FEATURES = ("verbal_logit", "verbal_missing", "verbal_from_probe", "answer_mean_logp", "answer_min_logp",
            "answer_first_logp", "answer_missing")
_MISSING = float("nan")


def _verbal(signals: dict) -> tuple[float | None, bool]:
    """(the best verbal reading, whether it came from the probe), in assistant.core.signals.VERBAL_ORDER."""
    for name in VERBAL_ORDER:
        value = signals.get(name)
        if value is not None:
            return float(value), name == "probe_ev"
    return None, False


def _logit(p: float) -> float:
    p = min(max(p, 0.02), 0.98)
    return math.log(p / (1 - p))


def _row(signals: dict) -> list[float]:
    signals = signals or {}
    verbal, from_probe = _verbal(signals)
    answer = [signals.get(name) for name in ("answer_mean_logp", "answer_min_logp", "answer_first_logp")]
    return [
        _MISSING if verbal is None else _logit(verbal),
        float(verbal is None),
        float(from_probe),
        *[_MISSING if v is None else float(v) for v in answer],
        float(answer[0] is None),
    ]


# Signals reports rank answers by, one column each ("verbal": the best verbal reading, as fused).
SIGNAL_COLUMNS = ("stated", "stated_ev", "probe_ev", "verbal", "answer_mean_logp", "answer_min_logp",
                  "answer_first_logp")


def signal_matrix(signal_dicts) -> np.ndarray:
    """signals × SIGNAL_COLUMNS in [0, 1], NaN where missing (log probabilities as probabilities,
    which ranks the same)."""
    rows = []
    for signals in signal_dicts:
        signals = signals or {}
        row = []
        for name in SIGNAL_COLUMNS:
            value = _verbal(signals)[0] if name == "verbal" else signals.get(name)
            if value is not None and name.endswith("_logp"):
                value = math.exp(min(float(value), 0.0))
            row.append(np.nan if value is None else float(value))
        rows.append(row)
    return np.array(rows, dtype=float).reshape(-1, len(SIGNAL_COLUMNS))


def feature_matrix(signal_dicts) -> np.ndarray:
    """One row of raw FEATURES per signals dict (NaN where a signal is missing)."""
    return np.array([_row(s) for s in signal_dicts], dtype=float).reshape(-1, len(FEATURES))


@dataclass(frozen=True)
class Combiner:
    """p = sigmoid(intercept + coef · (features - mean) / scale), missing features at their mean."""

    mean: tuple[float, ...]  # training mean of each feature (over present values)
    scale: tuple[float, ...]  # training standard deviation (1 where constant)
    coef: tuple[float, ...]  # logistic-regression weights on the standardised features
    intercept: float
    features: tuple[str, ...] = FEATURES

    def __call__(self, signals: dict) -> float:
        """The fused score in (0, 1) of one answer's signals."""
        return float(self.scores([signals])[0])

    def scores(self, signal_dicts) -> np.ndarray:
        x = feature_matrix(signal_dicts)
        mean, scale = np.array(self.mean), np.array(self.scale)
        z = np.where(np.isnan(x), 0.0, (x - mean) / scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.array(self.coef) + self.intercept)))

    @classmethod
    def verbal_only(cls) -> "Combiner":
        """The fixed combiner for a domain with too few outcomes to learn weights: the score is the
        model's own confidence reading (clipped to [0.02, 0.98]; 0.5 where there is none), so its
        ranking is kept and the domain's map calibrates it."""
        n = len(FEATURES)
        return cls((0.0,) * n, (1.0,) * n, (1.0,) + (0.0,) * (n - 1), 0.0)

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "coef": list(self.coef), "intercept": self.intercept}

    @classmethod
    def from_dict(cls, data: dict) -> "Combiner":
        """Build from the map-file form; ValueError names what is wrong."""
        if not isinstance(data, dict) or tuple(data.get("features", ())) != FEATURES:
            raise ValueError(f"combiner features must be {list(FEATURES)}")
        parts = {}
        for name in ("mean", "scale", "coef"):
            values = data.get(name)
            if (not isinstance(values, list) or len(values) != len(FEATURES)
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                               for v in values)):
                raise ValueError(f"combiner {name} must be {len(FEATURES)} finite numbers")
            parts[name] = tuple(float(v) for v in values)
        if any(v <= 0 for v in parts["scale"]):
            raise ValueError("combiner scale values must be positive")
        b = data.get("intercept")
        if not isinstance(b, (int, float)) or isinstance(b, bool) or not math.isfinite(b):
            raise ValueError("combiner intercept must be a finite number")
        return cls(parts["mean"], parts["scale"], parts["coef"], float(b))


# Feature subsets a fit chooses between by cross-validated log loss (the larger one only when it
# beats the smaller by more than a standard error: with few right or wrong answers the answer-token
# features add more noise than signal).
SUBSETS = {"verbal": FEATURES[:3], "all": FEATURES}


def fit_combiner(signal_dicts, y, *, seed: int = 0) -> Combiner:
    """Logistic regression of correctness `y` on FEATURES of `signal_dicts`: the L2 strength by 5-fold
    cross-validated log loss, and the feature subset (SUBSETS) by the one-standard-error rule on it.
    With fewer than 5 right or 5 wrong answers the combiner is the constant base rate."""
    x = feature_matrix(signal_dicts)
    y = np.asarray(y, dtype=float)
    present = ~np.isnan(x)
    counts = present.sum(axis=0)
    mean = np.where(counts > 0, np.nansum(np.where(present, x, 0.0), axis=0) / np.maximum(counts, 1), 0.0)
    filled = np.where(present, x, mean)
    scale = filled.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    z = (filled - mean) / scale
    positives = int(y.sum())
    if min(positives, len(y) - positives) < 5:
        rate = (positives + 0.5) / (len(y) + 1.0)
        return Combiner(tuple(mean), tuple(scale), (0.0,) * len(FEATURES), math.log(rate / (1 - rate)))
    import warnings

    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    fits = []
    for names in SUBSETS.values():  # smallest first
        columns = [FEATURES.index(n) for n in names]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # scikit-learn 1.8's notices about 1.10 defaults
            model = LogisticRegressionCV(Cs=np.logspace(-3, 2, 11), max_iter=2000, scoring="neg_log_loss",
                                         cv=StratifiedKFold(5, shuffle=True, random_state=seed)).fit(z[:, columns], y)
        folds = model.scores_[1.0]  # folds × Cs
        best = int(np.argmax(folds.mean(axis=0)))
        se = float(folds[:, best].std(ddof=1) / math.sqrt(len(folds)))
        fits.append((float(folds[:, best].mean()), se, columns, model))
    chosen = fits[0]
    for candidate in fits[1:]:
        if candidate[0] > chosen[0] + chosen[1]:
            chosen = candidate
    _, _, columns, model = chosen
    coef = np.zeros(len(FEATURES))
    coef[columns] = model.coef_[0]
    return Combiner(tuple(float(v) for v in mean), tuple(float(v) for v in scale), tuple(float(v) for v in coef),
                    float(model.intercept_[0]))
