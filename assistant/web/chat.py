"""The Chat tab: ask, watch the answer stream in with its reasoning, stop, retry, give feedback,
send an answer for a human check, and reopen earlier conversations (kept in the store, so a
reload loses nothing)."""

from __future__ import annotations

import logging
import threading

import gradio as gr

from assistant.core.errors import CalibratedChatError, InputError, StoreError
from assistant.web import inert, render
from assistant.web.context import HISTORY_TURNS, WebContext
from assistant.web.conversations import Conversations, PageSessions

__all__ = ["HUMAN_CHECK", "ChatTab"]

log = logging.getLogger("calibrated_chat.app")

HUMAN_CHECK = "Ask for a human check"  # the feedback option under each answer's flag icon
# The conversation list starts open; on a phone it would cover the chat, so there it starts closed.
CLOSE_SIDEBAR_ON_PHONES = """() => {
  const bar = document.querySelector('#cc-sidebar');
  if (bar && bar.classList.contains('open') && window.matchMedia('(max-width: 768px)').matches)
    bar.querySelector('.toggle-button')?.click();
}"""


def flatten(turns: list[dict]) -> list[dict]:
    """The Chatbot's messages for the turns: question, reasoning (when any), answer, badge (when done).

    Each is its own message: copying the answer copies its text alone, and the reasoning and the
    badge fold away under titles (their own copy and feedback buttons are hidden by CSS)."""
    chat = []
    for t in turns:
        chat.append({"role": "user", "content": inert.inert_markdown(t["question"])})
        if t["reasoning"]:
            status = "done" if t["done"] else "pending"
            chat.append({"role": "assistant", "content": inert.inert_markdown(t["reasoning"]),
                         "metadata": {"title": "Reasoning", "status": status}})
        chat.append({"role": "assistant", "content": t["shown"] or "…"})
        if t.get("badge"):
            chat.append(t["badge"])
    return chat


def turn_at(turns: list[dict], index: int) -> dict | None:
    """The turn a chat message index belongs to."""
    pos = 0
    for t in turns:
        pos += 2 + bool(t["reasoning"]) + bool(t.get("badge"))
        if index < pos:
            return t
    return turns[-1] if turns else None


def history_of(turns: list[dict]) -> list[dict]:
    """The last HISTORY_TURNS finished exchanges, as messages for the model."""
    hist = []
    for t in turns[-HISTORY_TURNS:]:
        if t["done"] and t["answer"] is not None:
            hist += [{"role": "user", "content": t["question"]}, {"role": "assistant", "content": t["answer"]}]
    return hist


def kept_reasoning(reply, streamed: str, stopped: bool) -> str:
    """Whatever the user watched stream in stays visible: working written without think or answer
    tags becomes the reasoning section when the final answer is only part of it."""
    if reply.reasoning or stopped or not streamed.strip() or streamed.strip() == (reply.answer or "").strip():
        return reply.reasoning
    return streamed


def new_turn(question: str) -> dict:
    return {"question": question, "reasoning": "", "shown": "", "answer": None, "reply_id": None, "done": False,
            "badge": None}


def stored_turn(row: dict, maps) -> dict:
    """A turn of a reopened conversation, from its stored reply, shown as it was when it ended."""
    turn = {**new_turn(row["question"]), "reasoning": row["reasoning"], "answer": row["answer"],
            "reply_id": row["public_id"], "done": row["status"] != "streaming"}
    if row["status"] == "streaming":
        return {**turn, "shown": "*(this answer is still being written elsewhere: reopen the conversation "
                                 "in a moment to see it)*"}
    partial = {"cancelled": render.STOPPED, "interrupted": render.INTERRUPTED}.get(row["status"], "")
    return {**turn, "shown": render.answer_text(row), "badge": render.badge_message(row, maps, partial=partial)}


def conversation_choices(conversations) -> list[tuple[str, str]]:
    """The history list's entries: (title · when, id), the most recent first."""
    return [(f"{c.title} · {render.human_date(c.updated_at)}", c.id) for c in conversations]


def _take(message: str) -> tuple[str, str]:
    """Move the typed question out of the box (so it clears at once) into the pending state."""
    return message, ""


def _index(data) -> int:
    return data.index[0] if isinstance(data.index, (list, tuple)) else data.index


