"""The review store's schema, as named migrations applied in order and recorded in `migrations`.

A migration is never edited once shipped: a change is a new one. `_REPLY_COLUMNS` repeats the
replies table of 0001 on purpose, so that 0002 can rebuild the table with the same columns.
"""

from __future__ import annotations

import sqlite3

from assistant.reviews.types import utc_now

__all__ = ["MIGRATIONS", "SERVERS_AND_THROTTLE", "SERVER_STATUS", "apply_migrations"]

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
# 0005 in SQL that SQLite and PostgreSQL read alike (`assistant.reviews.postgres` applies it there).
SERVERS_AND_THROTTLE = """
        ALTER TABLE replies ADD COLUMN server TEXT;
        CREATE TABLE sign_in_throttle (
            key TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            last_at DOUBLE PRECISION NOT NULL,
            last_check_at DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX sign_in_throttle_last ON sign_in_throttle (last_at);
        """
# 0006, read alike by both: each app server's last report (assistant.reviews.servers), one row a server.
SERVER_STATUS = """
        CREATE TABLE server_status (
            server TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            prompt TEXT NOT NULL,
            map_version TEXT,
            started_at TEXT NOT NULL,
            seen_at TEXT NOT NULL
        );
        """
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
    (
        # Each user's conversations, kept server-side so they survive a reload; a reply belongs to one.
        # `owner`: "user:<name>" when signed in, "browser:<token>" for a visitor without a login.
        "0004_conversations",
        """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            public_id TEXT NOT NULL UNIQUE,
            owner TEXT NOT NULL,
            title TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX conversations_owner_updated ON conversations (owner, updated_at);
        ALTER TABLE replies ADD COLUMN conversation_id INTEGER REFERENCES conversations (id);
        CREATE INDEX replies_conversation ON replies (conversation_id, id);
        """,
    ),
    # Each reply names the app server that streams it (so a server's start-up marks only its own cut-off
    # replies as interrupted); the sign-in throttle's tallies, for servers that share one store.
    ("0005_servers_and_sign_in_throttle", SERVERS_AND_THROTTLE),
    # Which map version each app server answers with, and when it last said so (the dashboard's servers).
    ("0006_server_status", SERVER_STATUS),
]


def apply_migrations(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations not yet recorded in `migrations`; return the names applied now.

    Run with foreign keys off (SQLite's procedure for rebuilding a referenced table);
    `foreign_key_check` afterwards refuses a migration that left a dangling reference.
    """
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    done = {row[0] for row in conn.execute("SELECT name FROM migrations")}
    applied = []
    for name, sql in MIGRATIONS:
        if name in done:
            continue
        # executescript commits first, so the migration and its record go in one explicit transaction.
        try:
            conn.executescript(f"BEGIN IMMEDIATE;\n{sql}\nINSERT INTO migrations (name, applied_at) "
                               f"VALUES ('{name}', '{utc_now()}');\nCOMMIT;")
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(name)
    broken = conn.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise sqlite3.IntegrityError(f"after migrating, {len(broken)} rows reference missing rows")
    return applied
