"""Each graded record's question text and embedding, for question-aware fits and reports.

A record keeps its question (everyday, generated and reviewed records carry it), or only its id
(committed benchmark records, whose text `calibrate records rebuild` puts back from
`../shared/calib` by id): `question_features` looks the text up the same way, then embeds every
question in one call with the router's embedder (`assistant.routing.router.embed` of `readable_text`,
so fit time and the live pipeline read the same vector). An optional .npz cache keyed by the
text's sha1 saves re-embedding the same questions on every fit and report.

    feats = question_features(records, question_files=sorted(Path("../shared/calib").glob("*.jsonl")))
    maps = fit_maps(records, ..., questions=feats)
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from assistant.calibrated.questions import QuestionFeatures
from assistant.routing.router import embed, load_embedder, readable_text
from calibration.fitting.fit import as_records
from calibration.labelling.redact import items_by_id

__all__ = ["question_features", "question_texts"]

log = logging.getLogger(__name__)


def question_texts(records, question_files=()) -> list[str | None]:
    """Each record's question: its own text, else the text of the item with its id in `question_files`
    (JSONL question files, as for `calibrate records rebuild`), else None."""
    records = as_records(records)
    items = items_by_id(question_files) if any(not r.question for r in records) and question_files else {}
    texts = []
    for r in records:
        text = r.question or (items.get(r.id) or {}).get("question")
        texts.append(text if isinstance(text, str) and text.strip() else None)
    return texts


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _read_cache(path: Path | None) -> dict[str, np.ndarray]:
    if path is None or not path.is_file():
        return {}
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as err:  # a broken cache is rebuilt, not trusted
        log.warning("ignoring the embedding cache %s (%s)", path, err)
        return {}


def _write_cache(path: Path, vectors: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **vectors)
    tmp.replace(path)


def question_features(records, *, question_files=(), embedder=None, cache=None) -> list[QuestionFeatures | None]:
    """`QuestionFeatures` of each record (None where its text is nowhere), aligned with `records`.

    `embedder` defaults to the router's (`assistant.routing.router.load_embedder`); `cache` is an optional
    .npz file of embeddings by text, read and updated."""
    texts = question_texts(records, question_files)
    readable = [None if t is None else readable_text(t) for t in texts]
    cache = Path(cache) if cache is not None else None
    known = _read_cache(cache)
    missing = sorted({_key(t) : t for t in readable if t is not None and _key(t) not in known}.items())
    if missing:
        vectors = embed(embedder if embedder is not None else load_embedder(), [t for _, t in missing])
        known.update({k: v for (k, _), v in zip(missing, vectors)})
        if cache is not None:
            _write_cache(cache, known)
    return [None if t is None else QuestionFeatures.of(t, known[_key(r)]) for t, r in zip(texts, readable)]
