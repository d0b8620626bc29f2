"""Each user's conversations, kept in the review store so that they survive a reload.

A conversation is a title (its first question) and its replies in the order they were
asked. It belongs to an *owner*: "user:<name>" for a signed-in user, or "browser:<token>"
for a visitor without a login, where the token is a random secret the browser keeps
(`gr.BrowserState`). Only the owner lists or opens a conversation; any other id gets the
same answer as an unknown one, so nobody learns which ids exist.

    chats = Conversations(store)
    cid = chats.start(owner_key("alice", None), "What is 12 times 11?")
    store.start_reply("What is 12 times 11?", "alice", conversation=cid)
    chats.of(owner_key("alice", None))        # [Conversation(id=cid, title=..., turns=1, ...)]
    chats.replies(owner_key("alice", None), cid)
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from assistant.core.errors import InputError
from assistant.reviews.store import ReviewStore, reply_dict
from assistant.reviews.types import utc_now

__all__ = ["TITLE_CHARS", "Conversation", "Conversations", "Page", "PageSessions", "browser_token", "owner_key"]

TITLE_CHARS = 60  # a conversation's title: its first question, cut to this many characters
_TOKEN = re.compile(r"[0-9a-f]{32}")


def _well_formed(kept: object) -> bool:
    return isinstance(kept, str) and _TOKEN.fullmatch(kept) is not None


def browser_token(kept: object) -> str:
    """The browser's owner token: the one it kept when that is well formed, else a new random one."""
    return kept if _well_formed(kept) else secrets.token_hex(16)


@dataclass(frozen=True)
class Page:
    token: str  # the browser's owner token on this page
    asked: bool = False  # a question was sent from this page (its conversation is on screen)


class PageSessions:
    """What every handler of one open page agrees on, whichever of them the server runs first.

    A fresh browser holds no owner token until the page-load handler hands it one, and a question
    sent at once reaches the server before that token reaches the browser. Both handlers ask here
    by the page's session id, so they get the same token: the question's conversation is started
    for the token the browser then keeps. `asked` tells a late page load not to clear the
    conversation the question went into. The last `limit` pages are remembered."""

    def __init__(self, limit: int = 10_000):
        self.limit = limit
        self._pages: OrderedDict[str, Page] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, session: str | None, kept: object, *, asking: bool = False) -> Page:
        """The page of `session`: the token the browser `kept` when well formed, else the one this page
        was given first (a new one the first time). `asking`: a question is being sent from it."""
        if session is None:  # no page to remember (a call from outside the browser)
            return Page(browser_token(kept), asking)
        with self._lock:
            known = self._pages.pop(session, None)
            token = kept if _well_formed(kept) else known.token if known else browser_token(None)
            page = Page(token, asking or (known is not None and known.asked))
            self._pages[session] = page
            while len(self._pages) > self.limit:
                self._pages.popitem(last=False)
            return page


def owner_key(user: str | None, token: str | None) -> str | None:
    """Who owns conversations: the signed-in user, else the browser's token; None with neither."""
    if user:
        return f"user:{user}"
    return f"browser:{token}" if token else None


def _title(question: str) -> str:
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


@dataclass(frozen=True)
class Conversation:
    id: str  # public id (random hex): what the client holds
    title: str
    created_at: str  # UTC ISO, as the store writes it
    updated_at: str  # the last question asked in it
    turns: int  # replies in it


class Conversations:
    """The conversations in one review store."""

    def __init__(self, store: ReviewStore):
        self.store = store

    def start(self, owner: str, first_question: str) -> str:
        """A new, empty conversation of `owner`, titled by its first question; return its public id."""
        now, public_id = utc_now(), secrets.token_hex(16)
        with self.store.write() as db:
            db.execute("INSERT INTO conversations (public_id, owner, title, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?)", (public_id, owner, _title(first_question), now, now))
        return public_id

    def of(self, owner: str | None, limit: int = 50) -> list[Conversation]:
        """`owner`'s conversations, the most recently used first."""
        if owner is None:
            return []
        rows = self.store.read(
            "SELECT c.public_id, c.title, c.created_at, c.updated_at, COUNT(r.id) AS turns FROM conversations c "
            "LEFT JOIN replies r ON r.conversation_id = c.id WHERE c.owner = ? GROUP BY c.id "
            "ORDER BY c.updated_at DESC, MAX(r.id) DESC, c.id DESC LIMIT ?", (owner, int(limit)))
        return [Conversation(r["public_id"], r["title"], r["created_at"], r["updated_at"], r["turns"]) for r in rows]

    def replies(self, owner: str | None, conversation: str) -> list[dict]:
        """The replies of one of `owner`'s conversations, oldest first (as `store.reply_dict`s)."""
        found = self.store.read("SELECT id FROM conversations WHERE public_id = ? AND owner = ?",
                                (str(conversation), owner))
        if owner is None or not found:
            raise InputError(f"no conversation with id {conversation!r} among yours")
        rows = self.store.read("SELECT * FROM replies WHERE conversation_id = ? ORDER BY id", (found[0]["id"],))
        return [reply_dict(row) for row in rows]
