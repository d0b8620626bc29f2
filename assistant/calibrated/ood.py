"""Is a question like the questions the active map was fitted on? A k-nearest-neighbour distance.

Every question is embedded by the router (all-MiniLM-L6-v2, unit length). At fit time
`fit_reference` keeps a compact reference of the fitting questions (numbers only, never text):

- a projection of the embeddings onto their `DIM` leading singular directions (uncentred, so the
  direction every fitting question shares is kept: a question far from it projects short, and so
  lies far from every reference);
- up to `MAX_PER_DOMAIN` projected fitting questions per domain (a random subsample);
- per domain, a threshold on the distance: the `QUANTILE` quantile of the distances of the
  domain's other fitting questions (those not kept as references, or a held-out share of them)
  to the references. So about 1 in 20 questions like the fitting ones is called unlike them.

Live, `Reference.score` gives the mean distance (1 - the projected vectors' dot product, which is
the cosine distance restricted to those directions) from a question to its `K` nearest
references of the routed domain (all references for the general map), the threshold, and whether
the question lies beyond it (`OodScore.extrapolating`). `OodScore.stretch` is how much the range on
the calibrated figure (assistant.calibrated.intervals.widen) grows for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from assistant.core.validate import is_finite, is_whole

__all__ = ["DIM", "K", "QUANTILE", "MAX_PER_DOMAIN", "MIN_QUESTIONS", "OodScore", "Reference", "fit_reference",
           "reference_of"]

DIM = 64  # leading directions the references are stored in
K = 5  # neighbours the distance averages over
QUANTILE = 0.95  # share of held-out fitting questions below the threshold
MAX_PER_DOMAIN = 200  # references kept per domain
HOLDOUT = 0.3  # share of each domain's fitting questions kept out of the references to set thresholds
STRETCH = 2.0  # a question beyond the threshold: range half-widths × STRETCH × distance / threshold
MIN_QUESTIONS = 20  # fewer fitting questions with an embedding: no reference is stored
ALL = "general"  # the references of every domain together: what the general map is compared with


@dataclass(frozen=True)
class OodScore:
    """How far one question lies from the fitting questions."""

    distance: float  # mean distance (1 - projected dot product) to its K nearest references
    threshold: float  # the distance beyond which a question counts as unlike the fitting ones
    compared_with: str  # the domain whose fitting questions it was compared with ("general": all)

    @property
    def ratio(self) -> float:
        """distance / threshold: above 1 the question is unlike the fitting questions."""
        return self.distance / self.threshold if self.threshold > 0 else math.inf

    @property
    def extrapolating(self) -> bool:
        return self.distance > self.threshold

    @property
    def stretch(self) -> float:
        """How much the stated range grows: 1 within the threshold, else STRETCH × ratio."""
        return STRETCH * self.ratio if self.extrapolating else 1.0


def _unit(rows: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.where(norms == 0, 1.0, norms)


def _knn_distance(queries: np.ndarray, refs: np.ndarray, k: int) -> np.ndarray:
    """Mean of 1 - dot product of each projected query row with its k nearest projected reference rows."""
    sims = np.atleast_2d(queries) @ refs.T
    k = min(k, refs.shape[0])
    nearest = -np.partition(-sims, k - 1, axis=1)[:, :k]
    return 1.0 - nearest.mean(axis=1)


@dataclass(frozen=True)
class Reference:
    """The compact reference set of a map file's fitting questions (see the module docstring)."""

    components: tuple[tuple[float, ...], ...]  # DIM × embedding-dimension leading singular directions
    vectors: tuple[tuple[float, ...], ...]  # projected fitting questions
    domains: tuple[str, ...]  # the domain of each vector
    thresholds: dict  # domain (and "general") -> distance threshold
    k: int = K
    quantile: float = QUANTILE
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"

    def project(self, embeddings) -> np.ndarray:
        """Unit-length embeddings (n × dimension) projected into the reference space."""
        e = _unit(np.atleast_2d(np.asarray(embeddings, dtype=np.float64)))
        width = len(self.components[0])
        if e.shape[1] != width:
            raise ValueError(f"question embeddings have {e.shape[1]} dimensions; this map's reference "
                             f"questions have {width} (embed with {self.embedding_model})")
        return e @ self._components.T

    def compared_with(self, domain: str) -> str:
        """The domain whose references a question of `domain` is compared with."""
        return domain if domain in self.thresholds and domain in self.domains else ALL

    def score(self, embedding, domain: str) -> OodScore:
        """How far one question (its embedding) lies from the fitting questions of `domain`."""
        group = self.compared_with(domain)
        refs = self._refs(group)
        distance = float(_knn_distance(self.project(embedding), refs, self.k)[0])
        return OodScore(round(distance, 4), float(self.thresholds[group]), group)

    @cached_property
    def _components(self) -> np.ndarray:
        return np.array(self.components, dtype=np.float64)

    @cached_property
    def _vectors(self) -> np.ndarray:
        return np.array(self.vectors, dtype=np.float64)

    def _refs(self, group: str) -> np.ndarray:
        if group == ALL:
            return self._vectors
        return self._vectors[np.array(self.domains) == group]

    def to_dict(self) -> dict:
        return {"embedding_model": self.embedding_model, "k": self.k, "quantile": self.quantile,
                "thresholds": dict(self.thresholds), "domains": list(self.domains),
                "components": [list(c) for c in self.components],
                "vectors": [list(v) for v in self.vectors]}

    @classmethod
    def from_dict(cls, data) -> "Reference":
        """Build from the map-file form; ValueError says what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("must be an object (see assistant/calibrated/ood.py)")
        components = tuple(_numbers(c, "components row") for c in _list(data.get("components"), "components"))
        vectors = tuple(_numbers(v, "vectors row") for v in _list(data.get("vectors"), "vectors"))
        if any(len(c) != len(components[0]) for c in components):
            raise ValueError("every components row must hold as many numbers as the first")
        if any(len(v) != len(components) for v in vectors):
            raise ValueError(f"every vectors row must hold {len(components)} numbers, one per component")
        domains = tuple(_list(data.get("domains"), "domains"))
        if len(domains) != len(vectors) or not all(isinstance(d, str) for d in domains):
            raise ValueError("domains must name the domain of each vector")
        thresholds = data.get("thresholds")
        if not isinstance(thresholds, dict) or ALL not in thresholds or not all(
                is_finite(t) and t >= 0 for t in thresholds.values()):
            raise ValueError(f"thresholds must map domains (and {ALL!r}) to distances >= 0")
        k, quantile = data.get("k", K), data.get("quantile", QUANTILE)
        if not is_whole(k) or k < 1 or not is_finite(quantile):
            raise ValueError("k must be a whole number >= 1 and quantile a number")
        return cls(components, vectors, domains, {str(d): float(t) for d, t in thresholds.items()},
                   k, float(quantile), str(data.get("embedding_model", cls.embedding_model)))


def _list(value, name: str) -> list:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{name} must be a non-empty list")
    return value


def _numbers(value, name: str) -> tuple[float, ...]:
    if not isinstance(_list(value, name), list) or not all(is_finite(v) for v in value):
        raise ValueError(f"{name} must be a list of finite numbers")
    return tuple(float(v) for v in value)


def _threshold(held: np.ndarray, refs: np.ndarray, k: int, quantile: float) -> float:
    return float(np.quantile(_knn_distance(held, refs, k), quantile))


def fit_reference(embeddings, domains, *, dim: int = DIM, k: int = K, quantile: float = QUANTILE,
                  max_per_domain: int = MAX_PER_DOMAIN, holdout: float = HOLDOUT, seed: int = 0) -> Reference:
    """The reference set of fitting questions (`embeddings`, n × dimension, and their `domains`).

    Per domain, a random `holdout` share (at least one question, when there are two) sets the
    threshold and the rest, up to `max_per_domain`, are the references; the threshold for
    "general" compares every held-out question with all references.

    >>> rng = np.random.default_rng(0)
    >>> e = _unit(rng.normal(size=(200, 16)) + np.eye(16)[0] * 4)
    >>> ref = fit_reference(e, ["math"] * 200, dim=8)
    >>> ref.score(e[0], "math").extrapolating, ref.score(-np.eye(16)[0], "math").extrapolating
    (False, True)
    """
    e = _unit(np.asarray(embeddings, dtype=np.float64))
    domains = np.asarray(list(domains), dtype=object)
    if e.ndim != 2 or len(e) != len(domains) or len(e) < 2:
        raise ValueError(f"need at least 2 embeddings and one domain each, got {e.shape} and {len(domains)}")
    _, _, vt = np.linalg.svd(e, full_matrices=False)
    components = vt[: min(dim, vt.shape[0])]
    projected = e @ components.T
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for d in sorted(set(domains)):
        idx = rng.permutation(np.flatnonzero(domains == d))
        n_held = min(max(int(round(holdout * len(idx))), 1), len(idx) - 1) if len(idx) > 1 else 0
        held.append(idx[:n_held])
        keep.append(idx[n_held:][:max_per_domain])
    keep_idx, held_idx = np.concatenate(keep), np.concatenate(held)
    refs, ref_domains = projected[keep_idx], domains[keep_idx]
    thresholds = {}
    for d in sorted(set(domains)):
        mine = held_idx[domains[held_idx] == d]
        if len(mine):
            thresholds[d] = _threshold(projected[mine], refs[ref_domains == d], k, quantile)
    thresholds[ALL] = _threshold(projected[held_idx], refs, k, quantile) if len(held_idx) else 1.0
    return Reference(tuple(map(tuple, np.round(components, 5).tolist())),
                     tuple(map(tuple, np.round(refs, 3).tolist())), tuple(str(d) for d in ref_domains),
                     {d: round(t, 4) for d, t in thresholds.items()}, k, quantile)


def reference_of(questions, domains, *, seed: int = 0) -> dict | None:
    """The map-file form of `fit_reference` for a fit's records: `questions` are their
    assistant.calibrated.questions.QuestionFeatures (None, or None embeddings, where unknown) and `domains`
    their domains. None when fewer than MIN_QUESTIONS have an embedding (then no distance is given)."""
    if questions is None:
        return None
    rows = [(q.embedding, d) for q, d in zip(questions, domains) if q is not None and q.embedding is not None]
    if len(rows) < MIN_QUESTIONS:
        return None
    return fit_reference(np.array([e for e, _ in rows]), [d for _, d in rows], seed=seed).to_dict()
