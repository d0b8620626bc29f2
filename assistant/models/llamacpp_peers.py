"""llama.cpp processes on one machine take their share of its cores, and give it back.

llama.cpp's OpenMP threads spin while they wait for one another (libgomp's default, the fastest
for a process alone), so two processes that each run a thread per core starve each other: on 2
cores each ran at 0.30 of its speed alone (bench/SHARE.md). So every process that loads a model
leaves a note in a folder of the user's temporary directory (`Peers`), and before it decodes, and
every few seconds while it does, the backend counts the processes whose notes are live and
decodes with `cores // processes` threads (`CoreShare`): every core alone, half beside one other
(the app answering staff while an admin runs `calibrate collect`), every core again once the
other ends. An explicit `--threads`, or CALIBRATED_CHAT_SHARE_CPU=1 (half the cores, for
processes that cannot see each other's notes: other users, other containers), fixes the count.
Off POSIX systems no peers are counted: each process takes every core.
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from assistant.models.llamacpp_c import available_cores

__all__ = ["PEERS", "PEERS_DIR_ENV", "REFIT_SECONDS", "CoreShare", "Peers", "fair_threads"]

log = logging.getLogger("assistant.models.llamacpp")

REFIT_SECONDS = 0.25  # how often a decoding backend counts its peers again (about 0.05 ms each time)
PEERS_DIR_ENV = "CALIBRATED_CHAT_PEERS_DIR"  # where the notes are (default: <temp dir>/calibrated-chat-llama-<uid>)


def fair_threads(cores: int, processes: int) -> int:
    """One process's share of `cores` among `processes` (at least one thread)."""
    return max(1, cores // max(1, processes))


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell it from a later one with its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the name before it may hold spaces


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    now = _started(pid)
    return now is None or not started or now == started


class Peers:
    """This process's note among those of the llama.cpp processes that share `folder`."""

    def __init__(self, folder: Path | None = None):
        default = Path(tempfile.gettempdir()) / f"calibrated-chat-llama-{getattr(os, 'getuid', lambda: 0)()}"
        self.folder = Path(folder or os.environ.get(PEERS_DIR_ENV) or default)
        self._lock = threading.Lock()
        self._backends = 0  # backends of this process that have joined (the note is per process)

    @property
    def _note(self) -> Path:
        return self.folder / str(os.getpid())

    def join(self) -> None:
        with self._lock:
            self._backends += 1
            if self._backends == 1:
                try:
                    self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
                    self._note.write_text(_started(os.getpid()) or "", encoding="ascii")
                except OSError as error:  # sharing is a courtesy: without the note, this process is not counted
                    log.warning("could not note this llama.cpp process in %s: %s", self.folder, error)

    def leave(self, *, all_backends: bool = False) -> None:
        """One backend of this process is gone (`all_backends`: the process ends); the last takes the note away."""
        with self._lock:
            self._backends = 0 if all_backends else max(0, self._backends - 1)
            if self._backends == 0:
                self._note.unlink(missing_ok=True)

    def count(self) -> int:
        """Live processes with a note (this one included when it has joined); dead ones' notes are removed."""
        live = 0
        try:  # POSIX only: elsewhere os.kill(pid, 0) would end the process it asks about
            notes = list(self.folder.iterdir()) if os.name == "posix" else []
        except OSError:
            notes = []
        for note in notes:
            if not note.name.isdigit():
                continue
            pid = int(note.name)
            try:
                started = note.read_text(encoding="ascii").strip()
            except OSError:
                continue
            if pid == os.getpid() or _alive(pid, started):
                live += 1
            else:
                note.unlink(missing_ok=True)
        with self._lock:
            return max(live, 1 if self._backends else 0)


PEERS = Peers()
atexit.register(PEERS.leave, all_backends=True)


class CoreShare:
    """The threads one backend decodes with: `fixed`, or its fair share of the cores among `peers`."""

    def __init__(self, fixed: int | None, peers: Peers = PEERS, every: float = REFIT_SECONDS):
        self.fixed, self.peers, self.every = fixed, peers, every
        self.apply: Callable[[int], None] | None = None  # sets a new count on the model (once it is loaded)
        self._next = 0.0
        self._joined = fixed is None
        if self._joined:
            peers.join()
        self.threads = fixed or fair_threads(available_cores(), peers.count())

    def refit(self) -> None:
        """Count the peers again (at most every `every` seconds) and apply a changed share."""
        if self.fixed is not None or time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.every
        threads = fair_threads(available_cores(), self.peers.count())
        if threads != self.threads and self.apply is not None:
            log.info("llama.cpp threads %d -> %d (%s)", self.threads, threads, "sharing the cores"
                     if threads < self.threads else "the cores are free again")
            self.apply(threads)
            self.threads = threads

    def close(self) -> None:
        if self._joined:
            self._joined = False
            self.peers.leave()
