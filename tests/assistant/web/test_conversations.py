"""Conversations kept server-side (issue 14.7): each owner sees and opens only their own, replies stay
in order, and a visitor without a login keeps theirs across reloads through the browser's token."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import gradio as gr
import pytest

from assistant.core.errors import InputError
from assistant.reviews.migrations import MIGRATIONS
from assistant.reviews.store import ReviewStore
from assistant.reviews.types import Actor
from assistant.web.conversations import TITLE_CHARS, Conversations, PageSessions, browser_token, owner_key
from tests.conftest import make_assistant, make_reply, stored_reply


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
    assert store.applied_migrations() == [name for name, _ in MIGRATIONS]
    assert stored_reply(store, "abc")["question"] == "old question"
    assert stored_reply(store, "abc")["conversation_id"] is None and store.integrity_check() == []
    store.close()


@dataclass(frozen=True)
class _Request:
    """What the chat's handlers read from a Gradio request: nobody signed in, one page session."""
    session_hash: str
    username: str | None = None


def test_a_question_sent_before_the_page_load_finished_goes_into_its_conversation(store):
    """Issue 25.8: in a fresh browser the question reached the server before the page load's owner token
    reached the browser, so the reply was stored with no conversation and the list was titled by the
    second question. Here the question is answered first, the page load runs after, then a second one."""
    from assistant.web.chat import ChatTab
    from assistant.web.context import WebContext

    tab = ChatTab(WebContext(make_assistant(), store, users=None))
    page = _Request("fresh-page")
    first = list(tab.respond("What is 12 times 11?", [], None, None, page))  # the browser has no token yet
    rows = store.read("SELECT conversation_id FROM replies")
    assert [r["conversation_id"] is not None for r in rows] == [True]  # stored in a conversation
    turns, _, _, _, conversation, token = first[-1]
    assert conversation is not None and token is not None

    loaded, history, shown_turns, chat, on_screen = tab.on_load(None, None, page)  # the page load, late
    assert loaded == token  # the token the question's conversation belongs to
    assert [c for c, _ in history["choices"]][0].startswith("What is 12 times 11?")
    assert shown_turns == chat == on_screen == gr.skip()  # the conversation on screen is not cleared

    second = list(tab.respond("And 13 times 11?", turns, conversation, loaded, page))[-1]
    assert second[4] == conversation
    owner = owner_key(None, token)
    assert [(c.title, c.turns) for c in Conversations(store).of(owner)] == [("What is 12 times 11?", 2)]
    assert [r["question"] for r in Conversations(store).replies(owner, conversation)] == [
        "What is 12 times 11?", "And 13 times 11?"]


def test_a_page_keeps_the_token_its_browser_kept_and_pages_do_not_share_one():
    pages = PageSessions(limit=2)
    kept = browser_token(None)
    assert pages.page("a", kept).token == kept and pages.page("a", None).token == kept
    fresh = pages.page("b", None, asking=True)
    assert fresh.token != kept and pages.page("b", "forged").token == fresh.token and pages.page("b", None).asked
    pages.page("c", None)
    assert pages.page("a", None).token != kept  # only the last `limit` pages are remembered
    assert pages.page(None, kept).token == kept and pages.page(None, None).token != pages.page(None, None).token
