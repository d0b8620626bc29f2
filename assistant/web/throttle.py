"""Sign-in throttling: failed sign-ins per user name and per client address, the spacing they earn and a
name's lock-out (`LoginThrottle`), kept in a `ThrottleStore`: this process's memory, or the review
store's `sign_in_throttle` table when several app servers share one PostgreSQL store."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from assistant.reviews.store import ReviewStore

__all__ = ["Admission", "LoginThrottle", "MemoryThrottleStore", "SharedThrottleStore", "Tally", "ThrottleStore"]


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


class SharedThrottleStore:
    """Tallies in the review store's `sign_in_throttle` table, which every app server on that store sees.
    `update` is one write transaction (no other writer runs beside it); tallies untouched for
    `keep_seconds` are deleted on the way, so random names cannot grow the table without bound."""

    def __init__(self, store: ReviewStore, keep_seconds: float = 24 * 3600, clock: Callable[[], float] = time.time):
        self.store, self.keep_seconds, self.clock = store, keep_seconds, clock

    _SELECT = "SELECT failures, last_at, last_check_at FROM sign_in_throttle WHERE key = ?"

    @staticmethod
    def _tally(row) -> Tally | None:
        return None if row is None else Tally(row["failures"], row["last_at"], row["last_check_at"])

    def get(self, key: str) -> Tally | None:
        rows = self.store.read(self._SELECT, (key,))
        return self._tally(rows[0] if rows else None)

    def update(self, key: str, change: Callable[[Tally | None], Tally | None]) -> Tally | None:
        with self.store.write() as db:
            db.execute("DELETE FROM sign_in_throttle WHERE last_at < ?", (self.clock() - self.keep_seconds,))
            new = change(self._tally(db.execute(self._SELECT, (key,)).fetchone()))
            if new is None:
                db.execute("DELETE FROM sign_in_throttle WHERE key = ?", (key,))
            else:
                db.execute("INSERT INTO sign_in_throttle (key, failures, last_at, last_check_at) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at, "
                           "last_check_at = excluded.last_check_at", (key, new.count, new.last, new.last_check))
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
