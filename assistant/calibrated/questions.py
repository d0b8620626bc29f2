"""What the calibration knows about the question an answer was given to.

`QuestionFeatures` is built once per question, from its text and its sentence embedding (the
router's all-MiniLM-L6-v2 vector, unit length), live in the pipeline and at fit time by
`calibration.labelling.question_text.question_features`. A fused combiner turns it into two features:

- `question_difficulty`: a ridge regression of being right on the embedding (`Difficulty`),
  learned on the fitting records, so the combiner can tell "What is 12 times 11?" from a
  six-step word problem. Fitting records get out-of-fold values (`fit_difficulty`), so the
  combiner never learns to trust an in-sample score;
- `question_log_words`: log(1 + the question's word count).

A question without an embedding has a missing difficulty, which the combiner reads at its
training mean (it adds nothing). `Difficulty` is JSON in the map file; applying it needs numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from assistant.core.validate import is_finite

__all__ = ["QUESTION_FEATURES", "Difficulty", "QuestionFeatures", "fit_difficulty", "question_rows"]

QUESTION_FEATURES = ("question_difficulty", "question_log_words")
ALPHAS = tuple(np.logspace(-4, 0, 9).tolist())  # ridge strengths `fit_difficulty` chooses from


@dataclass(frozen=True)
class QuestionFeatures:
    """One question, as calibration sees it."""

    text: str  # the question as typed (the embedding is of `assistant.routing.router.readable_text(text)`)
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)  # unit vector; None: none

    @classmethod
    def of(cls, text: str, embedding=None) -> QuestionFeatures:
        """From a question's text and its embedding (any 1-D sequence of floats, or None)."""
        vector = None if embedding is None else np.asarray(embedding, dtype=np.float64).reshape(-1)
        return cls(str(text or ""), vector)

    @property
    def n_words(self) -> int:
        return len(self.text.split())


@dataclass(frozen=True)
class Difficulty:
    """score = intercept + coef · embedding: the expected share of right answers to such a question."""

    coef: tuple[float, ...]  # one weight per embedding dimension
    intercept: float
    alpha: float = 1.0  # the ridge strength it was fitted with (chosen by cross-validation)

    def __call__(self, embeddings: np.ndarray) -> np.ndarray:
        embeddings = np.atleast_2d(np.asarray(embeddings, dtype=np.float64))
        if embeddings.shape[1] != len(self.coef):
            raise ValueError(f"question embeddings have {embeddings.shape[1]} dimensions; this map's "
                             f"difficulty model reads {len(self.coef)} (embed with all-MiniLM-L6-v2)")
        return embeddings @ np.array(self.coef) + self.intercept

    def to_dict(self) -> dict:
        return {"coef": list(self.coef), "intercept": self.intercept, "alpha": self.alpha}

    @classmethod
    def from_dict(cls, data) -> Difficulty:
        """Build from the map-file form; ValueError names what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("difficulty must be an object with coef, intercept and alpha")
        coef, intercept, alpha = data.get("coef"), data.get("intercept", 0.0), data.get("alpha", 1.0)
        if not isinstance(coef, list) or not coef or not all(is_finite(v) for v in coef):
            raise ValueError("difficulty coef must be a non-empty list of finite numbers")
        if not is_finite(intercept) or not is_finite(alpha):
            raise ValueError("difficulty intercept and alpha must be finite numbers")
        return cls(tuple(float(v) for v in coef), float(intercept), float(alpha))


class _RidgePath:
    """Weighted ridge regression with an unpenalised intercept, solved once by SVD for every strength."""

    def __init__(self, x, y, w):
        w = w / w.sum()
        self.x_mean, self.y_mean = w @ x, float(w @ y)
        root = np.sqrt(w)[:, None]
        u, self.s, vt = np.linalg.svd(root * (x - self.x_mean), full_matrices=False)
        self.v, self.uty = vt.T, u.T @ (root[:, 0] * (y - self.y_mean))

    def coef(self, alpha: float) -> tuple[np.ndarray, float]:
        """(weights, intercept) at strength `alpha` (on the weighted mean squared error's scale)."""
        beta = self.v @ (self.s / (self.s ** 2 + alpha) * self.uty)
        return beta, self.y_mean - float(self.x_mean @ beta)


def fit_difficulty(embeddings: np.ndarray, y: np.ndarray, weights: np.ndarray,
                   folds: np.ndarray) -> tuple[Difficulty, np.ndarray]:
    """Ridge regression of `y` (1 right, 0 wrong) on `embeddings`, weighted; the strength by
    cross-validation over `folds` (fold number per row) on weighted squared error.

    Returns the model fitted on every row and each row's out-of-fold prediction (from the
    model fitted without its fold, at the chosen strength)."""
    x, y, w = np.asarray(embeddings, dtype=float), np.asarray(y, dtype=float), np.asarray(weights, dtype=float)
    preds = np.empty((len(ALPHAS), len(y)))
    for k in np.unique(folds):
        test = folds == k
        path = _RidgePath(x[~test], y[~test], w[~test])
        for j, alpha in enumerate(ALPHAS):
            beta, b = path.coef(alpha)
            preds[j, test] = x[test] @ beta + b
    best = int(np.argmin(((preds - y) ** 2) @ w))
    beta, b = _RidgePath(x, y, w).coef(ALPHAS[best])
    return Difficulty(tuple(float(v) for v in beta), b, float(ALPHAS[best])), preds[best]


def question_rows(questions, difficulty: Difficulty | None) -> np.ndarray:
    """(n, len(QUESTION_FEATURES)) raw question features, NaN where missing: no question at all
    (both), or no embedding or no difficulty model (the difficulty)."""
    rows = np.full((len(questions), len(QUESTION_FEATURES)), np.nan)
    have = [i for i, q in enumerate(questions) if q is not None and q.embedding is not None]
    if difficulty is not None and have:
        rows[have, 0] = difficulty(np.stack([questions[i].embedding for i in have]))
    for i, q in enumerate(questions):
        if q is not None:
            rows[i, 1] = math.log1p(q.n_words)
    return rows
