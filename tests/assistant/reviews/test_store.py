"""The SQLite review store: migrations, WAL, the queue, verdicts, export, failures and kills."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from assistant.core.errors import InputError, StoreError
from assistant.core.record import RECORD_FIELDS
from assistant.reviews import queries
from assistant.reviews.dialect import SQLiteDialect
from assistant.reviews.migrations import MIGRATIONS
from assistant.reviews.store import DB_FILENAME, ReviewStore
from assistant.reviews.types import Actor
from tests.conftest import ROOT, make_reply, stored_reply

# The records schema of `calibrate collect`, plus how often a reviewer's verdict was revised.


@pytest.fixture
def sqlite_store(tmp_path):
    s = ReviewStore(tmp_path / "data")
    yield s
    s.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The store's behaviour, the same on SQLite and on a real PostgreSQL server."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    s = ReviewStore(tmp_path / "data", url=url)
    yield s
    s.close()


def test_migrations_are_applied_once_by_name(tmp_path):
    first = ReviewStore(tmp_path)
    assert first.applied_migrations() == [name for name, _ in MIGRATIONS]
    assert first.migrate() == []
    first.close()
    again = ReviewStore(tmp_path)  # re-opening applies nothing and keeps the data
    assert again.migrate() == [] and again.applied_migrations() == [name for name, _ in MIGRATIONS]


def test_wal_mode_and_full_sync(sqlite_store):
    store = sqlite_store
    assert store.journal_mode() == "wal"
    assert store.read("PRAGMA synchronous")[0][0] == 2  # FULL
    assert store.read("PRAGMA busy_timeout")[0][0] > 0


def test_streaming_row_then_finished(store):
    reply_id = store.start_reply("What is 12*11?", "alice", "fake-model", "confidence_tags")
    assert stored_reply(store, reply_id)["status"] == "streaming"
    assert store.queue() == []
    store.finish_reply(reply_id, make_reply())
    row = stored_reply(store, reply_id)
    assert row["status"] == "ok" and row["answer"] == "132" and row["review_reasons"] == ["low_confidence"]
    assert row["user"] == "alice" and row["tokens"] == 17 and row["needs_review"] is True
    assert [item.reply_id for item in store.queue()] == [reply_id]


def test_cancelled_stream_keeps_partial_text(store):
    reply_id = store.start_reply("q", "alice")
    store.cancel_reply(reply_id, "partial answ", "thinking")
    row = stored_reply(store, reply_id)
    assert (row["status"], row["answer"], row["reasoning"]) == ("cancelled", "partial answ", "thinking")


@pytest.mark.parametrize(
    "needs_review, action, expected_reasons",
    [
        (True, None, ("low_confidence",)),
        (False, None, None),  # not queued at all
        (False, "thumbs_down", ("thumbs_down",)),
        (False, "thumbs_up", None),
        (False, "request", ("user_requested",)),
        (True, "request", ("low_confidence", "user_requested")),
        (True, "thumbs_down", ("low_confidence", "thumbs_down")),
    ],
)
def test_what_enters_the_queue(store, needs_review, action, expected_reasons):
    reasons = ("low_confidence",) if needs_review else ()
    reply_id = store.record_reply(make_reply(needs_review=needs_review, review_reasons=reasons), "alice")
    if action == "thumbs_down":
        store.add_feedback(reply_id, Actor("alice"), "down", "wrong")
    elif action == "thumbs_up":
        store.add_feedback(reply_id, Actor("alice"), "up")
    elif action == "request":
        store.request_review(reply_id, Actor("alice"))
    items = store.queue()
    assert (items[0].reasons if items else None) == expected_reasons


def test_queue_is_newest_first_and_filters(store):
    ids = [store.record_reply(make_reply(domain=d), "alice") for d in ("math", "factual", "math")]
    assert [i.reply_id for i in store.queue()] == ids[::-1]
    assert [i.reply_id for i in store.queue(domain="math")] == [ids[2], ids[0]]
    first = store.queue(domain="factual")[0]
    store.submit_verdict(first.id, "correct", "rita")
    assert [i.reply_id for i in store.queue(status="open")] == [ids[2], ids[0]]
    assert [i.reply_id for i in store.queue(status="closed")] == [ids[1]]
    assert len(store.queue(status="all")) == 3


@pytest.mark.parametrize(
    "verdict, corrected, gold, correct",
    [
        ("correct", None, "132", True),
        ("correct", "132 (twelve elevens)", "132 (twelve elevens)", True),
        ("incorrect", "131", "131", False),
        ("incorrect", None, None, False),
        ("not_answerable", None, None, None),
    ],
)
def test_verdict_round_trip_and_export(store, tmp_path, verdict, corrected, gold, correct):
    reply_id = store.record_reply(make_reply(), "alice")
    item = store.queue()[0]
    closed = store.submit_verdict(item.id, verdict, "rita", corrected)
    assert (closed.status, closed.verdict, closed.reviewer) == ("closed", verdict, "rita")
    assert store.queue() == []
    out = tmp_path / "reviews.jsonl"
    assert queries.export_records(store, out) == 1
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert tuple(record) == RECORD_FIELDS  # the one record schema, in its order
    assert record == {
        "id": f"review-{reply_id}", "domain": "math", "question": "What is 12*11?", "gold": gold, "answer": "132",
        "raw_confidence": 0.9, "correct": correct, "parse_ok": True, "model": "fake-model",
        "prompt": "confidence_tags", "tokens": 17, "seconds": 1.5, "issues": [], "signals": {}, "revisions": 0,
        "source": None, "license": None, "population": "review",
    }


@pytest.mark.parametrize(
    "item_id, verdict, error",
    [(1, "maybe", InputError), (999, "correct", InputError)],
)
def test_bad_verdicts_are_refused(store, item_id, verdict, error):
    store.record_reply(make_reply(), "alice")
    with pytest.raises(error):
        store.submit_verdict(item_id, verdict, "rita")
    assert store.queue()[0].status == "open"


def test_review_stats_since_fit(store):
    # calibrated 0.45 and 0.95 judged correct/incorrect: hand-computed ECE over bins (0.4,0.5] and (0.9,1.0]
    a = store.record_reply(make_reply(confidence=0.45), "alice")
    b = store.record_reply(make_reply(confidence=0.95, domain="factual"), "alice")
    items = {i.reply_id: i.id for i in store.queue()}
    store.submit_verdict(items[a], "correct", "rita")  # |1 - 0.45| = 0.55
    store.submit_verdict(items[b], "incorrect", "rita")  # |0 - 0.95| = 0.95
    stats = queries.stats_by_domain(queries.reviewed(store))
    assert stats["all"].count == 2 and stats["all"].accuracy == 0.5
    assert stats["all"].ece == pytest.approx((0.55 + 0.95) / 2)
    assert stats["factual"].accuracy == 0.0
    assert queries.stats_by_domain(queries.reviewed(store, since="2999-01-01T00:00:00Z"))["all"].count == 0


def test_unwritable_folder_raises_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="data folder is writable"):
        ReviewStore(blocker / "data")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder_raises_store_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(StoreError):
            ReviewStore(folder)
    finally:
        folder.chmod(0o700)


def test_read_only_database_file_raises_on_write(tmp_path):
    ReviewStore(tmp_path).close()
    store = ReviewStore.__new__(ReviewStore)  # open the same file read-only, as a read-only mount would
    store.data_dir, store.path = tmp_path, tmp_path / DB_FILENAME
    store.dialect, store.server = SQLiteDialect(store.path), ""
    import threading

    store._lock = threading.RLock()
    store._conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, isolation_level=None,
                                  check_same_thread=False)
    store._conn.row_factory = sqlite3.Row
    with pytest.raises(StoreError, match="readonly"):
        store.record_reply(make_reply(), "alice")


def test_disk_full_raises_store_error_and_keeps_earlier_rows(sqlite_store):
    store = sqlite_store
    kept = store.record_reply(make_reply(), "alice")
    pages = store.read("PRAGMA page_count")[0][0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page
    with pytest.raises(StoreError, match="full"):
        for _ in range(50):
            store.record_reply(make_reply(raw_output="x" * 20000), "alice")
    assert stored_reply(store, kept)["answer"] == "132"
    assert store.integrity_check() == []


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from assistant.reviews.store import ReviewStore
    from tests.conftest import make_reply
    store = ReviewStore(Path({data!r}))
    while True:
        rid = store.start_reply("q", "alice")
        store.finish_reply(rid, make_reply(raw_output="y" * 5000))
        item = store.queue(limit=1)[0]
        store.submit_verdict(item.id, "correct", "rita")
        print(item.id, flush=True)   # acknowledged only after the commit returned
    """
)


