"""Fuse an answer's confidence signals into one score per domain: a logistic regression on a few
features of them, whose output then goes through the domain's isotonic map.

Signals come as a dict keyed by `assistant.core.signals.SIGNAL_NAMES` (None where missing).
Features, each standardised with the training mean and scale:

- `verbal_logit`: logit of the model's own confidence (stated_ev, else probe_ev, else stated);
- `verbal_missing`, `verbal_from_probe`: where that confidence came from;
- `answer_mean_logp`, `answer_min_logp`, `answer_first_logp`: token log probabilities inside
  the answer, and `answer_missing` when there are none.

A question-aware combiner also reads `assistant.calibrated.questions.QUESTION_FEATURES` of the question,
and one fitted on records with self-consistency also reads `agreement` (`AGREEMENT_FEATURES`: the share of
sampled answers that agree with the answer, `assistant.answering.consistency`).
A missing value takes the training mean, so it adds nothing beyond its indicator; an answer
with no signal at all scores the domain's accuracy on such answers. The combiner is stored
as JSON in the map file (`Combiner.to_dict`); applying it needs only numpy. It is fitted by
`calibration.fitting.fusion_fit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assistant.calibrated.questions import QUESTION_FEATURES, Difficulty, QuestionFeatures, question_rows
from assistant.core.signals import VERBAL_ORDER
from assistant.core.validate import is_finite

__all__ = ["AGREEMENT_FEATURES", "FEATURES", "SIGNAL_COLUMNS", "Combiner", "agreement_rows", "feature_matrix",
           "signal_matrix"]

FEATURES = ("verbal_logit", "verbal_missing", "verbal_from_probe", "answer_mean_logp", "answer_min_logp",
            "answer_first_logp", "answer_missing")
AGREEMENT_FEATURES = ("agreement",)  # optional, last: self-consistency (Signals.agreement)
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
                  "answer_first_logp", "agreement")


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


def agreement_rows(signal_dicts) -> np.ndarray:
    """(n, 1) agreement of each signals dict, NaN where it was not sampled."""
    values = [(s or {}).get("agreement") for s in signal_dicts]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float).reshape(-1, 1)


def feature_matrix(signal_dicts) -> np.ndarray:
    """One row of raw FEATURES per signals dict (NaN where a signal is missing)."""
    return np.array([_row(s) for s in signal_dicts], dtype=float).reshape(-1, len(FEATURES))


@dataclass(frozen=True)
class Combiner:
    """p = sigmoid(intercept + coef · (features - mean) / scale), missing features at their mean.

    `features` is FEATURES, then QUESTION_FEATURES for a question-aware combiner, then AGREEMENT_FEATURES
    for one that reads self-consistency (each optional); a question-aware combiner's `difficulty` (a
    `assistant.calibrated.questions.Difficulty` as a dict, or None when it was fitted without
    embeddings) scores the question's embedding."""

    mean: tuple[float, ...]  # training mean of each feature (over present values)
    scale: tuple[float, ...]  # training standard deviation (1 where constant)
    coef: tuple[float, ...]  # logistic-regression weights on the standardised features
    intercept: float
    features: tuple[str, ...] = FEATURES
    difficulty: dict | None = None  # the question-difficulty model (question-aware combiners only)

    def __post_init__(self):
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "_difficulty", Difficulty.from_dict(self.difficulty) if self.difficulty else None)

    @property
    def reads_question(self) -> bool:
        return QUESTION_FEATURES[0] in self.features

    @property
    def reads_agreement(self) -> bool:
        """Whether sampled answers' agreement moves the score (absent, it counts as its fitting mean)."""
        return AGREEMENT_FEATURES[0] in self.features

    def __call__(self, signals: dict, question: QuestionFeatures | None = None) -> float:
        """The fused score in (0, 1) of one answer's signals (and its question's features)."""
        return float(self.scores([signals], [question])[0])

    def raw_features(self, signal_dicts, questions=None) -> np.ndarray:
        """The raw `features` of each answer (NaN where missing); `questions` aligned, or None."""
        signal_dicts = list(signal_dicts)
        parts = [feature_matrix(signal_dicts)]
        if self.reads_question:
            questions = list(questions) if questions is not None else [None] * len(signal_dicts)
            parts.append(question_rows(questions, self._difficulty))
        if self.reads_agreement:
            parts.append(agreement_rows(signal_dicts))
        return np.hstack(parts)

    def scores(self, signal_dicts, questions=None) -> np.ndarray:
        return self.scores_of(self.raw_features(signal_dicts, questions))

    def scores_of(self, x: np.ndarray) -> np.ndarray:
        """Fused scores of raw feature rows (`raw_features`)."""
        mean, scale = np.array(self.mean), np.array(self.scale)
        z = np.where(np.isnan(x), 0.0, (x - mean) / scale)
        return 1.0 / (1.0 + np.exp(-(z @ np.array(self.coef) + self.intercept)))

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": list(self.mean), "scale": list(self.scale),
                "coef": list(self.coef), "intercept": self.intercept,
                **({"difficulty": self.difficulty} if self.difficulty else {})}

    @classmethod
    def from_dict(cls, data: dict) -> "Combiner":
        """Build from the map-file form; ValueError names what is wrong."""
        known = [FEATURES + q + a for q in ((), QUESTION_FEATURES) for a in ((), AGREEMENT_FEATURES)]
        if not isinstance(data, dict) or tuple(data.get("features", ())) not in known:
            raise ValueError(f"combiner features must be {list(FEATURES)}, then optionally {list(QUESTION_FEATURES)}, "
                             f"then optionally {list(AGREEMENT_FEATURES)}")
        features = tuple(data["features"])
        parts = {}
        for name in ("mean", "scale", "coef"):
            values = data.get(name)
            if not isinstance(values, list) or len(values) != len(features) or not all(map(is_finite, values)):
                raise ValueError(f"combiner {name} must be {len(features)} finite numbers")
            parts[name] = tuple(float(v) for v in values)
        if any(v <= 0 for v in parts["scale"]):
            raise ValueError("combiner scale values must be positive")
        b = data.get("intercept")
        if not is_finite(b):
            raise ValueError("combiner intercept must be a finite number")
        difficulty = data.get("difficulty")
        if difficulty is not None:
            Difficulty.from_dict(difficulty)  # raises ValueError naming the problem
        return cls(parts["mean"], parts["scale"], parts["coef"], float(b), features, difficulty)
