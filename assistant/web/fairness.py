"""Fair turns at the model: nobody can hold everyone else up.

Every question (the chat, the named API's /ask and /ask_stream, the OpenAI-compatible endpoint)
passes through one `Admission`. It lets `slots` questions be answered at once (what the backend
serves), and when a slot frees it goes to the caller who was served least recently, so callers
take turns (round-robin across callers, first come first served within one caller's questions).

Beyond that, a question is refused at once, in plain words, when:
- its caller already has `Limits.per_user` questions waiting or being answered (not the local
  admin of an app without users: one person on this computer, with nobody else to hold up);
- it is from a visitor without a sign-in (keyed by address) who has `Limits.visitor_waiting`
  questions waiting or being answered, or asked `Limits.visitor_per_minute` in the last minute;
- `Limits.max_waiting` questions from everyone are already waiting (the model is busy).

A refusal is `Busy` (an InputError, so every caller already shows its message), with the seconds
after which trying again makes sense (`retry_after`, the HTTP `retry-after` header of a 429).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from assistant.core.errors import InputError

__all__ = ["Admission", "Busy", "Caller", "Limits", "Ticket"]

_MINUTE = 60.0
_MAX_VISITORS = 10_000  # addresses remembered for the per-minute limit before the quiet ones are forgotten


class Busy(InputError):
    """A question refused for now: its caller is over their share, or the model is busy."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Limits:
    """How many questions one caller may have in hand, and how fast a visitor without a sign-in may ask."""

    per_user: int = 4  # a signed-in user's (or API key's) questions waiting or being answered
    visitor_waiting: int = 2  # the same for a visitor without a sign-in (one per address)
    visitor_per_minute: int = 6  # questions a visitor without a sign-in may ask in any minute
    max_waiting: int = 32  # questions waiting for the model, from everyone, before all are refused as busy

    def __post_init__(self):
        for name in ("per_user", "visitor_waiting", "visitor_per_minute", "max_waiting"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise InputError(f"the request limit {name} must be a whole number of at least 1, "
                                 f"not {getattr(self, name)!r}")


@dataclass(frozen=True)
class Caller:
    """Whose share a question counts against: a user name, or a visitor's address (`visitor` True)."""

    key: str
    visitor: bool = False
    limited: bool = True  # False: the local admin (no users file, this computer only), held by the busy limit alone

    def __str__(self) -> str:
        return f"visitor at {self.key}" if self.visitor else f"user {self.key!r}"


@dataclass(eq=False)
class Ticket:
    """One question's place: waiting until `admitted` is set, then holding a slot until it leaves."""

    caller: Caller
    number: int
    admitted: threading.Event = field(default_factory=threading.Event)
    wake: Callable[[], None] | None = None  # also called on admission (an async waiter's loop)
    done: bool = False


class Admission:
    """The one gate in front of the model (see the module docstring). Thread-safe; callers wait in
    threads (`wait`) or in the event loop (`wait_async`), and always `leave` their ticket."""

    def __init__(self, slots: int, limits: Limits = Limits(), clock: Callable[[], float] = time.monotonic):
        self.slots, self.limits, self.clock = max(1, slots), limits, clock
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._waiting: list[Ticket] = []
        self._running = 0
        self._held: dict[Caller, int] = {}  # waiting or running, per caller
        self._served: dict[Caller, int] = {}  # the admission number of each caller's latest question
        self._asked: dict[Caller, deque] = {}  # visitors: when they asked, the last minute's

    @property
    def capacity(self) -> int:
        """Questions that may be in hand at once: the slots and everyone's waiting ones."""
        return self.slots + self.limits.max_waiting

    def held(self, caller: Caller) -> int:
        with self._lock:
            return self._held.get(caller, 0)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def check(self, caller: Caller) -> None:
        """Raise Busy if `caller` could not ask now (nothing is reserved)."""
        with self._lock:
            self._refusal(caller)

    def enter(self, caller: Caller) -> Ticket:
        """A place for one question (admitted at once when a slot is free); Busy when refused."""
        with self._lock:
            self._refusal(caller)
            ticket = Ticket(caller, next(self._numbers))
            self._held[caller] = self._held.get(caller, 0) + 1
            if caller.visitor:
                self._note_asked(caller)
            self._waiting.append(ticket)
            self._admit()
        return ticket

    def wait(self, ticket: Ticket, cancel: threading.Event | None = None) -> bool:
        """Block until `ticket` is admitted (True), or `cancel` is set first (False: the place is left)."""
        while not ticket.admitted.wait(0.1):
            if cancel is not None and cancel.is_set():
                self.leave(ticket)
                return False
        return True

    async def wait_async(self, ticket: Ticket) -> None:
        """`wait` in the event loop; a cancelled waiter (the client went away) leaves its place."""
        loop = asyncio.get_running_loop()
        admitted = loop.create_future()

        def wake():
            loop.call_soon_threadsafe(lambda: admitted.done() or admitted.set_result(None))

        with self._lock:
            ticket.wake = wake
            if ticket.admitted.is_set():
                return
        try:
            await admitted
        except asyncio.CancelledError:
            self.leave(ticket)
            raise

    def leave(self, ticket: Ticket) -> None:
        """The question is answered, stopped or abandoned: free its place (again is harmless)."""
        with self._lock:
            if ticket.done:
                return
            ticket.done = True
            if ticket.admitted.is_set():
                self._running -= 1
            else:
                self._waiting.remove(ticket)
            left = self._held[ticket.caller] - 1
            if left:
                self._held[ticket.caller] = left
            else:
                del self._held[ticket.caller]
            self._admit()

    def _admit(self) -> None:
        """Give free slots to the waiting questions whose callers were served least recently."""
        while self._waiting and self._running < self.slots:
            ticket = min(self._waiting, key=lambda t: (self._served.get(t.caller, -1), t.number))
            self._waiting.remove(ticket)
            self._served[ticket.caller] = ticket.number
            self._running += 1
            ticket.admitted.set()
            if ticket.wake is not None:
                ticket.wake()
        if len(self._served) > 4 * self.capacity:  # forget callers with nothing in hand
            self._served = {c: n for c, n in self._served.items() if c in self._held}

    def _note_asked(self, caller: Caller) -> None:
        now = self.clock()
        if len(self._asked) > _MAX_VISITORS:  # forget visitors who asked nothing this last minute
            self._asked = {c: t for c, t in self._asked.items() if now - t[-1] < _MINUTE}
        self._asked.setdefault(caller, deque()).append(now)

    def _refusal(self, caller: Caller) -> None:
        limits = self.limits
        held = self._held.get(caller, 0)
        most = limits.visitor_waiting if caller.visitor else limits.per_user
        if caller.limited and held >= most:
            raise Busy(f"You already have {held} question{'s' if held > 1 else ''} waiting or being answered, "
                       f"the most one {'visitor' if caller.visitor else 'person'} may have at once: wait for "
                       "an answer, then try again.", retry_after=5)
        if caller.visitor:
            self._rate(caller)
        if len(self._waiting) >= limits.max_waiting:
            raise Busy("The model is busy with other people's questions: try again in a moment.", retry_after=5)

    def _rate(self, caller: Caller) -> None:
        asked, now = self._asked.get(caller), self.clock()
        while asked and now - asked[0] >= _MINUTE:
            asked.popleft()
        if asked is not None and not asked:
            del self._asked[caller]
        elif asked is not None and len(asked) >= self.limits.visitor_per_minute:
            wait = max(1, int(_MINUTE - (now - asked[0])) + 1)
            raise Busy(f"You have asked {len(asked)} questions in the last minute, the most a visitor without "
                       f"a sign-in may ask: please wait about {wait} seconds before asking again.",
                       retry_after=wait)
