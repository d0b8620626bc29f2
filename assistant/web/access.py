"""The web app's door: sign-in throttling, sessions that follow the users file, and the reviewers' export.

Gradio checks passwords itself (`POST /login`, through `Users.authenticate`) but neither
limits attempts nor sees the caller's address. `LoginGuard`, an ASGI middleware in front
of that route, counts failures per user name and per client address (`throttle.LoginThrottle`;
the address is the one `proxies.TrustedProxies` set). A name with too many failures is locked
for a while, even with the right password. An address is never locked: many people may share
one (an office, a proxy). After a few failures its password checks are spaced out instead, a
few seconds apart at most, so a correct password from it still signs in, at worst after that
wait. Failed sign-ins go to the log with the name and address, never the password.

`SessionsFollowUsers` ends the open sessions of a user removed from the users file or given a
new password there, on the next request after the change.

`export_route` serves reviewers' verdicts as JSONL straight from the store to a signed-in
reviewer: no copy lands in Gradio's file cache, whose URLs any signed-in user could fetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable
from urllib.parse import parse_qs

from assistant.reviews import queries
from assistant.reviews.types import utc_now
from assistant.web.auth import role_at_least
from assistant.web.proxies import client_address
from assistant.web.throttle import Admission, LoginThrottle

__all__ = ["EXPORT_PATH", "LoginGuard", "SessionsFollowUsers", "current_user", "export_route"]

log = logging.getLogger("calibrated_chat.access")

EXPORT_PATH = "/exports/reviews.jsonl"
_LOGIN_PATHS = ("/login", "/login/")
_MAX_LOGIN_BODY = 64 * 1024  # a sign-in form is a few hundred bytes


async def _send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


async def _read_body(receive) -> bytes | None:
    """The request body; None when it outgrows a sign-in form."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > _MAX_LOGIN_BODY:
            return None
    return body


async def _refuse(send, user: str, address: str, admission: Admission) -> None:
    retry = max(1, math.ceil(admission.refused_for))
    if admission.locked:
        log.warning("sign-in refused for user %r from %s: the name is locked for %d s more after repeated "
                    "failures", user, address, retry)
        minutes = max(1, round(retry / 60))
        detail = f"Too many failed sign-ins for this name: try again in about {minutes} minute" + "s" * (minutes > 1)
    else:
        log.warning("sign-in refused for user %r from %s: too many sign-ins at once from that address",
                    user, address)
        detail = f"Too many sign-ins from your network at once: try again in {retry} s"
    await _send_json(send, 429, {"detail": detail + "."}, [(b"retry-after", str(retry).encode())])


class LoginGuard:
    """ASGI middleware: throttles and logs `POST /login`; every other request passes untouched."""

    def __init__(self, app, throttle: LoginThrottle | None = None):
        self.app = app
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in _LOGIN_PATHS:
            return await self.app(scope, receive, send)
        body = await _read_body(receive)
        if body is None:
            return await _send_json(send, 413, {"detail": "sign-in request too large"})
        form = parse_qs(body.decode("utf-8", "replace"))
        user = (form.get("username") or [""])[0].strip()[:64]
        address = client_address(scope)
        admission = self.throttle.admit(user, address)
        if admission.refused_for:
            return await _refuse(send, user, address, admission)
        outcome = []
        try:
            await asyncio.sleep(admission.wait)
            await self.app(scope, _replay(body, receive), self._watch(send, user, address, outcome))
        finally:
            if not outcome:  # no answer on the password: the attempt does not count
                self.throttle.abandoned(user, address)

    def _watch(self, send, user: str, address: str, outcome: list):
        async def watch(message):
            if message["type"] == "http.response.start" and not outcome:
                outcome.append(message["status"])
                if message["status"] == 200:
                    self.throttle.succeeded(user, address)
                elif 400 <= message["status"] < 500:
                    names, addresses = self.throttle.failed(user, address)
                    log.warning("sign-in failed for user %r from %s (%d failures for this name, %d from this "
                                "address)", user, address, names, addresses)
                else:
                    self.throttle.abandoned(user, address)
            await send(message)

        return watch


def _replay(body: bytes, receive):
    """A `receive` that hands the app the body already read, then what the client sends next."""
    replayed = False

    async def replay():
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class SessionsFollowUsers:
    """ASGI middleware for an app on a `UsersFile`: on every request it looks at the file (one `stat`),
    and when a user was removed or given a new password, their open sessions end there and then:
    whoever signed in with the old password must sign in again."""

    def __init__(self, app, users):
        self.app = app
        self.users = users  # a UsersFile
        self._known = users.current()

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            current = self.users.current()
            if current is not self._known:
                self._end_stale(scope.get("app"), self._known, current)
                self._known = current
        await self.app(scope, receive, send)

    @staticmethod
    def _end_stale(app, before, now) -> None:
        stale = {name for name, user in before.users.items()
                 if name not in now.users or now.users[name].password_hash != user.password_hash}
        tokens = getattr(app, "tokens", None)
        if not stale or tokens is None:
            return
        ended = [token for token, name in list(tokens.items()) if name in stale]
        for token in ended:
            tokens.pop(token, None)
        log.warning("users file changed: %d open sessions ended (removed or new password: %s)",
                    len(ended), ", ".join(sorted(stale)))


def current_user(request) -> str | None:
    """The signed-in user of a request to the Gradio app, read the way Gradio's own `/user` route does."""
    app = request.app
    cookie_id = getattr(app, "cookie_id", None)
    tokens = getattr(app, "tokens", None) or {}
    if cookie_id is None:
        return None
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}")
    return tokens.get(token)


def export_route(store, role_of_user: Callable[[str | None], str | None], *, signed_in: bool):
    """A Starlette route streaming `queries.records(store)` as JSONL to reviewers and admins only.

    `role_of_user(name)` gives a user's role (None: no such user); `signed_in` says whether the
    app has a login at all (without one, every visitor has the anonymous role).
    """
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route


    async def export(request):
        user = current_user(request)
        if signed_in and user is None:
            log.warning("refused %s: not signed in (from %s)", EXPORT_PATH, client_address(request.scope))
            return JSONResponse({"detail": "Sign in as a reviewer to download the export."}, status_code=401)
        role = role_of_user(user)
        if not role_at_least(role, "reviewer"):
            log.warning("refused %s for user %r (role %s)", EXPORT_PATH, user, role)
            return JSONResponse({"detail": "Refused: the export needs the reviewer role."}, status_code=403)
        if store is None:
            return JSONResponse({"detail": "The review store is not available."}, status_code=503)
        stamp = utc_now()[:19].replace(":", "").replace("-", "")
        lines = (json.dumps(record.to_dict(), ensure_ascii=False) + "\n" for record in queries.records(store))
        log.info("user %r downloaded the review export", user)
        return StreamingResponse(lines, media_type="application/jsonl", headers={
            "content-disposition": f'attachment; filename="reviews-{stamp}.jsonl"',
            "cache-control": "no-store"})

    return Route(EXPORT_PATH, export, methods=["GET"])
