"""The small pieces `LlamaCppBackend` needs around llama.cpp's C API: loading, one decoding sequence,
token pieces, samplers, freeing, llama.cpp's own log lines routed to Python logging, and the cores
(`available_cores`, `shared_threads`; `llamacpp_peers` shares them between processes)."""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from assistant.core.errors import ModelLoadError
from assistant.models.backend import GenerationOptions, StopText

__all__ = ["LLAMA_ERRORS", "PROBE_CELLS", "SHARE_CPU_ENV", "Sequence", "available_cores", "chat_formatter", "common_length",
           "free_when_idle", "load_model", "log_sum_exp", "new_sampler", "number_tokens", "route_llama_logs",
           "shared_threads", "token_piece"]

log = logging.getLogger("assistant.models.llamacpp")

PROBE_CELLS = 16  # cache cells kept free after each reply for GenerationOptions.probe
SHARE_CPU_ENV = "CALIBRATED_CHAT_SHARE_CPU"  # 1: use half the cores, leaving the rest to another llama.cpp process


@dataclass(eq=False)
class Sequence:
    """One conversation being decoded: its cache sequence, sampler and progress."""

    index: int  # position in the caller's list
    prompt: list[int]
    budget: int  # new tokens allowed
    options: GenerationOptions = GenerationOptions()
    cancel: threading.Event | None = None  # set: stop at the next step, reason "cancelled"
    closed: bool = False  # its reader stopped reading: stop as if cancelled
    shared: int | None = None  # prompt tokens read from the prefix sequence's cache (None: not decided yet)
    seq_id: int = -1
    sampler: object = None
    tokens: list[int] = field(default_factory=list)
    pending: list[int] = field(default_factory=list)  # tokens to evaluate in the next step
    reason: str = "length"  # why it ended: "stop" (end of text), "length" (budget) or "cancelled"
    joined: float = 0.0  # perf_counter() when it started decoding
    logprobs: list[float] = field(default_factory=list)  # log p of each token in `tokens`
    numbers: dict = field(default_factory=dict)  # position in `tokens` -> {number token: p}
    probe: tuple | None = None  # what GenerationOptions.probe read, see TokenEvidence
    stop: StopText = field(init=False)  # finds the options' stop texts in the output

    def __post_init__(self):
        self.stop = StopText(self.options.stop)

    @property
    def cells(self) -> int:  # cache cells this sequence may come to hold beyond the shared prefix
        return len(self.prompt) - (self.shared or 0) + self.budget + PROBE_CELLS

    @property
    def cancelled(self) -> bool:
        return self.closed or (self.cancel is not None and self.cancel.is_set())


def load_model(c, path: str):
    """Load a .gguf file on the CPU; ModelLoadError naming llama.cpp's first error when it cannot."""
    params = c.llama_model_default_params()
    params.n_gpu_layers = 0
    LLAMA_ERRORS.clear()
    try:
        model = c.llama_model_load_from_file(path.encode("utf-8"), params)
    except MemoryError as error:
        raise ModelLoadError(f"not enough memory to load {path}") from error
    if not model:
        why = f": {LLAMA_ERRORS[0]}" if LLAMA_ERRORS else ""  # the first error names the cause
        raise ModelLoadError(
            f"llama.cpp could not load {path}{why} (is it a complete, uncorrupted .gguf file, "
            "and is there memory for it?)"
        )
    return model


def chat_formatter(c, model, vocab, location, override: str | None = None):
    """llama-cpp-python's Jinja2 formatter over `override`, else the chat template stored in the GGUF."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = override.encode("utf-8") if override else c.llama_model_chat_template(model, None)
    if not template:
        raise ModelLoadError(f"{location} holds no chat template: use an instruct/chat GGUF, or give a base "
                             "model one with --chat-template FILE")

    def text(token: int) -> str:
        return c.llama_vocab_get_text(vocab, token).decode("utf-8") if token != -1 else ""

    return Jinja2ChatFormatter(
        template=template.decode("utf-8"),
        eos_token=text(c.llama_vocab_eos(vocab)),
        bos_token=text(c.llama_vocab_bos(vocab)),
        add_generation_prompt=True,
    )


def token_piece(c, vocab, token: int) -> bytes:
    """The bytes of one token's text (a piece may end inside a UTF-8 character)."""
    buffer = ctypes.create_string_buffer(64)
    n = c.llama_token_to_piece(vocab, token, buffer, 64, 0, False)
    if n < 0:  # a longer piece: -n bytes
        buffer = ctypes.create_string_buffer(-n)
        n = c.llama_token_to_piece(vocab, token, buffer, -n, 0, False)
    return buffer.raw[:n]


