"""Fit the domain router (`routing.DomainRouter`) and score it on labelled questions.

`fit_router` fits a five-class logistic regression (the four domains and `general`) on
normalized MiniLM embeddings, then calibrates it on data the regression did not see: k-fold
cross-validation gives every example logits from a model fitted without it, one temperature
is fitted to those out-of-fold logits (lowest log loss), and the general threshold is chosen on
the same calibrated out-of-fold probabilities (`choose_threshold`: the highest that keeps the
in-domain questions sent to general at or under 1%). The held-out sets are never
used here; `evaluate` measures on them.

The fitting data: `assistant/data/domain_examples.jsonl` (the project's own examples),
`assistant/data/off_domain_fit.jsonl` (off-domain questions written for the project: chit-chat,
writing requests, code, opinions, advice, translation, jokes, instructions to the assistant)
and, for the shipped router, the benchmark questions of `../shared/calib/*.jsonl` (their text
is never committed; router.json names each file with its sha256 under `fitted_on`).
`assistant/data/off_domain_heldout.jsonl` was written apart, with other phrasings and topics,
and is only measured on.

    python -m assistant fit-router --examples assistant/data/domain_examples.jsonl \
        assistant/data/off_domain_fit.jsonl ../shared/calib/*.jsonl
    python -m assistant route --data ../shared/data/*.jsonl assistant/data/off_domain_heldout.jsonl
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from assistant.calibrated.metrics import brier_score, expected_calibration_error
from assistant.core.domains import GENERAL
from assistant.core.errors import DataError
from assistant.routing.router import CLASSES, DomainRouter, embed, readable_text

__all__ = ["THRESHOLD_GRID", "MAX_IN_DOMAIN_GENERAL", "read_labelled", "file_summary", "fit_temperature", "choose_threshold",
           "fit_router", "RoutingReport", "evaluate"]

# The thresholds `choose_threshold` tries: below 0.3 a domain always wins against the rest.
THRESHOLD_GRID = tuple(round(0.3 + 0.05 * i, 2) for i in range(13))  # 0.3 ... 0.9
# An in-domain question sent to general loses its domain's map (the general one is coarser) and is
# flagged for review; at most 1 in 100 of them (out of fold, on the fitting data) may be.
MAX_IN_DOMAIN_GENERAL = 0.01


def read_labelled(paths: Iterable[Path | str], classes: Sequence[str] = CLASSES) -> list[tuple[str, str]]:
    """(question, class) pairs from JSONL files, class one of `classes`; DataError names file:line."""
    pairs = []
    for path in map(Path, paths):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DataError(f"{path}: cannot read: {exc.strerror}") from exc
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
            if not isinstance(item, dict):
                raise DataError(f"{path}:{number}: expected a JSON object")
            question, domain = item.get("question"), item.get("domain")
            if not isinstance(question, str) or not question.strip():
                raise DataError(f"{path}:{number}: field 'question' must be a non-empty string")
            if domain not in classes:
                raise DataError(f"{path}:{number}: field 'domain' must be one of {list(classes)}, got {domain!r}")
            pairs.append((question, domain))
    return pairs


def file_summary(paths: Iterable[Path | str]) -> list[dict]:
    """Each file's name, line count and sha256, as router.json records what it was fitted on."""
    rows = []
    for path in map(Path, paths):
        data = path.read_bytes()
        rows.append({"path": str(path), "lines": sum(1 for line in data.splitlines() if line.strip()),
                     "sha256": hashlib.sha256(data).hexdigest()})
    return rows


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(z)
    return weights / weights.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimizes the log loss of softmax(logits / T) (temperature scaling).

    >>> logits = np.array([[2.0, 0.0], [2.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
    >>> round(fit_temperature(logits, np.array([0, 0, 1, 1])), 2)  # right 3 of 4 at logit gap 2/T
    1.82
    """
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(labels))

    def log_loss(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[rows, labels] - np.log(np.exp(z).sum(axis=1))).mean())

    return float(minimize_scalar(log_loss, bounds=(0.05, 20.0), method="bounded").x)


def _scores(routes, truth: Sequence[str]) -> dict:
    """in-domain accuracy (GENERAL wrong), in-domain share sent to GENERAL, off-domain share sent there."""
    inside = [(r.domain, t) for r, t in zip(routes, truth) if t != GENERAL]
    outside = [r.domain for r, t in zip(routes, truth) if t == GENERAL]
    share = lambda hits, n: round(hits / n, 4) if n else None  # noqa: E731
    return {"in_domain_accuracy": share(sum(p == t for p, t in inside), len(inside)),
            "in_domain_general_rate": share(sum(p == GENERAL for p, _ in inside), len(inside)),
            "off_domain_fallback_rate": share(outside.count(GENERAL), len(outside))}


def choose_threshold(probs: np.ndarray, truth: Sequence[str], *, classes: Sequence[str] = CLASSES,
                     max_in_domain_general: float = MAX_IN_DOMAIN_GENERAL) -> tuple[float, list[dict]]:
    """The highest threshold of THRESHOLD_GRID that sends at most `max_in_domain_general` of the
    in-domain questions to GENERAL (the lowest one if none does), and the table of every threshold.

    `probs` are out-of-fold calibrated probabilities. A higher threshold sends more off-domain
    questions to GENERAL but also takes more in-domain ones away from their domain's map, so
    the in-domain loss is capped and the off-domain fallback is what the cap allows.
    """
    table = []
    for t in THRESHOLD_GRID:
        router = DomainRouter(np.zeros((len(classes), 1)), np.zeros(len(classes)), classes=classes, threshold=t)
        table.append({"threshold": t, **_scores([router.route_probabilities(p) for p in probs], truth)})
    allowed = [row["threshold"] for row in table if row["in_domain_general_rate"] <= max_in_domain_general]
    return (max(allowed) if allowed else THRESHOLD_GRID[0]), table


def fit_router(examples: Sequence[tuple[str, str]], embedder, *, threshold: float | None = None, folds: int = 5,
               C: float = 10.0, fitted_on: Sequence[dict] = (), classes: Sequence[str] = CLASSES) -> DomainRouter:
    """Fit the router on (question, class) pairs covering every class of `classes` (the domains, then
    GENERAL; see the module docstring).

    threshold: None chooses it by cross-validation (`choose_threshold`); the table is kept either way.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    truth = [c for _, c in examples]
    classes = tuple(classes)
    if set(truth) != set(classes):
        raise DataError(f"examples must cover every domain {list(classes[:-1])} and {GENERAL!r} (off-domain "
                        f"questions, e.g. assistant/data/off_domain_fit.jsonl); got {sorted(set(truth))}")
    labels = np.array([classes.index(c) for c in truth])
    vectors = embed(embedder, [readable_text(q) for q, _ in examples])
    # balanced: each class weighs the same, so ~200 off-domain examples are not drowned by thousands.
    model = LogisticRegression(C=C, max_iter=5000, class_weight="balanced")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    oof_logits = cross_val_predict(model, vectors, labels, cv=splitter, method="decision_function")
    temperature = fit_temperature(oof_logits, labels)
    oof = _softmax(oof_logits / temperature)
    chosen, table = choose_threshold(oof, truth, classes=classes)
    router = DomainRouter(np.zeros((len(classes), vectors.shape[1])), np.zeros(len(classes)), classes=classes,
                          threshold=chosen if threshold is None else threshold, temperature=temperature,
                          embedder=embedder)
    oof_routes = [router.route_probabilities(p) for p in oof]
    uncalibrated = [router.route_probabilities(p) for p in _softmax(oof_logits)]
    model.fit(vectors, labels)
    router.coef, router.intercept = model.coef_, model.intercept_
    router.n_examples = len(examples)
    router.cv_accuracy = round(float(np.mean([r.domain == t for r, t in zip(oof_routes, truth)])), 4)
    router.fitted_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    router.extra = {"C": C, "class_weight": "balanced", "cv_folds": folds, "threshold_chosen_by_cv": chosen,
                    "cv": {**_scores(oof_routes, truth), "ece": _ece(oof_routes, truth),
                           "ece_before_temperature": _ece(uncalibrated, truth)},
                    "cv_recall": _recalls(oof_routes, truth, classes),
                    "cv_threshold_table": table, "fitted_on": list(fitted_on)}
    return router


def _recalls(routes, truth: Sequence[str], classes: Sequence[str]) -> dict[str, dict]:
    """Each class's out-of-fold recall (share routed to it) and count: examples its fold did not fit on."""
    rows = {}
    for c in classes:
        hits = [r.domain == c for r, t in zip(routes, truth) if t == c]
        rows[c] = {"recall": round(sum(hits) / len(hits), 4) if hits else None, "n": len(hits)}
    return rows


def _ece(routes, truth: Sequence[str]) -> float:
    hits = [r.domain == t for r, t in zip(routes, truth)]
    return round(expected_calibration_error(hits, [r.probability for r in routes]), 4)


@dataclass(frozen=True)
class RoutingReport:
    n: int  # questions routed
    accuracy: float  # share routed to their true class (GENERAL is right only for off-domain questions)
    general_rate: float  # share of in-domain questions sent to GENERAL (0.0 when there are none)
    fallback_rate: float | None  # share of off-domain questions (true class GENERAL) sent to GENERAL
    ece: float  # expected calibration error (10 bins) of Route.probability against "the route is right"
    brier: float  # Brier score of the same
    per_domain: dict[str, dict]  # {class: {"precision", "recall", "n"}} (recall counts GENERAL as a miss)
    confusion: dict[str, dict[str, int]]  # {true class: {predicted domain or GENERAL: count}}

    def to_dict(self) -> dict:
        """The `route --json` object."""
        return {"n": self.n, "accuracy": self.accuracy, "general_rate": self.general_rate,
                "fallback_rate": self.fallback_rate, "ece": self.ece, "brier": self.brier,
                "per_domain": self.per_domain, "confusion": self.confusion}


def evaluate(router: DomainRouter, labelled: Sequence[tuple[str, str]]) -> RoutingReport:
    """Route labelled questions and score them (GENERAL is wrong for a question of a domain)."""
    routes = router.route_many([q for q, _ in labelled])
    predicted = [r.domain for r in routes]
    truth = [d for _, d in labelled]
    classes = (*router.domains, GENERAL)
    rows = [c for c in classes if c != GENERAL or GENERAL in truth]
    confusion = {t: {p: 0 for p in classes} for t in rows}
    for t, p in zip(truth, predicted):
        confusion[t][p] += 1
    per_domain = {}
    for d in rows:
        n_true = sum(confusion[d].values())
        n_pred = sum(confusion[t][d] for t in rows)
        per_domain[d] = {"precision": round(confusion[d][d] / n_pred, 4) if n_pred else 0.0,
                         "recall": round(confusion[d][d] / n_true, 4) if n_true else 0.0, "n": n_true}
    n = len(truth)
    hits = [t == p for t, p in zip(truth, predicted)]
    scores = _scores(routes, truth)
    return RoutingReport(n=n, accuracy=round(sum(hits) / n, 4) if n else 0.0,
                         general_rate=scores["in_domain_general_rate"] or 0.0,
                         fallback_rate=scores["off_domain_fallback_rate"],
                         ece=round(expected_calibration_error(hits, [r.probability for r in routes]), 4) if n else 0.0,
                         brier=round(brier_score(hits, [r.probability for r in routes]), 4) if n else 0.0,
                         per_domain=per_domain, confusion=confusion)