def test_sigkilled_writer_leaves_a_sound_store(tmp_path):
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT), data=str(data))],
                            stdout=subprocess.PIPE, text=True)
    acknowledged = [int(proc.stdout.readline()) for _ in range(20)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acknowledged += [int(line) for line in proc.stdout.read().split()]
    store = ReviewStore(data)
    assert store.integrity_check() == []
    closed = {item.id: item for item in store.queue(status="closed", limit=100000)}
    assert all(closed[i].verdict == "correct" for i in acknowledged)
    statuses = {row[0] for row in store.read("SELECT status FROM replies")}
    assert statuses <= {"streaming", "ok"}


def test_postgresql_has_the_same_named_migrations_applied_once(tmp_path, pg_url):
    from assistant.reviews.postgres import POSTGRES_MIGRATIONS

    assert [name for name, _ in POSTGRES_MIGRATIONS] == [name for name, _ in MIGRATIONS]
    first = ReviewStore(tmp_path, url=pg_url)
    assert first.applied_migrations() == [name for name, _ in MIGRATIONS]
    kept = first.record_reply(make_reply(), "alice")
    first.close()
    again = ReviewStore(tmp_path, url=pg_url)  # re-opening applies nothing and keeps the data
    assert again.migrate() == [] and stored_reply(again, kept)["answer"] == "132"
    assert not (tmp_path / DB_FILENAME).exists()  # nothing went to SQLite


@pytest.mark.parametrize("url, message", [
    ("mysql://app@db/chat", "must be a PostgreSQL URL starting postgresql://"),
    ("postgresql://app:s3cret@127.0.0.1:1/chat?connect_timeout=2", "PostgreSQL server is running and reachable"),
])
def test_a_bad_store_url_is_named_without_its_password(tmp_path, url, message):
    with pytest.raises((InputError, StoreError), match=message) as raised:
        ReviewStore(tmp_path, url=url)
    assert "s3cret" not in str(raised.value) and not (tmp_path / DB_FILENAME).exists()


def test_a_lost_postgresql_connection_fails_one_call_and_the_next_one_connects_again(tmp_path, pg_url):
    import psycopg

    store = ReviewStore(tmp_path, url=pg_url)
    kept = store.record_reply(make_reply(), "alice")
    with psycopg.connect(pg_url, autocommit=True) as admin:  # as a database restart would
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                      "AND datname = current_database()")
    with pytest.raises(StoreError, match="PostgreSQL server is running"):
        stored_reply(store, kept)
    assert stored_reply(store, kept)["answer"] == "132"
    assert stored_reply(store, store.record_reply(make_reply(), "bob"))["user"] == "bob"
