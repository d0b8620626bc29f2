"""Conversations kept server-side (issue 14.7): each owner sees and opens only their own, replies stay
in order, and a visitor without a login keeps theirs across reloads through the browser's token."""

from __future__ import annotations

import sqlite3

import pytest

from assistant.core.errors import InputError
from assistant.web.conversations import TITLE_CHARS, Conversations, browser_token, owner_key
from assistant.web.migrations import MIGRATIONS
from assistant.web.reviews import Actor
from assistant.web.store import ReviewStore
from tests.conftest import make_reply


@pytest.fixture
def store(tmp_path):
    s = ReviewStore(tmp_path)
    yield s
    s.close()


def test_an_owner_lists_and_opens_their_conversations_in_order(store):
    chats = Conversations(store)
    alice = owner_key("alice", None)
    first = chats.start(alice, "What is 12 times 11?")
    for question in ("What is 12 times 11?", "And 13 times 11?"):
        reply_id = store.start_reply(question, "alice", conversation=first)
        store.finish_reply(reply_id, make_reply(question=question))
    second = chats.start(alice, "Capital of France?")
    store.finish_reply(store.start_reply("Capital of France?", "alice", conversation=second),
                       make_reply(question="Capital of France?"))

    listed = chats.of(alice)
    assert [c.id for c in listed] == [second, first]  # the most recently used first
    assert [(c.title, c.turns) for c in listed] == [("Capital of France?", 1), ("What is 12 times 11?", 2)]
    rows = chats.replies(alice, first)
    assert [r["question"] for r in rows] == ["What is 12 times 11?", "And 13 times 11?"]
    assert rows[0]["status"] == "ok" and isinstance(rows[0]["review_reasons"], list)

    # a later question moves its conversation to the top
    store.start_reply("And 14 times 11?", "alice", conversation=first)
    assert [c.id for c in chats.of(alice)] == [first, second]


def test_nobody_else_lists_or_opens_them_and_an_unknown_id_reads_the_same(store):
    chats = Conversations(store)
    mine = chats.start(owner_key("alice", None), "a private question")
    assert chats.of(owner_key("bob", None)) == [] and chats.of(None) == []
    with pytest.raises(InputError) as other:
        chats.replies(owner_key("bob", None), mine)
    with pytest.raises(InputError) as unknown:
        chats.replies(owner_key("bob", None), "0" * 32)
    assert str(other.value).replace(mine, "ID") == str(unknown.value).replace("0" * 32, "ID")
    with pytest.raises(InputError):
        chats.replies(None, mine)


def test_a_reply_into_an_unknown_conversation_is_refused_and_nothing_is_written(store):
    with pytest.raises(InputError, match="no conversation"):
        store.start_reply("q", "alice", conversation="f" * 32)
    assert store.read("SELECT COUNT(*) FROM replies")[0][0] == 0


def test_titles_are_the_first_question_on_one_line_and_cut_short(store):
    chats = Conversations(store)
    owner = owner_key("alice", None)
    chats.start(owner, "line one\n\n   line two")
    chats.start(owner, "x" * 500)
    titles = [c.title for c in chats.of(owner)]
    assert titles[1] == "line one line two"
    assert len(titles[0]) == TITLE_CHARS and titles[0].endswith("…")


def test_a_browser_keeps_its_token_and_a_forged_one_is_replaced():
    token = browser_token(None)
    assert len(token) == 32 and browser_token(token) == token
    assert browser_token(token) != browser_token(None)  # random, not derived from anything
    for forged in ("../etc", "A" * 32, 12, {"x": 1}, token + "0"):
        assert browser_token(forged) != forged
    assert owner_key(None, token) == f"browser:{token}" and owner_key("sam", token) == "user:sam"


def test_without_a_login_the_browser_token_owns_replies_across_sessions(store):
    """After a reload the session is new; the reopened answers are still the visitor's own."""
    token = browser_token(None)
    cid = Conversations(store).start(owner_key(None, token), "q")
    reply_id = store.start_reply("q", None, session="session-before-reload", conversation=cid)
    store.finish_reply(reply_id, make_reply())
    after_reload = Actor(None, "session-after-reload", owner=owner_key(None, token))
    assert store.add_feedback(reply_id, after_reload, "up") > 0
    another_browser = Actor(None, "session-after-reload", owner=owner_key(None, browser_token(None)))
    with pytest.raises(InputError, match="among your answers"):
        store.add_feedback(reply_id, another_browser, "down")
    signed_in = Actor("sam", "session-before-reload", owner=owner_key(None, token))
    with pytest.raises(InputError):  # a signed-in user owns by name, never by someone's browser token
        store.request_review(reply_id, signed_in)


def test_a_store_from_before_conversations_keeps_its_replies(tmp_path):
    conn = sqlite3.connect(tmp_path / "reviews.sqlite3")
    conn.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, sql in MIGRATIONS[:3]:
        conn.executescript(sql)
        conn.execute("INSERT INTO migrations VALUES (?, '2026-01-01')", (name,))
    conn.execute("INSERT INTO replies (created_at, updated_at, user, question, public_id, status) "
                 "VALUES ('2026-01-01', '2026-01-01', 'sam', 'old question', 'abc', 'ok')")
    conn.commit()
    conn.close()
    store = ReviewStore(tmp_path)
    assert store.applied_migrations()[-1] == "0004_conversations"
    assert store.get_reply("abc")["question"] == "old question"
    assert store.get_reply("abc")["conversation_id"] is None and store.integrity_check() == []
    store.close()
