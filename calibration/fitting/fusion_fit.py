"""Fit every domain's fused combiner together: pooled weights with per-domain intercepts, and each
domain's own weights shrunk toward the pooled ones (hierarchical shrinkage).

A domain with few right (or wrong) answers cannot learn how a signal relates to being right, but
other domains can: it borrows their weights (the pooled fit) and keeps its own intercept, so its
score still ranks its answers by the signals that rank answers elsewhere, at its own base rate.
A domain with enough of both outcomes (`OWN_WEIGHTS_MIN`) may move its weights away from the
pooled ones, as far as cross-validation on its own answers says pays (the strength of the pull,
`SHRINK_STRENGTHS`, by the one-standard-error rule toward more pull). Nothing ever falls back to
the model's stated figure. Every fit is weighted (`calibration.fitting.populations` balances the
populations), and every choice is made by cross-validation on the fitting records only.

Each fit is a logistic regression minimising the weighted mean log loss plus an L2 penalty toward a
prior (zero for the pooled weights, the pooled weights for a domain's own), solved with L-BFGS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assistant.calibrated.fusion import AGREEMENT_FEATURES, FEATURES, Combiner, agreement_rows, feature_matrix
from assistant.calibrated.questions import QUESTION_FEATURES, fit_difficulty, question_rows

__all__ = ["FusionFit", "fit_fused", "logistic_fit", "stratified_folds"]

POOLED_STRENGTHS = (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003)  # L2 on the pooled weights, strongest first
SHRINK_STRENGTHS = (math.inf, 1.0, 0.3, 0.1, 0.03, 0.01)  # pull of a domain's weights toward the pooled ones
OWN_WEIGHTS_MIN = 15  # right and wrong answers a domain needs before its weights may leave the pooled ones
BASE_RATE_MIN = 5  # with fewer right or wrong answers over every domain, no weights: the base rate
INTERCEPT_PULL = 1e-3  # a weak pull of each intercept toward the overall rate (finite with one outcome only)
FOLDS = 5


@dataclass(frozen=True)
class FusionFit:
    """What `fit_fused` learned."""

    combiners: dict  # label (each domain, and "general") -> Combiner
    details: dict  # label -> {"weights": how they were learned, "shrinkage", "pooled_l2", "right", "wrong"}
    x: np.ndarray  # raw feature rows of every record (fitting records: out-of-fold question difficulty)


def stratified_folds(labels: np.ndarray, y: np.ndarray, mask: np.ndarray, seed: int, k: int = FOLDS) -> np.ndarray:
    """Fold number of each record in `mask` (-1 elsewhere): each (label, outcome) group shuffled with
    `seed` and dealt round-robin, so every fold holds every domain's right and wrong answers."""
    rng = np.random.default_rng(seed)
    folds = np.full(len(y), -1)
    for label in np.unique(labels[mask]):
        for outcome in (0.0, 1.0):
            idx = rng.permutation(np.flatnonzero(mask & (labels == label) & (y == outcome)))
            folds[idx] = np.arange(len(idx)) % k
    return folds


def logistic_fit(x, y, w, penalty, prior, offset=0.0) -> np.ndarray:
    """argmin_b  sum_i w_i logloss(y_i, sigmoid(offset_i + x_i·b)) / sum(w) + 1/2 sum_j penalty_j (b_j - prior_j)^2,
    by Newton's method with step halving (the objective is convex, and strictly so with every penalty > 0)."""
    from scipy.special import expit

    w = w / w.sum()

    def objective(b):
        t = offset + x @ b
        return float(np.sum(w * (np.logaddexp(0.0, t) - y * t)) + 0.5 * np.sum(penalty * (b - prior) ** 2))

    b = prior.astype(float)
    value = objective(b)
    for _ in range(100):
        p = expit(offset + x @ b)
        gradient = x.T @ (w * (p - y)) + penalty * (b - prior)
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        for _ in range(30):  # halve the step until the objective does not rise
            trial = objective(b - step)
            if trial <= value:
                break
            step = step / 2
        b, done = b - step, value - trial < 1e-12
        value = min(value, trial)
        if done:
            break
    return b


