"""What the review store tells the rest of the product: reviewers' verdicts as graded records
(for `calibrate fit`), and the dashboard's figures since a map's fit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from assistant.calibrated.fusion import signal_matrix
from assistant.calibrated.measures import signal_aurocs
from assistant.core.errors import StoreError
from assistant.core.jsonl import write_jsonl
from assistant.core.record import Record
from assistant.reviews.store import PRIVATE, ReviewStore
from assistant.reviews.types import ReviewStats, since_clause, stats_of

__all__ = ["answered", "export_records", "records", "reviewed", "signal_aurocs_by_domain",
           "stats_by_domain", "verdict_arrays"]


def records(store: ReviewStore) -> Iterator[Record]:
    """Closed review items as graded records, oldest verdict first.

    Each carries the latest verdict and `revisions`, how often that verdict was changed.
    """
    rows = store.read(
        "SELECT v.id AS item_id, v.verdict, v.corrected_answer, v.revisions, r.* FROM reviews v "
        "JOIN replies r ON r.id = v.reply_id WHERE v.status = 'closed' AND v.verdict IS NOT NULL "
        "ORDER BY v.reviewed_at, v.id"
    )
    for row in rows:
        verdict = row["verdict"]
        gold = (row["corrected_answer"] or row["answer"]) if verdict == "correct" else row["corrected_answer"]
        timings = json.loads(row["timings_ms"] or "{}")
        yield Record(
            id=f"review-{row['public_id']}", domain=row["domain"], question=row["question"], gold=gold,
            answer=row["answer"], raw_confidence=row["raw_confidence"],
            correct={"correct": True, "incorrect": False}.get(verdict),
            parse_ok=row["answer"] is not None and row["raw_confidence"] is not None,
            model=row["model"], prompt=row["prompt"], tokens=row["tokens"],
            seconds=round(float(timings.get("generation", 0.0)) / 1000, 3),
            revisions=row["revisions"],
            signals=json.loads(row["signals"] or "{}"),  # so `calibrate fit` can fuse them too
            population="review",
        )


def export_records(store: ReviewStore, path: Path) -> int:
    """Write `records(store)` as JSON lines to `path` (atomically, readable by its owner only); return how many."""
    try:
        return write_jsonl((r.to_dict() for r in records(store)), Path(path), mode=PRIVATE)
    except OSError as err:
        raise StoreError(f"cannot write review export {path}: {err}") from err


def reviewed(store: ReviewStore, since: str | datetime | None = None) -> list[dict]:
    """Answers given since `since` with a correct/incorrect verdict: domain, raw, confidence, correct,
    and the confidence signals behind it (replies stored before signals were: the stated one only)."""
    where, params = since_clause("r.created_at", since)
    sql = (
        "SELECT r.domain, r.raw_confidence, r.confidence, r.signals, v.verdict FROM reviews v "
        "JOIN replies r ON r.id = v.reply_id WHERE v.verdict IN ('correct', 'incorrect')" + where
    )
    return [
        {
            "domain": row["domain"] or "general",
            "raw_confidence": row["raw_confidence"],
            "confidence": row["confidence"],
            "correct": row["verdict"] == "correct",
            "signals": json.loads(row["signals"] or "{}") or {"stated": row["raw_confidence"]},
        }
        for row in store.read(sql + " ORDER BY v.id", params)
    ]


def answered(store: ReviewStore, since: str | datetime | None = None) -> list[dict]:
    """Every finished answer given since `since`: domain, raw_confidence, confidence (for histograms)."""
    where, params = since_clause("created_at", since)
    sql = "SELECT domain, raw_confidence, confidence FROM replies WHERE status = 'ok'" + where
    return [
        {"domain": row["domain"] or "general", "raw_confidence": row["raw_confidence"],
         "confidence": row["confidence"]}
        for row in store.read(sql + " ORDER BY id", params)
    ]



def stats_by_domain(rows: list[dict]) -> dict[str, ReviewStats]:
    """`ReviewStats` per domain, plus "all", of rows as `reviewed` gives them."""
    by_domain: dict[str, list[tuple[float | None, bool]]] = {"all": []}
    for row in rows:
        pair = (row["confidence"], row["correct"])
        by_domain["all"].append(pair)
        by_domain.setdefault(row["domain"], []).append(pair)
    return {domain: stats_of(pairs) for domain, pairs in by_domain.items()}


def verdict_arrays(rows: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(1 right / 0 wrong, `signal_matrix` of the signals, calibrated confidence or NaN) of rows as
    `reviewed` gives them."""
    y = np.array([float(r["correct"]) for r in rows], dtype=float)
    c = np.array([np.nan if r["confidence"] is None else r["confidence"] for r in rows], dtype=float)
    return y, signal_matrix([r.get("signals") or {} for r in rows]), c


def signal_aurocs_by_domain(rows: list[dict]) -> dict[str, dict]:
    """Per domain, plus "all": ``{"count": reviewed answers, "auroc": assistant.calibrated.measures.signal_aurocs}``,
    how well each stored signal, and the calibrated confidence, rank the reviewers' verdicts."""
    groups: dict[str, list[dict]] = {"all": list(rows)}
    for row in rows:
        groups.setdefault(row["domain"], []).append(row)
    return {domain: {"count": len(mine), "auroc": signal_aurocs(*verdict_arrays(mine))}
            for domain, mine in groups.items()}
