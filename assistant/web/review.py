"""The Review tab (reviewers and admins): the queue of flagged answers, one item's evidence,
verdicts (revised only on purpose; every one is kept), and the export of reviewed answers."""

from __future__ import annotations

import gradio as gr

from assistant.core.domains import MAP_DOMAINS
from assistant.web import render
from assistant.web.access import EXPORT_PATH
from assistant.web.context import WebContext

__all__ = ["VERDICTS", "ReviewTab"]

VERDICTS = [("Correct", "correct"), ("Incorrect", "incorrect"), ("Not answerable", "not_answerable")]
QUEUE_COLUMNS = ["id", "asked", "domain", "calibrated", "raw", "reasons", "status", "question"]


class ReviewTab:
    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def build(self, tab: gr.Tab) -> None:
        """The tab's components and events (inside `tab`)."""
        with gr.Row():
            f_status = gr.Radio(["open", "closed", "all"], value="open", label="Status")
            domains = self.ctx.assistant.domains  # the admin's domains file; None: the built-in ones
            f_domain = gr.Dropdown(["all", *(domains.names if domains else MAP_DOMAINS)], value="all", label="Domain")
            refresh = gr.Button("Refresh", elem_id="cc-review-refresh")
        table = gr.Dataframe(headers=QUEUE_COLUMNS, interactive=False, wrap=True)
        item = gr.Dropdown(label="Item", choices=[], elem_id="cc-item")
        detail = gr.Markdown(elem_id="cc-item-detail")
        verdict = gr.Radio(VERDICTS, label="Verdict", elem_id="cc-verdict")
        corrected = gr.Textbox(label="Correct answer (optional)", elem_id="cc-corrected")
        revise = gr.Checkbox(label="Revise the existing verdict (the earlier one stays in the history)",
                             value=False, elem_id="cc-revise")
        submit = gr.Button("Save verdict", variant="primary", elem_id="cc-submit-verdict")
        export_btn = gr.Button("Export reviewed answers (JSONL)", elem_id="cc-export")
        export_out = gr.Markdown(elem_id="cc-export-link")

        private = {"api_visibility": "private"}
        outs = [item, table, detail]
        for trigger in (refresh.click, f_status.change, f_domain.change, tab.select):
            trigger(self.list, [f_status, f_domain], outs, **private)
        item.change(self.show, item, detail, **private)
        submit.click(self.submit, [item, verdict, corrected, revise, f_status, f_domain],
                     [*outs, verdict, corrected, revise], **private)
        export_btn.click(self.export_link, None, export_out, **private)

    def queue(self, request, status, domain) -> list:
        """The review items a reviewer may see (raises gr.Error for anyone else)."""
        self.ctx.require(request, "reviewer")
        return self.ctx.store_error(lambda store: store.queue(status=status or "open", domain=domain or "all"))

    def list(self, status, domain, request: gr.Request):
        items = self.queue(request, status, domain)
        pct = render.pct
        choices = [(f"#{i.id} · {i.domain} · {pct(i.confidence)} · {i.question[:60]}", i.id) for i in items]
        rows = [[i.id, i.created_at[:19].replace("T", " "), i.domain, pct(i.confidence), pct(i.raw_confidence),
                 ", ".join(i.reasons), i.status, i.question[:80]] for i in items]
        first = items[0].id if items else None
        detail = render.queue_item_markdown(items[0]) if items else "*The queue is empty.*"
        return gr.update(choices=choices, value=first), rows, detail

    def show(self, item_id, request: gr.Request) -> str:
        self.ctx.require(request, "reviewer")
        store = self.ctx.store
        item = store.get_item(int(item_id)) if (store is not None and item_id is not None) else None
        return render.queue_item_markdown(item, store.verdict_history(item.id)) if item else "*Pick an item.*"

    def submit(self, item_id, verdict, corrected, revise, status, domain, request: gr.Request):
        self.ctx.require(request, "reviewer")
        if item_id is None or not verdict:
            raise gr.Error("Pick an item and a verdict first.")
        reviewer = self.ctx.user_of(request) or "local-admin"
        self.ctx.store_error(lambda store: store.submit_verdict(int(item_id), verdict, reviewer, corrected or None,
                                                                revise=bool(revise)))
        gr.Info(f"Verdict {'revised' if revise else 'saved'} for item {item_id}.")
        return (*self.list(status, domain, request), None, "", False)

    def export_link(self, request: gr.Request) -> str:
        self.ctx.require(request, "reviewer")
        self.ctx.need_store()
        # Served by assistant.web.access.export_route to reviewers only; no copy in Gradio's file cache.
        return f"[Download the reviewed answers (JSONL)]({EXPORT_PATH.lstrip('/')})"