def _log_loss(y, w, t) -> float:
    return float(np.sum(w * (np.logaddexp(0.0, t) - y * t)) / np.sum(w))


def _logit(rate: float) -> float:
    rate = min(max(rate, 1e-3), 1 - 1e-3)
    return math.log(rate / (1 - rate))


@dataclass
class _Data:
    z: np.ndarray  # standardised features
    y: np.ndarray
    w: np.ndarray
    labels: np.ndarray
    names: list  # the labels fitted, in order
    base: float  # logit of the weighted share right over every fitting record

    def onehot(self, rows) -> np.ndarray:
        return (self.labels[rows][:, None] == np.array(self.names)[None, :]).astype(float)

    def pooled(self, rows, strength: float) -> tuple[np.ndarray, np.ndarray]:
        """(weights, one intercept per label) of the pooled fit on `rows`."""
        f, d = self.z.shape[1], len(self.names)
        x = np.hstack([self.z[rows], self.onehot(rows)])
        penalty = np.array([strength] * f + [INTERCEPT_PULL] * d)
        prior = np.array([0.0] * f + [self.base] * d)
        b = logistic_fit(x, self.y[rows], self.w[rows], penalty, prior)
        return b[:f], b[f:]

    def own(self, rows, beta: np.ndarray, pull: float) -> tuple[np.ndarray, float]:
        """(weights, intercept) on `rows`: weights pulled toward `beta` with strength `pull` (inf: kept)."""
        f = self.z.shape[1]
        if math.isinf(pull):
            b = logistic_fit(np.ones((int(rows.sum()), 1)), self.y[rows], self.w[rows], np.array([INTERCEPT_PULL]),
                     np.array([self.base]), offset=self.z[rows] @ beta)
            return beta, float(b[0])
        x = np.hstack([self.z[rows], np.ones((int(rows.sum()), 1))])
        b = logistic_fit(x, self.y[rows], self.w[rows], np.array([pull] * f + [INTERCEPT_PULL]),
                 np.append(beta, self.base))
        return b[:f], float(b[f])


def _one_se(losses: np.ndarray) -> int:
    """Index of the first (most regularised) option within one standard error of the best mean loss."""
    mean = losses.mean(axis=0)
    best = int(np.argmin(mean))
    se = losses[:, best].std(ddof=1) / math.sqrt(len(losses))
    return int(np.flatnonzero(mean <= mean[best] + se)[0])


def _pooled_strength(data: _Data, fit, folds) -> float:
    losses = np.zeros((FOLDS, len(POOLED_STRENGTHS)))
    for k in range(FOLDS):
        train, test = fit & (folds != k), fit & (folds == k)
        for j, strength in enumerate(POOLED_STRENGTHS):
            beta, a = data.pooled(train, strength)
            t = data.z[test] @ beta + data.onehot(test) @ a
            losses[k, j] = _log_loss(data.y[test], data.w[test], t)
    return POOLED_STRENGTHS[int(np.argmin(losses.mean(axis=0)))]


def _domain_pull(data: _Data, label, fit, folds, strength: float) -> float:
    """The pull toward the pooled weights that cross-validation on this domain's answers chooses."""
    mine = fit & (data.labels == label)
    losses = np.zeros((FOLDS, len(SHRINK_STRENGTHS)))
    for k in range(FOLDS):
        test = mine & (folds == k)
        beta, _ = data.pooled(fit & ~test, strength)  # the pooled weights without this fold
        for j, pull in enumerate(SHRINK_STRENGTHS):
            own, a = data.own(mine & (folds != k), beta, pull)
            losses[k, j] = _log_loss(data.y[test], data.w[test], data.z[test] @ own + a)
    return SHRINK_STRENGTHS[_one_se(losses)]


def _standardise(x, w) -> tuple[np.ndarray, np.ndarray]:
    present = ~np.isnan(x)
    ww = np.where(present, w[:, None], 0.0)
    total = ww.sum(axis=0)
    mean = np.where(total > 0, np.sum(ww * np.nan_to_num(x), axis=0) / np.maximum(total, 1e-12), 0.0)
    var = np.where(total > 0, np.sum(ww * (np.nan_to_num(x) - mean) ** 2, axis=0) / np.maximum(total, 1e-12), 0.0)
    scale = np.sqrt(var)
    return mean, np.where(scale > 1e-9, scale, 1.0)


