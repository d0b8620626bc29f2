"""The review vocabulary: who acts on a stored reply, a review-queue item, review figures, and the
store's timestamps (ISO 8601, UTC, milliseconds, so strings compare in time order)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone

from assistant.calibrated.metrics import expected_calibration_error
from assistant.core.errors import InputError

__all__ = ["Actor", "QueueItem", "ReviewStats", "since_clause", "stats_of", "utc_now"]


def utc_now() -> str:
    """The current time as the store writes it (ISO 8601, UTC, milliseconds)."""
    return _iso(datetime.now(timezone.utc))


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _normalise_time(value: str | datetime | None) -> str | None:
    """Any ISO timestamp (or datetime) in the store's own format, so strings compare in time order."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return _iso(value)
    try:
        return _iso(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError as err:
        raise InputError(f"not an ISO 8601 timestamp: {value!r}") from err


def since_clause(column: str, since: str | datetime | None) -> tuple[str, tuple]:
    """SQL to append after a WHERE condition, and its parameters, keeping rows whose `column` >= `since`."""
    since = _normalise_time(since)
    return ("", ()) if since is None else (f" AND {column} >= ?", (since,))


@dataclass(frozen=True)
class Actor:
    """Who is acting on a stored reply: staff may act on their own replies only, reviewers on any."""

    user: str | None  # the signed-in user; None without a login
    session: str | None = None  # the browser or API session; what "own" means without a login
    any_reply: bool = False  # True for reviewers and admins
    owner: str | None = None  # the conversation owner (assistant.web.conversations): "own" across reloads


@dataclass(frozen=True)
class QueueItem:
    id: int  # review item id (what submit_verdict takes)
    reply_id: str  # the public id of the reply under review
    created_at: str  # when the item entered the queue (UTC ISO)
    status: str  # "open" or "closed"
    reasons: tuple[str, ...]  # review-reason keys, incl. "user_requested" and "thumbs_down"
    question: str  # the question as asked
    answer: str | None  # the model's final answer
    reasoning: str  # the reasoning trace
    raw_confidence: float | None  # verbalized confidence in [0, 1]
    confidence: float | None  # calibrated confidence in [0, 1]
    domain: str | None  # routed domain
    user: str | None  # who asked
    verdict: str | None  # "correct", "incorrect", "not_answerable"; None while open
    corrected_answer: str | None  # the reviewer's right answer, if given
    reviewer: str | None  # who gave the verdict
    reviewed_at: str | None  # when the verdict was committed
    revisions: int = 0  # how often the verdict was changed after the first one
    status_of_reply: str = "ok"  # the reply's own status: ok, cancelled, interrupted, …
    raw_output: str = ""  # the model's whole output
    signals: dict = field(default_factory=dict)  # the confidence signals behind `confidence`
    feedback: tuple = ()  # ({"user", "thumbs", "comment", "created_at"}, …) on the reply (get_item only)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        d = dict(self.__dict__)
        d["reasons"] = list(self.reasons)
        d["feedback"] = [dict(f) for f in self.feedback]
        return d


@dataclass(frozen=True)
class ReviewStats:
    count: int  # reviewed answers with a correct/incorrect verdict
    correct: int  # of which judged correct
    accuracy: float | None  # correct / count; None when count is 0
    ece: float | None  # 10-bin ECE of the calibrated confidence; None when no answer had one


def stats_of(pairs: list[tuple[float | None, bool]]) -> ReviewStats:
    correct = sum(ok for _, ok in pairs)
    scored = [(p, ok) for p, ok in pairs if p is not None and not math.isnan(p)]
    ece = None
    if scored:
        ece = expected_calibration_error([int(ok) for _, ok in scored], [p for p, _ in scored])
    return ReviewStats(
        count=len(pairs),
        correct=correct,
        accuracy=correct / len(pairs) if pairs else None,
        ece=ece,
    )
