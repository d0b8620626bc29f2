"""The web app's door: who is calling from where, sign-in throttling, and the reviewers' export download.

`TrustedProxies`, an ASGI middleware in front of everything, sets each request's client
address. It believes `X-Forwarded-For` (or RFC 7239 `Forwarded`) only when the direct peer
is one of the configured reverse proxies (`--trusted-proxy`); from anyone else those headers
are ignored, so nobody can pick the address the throttle below counts against.

Gradio checks passwords itself (`POST /login`, through `Users.authenticate`) but neither
limits attempts nor sees the caller's address. `LoginGuard`, an ASGI middleware in front
of that route, counts failures per user name and per client address (`LoginThrottle`).
A name with too many failures is locked for a while, even with the right password. An
address is never locked: many people may share one (an office, a proxy). After a few
failures its password checks are spaced out instead, a few seconds apart at most, so a
correct password from it still signs in, at worst after that wait. Failed sign-ins go to
the log with the name and address, never the password.

`SessionsFollowUsers` ends the open sessions of a user removed from the users file or given a
new password there, on the next request after the change.

`export_route` serves reviewers' verdicts as JSONL straight from the store to a signed-in
reviewer: no copy lands in Gradio's file cache, whose URLs any signed-in user could fetch.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol
from urllib.parse import parse_qs

from assistant.core.errors import InputError
from assistant.web import figures
from assistant.web.auth import role_at_least
from assistant.web.reviews import utc_now

__all__ = ["LoginThrottle", "LoginGuard", "Admission", "Tally", "ThrottleStore", "MemoryThrottleStore",
           "TrustedProxies", "parse_trusted_proxies", "SessionsFollowUsers", "TRUSTED_PROXIES_ENV", "current_user", "export_route",
           "EXPORT_PATH"]

log = logging.getLogger("calibrated_chat.access")

EXPORT_PATH = "/exports/reviews.jsonl"
TRUSTED_PROXIES_ENV = "CALIBRATED_CHAT_TRUSTED_PROXIES"
_LOGIN_PATHS = ("/login", "/login/")
_MAX_LOGIN_BODY = 64 * 1024  # a sign-in form is a few hundred bytes

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


# -- the caller's address ---------------------------------------------------------------------------


def parse_trusted_proxies(values: Iterable[str], source: str = "--trusted-proxy") -> tuple[Network, ...]:
    """The networks of `values` ("10.0.0.5", "10.0.0.0/24, fd00::/8", …); InputError naming a bad one."""
    networks = []
    for item in (part.strip() for value in values for part in value.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError as err:
            raise InputError(f"{source}: {item!r} is not an IP address or network ({err}); give the reverse "
                             "proxies' addresses or CIDR networks, comma-separated, e.g. 10.0.0.5,10.1.0.0/24 "
                             "(host names are not accepted)") from None
        if network.prefixlen == 0:
            raise InputError(f"{source}: {item!r} would trust every address, so anyone could forge theirs; "
                             "name only your reverse proxies")
        networks.append(network)
    return tuple(networks)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in a forwarded hop ("1.2.3.4", "1.2.3.4:5", "[::1]:5", '"[::1]"'); None when not one."""
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1:value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.split(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # "::ffff:10.0.0.5" from a dual-stack socket
    return mapped or address


def _header(scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == name]
    return ",".join(values) if values else None


def _forwarded_hops(scope) -> tuple[list[str], str | None]:
    """(client hops, left to right; protocol) from X-Forwarded-For/-Proto, else from Forwarded."""
    xff = _header(scope, b"x-forwarded-for")
    if xff is not None:
        return xff.split(","), _header(scope, b"x-forwarded-proto")
    hops, proto = [], None
    for element in (_header(scope, b"forwarded") or "").split(","):
        for pair in element.split(";"):
            key, _, value = pair.partition("=")
            if key.strip().lower() == "for":
                hops.append(value)
            elif key.strip().lower() == "proto":
                proto = value.strip().strip('"')
    return hops, proto


class TrustedProxies:
    """ASGI middleware: sets `scope["client"]` (and the scheme) from forwarded headers when, and only
    when, the direct peer is a trusted proxy. The forwarded hops are read right to left, past other
    trusted proxies: the first one that is not trusted is the client (the left part of the header
    comes from the client and proves nothing)."""

    def __init__(self, app, proxies: Iterable[Network] = ()):
        self.app = app
        self.proxies = tuple(proxies)

    def trusted(self, address) -> bool:
        return address is not None and any(address in network for network in self.proxies)

    def client_of(self, scope) -> tuple[str | None, str | None]:
        """(the client's address, the forwarded protocol); (None, None) when the peer is no trusted proxy."""
        peer = _ip(scope["client"][0]) if scope.get("client") else None
        if not self.trusted(peer):
            return None, None
        hops, proto = _forwarded_hops(scope)
        client = peer
        for hop in reversed(hops):
            address = _ip(hop)
            if address is None:  # "unknown", an obfuscated name or garbage: the last proxy is all we know
                break
            client = address
            if not self.trusted(address):
                break
        return str(client), proto

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.proxies:
            client, proto = self.client_of(scope)
            if client is not None:
                scope = {**scope, "client": (client, 0)}
                if proto in ("http", "https"):
                    scope["scheme"] = proto.replace("http", "ws") if scope["type"] == "websocket" else proto
        await self.app(scope, receive, send)


# -- sign-in throttling -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    """What the throttle knows about one name or address."""

    count: int = 0  # failed sign-ins; an attempt counts from when it starts until it succeeds
    last: float = 0.0  # when the latest was counted (clock seconds)
    last_check: float = 0.0  # when the latest attempt's password check was let start


class ThrottleStore(Protocol):
    """Where `LoginThrottle` keeps its tallies. `MemoryThrottleStore` is one process's memory; a store
    that several app processes share (a database table) implements the same two calls, with
    `update` atomic (a transaction around read, change and write)."""

    def get(self, key: str) -> Tally | None: ...

    def update(self, key: str, change: Callable[[Tally | None], Tally | None]) -> Tally | None:
        """Replace the tally under `key` with `change(it)` (None deletes it); return the new one."""
        ...


class MemoryThrottleStore:
    """Tallies in this process's memory; the oldest are forgotten first beyond `max_keys`, so random
    names cannot grow memory without bound."""

    def __init__(self, max_keys: int = 10_000):
        self.max_keys = max_keys
        self._tallies: OrderedDict[str, Tally] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tallies)

    def get(self, key: str) -> Tally | None:
        with self._lock:
            return self._tallies.get(key)

    def update(self, key: str, change: Callable[[Tally | None], Tally | None]) -> Tally | None:
        with self._lock:
            new = change(self._tallies.get(key))
            if new is None:
                self._tallies.pop(key, None)
                return None
            self._tallies[key] = new
            self._tallies.move_to_end(key)
            while len(self._tallies) > self.max_keys:
                self._tallies.popitem(last=False)
            return new


