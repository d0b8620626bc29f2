"""One answer given and stored so that nothing the user saw is lost, whatever happens.

`answer_and_store` writes a 'streaming' row before the model starts, fills it in before
the last update reaches the user, and, when the answer is stopped, fails or is abandoned
half-way, keeps what had streamed as a 'cancelled' row. A kill at any moment leaves a
consistent row: `ReviewStore.mark_interrupted` finds the 'streaming' ones at the next start.
No Gradio here: the chat and the API both stream through this.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from assistant.answering.pipeline import Assistant, Question, Update
from assistant.core.errors import StoreError
from assistant.core.reply import Reply
from assistant.reviews.store import ReviewStore

__all__ = ["STORE_DOWN", "answer_and_store"]

log = logging.getLogger("calibrated_chat.app")

STORE_DOWN = "⚠ Reviews cannot be saved (the review store is not writable); answers are still shown."


def answer_and_store(
    assistant: Assistant,
    store: ReviewStore | None,
    question: Question,
    history: list | None,
    *,
    user: str | None,
    session: str | None,
    cancel: threading.Event,
    conversation: str | None = None,
) -> Iterator[tuple[Update, str | None, str]]:
    """Yield (update, reply id or None when not stored, a note for the user) while the model answers.
    `conversation`: the public id of the conversation the reply continues (its owner already checked)."""
    reply_id, note = None, "" if store is not None else STORE_DOWN
    if store is not None:
        try:
            reply_id = store.start_reply(question.text, user, assistant.backend.model_id, assistant.prompt.id,
                                         session=session, conversation=conversation)
        except StoreError as err:
            log.error("review store write failed: %s", err)
            note = STORE_DOWN
    finished, last = False, None
    try:
        for update in assistant.ask_stream(question, history, cancel):
            last = update
            if update.reply is not None and reply_id is not None:
                reply_id, note = _finish(store, reply_id, update.reply, cancel.is_set(), note)
            finished = update.reply is not None
            yield update, reply_id, note
    finally:
        if not finished and reply_id is not None:
            try:  # stopped, failed or abandoned before the end: keep what streamed, marked cancelled
                store.cancel_reply(reply_id, last.answer if last else "", last.reasoning if last else "")
            except StoreError:
                pass


def _finish(store: ReviewStore, reply_id: str, reply: Reply, stopped: bool, note: str) -> tuple[str | None, str]:
    try:
        store.finish_reply(reply_id, reply, status="cancelled" if stopped else "ok")
        return reply_id, note
    except StoreError as err:
        log.error("review store write failed: %s", err)
        return None, STORE_DOWN
