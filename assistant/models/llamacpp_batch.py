"""`ChatBatcher`: concurrent `LlamaCppBackend.stream` calls folded into one continuous-batching decode.

Each call hands its sequence to the batcher and reads its tokens from its own queue. One
driver thread runs the backend's decode loop with the model lock held; calls that arrive
while it runs join at the next step, up to `parallel` sequences at once, and wait in order
beyond that. The driver exists only while there is work, so an idle backend holds no thread.

A call that starts with nothing else decoding decodes exactly as before batching (one sequence,
the prefix made for it), so its greedy answer is unchanged. Calls that overlap share each
`llama_decode`: on this project's 2-core CPU the decode itself is only about 1.1× faster, but
under 16 concurrent users the app answered 1.5-1.7× as many per minute (bench/LOAD.md).
"""

from __future__ import annotations

import codecs
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator

from assistant.core.errors import ModelLoadError
from assistant.models.backend import GenerationStats, TokenEvidence
from assistant.models.llamacpp_c import Sequence

__all__ = ["CLOSED", "ChatBatcher"]

log = logging.getLogger("assistant.models.llamacpp")

Decode = Callable[..., Iterator[tuple[Sequence, "int | None"]]]  # LlamaCppBackend._decode

CLOSED = "the model was closed: load it again to answer"
_DONE = object()  # the end of a sequence's tokens in its queue


class ChatBatcher:
    """Runs `stream` calls from any thread as sequences of one decode loop; see the module docstring."""

    def __init__(self, decode: Decode, lock: threading.Lock, piece: Callable[[int], bytes],
                 evidence: Callable[[Sequence], TokenEvidence], parallel: int, stopping: threading.Event):
        self._decode, self._lock, self._piece, self._evidence = decode, lock, piece, evidence
        self.parallel = parallel
        self._stopping = stopping  # set when the model is being freed (close, interpreter exit): decode no more
        self._guard = threading.Lock()  # over the fields below
        self._inbox: list[Sequence] = []  # handed in, not yet given to the decode loop
        self._outlets: dict[Sequence, queue.SimpleQueue] = {}  # every sequence not yet finished
        self._driver: threading.Thread | None = None

    def stream(self, seq: Sequence) -> Generator[str, None, GenerationStats]:
        """Decode `seq` with whatever else is running; yield its text pieces, return its stats.

        Closing the generator (or setting `seq.cancel`) ends the sequence at the next step.
        Time is counted from when it starts decoding, not while it waits for a place.
        """
        outlet: queue.SimpleQueue = queue.SimpleQueue()
        self._submit(seq, outlet)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        first = None
        try:
            while (event := outlet.get()) is not _DONE:
                if isinstance(event, BaseException):  # raised afresh: other readers raise the same error
                    raise type(event)(*event.args) from event
                piece = decoder.decode(event)
                if piece:
                    first = time.perf_counter() - seq.joined if first is None else first
                    yield piece
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        finally:
            seq.closed = True  # read by the decode loop: a reader gone is a cancelled sequence
        seconds = time.perf_counter() - seq.joined if seq.joined else 0.0
        return GenerationStats(len(seq.tokens), seq.reason, seconds, first, self._evidence(seq), len(seq.prompt))

    def _submit(self, seq: Sequence, outlet: queue.SimpleQueue) -> None:
        with self._guard:
            if self._stopping.is_set():
                raise ModelLoadError(CLOSED)
            self._inbox.append(seq)
            self._outlets[seq] = outlet
            if self._driver is None:
                self._driver = threading.Thread(target=self._drive, name="llamacpp-batch", daemon=True)
                self._driver.start()

    def _arrivals(self) -> list[Sequence]:
        with self._guard:
            if self._stopping.is_set():
                return []
            new, self._inbox = self._inbox, []
        return new

    def _drive(self) -> None:
        """Decode until nothing waits; then the thread ends (the next call starts another)."""
        while True:
            with self._guard:
                if not self._inbox:
                    self._driver = None
                    return
            with self._lock:
                if self._stopping.is_set():  # checked with the lock held: the model may be freed by now
                    break
                try:
                    for seq, token in self._decode([], self.parallel, self._arrivals):
                        self._deliver(seq, self._piece(token) if token is not None else _DONE)
                except Exception as error:  # every reader learns of it; the loop's sequences are freed
                    log.exception("the batched decode loop failed")
                    self._fail_all(error)
        with self._guard:
            self._driver = None
        self._fail_all(ModelLoadError(CLOSED))

    def _deliver(self, seq: Sequence, event) -> None:
        if event is _DONE:
            with self._guard:
                outlet = self._outlets.pop(seq)
        else:
            outlet = self._outlets[seq]
        outlet.put(event)

    def _fail_all(self, error: Exception) -> None:
        with self._guard:
            outlets, self._outlets, self._inbox = self._outlets, {}, []
        for outlet in outlets.values():
            outlet.put(error)