class ChatTab:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx
        self.cancels: dict[str, threading.Event] = {}  # session -> the running answer's stop flag
        self.pages = PageSessions()  # each open page's owner token, whichever handler runs first
        # (session, reply id) of each answer whose flag has "Ask for a human check" selected: Gradio sends a
        # click on a flag option twice, and one click gets one notice.
        self.checks: set[tuple[str, str]] = set()
        self.checks_lock = threading.Lock()

    def build(self, demo: gr.Blocks) -> None:
        """The tab's components and events (inside `demo` and a gr.Tab)."""
        turns, pending, conversation = gr.State([]), gr.State(""), gr.State(None)
        # A random token the browser keeps: whose conversations these are when nobody signs in.
        # (Encrypted by BrowserState with this fixed key; the token itself is the secret.)
        browser = gr.BrowserState(None, storage_key="calibrated-chat-owner", secret="calibrated-chat")
        shown = gr.BrowserState(None, storage_key="calibrated-chat-open", secret="calibrated-chat")  # on screen
        with gr.Sidebar(label="Conversations", elem_id="cc-sidebar"):
            new_chat = gr.Button("New chat", elem_id="cc-new-chat", size="sm")
            history = gr.Radio([], label="Your conversations", elem_id="cc-conversations")
        # On every answer: copy, thumbs, and under the flag icon the human check, so it acts on that answer.
        chatbot = gr.Chatbot(label="Chat", height=520, elem_id="cc-chat", sanitize_html=True, buttons=["copy"],
                             feedback_options=("Like", "Dislike", HUMAN_CHECK), allow_tags=False,
                             group_consecutive_messages=False)
        status = gr.Markdown(elem_id="cc-status")
        with gr.Row():
            box = gr.Textbox(placeholder="Ask a question…", show_label=False, scale=6, elem_id="cc-question",
                             max_lines=12)
            send = gr.Button("Send", variant="primary", scale=1, elem_id="cc-send")
        with gr.Row(elem_id="cc-actions"):
            stop_btn = gr.Button("Stop", elem_id="cc-stop")
            retry_btn = gr.Button("Retry", elem_id="cc-retry")
        comment = gr.Textbox(label="Comment (optional; sent with your thumbs up or down)", elem_id="cc-comment")

        private = {"api_visibility": "private"}
        ask = dict(fn=self.respond, inputs=[pending, turns, conversation, browser],
                   outputs=[turns, chatbot, box, status, conversation, browser], concurrency_id="model",
                   concurrency_limit=self.ctx.admission.capacity, **private)
        listed = dict(fn=self.listing, inputs=[conversation, browser], outputs=[history, shown], queue=False,
                      **private)
        take = dict(fn=_take, inputs=box, outputs=[pending, box], queue=False, **private)
        box.submit(**take).then(**ask).then(**listed)
        send.click(**take).then(**ask).then(**listed)
        retry_btn.click(self.pop_last, turns, [turns, chatbot, pending], queue=False, **private).then(**ask)
        stop_btn.click(self.stop, None, None, queue=False, **private)
        chatbot.like(self.on_like, [turns, comment, browser], comment, **private)
        new_chat.click(lambda: ([], [], None, gr.update(value=None), None), None,
                       [turns, chatbot, conversation, history, shown], queue=False, **private)
        history.input(self.reopen, [history, browser], [turns, chatbot, conversation, shown], **private)
        demo.load(self.on_load, [browser, shown], [browser, history, turns, chatbot, conversation], **private)
        demo.load(None, js=CLOSE_SIDEBAR_ON_PHONES)

    # -- conversations --------------------------------------------------------------------

    def _conversations(self) -> Conversations | None:
        return Conversations(self.ctx.store) if self.ctx.store is not None else None

    def _token(self, request, kept) -> str:
        """This page's owner token: the one its browser kept, else the one the page was given first."""
        return self.pages.page(self.ctx.session_of(request), kept).token

    def _listed(self, request, token) -> list:
        chats = self._conversations()
        try:
            return chats.of(self.ctx.owner_of(request, self._token(request, token))) if chats else []
        except StoreError as err:
            log.error("could not list conversations: %s", err)
            return []

    def listing(self, conversation, token, request: gr.Request):
        """The history list with `conversation` selected, and `conversation` as the one on screen."""
        return gr.update(choices=conversation_choices(self._listed(request, token)), value=conversation), conversation

    def on_load(self, token, shown, request: gr.Request):
        """On every page load: this browser's token, the history list, and the conversation that was on
        screen before the reload (none in a new browser, or after "New chat").

        A question sent before this ran (a fresh page, sent at once) has already started its
        conversation for the same token (`PageSessions`): that one stays on screen."""
        page = self.pages.page(self.ctx.session_of(request), token)
        found, turns = self._listed(request, page.token), []
        if shown and not page.asked and shown in {c.id for c in found}:
            try:
                turns = self._turns(self._conversations(), request, page.token, shown)
            except (StoreError, InputError) as err:
                log.error("could not reopen conversation: %s", err)
        if not turns:  # nothing to bring back, so nothing on screen is cleared
            return page.token, gr.update(choices=conversation_choices(found)), gr.skip(), gr.skip(), gr.skip()
        return page.token, gr.update(choices=conversation_choices(found), value=shown), turns, flatten(turns), shown

    def reopen(self, conversation, token, request: gr.Request):
        """Open one of the caller's conversations from the history list."""
        chats = self._conversations()
        if chats is None or not conversation:
            return [], [], None, None
        try:
            turns = self._turns(chats, request, self._token(request, token), conversation)
        except (StoreError, InputError) as err:
            raise gr.Error(str(err)) from None
        return turns, flatten(turns), conversation, conversation

    def _turns(self, chats: Conversations, request, token, conversation: str) -> list[dict]:
        rows = chats.replies(self.ctx.owner_of(request, token), conversation)
        return [stored_turn(row, self.ctx.assistant.maps) for row in rows]

    def _start(self, conversation, question: str, token, request) -> str | None:
        """The conversation this question goes into: the open one, else a new one titled by it."""
        owner = self.ctx.owner_of(request, token)
        if conversation is not None or owner is None or self.ctx.store is None:
            return conversation
        return self.ctx.store_call(lambda store: Conversations(store).start(owner, question))

    # -- answering ------------------------------------------------------------------------

    def respond(self, message, turns, conversation, token, request: gr.Request):
        """Stream one answer into the chat: (turns, chat messages, question box, status line, conversation,
        the browser's owner token).

        The conversation is started before the model answers, for this page's token even when the
        browser has none yet (a fresh page whose load has not finished), so the reply is stored in it."""
        ctx = self.ctx
        turns = list(turns or [])
        try:
            question = ctx.assistant.check_question(message or "")
            ctx.admission.check(ctx.caller_of(request))  # over their share: told before anything is stored
        except InputError as err:
            gr.Warning(str(err))
            yield turns, flatten(turns), message, f"⚠ {err}", conversation, gr.skip()
            return
        history = history_of(turns)
        token = self.pages.page(ctx.session_of(request), token, asking=True).token
        conversation = self._start(conversation, question.text, token, request)
        turn = new_turn(question.text)
        turns.append(turn)
        yield turns, flatten(turns), "", "", conversation, token
        cancel = threading.Event()
        session = ctx.session_of(request) or "-"
        self.cancels[session] = cancel
        streamed = ""  # the visible text as it last streamed in
        try:
            for update, reply_id, note in ctx.answer(question, history, request, cancel, conversation):
                turn["reasoning"] = update.reasoning
                turn["shown"] = inert.inert_markdown(update.answer)
                if update.reply is None:
                    streamed = update.answer
                else:
                    self._finish(turn, update.reply, reply_id, streamed, cancel.is_set())
                yield turns, flatten(turns), "", note, conversation, token
        except CalibratedChatError as err:
            log.warning("answer failed: %s", err)
            turn.update(done=True, shown=f"⚠ {inert.inert_markdown(str(err))}")
            yield turns, flatten(turns), "", f"⚠ {err}", conversation, token
        finally:
            self.cancels.pop(session, None)

    def _finish(self, turn: dict, reply, reply_id, streamed: str, stopped: bool) -> None:
        """The finished answer: what streamed stays (reasoning kept, a stopped answer marked partial)."""
        turn.update(answer=reply.answer, done=True, reply_id=reply_id,
                    reasoning=kept_reasoning(reply, streamed, stopped),
                    shown=render.answer_text(reply, stopped=streamed if stopped else None),
                    badge=render.badge_message(reply, self.ctx.assistant.maps,
                                               partial=render.STOPPED if stopped else ""))

    def stop(self, request: gr.Request) -> None:
        event = self.cancels.get(self.ctx.session_of(request) or "-")
        if event is not None:
            event.set()

    def pop_last(self, turns):
        turns = list(turns or [])
        if not turns:
            return turns, [], ""
        last = turns.pop()
        return turns, flatten(turns), last["question"]

    # -- feedback -------------------------------------------------------------------------

    def on_like(self, turns, comment, token, data: gr.LikeData, request: gr.Request):
        turn = turn_at(turns or [], _index(data))
        if turn is None or turn["reply_id"] is None:
            gr.Warning("This answer was not stored, so feedback cannot be saved.")
            return comment
        if not self._first_check(request, turn, data.liked) or data.liked is None or data.liked == "":
            return comment
        actor = self.ctx.actor_of(request, self._token(request, token))
        if data.liked == HUMAN_CHECK:
            self.send_for_review(turn, actor)
            return comment
        thumbs = "up" if data.liked is True or data.liked == "Like" else "down"
        if self.ctx.store_call(lambda store: store.add_feedback(turn["reply_id"], actor, thumbs, comment or "")) \
                is not None:
            gr.Info("Thanks — feedback saved." + (" The answer goes to a reviewer." if thumbs == "down" else ""))
            return ""
        return comment

    def _first_check(self, request, turn: dict, liked) -> bool:
        """False for the second of the two events Gradio sends for one click on "Ask for a human check";
        selecting anything else (or nothing) on that answer's flag ends the selection."""
        key = (self.ctx.session_of(request) or "-", turn["reply_id"])
        with self.checks_lock:
            if liked != HUMAN_CHECK:
                self.checks.discard(key)
                return True
            first = key not in self.checks
            self.checks.add(key)
            return first

    def send_for_review(self, turn: dict, actor) -> None:
        """Send this turn's answer for a human check, confirming with its question (shown as text) so nobody
        wonders which."""
        item = self.ctx.store_call(lambda store: store.request_review(turn["reply_id"], actor))
        if item is not None:
            question = turn["question"] if len(turn["question"]) <= 80 else turn["question"][:79] + "…"
            gr.Info(f"Sent for a human check (review item {item}): “{inert.inert_html(question)}”")
