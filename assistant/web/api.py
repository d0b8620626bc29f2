"""The named API endpoints for `gradio_client` (and any HTTP client): the same calls as the tabs,
with the same role checks.

/ask, /ask_stream, /request_review, /feedback (staff); /review_queue, /submit_verdict,
/export_reviews (reviewers); /reload_maps, /dashboard_stats (admins).
"""

from __future__ import annotations

import threading

import gradio as gr

from assistant.core.errors import CalibratedChatError, InputError
from assistant.reviews import queries
from assistant.web.context import WebContext
from assistant.web.dashboard import DashboardTab
from assistant.web.review import ReviewTab

__all__ = ["Api"]


def checked_history(history) -> list[dict] | None:
    """The earlier turns a caller sent with a question, or InputError saying what shape they must have."""
    if not history:
        return None
    if not isinstance(history, list) or not all(
            isinstance(m, dict) and m.get("role") in ("user", "assistant") and isinstance(m.get("content"), str)
            for m in history):
        raise InputError('`history` must be a list of messages {"role": "user" or "assistant", "content": text}')
    return [{"role": m["role"], "content": m["content"]} for m in history]


class Api:
    def __init__(self, ctx: WebContext, review: ReviewTab, dashboard: DashboardTab):
        self.ctx, self.review, self.dashboard = ctx, review, dashboard

    def register(self) -> None:
        """Declare the endpoints (inside a gr.Blocks); answering ones share the model's queue, which lets
        them on to the model's fair gate (`WebContext.admission`), where they take turns by caller."""
        model = {"concurrency_id": "model", "concurrency_limit": self.ctx.admission.capacity}
        gr.api(self.ask, api_name="ask", **model)
        gr.api(self.ask_stream, api_name="ask_stream", **model)
        for fn in (self.request_review, self.feedback, self.review_queue, self.submit_verdict,
                   self.export_reviews, self.reload_maps, self.dashboard_stats):
            gr.api(fn, api_name=fn.__name__)

    def _stream(self, question, history, request):
        ctx = self.ctx
        try:
            question = ctx.assistant.check_question(question or "")
            yield from ctx.answer(question, checked_history(history), request, threading.Event())
        except CalibratedChatError as err:
            raise gr.Error(str(err), print_exception=False) from None

    def ask(self, question: str, history: list | None = None, request: gr.Request = None) -> dict:
        """Answer one question; returns the full Reply as a dict, plus `reply_id` (None if not stored)."""
        self.ctx.require(request, "staff")
        for update, reply_id, _ in self._stream(question, history, request):
            if update.reply is not None:
                return {**update.reply.to_dict(), "reply_id": reply_id}
        raise gr.Error("no answer")  # pragma: no cover

    def ask_stream(self, question: str, history: list | None = None, request: gr.Request = None) -> dict:
        """Stream one answer: dicts {"reasoning", "answer", "reply", "reply_id"}; "reply" is set on the last."""
        self.ctx.require(request, "staff")
        for update, reply_id, _ in self._stream(question, history, request):
            yield {"reasoning": update.reasoning, "answer": update.answer,
                   "reply": update.reply.to_dict() if update.reply is not None else None, "reply_id": reply_id}

    def request_review(self, reply_id: str, request: gr.Request = None) -> int:
        """Send one of your stored replies for a human check; returns the review item id."""
        self.ctx.require(request, "staff")
        actor = self.ctx.actor_of(request)
        return self.ctx.store_error(lambda store: store.request_review(str(reply_id), actor))

    def feedback(self, reply_id: str, thumbs: str, comment: str = "", request: gr.Request = None) -> int:
        """Thumbs "up" or "down" (+ optional comment) on one of your stored replies; returns the feedback id."""
        self.ctx.require(request, "staff")
        actor = self.ctx.actor_of(request)
        return self.ctx.store_error(lambda store: store.add_feedback(str(reply_id), actor, thumbs, comment))

    def review_queue(self, status: str = "open", domain: str = "all", request: gr.Request = None) -> list:
        """Review items, newest first (reviewers only)."""
        return [item.to_dict() for item in self.review.queue(request, status, domain)]

    def submit_verdict(self, item_id: int, verdict: str, corrected_answer: str = "", revise: bool = False,
                       request: gr.Request = None) -> dict:
        """Close a review item with correct / incorrect / not_answerable (reviewers only). An item that
        already has a verdict is changed only with revise=True; every verdict is kept."""
        self.ctx.require(request, "reviewer")
        reviewer = self.ctx.user_of(request) or "local-admin"
        item = self.ctx.store_error(lambda store: store.submit_verdict(
            int(item_id), verdict, reviewer, corrected_answer or None, revise=bool(revise)))
        return item.to_dict()

    def export_reviews(self, request: gr.Request = None) -> list:
        """Reviewed answers as records of the `calibrate collect` schema (reviewers only)."""
        self.ctx.require(request, "reviewer")
        return [record.to_dict() for record in queries.records(self.ctx.need_store())]

    def reload_maps(self, request: gr.Request = None) -> str:
        """Re-read the active calibration map (admins only); returns its version ("" if none)."""
        self.ctx.require(request, "admin")
        return self.dashboard.reload_maps() or ""

    def dashboard_stats(self, request: gr.Request = None) -> dict:
        """Live figures from reviewed answers since the active map's fit, per domain, and the map version each
        app server runs (`servers`; admins only)."""
        self.ctx.require(request, "admin")
        return self.dashboard.stats()
