"""The review store: replies, feedback and human verdicts in one SQLite file.

Everything the web app must not lose lives here: every answer given (written
when streaming starts, completed when it ends, so a kill mid-stream leaves a
consistent row), thumbs up/down, and the review queue with reviewers' verdicts.
Verdicts export as records in the `calibrate collect` schema, so
`calibrate fit` can refit from human labels.

The database is `<data dir>/reviews.sqlite3` in WAL mode with `synchronous=FULL`:
a write method returns only after its transaction is durable. Schema changes
are migrations applied by name and recorded in the `migrations` table.

    store = ReviewStore(Path("data"))
    reply_id = store.record_reply(reply, user="alice")
    for item in store.queue(status="open"):
        store.submit_verdict(item.id, "correct", reviewer="bob")
    store.export_records(Path("reviews.jsonl"))
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from assistant.core.errors import InputError, StoreError
from assistant.core.jsonl import write_jsonl
from assistant.core.record import Record
from assistant.core.reply import Reply
from calibration.metrics import expected_calibration_error

__all__ = [
    "ReviewStore",
    "QueueItem",
    "ReviewStats",
    "MIGRATIONS",
    "VERDICTS",
    "DB_FILENAME",
    "MAX_COMMENT_CHARS",
    "Actor",
    "utc_now",
]

DB_FILENAME = "reviews.sqlite3"
VERDICTS = ("correct", "incorrect", "not_answerable")
MAX_COMMENT_CHARS = 2000  # longest feedback comment accepted
_BUSY_TIMEOUT_MS = 10_000
_PRIVATE = 0o600  # the database, its -wal/-shm files and exports: readable by the app's user only

log = logging.getLogger(__name__)

_REPLY_COLUMNS = """created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            user TEXT,
            question TEXT NOT NULL,
            answer TEXT,
            reasoning TEXT NOT NULL DEFAULT '',
            raw_confidence REAL,
            confidence REAL,
            domain TEXT,
            domain_probability REAL,
            needs_review INTEGER NOT NULL DEFAULT 0,
            review_reasons TEXT NOT NULL DEFAULT '[]',
            model TEXT,
            prompt TEXT,
            map_version TEXT,
            raw_output TEXT NOT NULL DEFAULT '',
            tokens INTEGER NOT NULL DEFAULT 0,
            timings_ms TEXT NOT NULL DEFAULT '{}'"""
_REPLY_NAMES = ", ".join(line.split()[0] for line in _REPLY_COLUMNS.splitlines())

# Applied in order, each once, inside one transaction with its `migrations` row.
# Never edit an applied migration: append a new one.
MIGRATIONS: list[tuple[str, str]] = [
    (
        "0001_initial",
        """
        CREATE TABLE replies (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            user TEXT,
            question TEXT NOT NULL,
            answer TEXT,
            reasoning TEXT NOT NULL DEFAULT '',
            raw_confidence REAL,
            confidence REAL,
            domain TEXT,
            domain_probability REAL,
            needs_review INTEGER NOT NULL DEFAULT 0,
            review_reasons TEXT NOT NULL DEFAULT '[]',
            model TEXT,
            prompt TEXT,
            map_version TEXT,
            raw_output TEXT NOT NULL DEFAULT '',
            tokens INTEGER NOT NULL DEFAULT 0,
            timings_ms TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL CHECK (status IN ('streaming', 'ok', 'cancelled', 'error'))
        );
        CREATE INDEX replies_created_at ON replies (created_at);
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            reply_id INTEGER NOT NULL REFERENCES replies (id),
            created_at TEXT NOT NULL,
            user TEXT,
            thumbs TEXT NOT NULL CHECK (thumbs IN ('up', 'down')),
            comment TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            reply_id INTEGER NOT NULL UNIQUE REFERENCES replies (id),
            created_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
            reasons TEXT NOT NULL DEFAULT '[]',
            verdict TEXT CHECK (verdict IN ('correct', 'incorrect', 'not_answerable')),
            corrected_answer TEXT,
            reviewer TEXT,
            reviewed_at TEXT
        );
        CREATE INDEX reviews_status_created ON reviews (status, created_at);
        """,
    ),
    (
        # Replies get an unguessable public id and the session that asked (who may act on them),
        # and an 'interrupted' status; every verdict is kept in `verdicts`, the latest also in `reviews`.
        "0002_owners_verdict_history_interrupted",
        f"""
        CREATE TABLE replies_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            {_REPLY_COLUMNS},
            public_id TEXT NOT NULL UNIQUE,
            session TEXT,
            status TEXT NOT NULL CHECK (status IN ('streaming', 'ok', 'cancelled', 'error', 'interrupted'))
        );
        INSERT INTO replies_new (id, {_REPLY_NAMES}, public_id, session, status)
            SELECT id, {_REPLY_NAMES}, lower(hex(randomblob(16))), NULL, status FROM replies;
        DROP TABLE replies;
        ALTER TABLE replies_new RENAME TO replies;
        CREATE INDEX replies_created_at ON replies (created_at);
        CREATE TABLE verdicts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            item_id INTEGER NOT NULL REFERENCES reviews (id),
            created_at TEXT NOT NULL,
            reviewer TEXT,
            verdict TEXT NOT NULL CHECK (verdict IN ('correct', 'incorrect', 'not_answerable')),
            corrected_answer TEXT
        );
        CREATE INDEX verdicts_item ON verdicts (item_id, id);
        INSERT INTO verdicts (item_id, created_at, reviewer, verdict, corrected_answer)
            SELECT id, COALESCE(reviewed_at, created_at), reviewer, verdict, corrected_answer
            FROM reviews WHERE verdict IS NOT NULL ORDER BY reviewed_at, id;
        ALTER TABLE reviews ADD COLUMN revisions INTEGER NOT NULL DEFAULT 0;
        """,
    ),
    (
        # The confidence signals behind each answer (assistant.core.signals), for reviewers and refits.
        "0003_reply_signals",
        "ALTER TABLE replies ADD COLUMN signals TEXT NOT NULL DEFAULT '{}';",
    ),
]


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


def _since_clause(column: str, since: str | datetime | None) -> tuple[str, tuple]:
    """SQL to append after a WHERE condition, and its parameters, keeping rows whose `column` >= `since`."""
    since = _normalise_time(since)
    return ("", ()) if since is None else (f" AND {column} >= ?", (since,))


@dataclass(frozen=True)
class Actor:
    """Who is acting on a stored reply: staff may act on their own replies only, reviewers on any."""

    user: str | None  # the signed-in user; None without a login
    session: str | None = None  # the browser or API session; what "own" means without a login
    any_reply: bool = False  # True for reviewers and admins


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


class ReviewStore:
    """The SQLite review store in one data folder; safe to share between threads."""

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_FILENAME
        self._lock = threading.RLock()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            # SQLite gives the -wal and -shm files the database file's mode, so 0600 covers all three.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, _PRIVATE))
            if self.path.stat().st_mode & 0o077:
                os.chmod(self.path, _PRIVATE)  # a store created before files were private
            self._conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise sqlite3.OperationalError(f"could not switch to WAL mode (got {mode})")
            self._conn.execute("PRAGMA synchronous = FULL")
            self.migrate()
            self._conn.execute("PRAGMA foreign_keys = ON")
        except (sqlite3.Error, OSError) as err:
            raise StoreError(self._explain(err)) from err

    def _explain(self, err: Exception) -> str:
        return (
            f"review store {self.path}: {err} — check that the data folder is writable and the disk "
            "has space (set it with --data-dir or CALIBRATED_CHAT_DATA_DIR)"
        )

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One durable write transaction; any SQLite or OS failure becomes StoreError."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except (sqlite3.Error, OSError) as err:
                raise StoreError(self._explain(err)) from err

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as err:
                raise StoreError(self._explain(err)) from err

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- schema -------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded; return the names applied now.

        Run with foreign keys off (SQLite's procedure for rebuilding a referenced table);
        `foreign_key_check` afterwards refuses a migration that left a dangling reference.
        """
        with self._lock:
            self._conn.execute("PRAGMA foreign_keys = OFF")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
            )
            done = {row[0] for row in self._conn.execute("SELECT name FROM migrations")}
            applied = []
            for name, sql in MIGRATIONS:
                if name in done:
                    continue
                # executescript commits first, so the migration and its record go in one explicit transaction.
                try:
                    self._conn.executescript(
                        f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO migrations (name, applied_at) "
                        f"VALUES ('{name}', '{utc_now()}');\nCOMMIT;"
                    )
                except sqlite3.Error:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
                applied.append(name)
            broken = self._conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise sqlite3.IntegrityError(f"after migrating, {len(broken)} rows reference missing rows")
            return applied

    def applied_migrations(self) -> list[str]:
        return [row[0] for row in self._read("SELECT name FROM migrations ORDER BY name")]

    def journal_mode(self) -> str:
        return self._read("PRAGMA journal_mode")[0][0]

    def integrity_check(self) -> list[str]:
        """Problems `PRAGMA integrity_check` finds; an empty list when the file is sound."""
        rows = [row[0] for row in self._read("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows

    # -- replies ------------------------------------------------------------------------

    def mark_interrupted(self) -> int:
        """At the app's start-up: replies still 'streaming' were cut off when it last stopped. Mark them
        'interrupted' and put them in the review queue; return how many. (Not on every open: a
        `calibrate reviews export` beside a running app must not touch its answers in flight.)"""
        with self._write() as db:
            rows = db.execute("SELECT id FROM replies WHERE status = 'streaming'").fetchall()
            for row in rows:
                db.execute("UPDATE replies SET status = 'interrupted', updated_at = ? WHERE id = ?",
                           (utc_now(), row["id"]))
                self._flag(db, row["id"], ["interrupted"])
        if rows:
            log.warning("%d answers were cut off when the app last stopped; they are in the review queue "
                        "as 'interrupted'", len(rows))
        return len(rows)

    def _internal_id(self, db: sqlite3.Connection, public_id: str) -> int:
        row = db.execute("SELECT id FROM replies WHERE public_id = ?", (str(public_id),)).fetchone()
        if row is None:
            raise InputError(f"no reply with id {public_id!r}")
        return int(row["id"])

    def start_reply(self, question: str, user: str | None, model: str = "", prompt: str = "",
                    session: str | None = None) -> str:
        """Write a reply row with status 'streaming' before generation starts; return its public id."""
        now, public_id = utc_now(), secrets.token_hex(16)
        with self._write() as db:
            db.execute(
                "INSERT INTO replies (created_at, updated_at, user, question, model, prompt, public_id, session, "
                "status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'streaming')",
                (now, now, user, question, model, prompt, public_id, session),
            )
        return public_id

    def cancel_reply(self, reply_id: str, answer: str, reasoning: str) -> None:
        """Mark a stopped stream 'cancelled', keeping the text streamed so far."""
        with self._write() as db:
            db.execute(
                "UPDATE replies SET answer = ?, reasoning = ?, updated_at = ?, status = 'cancelled' "
                "WHERE public_id = ? AND status = 'streaming'",
                (answer, reasoning, utc_now(), str(reply_id)),
            )

    def finish_reply(self, reply_id: str, reply: Reply, status: str = "ok") -> None:
        """Complete a started row with the finished Reply; queue it when it needs review."""
        with self._write() as db:
            internal = self._internal_id(db, reply_id)
            self._fill(db, internal, reply, status)
            if reply.needs_review:
                self._flag(db, internal, reply.review_reasons)

    def record_reply(self, reply: Reply, user: str | None, session: str | None = None) -> str:
        """Store a finished Reply in one transaction; return its public id."""
        reply_id = self.start_reply(reply.question, user, session=session)
        self.finish_reply(reply_id, reply)
        return reply_id

    @staticmethod
    def _fill(db: sqlite3.Connection, reply_id: int, reply: Reply, status: str) -> None:
        db.execute(
            "UPDATE replies SET updated_at = ?, question = ?, answer = ?, reasoning = ?, raw_confidence = ?, "
            "confidence = ?, domain = ?, domain_probability = ?, needs_review = ?, review_reasons = ?, "
            "model = ?, prompt = ?, map_version = ?, raw_output = ?, tokens = ?, timings_ms = ?, status = ?, "
            "signals = ? WHERE id = ?",
            (
                utc_now(),
                reply.question,
                reply.answer,
                reply.reasoning,
                reply.raw_confidence,
                reply.confidence,
                reply.domain,
                reply.domain_probability,
                int(reply.needs_review),
                json.dumps(list(reply.review_reasons)),
                reply.model,
                reply.prompt,
                reply.map_version,
                reply.raw_output,
                reply.tokens,
                json.dumps(reply.timings_ms),
                status,
                json.dumps(reply.signals),
                reply_id,
            ),
        )

    def get_reply(self, reply_id: str) -> dict | None:
        """One reply row by public id, as a dict (review_reasons and timings_ms decoded); None when unknown."""
        rows = self._read("SELECT * FROM replies WHERE public_id = ?", (str(reply_id),))
        if not rows:
            return None
        d = dict(rows[0])
        d["review_reasons"] = json.loads(d["review_reasons"])
        d["timings_ms"] = json.loads(d["timings_ms"])
        d["signals"] = json.loads(d["signals"])
        d["needs_review"] = bool(d["needs_review"])
        return d

    # -- feedback and the queue ---------------------------------------------------------

    @staticmethod
    def _flag(db: sqlite3.Connection, reply_id: int, reasons) -> int:
        """Open (or add reasons to) the review item of a reply; return the item id."""
        row = db.execute("SELECT id, reasons FROM reviews WHERE reply_id = ?", (reply_id,)).fetchone()
        if row is None:
            cur = db.execute(
                "INSERT INTO reviews (reply_id, created_at, reasons) VALUES (?, ?, ?)",
                (reply_id, utc_now(), json.dumps(list(dict.fromkeys(reasons)))),
            )
            return int(cur.lastrowid)
        merged = list(dict.fromkeys([*json.loads(row["reasons"]), *reasons]))
        db.execute("UPDATE reviews SET reasons = ? WHERE id = ?", (json.dumps(merged), row["id"]))
        return int(row["id"])

    def _owned(self, db: sqlite3.Connection, reply_id: str, actor: Actor) -> int:
        """The internal id of `reply_id` when `actor` may act on it; else InputError, the same as for an
        unknown id, so nobody learns which ids exist."""
        row = db.execute("SELECT id, user, session FROM replies WHERE public_id = ?", (str(reply_id),)).fetchone()
        mine = row is not None and (
            actor.any_reply
            or (row["user"] is not None and row["user"] == actor.user)
            or (row["user"] is None and actor.user is None and row["session"] is not None
                and row["session"] == actor.session)
        )
        if not mine:
            raise InputError(f"no reply with id {reply_id!r} among your answers")
        return int(row["id"])

    def request_review(self, reply_id: str, actor: Actor) -> int:
        """`actor` asks for a human check of one of their replies; return the review item id."""
        with self._write() as db:
            return self._flag(db, self._owned(db, reply_id, actor), ["user_requested"])

    def add_feedback(self, reply_id: str, actor: Actor, thumbs: str, comment: str = "") -> int:
        """Record thumbs up/down (+ comment) on one of `actor`'s replies; thumbs down also queues it.
        Return the feedback id."""
        if thumbs not in ("up", "down"):
            raise InputError(f"thumbs must be 'up' or 'down', not {thumbs!r}")
        comment = comment or ""
        if len(comment) > MAX_COMMENT_CHARS:
            raise InputError(f"the comment has {len(comment):,} characters; the limit is {MAX_COMMENT_CHARS:,}: "
                             "shorten it and send it again")
        with self._write() as db:
            internal = self._owned(db, reply_id, actor)
            cur = db.execute(
                "INSERT INTO feedback (reply_id, created_at, user, thumbs, comment) VALUES (?, ?, ?, ?, ?)",
                (internal, utc_now(), actor.user, thumbs, comment),
            )
            if thumbs == "down":
                self._flag(db, internal, ["thumbs_down"])
            return int(cur.lastrowid)

    def feedback_for(self, reply_id: str) -> list[dict]:
        return [dict(r) for r in self._read(
            "SELECT f.* FROM feedback f JOIN replies r ON r.id = f.reply_id WHERE r.public_id = ? ORDER BY f.id",
            (str(reply_id),))]

    _ITEM_SQL = (
        "SELECT v.*, r.public_id, r.question, r.answer, r.reasoning, r.raw_confidence, r.confidence, r.domain, "
        "r.user, r.status AS reply_status, r.raw_output, r.signals FROM reviews v JOIN replies r ON r.id = v.reply_id "
    )

    def queue(self, status: str | None = "open", domain: str | None = None, limit: int = 200) -> list[QueueItem]:
        """Review items, newest first; `status`/`domain` None (or "all") means any."""
        where, params = [], []
        if status not in (None, "", "all"):
            where.append("v.status = ?")
            params.append(status)
        if domain not in (None, "", "all"):
            where.append("r.domain = ?")
            params.append(domain)
        sql = (self._ITEM_SQL + (f"WHERE {' AND '.join(where)} " if where else "")
               + "ORDER BY v.created_at DESC, v.id DESC LIMIT ?")
        return [self._item(row) for row in self._read(sql, (*params, int(limit)))]

    def get_item(self, item_id: int) -> QueueItem | None:
        """One review item in full, with every thumbs up/down and comment given on its reply."""
        rows = self._read(self._ITEM_SQL + "WHERE v.id = ?", (item_id,))
        if not rows:
            return None
        item = self._item(rows[0])
        feedback = tuple({k: f[k] for k in ("user", "thumbs", "comment", "created_at")}
                         for f in self.feedback_for(item.reply_id))
        return replace(item, feedback=feedback)

    @staticmethod
    def _item(row: sqlite3.Row) -> QueueItem:
        return QueueItem(
            id=row["id"],
            reply_id=row["public_id"],
            created_at=row["created_at"],
            status=row["status"],
            reasons=tuple(json.loads(row["reasons"])),
            question=row["question"],
            answer=row["answer"],
            reasoning=row["reasoning"],
            raw_confidence=row["raw_confidence"],
            confidence=row["confidence"],
            domain=row["domain"],
            user=row["user"],
            verdict=row["verdict"],
            corrected_answer=row["corrected_answer"],
            reviewer=row["reviewer"],
            reviewed_at=row["reviewed_at"],
            revisions=row["revisions"],
            status_of_reply=row["reply_status"],
            raw_output=row["raw_output"],
            signals=json.loads(row["signals"] or "{}"),
        )

    def submit_verdict(
        self, item_id: int, verdict: str, reviewer: str | None, corrected_answer: str | None = None,
        *, revise: bool = False,
    ) -> QueueItem:
        """Close a review item with a verdict; returns (the closed item) only after the commit.

        Every verdict is kept (`verdict_history`). An item that already has one is changed only
        with `revise=True`: verdicts become training labels, so none is overwritten by accident.
        """
        if verdict not in VERDICTS:
            raise InputError(f"verdict must be one of {', '.join(VERDICTS)}, not {verdict!r}")
        corrected = (corrected_answer or "").strip() or None
        now = utc_now()
        with self._write() as db:
            row = db.execute("SELECT verdict, reviewer, reviewed_at FROM reviews WHERE id = ?",
                             (int(item_id),)).fetchone()
            if row is None:
                raise InputError(f"no review item with id {item_id}")
            if row["verdict"] is not None and not revise:
                raise InputError(f"review item {item_id} already has the verdict {row['verdict']!r} "
                                 f"({row['reviewer'] or '?'}, {row['reviewed_at']}): revise it explicitly to "
                                 "change it (every verdict is kept)")
            db.execute("INSERT INTO verdicts (item_id, created_at, reviewer, verdict, corrected_answer) "
                       "VALUES (?, ?, ?, ?, ?)", (int(item_id), now, reviewer, verdict, corrected))
            db.execute(
                "UPDATE reviews SET status = 'closed', verdict = ?, corrected_answer = ?, reviewer = ?, "
                "reviewed_at = ?, revisions = revisions + ? WHERE id = ?",
                (verdict, corrected, reviewer, now, int(row["verdict"] is not None), int(item_id)),
            )
        return self.get_item(int(item_id))

    def verdict_history(self, item_id: int) -> list[dict]:
        """Every verdict given on a review item, oldest first: reviewer, created_at, verdict, corrected_answer."""
        return [dict(r) for r in self._read(
            "SELECT reviewer, created_at, verdict, corrected_answer FROM verdicts WHERE item_id = ? ORDER BY id",
            (int(item_id),))]

    # -- records and figures ------------------------------------------------------------

    def records(self) -> Iterator[Record]:
        """Closed review items as graded records, oldest verdict first.

        Each carries the latest verdict and `revisions`, how often that verdict was changed.
        """
        rows = self._read(
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
            )

    def export_records(self, path: Path) -> int:
        """Write `records()` as JSON lines to `path` (atomically, readable by its owner only); return how many."""
        try:
            return write_jsonl((r.to_dict() for r in self.records()), Path(path), mode=_PRIVATE)
        except OSError as err:
            raise StoreError(f"cannot write review export {path}: {err}") from err

    def reviewed(self, since: str | datetime | None = None) -> list[dict]:
        """Answers given since `since` with a correct/incorrect verdict: domain, raw, confidence, correct."""
        where, params = _since_clause("r.created_at", since)
        sql = (
            "SELECT r.domain, r.raw_confidence, r.confidence, v.verdict FROM reviews v "
            "JOIN replies r ON r.id = v.reply_id WHERE v.verdict IN ('correct', 'incorrect')" + where
        )
        return [
            {
                "domain": row["domain"] or "general",
                "raw_confidence": row["raw_confidence"],
                "confidence": row["confidence"],
                "correct": row["verdict"] == "correct",
            }
            for row in self._read(sql + " ORDER BY v.id", params)
        ]

    def answered(self, since: str | datetime | None = None) -> list[dict]:
        """Every finished answer given since `since`: domain, raw_confidence, confidence (for histograms)."""
        where, params = _since_clause("created_at", since)
        sql = "SELECT domain, raw_confidence, confidence FROM replies WHERE status = 'ok'" + where
        return [
            {"domain": row["domain"] or "general", "raw_confidence": row["raw_confidence"],
             "confidence": row["confidence"]}
            for row in self._read(sql + " ORDER BY id", params)
        ]

    def review_stats(self, since: str | datetime | None = None) -> dict[str, ReviewStats]:
        """Reviewed answers given since `since` (UTC ISO) per domain, plus "all"."""
        by_domain: dict[str, list[tuple[float | None, bool]]] = {"all": []}
        for row in self.reviewed(since):
            pair = (row["confidence"], row["correct"])
            by_domain["all"].append(pair)
            by_domain.setdefault(row["domain"], []).append(pair)
        return {domain: _stats(pairs) for domain, pairs in by_domain.items()}


def _stats(pairs: list[tuple[float | None, bool]]) -> ReviewStats:
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
