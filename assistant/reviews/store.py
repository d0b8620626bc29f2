"""The review store: replies, feedback and human verdicts, in one SQLite file or in PostgreSQL.

Everything the web app must not lose lives here: every answer given (written
when streaming starts, completed when it ends, so a kill mid-stream leaves a
consistent row), thumbs up/down, and the review queue with reviewers' verdicts.
Verdicts export as graded records (`assistant.reviews.queries`), so `calibrate fit`
can refit from human labels; the schema is `assistant.reviews.migrations`.

By default the database is `<data dir>/reviews.sqlite3` in WAL mode with
`synchronous=FULL`: a write method returns only after its transaction is durable.
With a PostgreSQL URL (`url=`, the app's `--store`) several app servers share one
store (`assistant.reviews.dialect` holds what differs). Schema changes are
migrations applied by name and recorded in the `migrations` table.

    store = ReviewStore(Path("data"))
    reply_id = store.record_reply(reply, user="alice")
    for item in store.queue(status="open"):
        store.submit_verdict(item.id, "correct", reviewer="bob")
    queries.export_records(store, Path("reviews.jsonl"))
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from assistant.core.errors import InputError, StoreError
from assistant.core.files import PRIVATE_FILE
from assistant.core.reply import Reply
from assistant.reviews.dialect import Connection, dialect_for
from assistant.reviews.types import Actor, QueueItem, utc_now

__all__ = ["DB_FILENAME", "MAX_COMMENT_CHARS", "PRIVATE", "VERDICTS", "ReviewStore", "reply_dict"]

DB_FILENAME = "reviews.sqlite3"
VERDICTS = ("correct", "incorrect", "not_answerable")
MAX_COMMENT_CHARS = 2000  # longest feedback comment accepted
PRIVATE = PRIVATE_FILE  # the database, its -wal/-shm files and exports: readable by the app's user only

log = logging.getLogger(__name__)


def reply_dict(row: Mapping) -> dict:
    """A `replies` row as a dict, its JSON columns decoded and needs_review a bool."""
    d = dict(row)
    for column in ("review_reasons", "timings_ms", "signals"):
        d[column] = json.loads(d[column])
    d["needs_review"] = bool(d["needs_review"])
    return d


class ReviewStore:
    """The review store: SQLite in one data folder, or PostgreSQL at `url`; safe to share between threads.

    `server` names this app server in the replies it streams (for `mark_interrupted`); give each
    server sharing a PostgreSQL store its own.
    """

    def __init__(self, data_dir: Path, *, url: str | None = None, server: str = ""):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_FILENAME  # the SQLite file (unused with a PostgreSQL `url`)
        self.dialect = dialect_for(self.path, url)
        self.server = server
        self._lock = threading.RLock()
        try:
            self._conn: Connection = self.dialect.connect()
            self.migrate()
        except (*self.dialect.errors, OSError) as err:
            raise StoreError(self._explain(err)) from err

    @property
    def shared(self) -> bool:
        """Several app servers may use this store at once (PostgreSQL)."""
        return self.dialect.shared

    def _explain(self, err: Exception) -> str:
        return f"review store {self.dialect.location}: {err} — {self.dialect.advice()}"

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One durable write transaction (also for `assistant.web.conversations`), with no other writer
        beside it; any database or OS failure becomes StoreError."""
        with self._lock:
            try:
                self.dialect.begin_write(self._conn)
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except (*self.dialect.errors, OSError) as err:
                raise StoreError(self._explain(err)) from err

    def read(self, sql: str, params: tuple = ()) -> list[Mapping]:
        """Rows of one read-only query (for `assistant.reviews.queries`); a failure becomes StoreError."""
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except self.dialect.errors as err:
                raise StoreError(self._explain(err)) from err

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- schema -------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded (`assistant.reviews.migrations`); return the names applied now."""
        with self._lock:
            return self.dialect.migrate(self._conn)

    def applied_migrations(self) -> list[str]:
        return [row[0] for row in self.read("SELECT name FROM migrations ORDER BY name")]

    def journal_mode(self) -> str:
        return self.read("PRAGMA journal_mode")[0][0]

    def integrity_check(self) -> list[str]:
        """Problems `PRAGMA integrity_check` finds; an empty list when the file is sound."""
        rows = [row[0] for row in self.read("PRAGMA integrity_check")]
        return [] if rows == ["ok"] else rows

    # -- replies ------------------------------------------------------------------------

    def mark_interrupted(self) -> int:
        """At the app's start-up: replies still 'streaming' were cut off when it last stopped. Mark them
        'interrupted' and put them in the review queue; return how many. (Not on every open: a
        `calibrate reviews export` beside a running app must not touch its answers in flight.)
        In a shared store only this server's replies (and those that name no server): the other
        servers' replies in flight are still streaming."""
        mine = " AND (server = ? OR server IS NULL)" if self.shared else ""
        with self.write() as db:
            rows = db.execute("SELECT id FROM replies WHERE status = 'streaming'" + mine,
                              (self.server,) if mine else ()).fetchall()
            for row in rows:
                db.execute("UPDATE replies SET status = 'interrupted', updated_at = ? WHERE id = ?",
                           (utc_now(), row["id"]))
                self._flag(db, row["id"], ["interrupted"])
        if rows:
            log.warning("%d answers were cut off when the app last stopped; they are in the review queue "
                        "as 'interrupted'", len(rows))
        return len(rows)

    def _internal_id(self, db: Connection, public_id: str) -> int:
        row = db.execute("SELECT id FROM replies WHERE public_id = ?", (str(public_id),)).fetchone()
        if row is None:
            raise InputError(f"no reply with id {public_id!r}")
        return int(row["id"])

    def start_reply(self, question: str, user: str | None, model: str = "", prompt: str = "",
                    session: str | None = None, conversation: str | None = None) -> str:
        """Write a reply row with status 'streaming' before generation starts; return its public id.
        `conversation`: the public id of the conversation it continues (the caller checked the owner)."""
        now, public_id = utc_now(), secrets.token_hex(16)
        with self.write() as db:
            internal = None
            if conversation is not None:
                row = db.execute("SELECT id FROM conversations WHERE public_id = ?", (conversation,)).fetchone()
                if row is None:
                    raise InputError(f"no conversation with id {conversation!r}")
                internal = int(row["id"])
                db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, internal))
            db.execute(
                'INSERT INTO replies (created_at, updated_at, "user", question, model, prompt, public_id, session, '
                "conversation_id, server, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'streaming')",
                (now, now, user, question, model, prompt, public_id, session, internal, self.server),
            )
        return public_id

    def cancel_reply(self, reply_id: str, answer: str, reasoning: str) -> None:
        """Mark a stopped stream 'cancelled', keeping the text streamed so far."""
        with self.write() as db:
            db.execute(
                "UPDATE replies SET answer = ?, reasoning = ?, updated_at = ?, status = 'cancelled' "
                "WHERE public_id = ? AND status = 'streaming'",
                (answer, reasoning, utc_now(), str(reply_id)),
            )

    def finish_reply(self, reply_id: str, reply: Reply, status: str = "ok") -> None:
        """Complete a started row with the finished Reply; queue it when it needs review."""
        with self.write() as db:
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
    def _fill(db: Connection, reply_id: int, reply: Reply, status: str) -> None:
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
                json.dumps(reply.to_dict()["signals"]),
                reply_id,
            ),
        )

    # -- feedback and the queue ---------------------------------------------------------

    @staticmethod
    def _flag(db: Connection, reply_id: int, reasons) -> int:
        """Open (or add reasons to) the review item of a reply; return the item id."""
        row = db.execute("SELECT id, reasons FROM reviews WHERE reply_id = ?", (reply_id,)).fetchone()
        if row is None:
            return int(db.execute(
                "INSERT INTO reviews (reply_id, created_at, reasons) VALUES (?, ?, ?) RETURNING id",
                (reply_id, utc_now(), json.dumps(list(dict.fromkeys(reasons)))),
            ).fetchone()["id"])
        merged = list(dict.fromkeys([*json.loads(row["reasons"]), *reasons]))
        db.execute("UPDATE reviews SET reasons = ? WHERE id = ?", (json.dumps(merged), row["id"]))
        return int(row["id"])

    def _owned(self, db: Connection, reply_id: str, actor: Actor) -> int:
        """The internal id of `reply_id` when `actor` may act on it; else InputError, the same as for an
        unknown id, so nobody learns which ids exist."""
        row = db.execute("SELECT r.id, r.user, r.session, c.owner FROM replies r LEFT JOIN conversations c "
                         "ON c.id = r.conversation_id WHERE r.public_id = ?", (str(reply_id),)).fetchone()
        anonymous = row is not None and row["user"] is None and actor.user is None
        mine = row is not None and (
            actor.any_reply
            or (row["user"] is not None and row["user"] == actor.user)
            or (anonymous and row["session"] is not None and row["session"] == actor.session)
            or (anonymous and row["owner"] is not None and row["owner"] == actor.owner)
        )
        if not mine:
            raise InputError(f"no reply with id {reply_id!r} among your answers")
        return int(row["id"])

    def request_review(self, reply_id: str, actor: Actor) -> int:
        """`actor` asks for a human check of one of their replies; return the review item id."""
        with self.write() as db:
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
        with self.write() as db:
            internal = self._owned(db, reply_id, actor)
            feedback_id = int(db.execute(
                'INSERT INTO feedback (reply_id, created_at, "user", thumbs, comment) VALUES (?, ?, ?, ?, ?) '
                "RETURNING id", (internal, utc_now(), actor.user, thumbs, comment),
            ).fetchone()["id"])
            if thumbs == "down":
                self._flag(db, internal, ["thumbs_down"])
            return feedback_id

    def feedback_for(self, reply_id: str) -> list[dict]:
        return [dict(r) for r in self.read(
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
        return [self._item(row) for row in self.read(sql, (*params, int(limit)))]

    def get_item(self, item_id: int) -> QueueItem | None:
        """One review item in full, with every thumbs up/down and comment given on its reply."""
        rows = self.read(self._ITEM_SQL + "WHERE v.id = ?", (item_id,))
        if not rows:
            return None
        item = self._item(rows[0])
        feedback = tuple({k: f[k] for k in ("user", "thumbs", "comment", "created_at")}
                         for f in self.feedback_for(item.reply_id))
        return replace(item, feedback=feedback)

    @staticmethod
    def _item(row: Mapping) -> QueueItem:
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
        with self.write() as db:
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
        return [dict(r) for r in self.read(
            "SELECT reviewer, created_at, verdict, corrected_answer FROM verdicts WHERE item_id = ? ORDER BY id",
            (int(item_id),))]

