"""The web app: chat with calibrated confidence, a review queue and a calibration dashboard.

`ChatApp(...).build()` makes the Gradio Blocks: tabs Chat (everyone), Review (reviewers and
admins) and Dashboard (admins), plus the named API (`assistant.web.api`). `serve` starts it
behind the sign-in guard with the reviewers' export route and the OpenAI-compatible endpoint
(`assistant.web.openai_api`); `app.py` and the tests both start it through there.
"""

from __future__ import annotations

import os

import gradio as gr
from starlette.middleware import Middleware

from assistant.answering.pipeline import Assistant
from assistant.reviews.store import ReviewStore
from assistant.web.access import LoginGuard, SessionsFollowUsers, export_route
from assistant.web.api import Api
from assistant.web.auth import Users, UsersFile, role_at_least
from assistant.web.chat import ChatTab
from assistant.web.context import WebContext
from assistant.web.dashboard import DashboardTab
from assistant.web.fairness import Limits
from assistant.web.guard import RequestGuard
from assistant.web.openai_api import openai_routes
from assistant.web.proxies import TrustedProxies
from assistant.web.review import ReviewTab
from assistant.web.session import STORE_DOWN
from assistant.web.throttle import LoginThrottle

__all__ = ["CSS", "ChatApp", "serve"]

# Small screens (390 px phones): the chat's action buttons share one line instead of stacking a
# screenful; table headers break between words, never inside one ("cali/brat/ed").
CSS = """
#cc-actions { flex-wrap: nowrap !important; gap: 6px; }
#cc-actions > * { min-width: 0 !important; flex: 1 1 0 !important; }
@media (max-width: 600px) {
  #cc-actions button { padding: 6px 4px !important; font-size: 0.85rem !important; }
}
/* The reasoning and the badge are messages of their own (so copy gives the answer alone); only the
   answer carries the copy, thumbs and human-check buttons. */
#cc-chat .message-row:has(.thought-group) + .message-buttons { display: none !important; }
/* Gradio's "Clear" would empty the screen but not the stored conversation: "New chat" does that honestly. */
#cc-chat .top-panel button[aria-label="Clear"], #cc-chat button[title="Clear"] { display: none !important; }
#cc-conversations .wrap { flex-direction: column; align-items: stretch; }
#cc-dash-table th, #cc-dash-table th *, #cc-dash-signals th, #cc-dash-signals th * { word-break: normal !important; overflow-wrap: normal !important;
  hyphens: none !important; }
"""
TAGLINE = "Answers with a confidence you can trust: the model's own figure, corrected by what its past answers showed."


class ChatApp:
    def __init__(self, assistant: Assistant, store: ReviewStore | None, users: Users | None, *,
                 anonymous_role: str | None = "admin", notices: list[str] | None = None,
                 title: str = "calibrated-chat", limits: Limits = Limits(), maps_poll_seconds: float = 10.0):
        """`store` None: reviews cannot be saved. `users` empty: no sign-in, every visitor has
        `anonymous_role`. `notices` (a list, read on each page load) feeds the banner. `limits`: each
        caller's share of the model (`fairness.Limits`). `maps_poll_seconds`: how often the maps folder is
        looked at for a newly activated version (`mapwatch`)."""
        self.ctx = WebContext(assistant, store, users, anonymous_role, notices if notices is not None else [],
                              limits, maps_poll_seconds)
        self.title = title
        self.chat, self.review, self.dashboard = ChatTab(self.ctx), ReviewTab(self.ctx), DashboardTab(self.ctx)

    def build(self) -> gr.Blocks:
        with gr.Blocks(title=self.title, analytics_enabled=False) as demo:
            gr.Markdown(f"## {self.title}\n{TAGLINE}")
            banner = gr.Markdown(elem_id="cc-banner")
            with gr.Tab("Chat", id="chat"):
                self.chat.build(demo)
            with gr.Tab("Review", id="review", visible=False) as review_tab:
                self.review.build(review_tab)
            with gr.Tab("Dashboard", id="dashboard", visible=False) as dashboard_tab:
                self.dashboard.build(dashboard_tab)
            demo.load(self.on_load, None, [banner, review_tab, dashboard_tab], api_visibility="private")
            Api(self.ctx, self.review, self.dashboard).register()
        return demo

    def on_load(self, request: gr.Request):
        """The banner (who is signed in, notices) and the tabs this caller's role may see."""
        ctx = self.ctx
        role = ctx.role_of(request)
        lines = list(ctx.notices) + ([STORE_DOWN] if ctx.store is None else [])
        who = f"Signed in as **{ctx.user_of(request) or 'local user'}** ({role or 'no role'})." + (
            " [Sign out](logout)" if ctx.users else "")
        return ("\n\n".join([who, *lines]), gr.update(visible=role_at_least(role, "reviewer")),
                gr.update(visible=role_at_least(role, "admin")))


def serve(demo: gr.Blocks, ctx: WebContext, *, throttle: LoginThrottle | None = None,
          trusted_proxies: tuple = (), **launch_kwargs) -> None:
    """Start `demo`'s server (the one `ChatApp(...).build()` made; `ctx`: that ChatApp's context) behind
    the sign-in guard, with the reviewers' export route and the OpenAI-compatible endpoint.

    `throttle`: the sign-in limits (default: LoginThrottle's documented policy). `trusted_proxies`: the
    networks (`proxies.parse_trusted_proxies`) whose forwarded headers name the caller's address. In front of all,
    `RequestGuard` refuses uploads; answers take turns at `ctx.admission`. Once it listens, `ctx.watch` reports this
    server's map version and follows the maps folder until the server is closed.
    """
    users, store = ctx.users, ctx.store

    def role_of_user(name):
        return users.role_of(name) if users else ctx.anonymous_role

    routes = [export_route(store, role_of_user, signed_in=bool(users)), *openai_routes(ctx)]
    follow = [Middleware(SessionsFollowUsers, users=users)] if isinstance(users, UsersFile) else []
    app_kwargs = {"middleware": [Middleware(TrustedProxies, proxies=trusted_proxies), Middleware(RequestGuard),
                                 Middleware(LoginGuard, throttle=throttle), *follow], "routes": routes}
    # No feature takes a file (RequestGuard refuses uploads; max_file_size 0 refuses any it misses). Questions
    # waiting at the fair gate hold a worker thread each: leave room for every other call beside them.
    launch_kwargs = {"max_file_size": 0, "max_threads": max(40, ctx.admission.capacity + 16), **launch_kwargs}
    # uvicorn would itself believe X-Forwarded-For from 127.0.0.1: TrustedProxies decides, from the list alone.
    os.environ["FORWARDED_ALLOW_IPS"] = ""
    block = not launch_kwargs.pop("prevent_thread_lock", False)
    demo.launch(auth=users.authenticate if users else None, app_kwargs=app_kwargs, css=CSS, prevent_thread_lock=True,
                **launch_kwargs)
    ctx.watch.start(serving=lambda: demo.is_running)  # once serving, so that its thread ends with the server
    if block:
        demo.block_thread()
