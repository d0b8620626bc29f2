"""The Chat tab: ask, watch the answer stream in with its reasoning, stop, retry, give feedback,
and send an answer for a human check."""

from __future__ import annotations

import logging
import threading

import gradio as gr

from assistant.core.errors import CalibratedChatError, InputError
from assistant.web import render
from assistant.web.context import WebContext

__all__ = ["HISTORY_TURNS", "HUMAN_CHECK", "ChatTab"]

log = logging.getLogger("calibrated_chat.app")

HISTORY_TURNS = 3  # earlier exchanges sent back to the model as context
HUMAN_CHECK = "Ask for a human check"  # the feedback option under each answer's flag icon


def flatten(turns: list[dict]) -> list[dict]:
    """The Chatbot's messages for the turns: question, reasoning (when any), answer."""
    chat = []
    for t in turns:
        chat.append({"role": "user", "content": render.inert_markdown(t["question"])})
        if t["reasoning"]:
            status = "done" if t["done"] else "pending"
            chat.append({"role": "assistant", "content": render.inert_markdown(t["reasoning"]),
                         "metadata": {"title": "Reasoning", "status": status}})
        chat.append({"role": "assistant", "content": t["shown"] or "…"})
    return chat


def turn_at(turns: list[dict], index: int) -> dict | None:
    """The turn a chat message index belongs to."""
    pos = 0
    for t in turns:
        pos += 2 + bool(t["reasoning"])
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


def _take(message: str) -> tuple[str, str]:
    """Move the typed question out of the box (so it clears at once) into the pending state."""
    return message, ""


def _index(data) -> int:
    return data.index[0] if isinstance(data.index, (list, tuple)) else data.index


class ChatTab:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx
        self.cancels: dict[str, threading.Event] = {}  # session -> the running answer's stop flag

    def build(self) -> None:
        """The tab's components and events (inside a gr.Blocks and a gr.Tab)."""
        turns, pending = gr.State([]), gr.State("")
        # On every answer: thumbs, and under the flag icon the human check, so it acts on that answer.
        chatbot = gr.Chatbot(label="Chat", height=520, elem_id="cc-chat", sanitize_html=True,
                             feedback_options=("Like", "Dislike", HUMAN_CHECK), allow_tags=False)
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
        ask = dict(fn=self.respond, inputs=[pending, turns], outputs=[turns, chatbot, box, status],
                   concurrency_id="model", **private)
        take = dict(fn=_take, inputs=box, outputs=[pending, box], queue=False, **private)
        box.submit(**take).then(**ask)
        send.click(**take).then(**ask)
        retry_btn.click(self.pop_last, turns, [turns, chatbot, pending], queue=False, **private).then(**ask)
        stop_btn.click(self.stop, None, None, queue=False, **private)
        chatbot.like(self.on_like, [turns, comment], comment, **private)

    def respond(self, message, turns, request: gr.Request):
        """Stream one answer into the chat: (turns, chat messages, question box, status line)."""
        ctx = self.ctx
        turns = list(turns or [])
        try:
            question = ctx.assistant.check_question(message or "")
        except InputError as err:
            gr.Warning(str(err))
            yield turns, flatten(turns), message, f"⚠ {err}"
            return
        history = history_of(turns)
        turn = {"question": question, "reasoning": "", "shown": "", "answer": None, "reply_id": None, "done": False}
        turns.append(turn)
        yield turns, flatten(turns), "", ""
        cancel = threading.Event()
        session = ctx.session_of(request) or "-"
        self.cancels[session] = cancel
        streamed = ""  # the visible text as it last streamed in
        try:
            for update, reply_id, note in ctx.answer(question, history, request, cancel):
                turn["reasoning"] = update.reasoning
                turn["shown"] = render.inert_markdown(update.answer)
                if update.reply is None:
                    streamed = update.answer
                else:
                    stopped = cancel.is_set()
                    turn.update(answer=update.reply.answer, done=True, reply_id=reply_id,
                                reasoning=kept_reasoning(update.reply, streamed, stopped),
                                shown=render.answer_markdown(update.reply, ctx.assistant.maps,
                                                             stopped=streamed if stopped else None))
                yield turns, flatten(turns), "", note
        except CalibratedChatError as err:
            log.warning("answer failed: %s", err)
            turn.update(done=True, shown=f"⚠ {render.inert_markdown(str(err))}")
            yield turns, flatten(turns), "", f"⚠ {err}"
        finally:
            self.cancels.pop(session, None)

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

    def on_like(self, turns, comment, data: gr.LikeData, request: gr.Request):
        turn = turn_at(turns or [], _index(data))
        if turn is None or turn["reply_id"] is None:
            gr.Warning("This answer was not stored, so feedback cannot be saved.")
            return comment
        if data.liked is None or data.liked == "":
            return comment
        actor = self.ctx.actor_of(request)
        if data.liked == HUMAN_CHECK:
            self.send_for_review(turn, actor)
            return comment
        thumbs = "up" if data.liked is True or data.liked == "Like" else "down"
        if self.ctx.store_call(lambda store: store.add_feedback(turn["reply_id"], actor, thumbs, comment or "")) \
                is not None:
            gr.Info("Thanks — feedback saved." + (" The answer goes to a reviewer." if thumbs == "down" else ""))
            return ""
        return comment

    def send_for_review(self, turn: dict, actor) -> None:
        """Send this turn's answer for a human check, confirming with its question so nobody wonders which."""
        item = self.ctx.store_call(lambda store: store.request_review(turn["reply_id"], actor))
        if item is not None:
            question = turn["question"] if len(turn["question"]) <= 80 else turn["question"][:79] + "…"
            gr.Info(f"Sent for a human check (review item {item}): “{question}”")