@dataclass(frozen=True)
class Admission:
    """What the throttle says about one sign-in attempt."""

    wait: float = 0.0  # seconds to wait before the password is checked
    refused_for: float = 0.0  # > 0: refused; the seconds until an attempt may come back
    locked: bool = False  # refused because the name is locked (else: too many at once from the address)


@dataclass(frozen=True)
class LoginThrottle:
    """Failed sign-ins per key ("user:NAME", "addr:IP"), the spacing they earn and the name's lock-out.

    A name or address's first `free` failures cost nothing; after that its password checks are
    spaced out: 1 s, 2 s, 4 s, … up to `max_delay` between one and the next, however many come at
    once. The wait comes before the check, for right and wrong passwords alike, so it tells an
    attacker nothing. At `lock_after` failures a NAME is locked for `lock_seconds`, even with the
    right password; an address is never locked. An attempt that would wait more than `max_wait`
    (many at once from one address or at one name) is refused with a short retry-after instead.
    Failures older than `forget_seconds` are forgotten; a success clears the name's count and takes
    back only its own attempt from the address's (one good account must not unlock guessing at others).
    """

    free: int = 3
    lock_after: int = 10
    lock_seconds: float = 15 * 60
    forget_seconds: float = 15 * 60
    max_delay: float = 8.0
    max_wait: float = 30.0
    store: ThrottleStore = field(default_factory=MemoryThrottleStore)
    clock: Callable[[], float] = time.time  # wall-clock seconds: what processes sharing a store agree on

    @staticmethod
    def keys(user: str, address: str) -> tuple[str, str]:
        return f"user:{user}", f"addr:{address}"

    def _live(self, tally: Tally | None, now: float) -> Tally | None:
        """`tally`, or None once its failures are forgotten."""
        if tally is None or now - tally.last > max(self.forget_seconds, self.lock_seconds):
            return None
        return tally

    def failures(self, key: str) -> int:
        """The failures counted under "user:NAME" or "addr:IP" that are not yet forgotten."""
        tally = self._live(self.store.get(key), self.clock())
        return tally.count if tally else 0

    def locked_for(self, user: str) -> float:
        """Seconds until the name may try again; 0 when it is not locked."""
        now = self.clock()
        tally = self._live(self.store.get(self.keys(user, "")[0]), now)
        if tally is None or tally.count < self.lock_after:
            return 0.0  # (a lock that ran out leaves its count: one more failure locks the name again)
        return max(0.0, tally.last + self.lock_seconds - now)

    def spacing(self, count: int) -> float:
        """Least seconds between two password checks of a name or address at `count` failures."""
        over = count - self.free - 1
        return 0.0 if over < 0 else min(self.max_delay, 2.0 ** over)

    def admit(self, user: str, address: str) -> Admission:
        """Count this attempt as failed until it succeeds, and say how long it waits, or why it is refused."""
        name_key, address_key = self.keys(user, address)
        name = self._take(name_key, self.lock_after)
        if name.refused_for:
            return name
        place = self._take(address_key, None)
        if place.refused_for:
            self._give_back(name_key)
            return place
        return Admission(wait=max(name.wait, place.wait))

    def _take(self, key: str, lock_after: int | None) -> Admission:
        now, outcome = self.clock(), []

        def change(tally: Tally | None) -> Tally | None:
            tally = self._live(tally, now) or Tally()
            if lock_after is not None and tally.count >= lock_after and tally.last + self.lock_seconds > now:
                outcome.append(Admission(refused_for=tally.last + self.lock_seconds - now, locked=True))
                return tally if tally.count else None
            start = max(now, tally.last_check + self.spacing(tally.count + 1))
            if start - now > self.max_wait:
                outcome.append(Admission(refused_for=start - now - self.max_wait))
                return tally if tally.count else None
            outcome.append(Admission(wait=start - now))
            return Tally(tally.count + 1, now, start)

        self.store.update(key, change)
        return outcome[-1]  # a shared store may retry `change` after a conflict: the last run is the one kept

    def _give_back(self, key: str) -> None:
        self.store.update(key, lambda t: replace(t, count=t.count - 1) if t and t.count > 1 else None)

    def failed(self, user: str, address: str) -> tuple[int, int]:
        """The attempt failed (it was counted when admitted; a lock runs from now): the name's count and the
        address's."""
        now = self.clock()
        tallies = [self.store.update(key, lambda t: replace(t, last=max(t.last, now)) if t else None)
                   for key in self.keys(user, address)]
        name, place = (t.count if t else 0 for t in tallies)
        return name, place

    def succeeded(self, user: str, address: str) -> None:
        """The right password: the name's failures are cleared, this attempt leaves the address's count."""
        name_key, address_key = self.keys(user, address)
        self.store.update(name_key, lambda t: None)
        self._give_back(address_key)

    def abandoned(self, user: str, address: str) -> None:
        """No answer on the password (a server error, the caller left): the attempt is not counted."""
        for key in self.keys(user, address):
            self._give_back(key)


def _client_address(scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


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
        address = _client_address(scope)
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