def number_tokens(n_vocab: int, piece) -> tuple[np.ndarray, list[str]]:
    """Ids and texts of the vocabulary's number tokens (1 to 3 ASCII digits, nothing else)."""
    ids = [t for t in range(n_vocab) if 1 <= len(p := piece(t)) <= 3 and p.isdigit()]
    return np.array(ids, dtype=np.int64), [piece(t).decode("ascii") for t in ids]


def new_sampler(c, options: GenerationOptions):
    """A seeded C sampler chain, or None for greedy decoding (the backend then takes the argmax)."""
    if options.temperature <= 0:
        return None
    chain = c.llama_sampler_chain_init(c.llama_sampler_chain_default_params())
    for stage in (
        c.llama_sampler_init_top_k(40),
        c.llama_sampler_init_top_p(0.95, 1),
        c.llama_sampler_init_min_p(0.05, 1),
        c.llama_sampler_init_temp(options.temperature),
        c.llama_sampler_init_dist(options.seed),
    ):
        c.llama_sampler_chain_add(chain, stage)
    return chain


def log_sum_exp(row: np.ndarray) -> float:
    """log Σ exp(row), the softmax normaliser of a logits row, computed without overflow."""
    top = float(row.max())
    return top + float(np.log(np.exp(row - top).sum()))


def free_when_idle(stopping: threading.Event, lock: threading.Lock, c, batch, ctx, model) -> None:
    """Free the model's C objects once no decode uses them: `stopping` refuses new decodes, the lock
    waits for the one running (its readers gone, it ends within a step). At interpreter exit a decode
    still running after 30 s is left to the end of the process: freeing under it would crash it."""
    stopping.set()
    if not lock.acquire(timeout=30):
        log.warning("the llama.cpp model was not freed: a decode still runs")
        return
    try:
        c.llama_batch_free(batch)
        c.llama_free(ctx)
        c.llama_model_free(model)
    finally:
        lock.release()


def common_length(a: list[int], b: list[int], limit: int) -> int:
    """Length of the common start of `a` and `b`, at most `limit`."""
    n = 0
    for x, y in zip(a[:limit], b[:limit]):
        if x != y:
            break
        n += 1
    return n


_log_callback = None  # kept alive: llama.cpp holds a pointer to it
LLAMA_ERRORS: deque = deque(maxlen=8)  # llama.cpp's latest error lines, to explain a failed load
_GGML_LOG_LEVEL_ERROR = 4


def route_llama_logs(c) -> None:
    """Send llama.cpp's own log lines to this module's logger at DEBUG (errors also to `LLAMA_ERRORS`)."""
    global _log_callback
    if _log_callback is None:

        def forward(level, text, user_data):
            line = text.decode("utf-8", "replace").strip()
            if level == _GGML_LOG_LEVEL_ERROR and line:
                LLAMA_ERRORS.append(line)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s", line)

        _log_callback = c.llama_log_callback(forward)
        c.llama_log_set(_log_callback, ctypes.c_void_p(0))


def shared_threads(environ: Mapping[str, str] = os.environ) -> int | None:
    """Half the cores when CALIBRATED_CHAT_SHARE_CPU=1, else None (the backend takes its share among
    the llama.cpp processes it finds, `llamacpp_peers`).

    llama-cpp-python's wheels build ggml with OpenMP (libgomp): between operations every thread
    waits at a barrier, and libgomp spins there before it sleeps. Alone, that is fastest. Two
    processes that each use every core spin while the thread they wait for is descheduled: on
    2 cores each ran at 0.30 of its speed alone (bench/SHARE.md). Making the threads sleep at once
    (OMP_WAIT_POLICY=PASSIVE) kept pairs fast but made a process alone 2.8 times slower, so it is
    not the default. Half the cores each never oversubscribes. The backend finds the processes it
    shares the machine with by itself; this fixed half is for processes that cannot see each
    other's notes (other users, other containers on the same cores).
    """
    if environ.get(SHARE_CPU_ENV, "").strip().lower() not in ("1", "true", "yes"):
        return None
    return max(1, available_cores() // 2)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which taskset and cgroup cpusets narrow), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1
