"""What every web handler needs: the assistant, the review store, who is calling and with what role.

Every reviewer and admin function checks the caller's role here, on the server; the UI
only hides what a role cannot use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import gradio as gr

from assistant.answering.pipeline import Assistant, Question
from assistant.core.errors import InputError, StoreError
from assistant.reviews.store import ReviewStore
from assistant.reviews.types import Actor
from assistant.web.auth import Users, UsersFile, role_at_least
from assistant.web.conversations import owner_key
from assistant.web.fairness import Admission, Caller, Limits
from assistant.web.mapwatch import MapWatch
from assistant.web.proxies import client_address
from assistant.web.session import STORE_DOWN, answer_and_store

__all__ = ["HISTORY_TURNS", "LOCAL_ADMIN", "WebContext", "address_of"]

log = logging.getLogger("calibrated_chat.app")

LOCAL_ADMIN = Caller("local", limited=False)  # the one user of an app without users, on this computer only

HISTORY_TURNS = 3  # earlier exchanges sent back to the model as context (the chat and the OpenAI endpoint)


def address_of(request) -> str:
    """The address a Gradio request came from, as the sign-in guard reads it (`proxies.client_address`)."""
    scope = getattr(getattr(request, "request", None), "scope", None)
    if isinstance(scope, dict):
        return client_address(scope)
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


def through_untrusted_proxy(request, address: str) -> bool:
    """Whether a request names a forwarded client that was not believed: `X-Forwarded-For` is there
    and the address used is none of its hops (a proxy not in --trusted-proxy, or a forged header)."""
    forwarded = (getattr(request, "headers", None) or {}).get("x-forwarded-for", "")
    return bool(forwarded) and address not in {hop.strip() for hop in forwarded.split(",")}


@dataclass
class WebContext:
    assistant: Assistant
    store: ReviewStore | None  # None: reviews cannot be saved, answers are still given
    users: Users | UsersFile | None  # empty or None: nobody signs in and every visitor has `anonymous_role`
    anonymous_role: str | None = "admin"
    notices: list[str] = field(default_factory=list)  # banner lines, read on each page load
    limits: Limits = Limits()  # each caller's share of the model (`fairness`)
    maps_poll_seconds: float = 10.0  # how often the active map version is looked for (`mapwatch`)
    admission: Admission = field(init=False, repr=False)  # the one gate every answer passes
    watch: MapWatch = field(init=False, repr=False)  # follows the maps folder, reports this server's version
    _proxy_noted: bool = field(default=False, init=False, repr=False)  # the untrusted-proxy line was logged

    def __post_init__(self):
        self.admission = Admission(self.model_concurrency, self.limits)
        self.watch = MapWatch(self.assistant, self.store, self.maps_poll_seconds)

    @property
    def model_concurrency(self) -> int:
        """How many answers the model serves at once: what its backend declares (1 for a local model)."""
        return self.assistant.backend.capabilities.max_concurrency

    def user_of(self, request) -> str | None:
        return getattr(request, "username", None) if request is not None else None

    def role_of(self, request) -> str | None:
        return self.users.role_of(self.user_of(request)) if self.users else self.anonymous_role

    def session_of(self, request) -> str | None:
        return getattr(request, "session_hash", None) if request is not None else None

    def caller_of(self, request) -> Caller:
        """Whose share a question counts against: the signed-in user; without a users file the local
        admin (limited only by the busy limit), or else (a public demo) the visitor's address."""
        if self.users:
            return Caller(self.user_of(request) or "")
        if self.anonymous_role == "admin":
            return LOCAL_ADMIN
        address = address_of(request)
        if not self._proxy_noted and through_untrusted_proxy(request, address):
            self._proxy_noted = True
            log.warning("a visitor's X-Forwarded-For was not believed (the request came from %s, not a trusted "
                        "proxy): if the app is behind a proxy, every visitor shares that proxy's per-visitor limits; "
                        "name it with --trusted-proxy (or CALIBRATED_CHAT_TRUSTED_PROXIES)", address)
        return Caller(address, visitor=True)

    def owner_of(self, request, token: str | None = None) -> str | None:
        """Who owns this caller's conversations: the signed-in user, else the browser's `token`."""
        return owner_key(self.user_of(request), token)

    def actor_of(self, request, token: str | None = None) -> Actor:
        """Who acts on a stored reply: staff on their own only, reviewers and admins on any."""
        return Actor(self.user_of(request), self.session_of(request),
                     role_at_least(self.role_of(request), "reviewer"), self.owner_of(request, token))

    def answer(self, question: Question, history: list | None, request, cancel: threading.Event,
               conversation: str | None = None):
        """`session.answer_and_store` for this caller in its turn at the model: (update, reply id, note)
        while the model answers. Raises `fairness.Busy` (at the first step) when the caller is over
        their share, and InputError when stopped before its turn came."""
        ticket = self.admission.enter(self.caller_of(request))
        try:
            if not self.admission.wait(ticket, cancel):
                raise InputError("Stopped before the model started on it: nothing was asked.")
            yield from self.answer_for(self.user_of(request), self.session_of(request), question, history,
                                       cancel, conversation)
        finally:
            self.admission.leave(ticket)

    def answer_for(self, user: str | None, session: str | None, question: Question, history: list | None,
                   cancel: threading.Event, conversation: str | None = None):
        """`answer`, for a caller named outside Gradio (the OpenAI-compatible endpoint). A map version
        activated since the last look (`maps_poll_seconds`) is loaded first."""
        self.watch.check()
        return answer_and_store(self.assistant, self.store, question, history, user=user, session=session,
                                cancel=cancel, conversation=conversation)

    def require(self, request, needed: str) -> None:
        """Refuse the call unless the caller has at least the role `needed` (logged in one line; the
        gr.Error carries no traceback, so Gradio logs none)."""
        if not role_at_least(self.role_of(request), needed):
            log.warning("refused a %s-only call for user %r (role %s)", needed, self.user_of(request),
                        self.role_of(request))
            raise gr.Error(f"Refused: this needs the {needed} role.", print_exception=False)

    def need_store(self) -> ReviewStore:
        """The store, for a call that cannot work without it (a gr.Error saying so otherwise)."""
        if self.store is None:
            raise gr.Error(STORE_DOWN, print_exception=False)
        return self.store

    def store_call(self, method: Callable[[ReviewStore], object]):
        """Run a store write for the chat; on failure warn (the app keeps answering) and return None."""
        if self.store is None:
            gr.Warning(STORE_DOWN)
            return None
        try:
            return method(self.store)
        except StoreError as err:
            log.error("review store write failed: %s", err)
            gr.Warning(f"{STORE_DOWN} ({err})")
            return None

    def store_error(self, call: Callable[[ReviewStore], object]):
        """Run a store call for a reviewer or the API; a refused or failed one becomes a gr.Error."""
        try:
            return call(self.need_store())
        except (StoreError, InputError) as err:
            raise gr.Error(str(err), print_exception=False) from None
