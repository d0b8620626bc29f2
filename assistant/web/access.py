"""The web app's door: sign-in throttling and the reviewers' export download.

Gradio checks passwords itself (`POST /login`, through `Users.authenticate`) but neither
limits attempts nor sees the caller's address. `LoginGuard`, an ASGI middleware in front
of that route, counts failures per user name and per client address (`LoginThrottle`):
after a few, each attempt is answered more slowly; after more, the name or address is
locked out for a while, even with the right password. Failed sign-ins go to the log
with the name and address, never the password.

`export_route` serves reviewers' verdicts as JSONL straight from the store to a signed-in
reviewer: no copy lands in Gradio's file cache, whose URLs any signed-in user could fetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from assistant.web import figures
from assistant.web.auth import role_at_least
from assistant.web.reviews import utc_now

__all__ = ["LoginThrottle", "LoginGuard", "current_user", "export_route", "EXPORT_PATH"]

log = logging.getLogger("calibrated_chat.access")

EXPORT_PATH = "/exports/reviews.jsonl"
_LOGIN_PATHS = ("/login", "/login/")
_MAX_LOGIN_BODY = 64 * 1024  # a sign-in form is a few hundred bytes


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


@dataclass
class LoginThrottle:
    """Failed sign-ins per key ("user:NAME", "addr:IP"), the delay they earn and the lock-out.

    The first `free` failures cost nothing; each later one doubles the wait before the answer
    (1 s, 2 s, 4 s, … up to `max_delay`); at `lock_after` failures a name is locked for
    `lock_seconds`, and an address at `lock_address_after` (higher: one office, one address).
    Failures older than `forget_seconds` are forgotten, a success clears the user's count
    (not the address's: one good account must not unlock guessing at others).
    """

    free: int = 3
    lock_after: int = 10
    lock_address_after: int = 30
    lock_seconds: float = 15 * 60
    forget_seconds: float = 15 * 60
    max_delay: float = 8.0
    max_keys: int = 10_000  # oldest forgotten first: random names cannot grow memory without bound
    clock: Callable[[], float] = time.monotonic
    _seen: OrderedDict = field(default_factory=OrderedDict, repr=False)

    @staticmethod
    def keys(user: str, address: str) -> tuple[str, str]:
        return f"user:{user}", f"addr:{address}"

    def _current(self, key: str) -> _Failures:
        entry = self._seen.get(key)
        if entry is not None and self.clock() - entry.last > max(self.forget_seconds, self.lock_seconds):
            del self._seen[key]
            entry = None
        return entry or _Failures()

    def failures(self, user: str, address: str) -> int:
        """The larger of the two counts: what the next attempt is judged by."""
        return max(self._current(key).count for key in self.keys(user, address))

    def locked_for(self, user: str, address: str) -> float:
        """Seconds until the name or the address may try again; 0 when neither is locked."""
        limits = zip(self.keys(user, address), (self.lock_after, self.lock_address_after))
        waits = [entry.last + self.lock_seconds - self.clock()
                 for entry, limit in ((self._current(key), limit) for key, limit in limits) if entry.count >= limit]
        return max([0.0, *waits])

    def delay(self, user: str, address: str) -> float:
        """Seconds to wait before answering this attempt."""
        over = self.failures(user, address) - self.free
        return 0.0 if over < 0 else min(self.max_delay, 2.0 ** over)

    def failed(self, user: str, address: str) -> int:
        """Record a failure; return the count it brings the user or address to."""
        counts = []
        for key in self.keys(user, address):
            entry = self._current(key)
            entry.count, entry.last = entry.count + 1, self.clock()
            self._seen[key] = entry
            self._seen.move_to_end(key)
            counts.append(entry.count)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return max(counts)

    def succeeded(self, user: str, address: str) -> None:
        self._seen.pop(self.keys(user, address)[0], None)


def _client_address(scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


async def _send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class LoginGuard:
    """ASGI middleware: throttles and logs `POST /login`; every other request passes untouched."""

    def __init__(self, app, throttle: LoginThrottle | None = None):
        self.app = app
        self.throttle = throttle or LoginThrottle()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in _LOGIN_PATHS:
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > _MAX_LOGIN_BODY:
                return await _send_json(send, 413, {"detail": "sign-in request too large"})
        form = parse_qs(body.decode("utf-8", "replace"))
        user = (form.get("username") or [""])[0].strip()[:64]
        address = _client_address(scope)
        locked = self.throttle.locked_for(user, address)
        if locked > 0:
            log.warning("sign-in refused for user %r from %s: locked for %.0f s more after repeated failures",
                        user, address, locked)
            minutes = max(1, round(locked / 60))
            return await _send_json(send, 429, {"detail": f"Too many failed sign-ins: try again in about "
                                                          f"{minutes} minute{'s' if minutes > 1 else ''}."},
                                    [(b"retry-after", str(int(locked) + 1).encode())])
        wait = self.throttle.delay(user, address)
        if wait:
            await asyncio.sleep(wait)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def watch(message):
            if message["type"] == "http.response.start":
                if message["status"] == 200:
                    self.throttle.succeeded(user, address)
                elif 400 <= message["status"] < 500:
                    count = self.throttle.failed(user, address)
                    log.warning("sign-in failed for user %r from %s (%d failed attempts in a row)",
                                user, address, count)
            await send(message)

        await self.app(scope, replay, watch)


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
    """A Starlette route streaming `figures.records(store)` as JSONL to reviewers and admins only.

    `role_of_user(name)` gives a user's role (None: no such user); `signed_in` says whether the
    app has a login at all (without one, every visitor has the anonymous role).
    """
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route


    async def export(request):
        user = current_user(request)
        if signed_in and user is None:
            log.warning("refused %s: not signed in (from %s)", EXPORT_PATH, _client_address(request.scope))
            return JSONResponse({"detail": "Sign in as a reviewer to download the export."}, status_code=401)
        role = role_of_user(user)
        if not role_at_least(role, "reviewer"):
            log.warning("refused %s for user %r (role %s)", EXPORT_PATH, user, role)
            return JSONResponse({"detail": "Refused: the export needs the reviewer role."}, status_code=403)
        if store is None:
            return JSONResponse({"detail": "The review store is not available."}, status_code=503)
        stamp = utc_now()[:19].replace(":", "").replace("-", "")
        lines = (json.dumps(record.to_dict(), ensure_ascii=False) + "\n" for record in figures.records(store))
        log.info("user %r downloaded the review export", user)
        return StreamingResponse(lines, media_type="application/jsonl", headers={
            "content-disposition": f'attachment; filename="reviews-{stamp}.jsonl"',
            "cache-control": "no-store"})

    return Route(EXPORT_PATH, export, methods=["GET"])
