"""Concurrent `LlamaCppBackend.stream` calls folded into one continuous-batching decode (`ChatBatcher`).

Every test runs the real default model. Which calls shared a decode step is read from the
width of each `llama_decode` step (`_step`), so "decoded together" is observed, not timed.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time

import pytest

from assistant.core.config import ModelConfig
from assistant.core.errors import ModelLoadError
from assistant.models import registry
from assistant.models.backend import GenerationOptions

pytestmark = pytest.mark.slow

QUESTIONS = [[{"role": "user", "content": q}] for q in
             ("What is 17 + 25?", "Name a planet.", "Who wrote Hamlet?", "What is the capital of Peru?",
              "How many legs has a spider?")]
OPTS = GenerationOptions(max_new_tokens=24)


def _backend(parallel: int):
    if not registry.llama_cpp_installed():
        pytest.skip("llama-cpp-python is not installed (`pip install llama-cpp-python` or `make install`)")
    from assistant.models.llamacpp import LlamaCppBackend

    return LlamaCppBackend(ModelConfig(threads=1, parallel=parallel))


@pytest.fixture(scope="module")
def batching():
    backend = _backend(16)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def serial():
    backend = _backend(1)
    yield backend
    backend.close()


@pytest.fixture
def widths(batching, serial, monkeypatch):
    """How many sequences each decode step evaluated, on either backend."""
    seen: list[int] = []
    for backend in (batching, serial):
        step = backend._step
        monkeypatch.setattr(backend, "_step", lambda running, step=step: seen.append(len(running)) or step(running))
    return seen


def _in_threads(backend, questions, options=OPTS):
    results = [None] * len(questions)

    def ask(i):
        results[i] = backend.stream(questions[i], options).drain()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def test_the_backend_declares_how_many_it_decodes_at_once(batching, serial):
    assert (batching.capabilities.max_concurrency, serial.capabilities.max_concurrency) == (16, 1)


def test_a_stream_that_starts_while_another_decodes_joins_its_steps(batching, widths):
    """Read in one thread: with a lock per call the second would wait for the first forever."""
    first = batching.stream(QUESTIONS[0], OPTS)
    text = next(first)
    second = batching.stream(QUESTIONS[1], OPTS)
    text2 = next(second)
    for piece in first:
        text += piece
    rest, stats2 = second.drain()
    assert 2 in widths, "the two streams never shared a decode step"
    assert text.strip() and (text2 + rest).strip() and 0 < stats2.tokens <= OPTS.max_new_tokens


def test_many_threads_all_get_answers(batching, widths):
    results = _in_threads(batching, QUESTIONS)
    assert all(text.strip() and stats.finish_reason in ("stop", "length") for text, stats in results)
    assert max(widths) > 1


def test_a_stream_alone_is_unchanged_by_batching(batching, serial):
    """Alone, a call decodes as one sequence: the greedy answer the maps were fitted on."""
    alone = [batching.stream(q, OPTS).drain()[0] for q in QUESTIONS[:3]]
    assert alone == [serial.stream(q, OPTS).drain()[0] for q in QUESTIONS[:3]]


def test_parallel_one_answers_in_turn_exactly_as_alone(serial, widths):
    """A request that waited while another decoded starts as a request alone does (the prefix made for it)."""
    alone = [serial.stream(q, OPTS).drain()[0] for q in QUESTIONS[:3]]
    widths.clear()
    for i, j in itertools.permutations(range(3), 2):
        first = serial.stream(QUESTIONS[i], OPTS)
        next(first)
        second = serial.stream(QUESTIONS[j], OPTS)  # handed in while the first decodes; it waits
        waited = next(second) + "".join(second)
        first.drain()
        assert waited == alone[j], (i, j)
    together = [text for text, _ in _in_threads(serial, QUESTIONS[:3])]
    assert together == alone and set(widths) == {1}


def test_closing_one_stream_leaves_the_other_running(batching, widths):
    first = batching.stream(QUESTIONS[0], GenerationOptions(max_new_tokens=200))
    next(first)
    second = batching.stream(QUESTIONS[1], OPTS)
    next(second)
    first.close()  # the reader leaves: its sequence ends at the next step
    text, stats = second.drain()
    assert stats.finish_reason in ("stop", "length") and 2 in widths
    alone = batching.stream(QUESTIONS[1], OPTS).drain()
    assert alone[1].tokens > 0  # the abandoned sequence freed its place and cache


def test_cancel_ends_a_stream_that_is_still_waiting(serial):
    cancel = threading.Event()
    first = serial.stream(QUESTIONS[0], GenerationOptions(max_new_tokens=200))
    next(first)  # it holds the only place for a while
    waiting = serial.stream(QUESTIONS[1], OPTS, cancel)
    result = {}
    reader = threading.Thread(target=lambda: result.update(out=waiting.drain()))
    reader.start()
    while len(serial._batcher._outlets) < 2:  # handed in, behind the first
        time.sleep(0.01)
    cancel.set()
    first.drain()
    reader.join(timeout=120)
    text, stats = result["out"]
    assert (text, stats.tokens, stats.finish_reason) == ("", 0, "cancelled")


def test_a_decode_failure_reaches_every_reader_and_the_model_recovers(batching, monkeypatch):
    fill, broken = batching._fill_batch, threading.Event()

    def failing(entries):
        if broken.is_set():
            raise RuntimeError("llama_decode failed with status 1")
        return fill(entries)

    monkeypatch.setattr(batching, "_fill_batch", failing)
    readers = [batching.stream(q, GenerationOptions(max_new_tokens=200)) for q in QUESTIONS[:2]]
    for reader in readers:
        next(reader)  # both are decoding
    broken.set()
    for reader in readers:
        with pytest.raises(RuntimeError, match="status 1"):
            reader.drain()
    broken.clear()
    text, stats = batching.stream(QUESTIONS[2], OPTS).drain()
    assert text.strip() and stats.tokens > 0


def test_a_closed_backend_refuses_new_streams():
    backend = _backend(4)
    assert backend.stream(QUESTIONS[0], GenerationOptions(max_new_tokens=2)).drain()[1].tokens == 2
    backend.close()
    with pytest.raises(ModelLoadError, match="closed"):
        backend.stream(QUESTIONS[0], OPTS).drain()
    with pytest.raises(ModelLoadError, match="closed"):
        backend.generate_batch([QUESTIONS[0]], OPTS)


EXIT_MID_ANSWER = """
from assistant.core.config import ModelConfig
from assistant.models.backend import GenerationOptions
from assistant.models.llamacpp import LlamaCppBackend
backend = LlamaCppBackend(ModelConfig(threads=1))
answer = backend.stream([{"role": "user", "content": "Write a long story about a cat."}],
                        GenerationOptions(max_new_tokens=400))
next(answer)
raise SystemExit(130)  # as Ctrl-C or SIGTERM ends `calibrate collect`, its answer half decoded
"""


def test_exiting_mid_answer_frees_the_model_only_after_the_decode_let_go():
    """The decode runs in its own thread; freeing the model under it at exit crashed the process (8 of 8)."""
    pytest.importorskip("llama_cpp")
    done = subprocess.run([sys.executable, "-c", EXIT_MID_ANSWER], capture_output=True, text=True, timeout=120)
    assert done.returncode == 130, done.stderr[-2000:]
