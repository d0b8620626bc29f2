"""Map activation reaches every app server: each follows its maps folder and says which version it runs.

`calibrate maps activate` (or `rollback`) appends to the maps folder's HISTORY. A `MapWatch` looks at
most every `poll_seconds` whether the active version of its model and prompt changed there, and then
reloads (`Assistant.follow_maps`): before an answer whose last look is older than that, and in a daemon
thread between answers. A version that fails to load keeps the old maps (one log line). Each look also
writes this server's row in the review store (`assistant.reviews.servers`): its name, map version and
when it was last seen, which the dashboard lists. Servers of a team deployment share one maps folder
(docs/deployment.md).

    watch = MapWatch(assistant, store, poll_seconds=10)
    watch.start()           # a first look and report now, then one every poll_seconds
    watch.check()           # on the answer path: a look only when the last is older than poll_seconds
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from assistant.answering.pipeline import Assistant
from assistant.core.errors import StoreError
from assistant.reviews.servers import ServerStatus, report_server
from assistant.reviews.store import ReviewStore
from assistant.reviews.types import utc_now

__all__ = ["MIN_HEARTBEAT_SECONDS", "MapWatch"]

MIN_HEARTBEAT_SECONDS = 1.0  # the background thread never looks more often, whatever poll_seconds says

log = logging.getLogger("calibrated_chat.app")


class MapWatch:
    """Follows the active map of one assistant and reports it, with this server's name, to the store."""

    def __init__(self, assistant: Assistant, store: ReviewStore | None, poll_seconds: float = 10.0):
        self.assistant = assistant
        self.store = store  # None: nothing to report to (the maps are still followed)
        self.poll_seconds = poll_seconds  # 0: look before every answer
        self.started_at = utc_now()
        self._last: float | None = None  # time.monotonic() of the last look
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._report_failed = False  # a failed report was logged; the next failure is not

    def check(self, *, force: bool = False) -> str | None:
        """Look for a new active version and report, when the last look is older than `poll_seconds` (or
        `force`); return the map version in use."""
        with self._lock:
            now = time.monotonic()
            if not force and self._last is not None and now - self._last < self.poll_seconds:
                return self.assistant.map_version
            self._last = now
            version = self.assistant.follow_maps()
            self.report()
            return version

    def report(self) -> None:
        """Write this server's row (name, model, prompt, map version, last seen); a failure is logged once."""
        if self.store is None:
            return
        assistant = self.assistant
        status = ServerStatus(self.store.server, assistant.backend.model_id, assistant.prompt.id,
                              assistant.map_version, self.started_at, utc_now())
        try:
            report_server(self.store, status)
            self._report_failed = False
        except StoreError as err:
            if not self._report_failed:
                log.warning("this server's map version could not be reported to the store: %s", err)
            self._report_failed = True

    def start(self, serving: Callable[[], bool] = lambda: True) -> None:
        """Look and report now, then every `poll_seconds` (at least MIN_HEARTBEAT_SECONDS) in a daemon thread,
        which ends with `stop()` or once `serving()` is false (the web server closed)."""
        self.check(force=True)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(serving,), name="map-watch", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self, serving: Callable[[], bool]) -> None:
        while not self._stop.wait(max(self.poll_seconds, MIN_HEARTBEAT_SECONDS)) and serving():
            try:
                self.check(force=True)
            except Exception as err:  # noqa: BLE001 (the thread must outlive any one look; one line, next look)
                log.warning("looking for a new calibration map failed: %s", err)