def _with_questions(x, questions, y, w, fit, folds):
    """`x` with QUESTION_FEATURES appended, and the difficulty model (None without fitting embeddings)."""
    has = np.array([q is not None and q.embedding is not None for q in questions])
    rows = question_rows(questions, None)
    learn = fit & has
    difficulty = None
    if learn.sum() >= 2 * FOLDS:
        emb = np.stack([questions[i].embedding for i in np.flatnonzero(has)])
        where = np.flatnonzero(has)
        model, oof = fit_difficulty(emb[learn[has]], y[learn], w[learn], folds[learn])
        rows[where, 0] = model(emb)
        rows[learn, 0] = oof  # fitting records: out of fold
        difficulty = model.to_dict()
    return np.hstack([x, rows]), difficulty


def fit_fused(signal_dicts, y, *, labels, fit, weights, questions=None, agreement: bool = False,
              seed: int = 0) -> FusionFit:
    """Fused combiners for each label among the `fit` records, and for "general" (pooled weights, the
    overall intercept), fitted on the `fit` records with `weights`. `questions` (aligned
    QuestionFeatures or None, or None for all) makes the combiners question-aware; `agreement` makes
    them read the signals' self-consistency agreement.

    Best run on one BLAS thread (`fit_maps` does): these are many small matrix products, which
    threads only slow down (measured on the 2-core dev box while busy: 28 s with the default
    threads, 6.5 s with one)."""
    y = np.nan_to_num(np.asarray(y, dtype=float))
    labels, fit, w = np.asarray(labels, dtype=object), np.asarray(fit, dtype=bool), np.asarray(weights, dtype=float)
    folds = stratified_folds(labels, y, fit, seed)
    x, features, difficulty = feature_matrix(signal_dicts), FEATURES, None
    if questions is not None:
        x, difficulty = _with_questions(x, list(questions), y, w, fit, folds)
        features = FEATURES + QUESTION_FEATURES
    if agreement:
        x, features = np.hstack([x, agreement_rows(signal_dicts)]), features + AGREEMENT_FEATURES
    mean, scale = _standardise(x[fit], w[fit])
    z = np.where(np.isnan(x), 0.0, (x - mean) / scale)
    rate = float(np.sum(w[fit] * y[fit]) / np.sum(w[fit]))
    data = _Data(z, y, w, labels, sorted(set(labels[fit])), _logit(rate))
    right = int(y[fit].sum())
    strength = (_pooled_strength(data, fit, folds) if min(right, int(fit.sum()) - right) >= BASE_RATE_MIN
                else math.inf)
    beta = np.zeros(z.shape[1]) if math.isinf(strength) else data.pooled(fit, strength)[0]

    def combiner(coef, intercept) -> Combiner:
        return Combiner(tuple(map(float, mean)), tuple(map(float, scale)), tuple(map(float, coef)), float(intercept),
                        features, difficulty)

    combiners, details = {}, {}
    for label in [*(n for n in data.names if n != "general"), "general"]:
        mine = fit & (labels == label) if label != "general" else fit
        r = int(y[mine].sum())
        own = label != "general" and not math.isinf(strength) and min(r, int(mine.sum()) - r) >= OWN_WEIGHTS_MIN
        pull = _domain_pull(data, label, fit, folds, strength) if own else math.inf
        coef, intercept = data.own(mine, beta, pull)
        combiners[label] = combiner(coef, intercept)
        details[label] = {"weights": _how(strength, pull), "shrinkage": None if math.isinf(pull) else pull,
                          "pooled_l2": None if math.isinf(strength) else strength, "right": r,
                          "wrong": int(mine.sum()) - r}
    return FusionFit(combiners, details, x)


def _how(strength: float, pull: float) -> str:
    if math.isinf(strength):
        return "base rate (too few right or wrong answers in every domain together)"
    if math.isinf(pull):
        return "pooled weights, own intercept"
    return "own weights, shrunk toward the pooled ones"
