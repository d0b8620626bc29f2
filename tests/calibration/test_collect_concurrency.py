"""calibration.labelling.collect with `concurrency` > 1: a bounded pool of worker threads, one writer (scripted backends).

The real-server counterpart (`calibrate collect --concurrency 4` against llama_cpp.server, killed and
resumed) is tests/calibration/test_collect_server.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from assistant.core.errors import DataError, InputError
from assistant.models.backend import Capabilities, GenerationOptions, GenerationStats
from assistant.models.fake import FakeBackend
from assistant.models.openai_http import ServerError
from calibration.cli import build_parser
from calibration.cli.commands import _parallelism
from calibration.labelling.collect import collect
from tests.conftest import read_lines

OUTPUT = "It is 65. <answer>65</answer> <confidence>80%</confidence>"


def items(n: int) -> list[dict]:
    return [{"id": f"q{i}", "domain": "math", "question": f"Question number {i}?", "answer": "65",
             "aliases": [], "answer_type": "number"} for i in range(n)]


@dataclass
class CountingBackend(FakeBackend):
    """Answers from several threads at once, counting how many `stream` calls run together.

    The first `together` calls wait at a barrier until that many are running, so a pool that ran
    fewer at once fails (BrokenBarrierError after 10 s) instead of passing by luck of timing.
    `fail_on` raises ServerError (a server gone) for that question; `refuse_on` raises InputError.
    """

    together: int = 1
    fail_on: str | None = None
    refuse_on: str | None = None
    in_flight: int = 0
    most: int = 0
    calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    barrier: threading.Barrier | None = None
    writer_threads: set = field(default_factory=set)

    def pieces(self, messages, options=GenerationOptions(), cancel=None):
        question = messages[-1]["content"]
        with self.lock:
            self.in_flight += 1
            self.calls += 1
            self.most = max(self.most, self.in_flight)
            first = self.calls <= self.together
        try:
            if first and self.barrier is not None:
                self.barrier.wait(timeout=10)
            if self.fail_on and self.fail_on in question:
                raise ServerError("the model server broke off the reply")
            if self.refuse_on and self.refuse_on in question:
                raise InputError("the prompt is 5000 tokens, more than the 4096-token context")
            yield OUTPUT
        finally:
            with self.lock:
                self.in_flight -= 1
        return GenerationStats(tokens=7, finish_reason="stop")


def counting(n: int, **changes) -> CountingBackend:
    backend = CountingBackend(together=n, **changes)
    backend.barrier = threading.Barrier(n)
    return backend


@pytest.mark.parametrize("concurrency, n_items", [(4, 12), (2, 9), (4, 4), (8, 3)])
def test_never_more_than_n_in_flight_and_every_record_written(tmp_path, prompt, concurrency, n_items):
    backend = counting(min(concurrency, n_items))
    out = tmp_path / "r.jsonl"
    summary = collect(items(n_items), out, backend, prompt, concurrency=concurrency, progress=False)
    records = read_lines(out)
    assert backend.most == min(concurrency, n_items)  # the barrier proves that many ran together
    assert sorted(r["id"] for r in records) == sorted(f"q{i}" for i in range(n_items))  # each id once
    assert (summary.written, summary.total, summary.failed) == (n_items, n_items, 0)
    assert all(r["answer"] == "65" and r["correct"] is True for r in records)


def test_pool_resumes_skips_done_ids_and_respects_limit(tmp_path, prompt):
    out = tmp_path / "r.jsonl"
    first = collect(items(10), out, counting(1), prompt, concurrency=4, limit=5, progress=False)
    assert first.written == 5 and {r["id"] for r in read_lines(out)} == {f"q{i}" for i in range(5)}
    with open(out, "a", encoding="utf-8") as f:
        f.write('{"id": "q9", "domain": "ma')  # a torn last line, as a kill mid-write leaves
    second = collect(items(10), out, counting(4), prompt, concurrency=4, progress=False)
    ids = [r["id"] for r in read_lines(out)]
    assert (second.skipped, second.written, second.total) == (5, 5, 10)
    assert sorted(ids) == sorted(f"q{i}" for i in range(10)) and len(ids) == len(set(ids))


def test_only_the_calling_thread_writes(tmp_path, prompt, monkeypatch):
    import calibration.labelling.collect as module

    writers = set()
    real = module.make_record

    def spy(*args, **kwargs):
        writers.add(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "make_record", spy)
    collect(items(8), tmp_path / "r.jsonl", counting(4), prompt, concurrency=4, progress=False)
    assert writers == {threading.current_thread().name}


def test_a_server_error_stops_the_run_keeping_what_finished(tmp_path, prompt):
    out = tmp_path / "r.jsonl"
    backend = CountingBackend(fail_on="number 3?")
    with pytest.raises(ServerError, match="broke off"):
        collect(items(8), out, backend, prompt, concurrency=2, progress=False)
    kept = [r["id"] for r in read_lines(out)]
    assert "q3" not in kept and len(kept) == len(set(kept))
    again = collect(items(8), out, CountingBackend(), prompt, concurrency=2, progress=False)
    ids = [r["id"] for r in read_lines(out)]
    assert again.skipped == len(kept) and sorted(ids) == sorted(f"q{i}" for i in range(8))


def test_a_refused_question_is_counted_and_left_for_the_next_run(tmp_path, prompt):
    out = tmp_path / "r.jsonl"
    summary = collect(items(6), out, CountingBackend(refuse_on="number 2?"), prompt, concurrency=3, progress=False)
    assert (summary.written, summary.failed) == (5, 1) and "q2" not in {r["id"] for r in read_lines(out)}


@pytest.mark.parametrize("batch_size, concurrency, match", [
    (1, 0, "--concurrency must be at least 1, not 0"),
    (1, -2, "--concurrency must be at least 1"),
    (4, 4, "--batch-size and --concurrency are both over 1"),
])
def test_bad_concurrency(tmp_path, prompt, batch_size, concurrency, match):
    with pytest.raises(DataError, match=match):
        collect(items(2), tmp_path / "r.jsonl", FakeBackend(), prompt, batch_size=batch_size,
                concurrency=concurrency, progress=False)


def test_cli_refuses_concurrency_below_one(capsys):
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args(["collect", "--data", "d.jsonl", "--out", "r.jsonl", "--concurrency", "0"])
    assert exit.value.code == 2
    assert "--concurrency: must be at least 1, got 0" in capsys.readouterr().err


@dataclass
class Remote(FakeBackend):
    capabilities: Capabilities = Capabilities(local=False, max_concurrency=8)  # as OpenAICompatBackend declares


@dataclass
class LocalBatching(FakeBackend):  # as LlamaCppBackend: batches, and folds concurrent calls into its batch
    capabilities: Capabilities = Capabilities(local=True, batching=True, continuous_batching=True, max_concurrency=16)


@dataclass
class RemoteBatching(FakeBackend):  # a server whose client can send a batch in one request
    capabilities: Capabilities = Capabilities(local=False, batching=True, max_concurrency=8)


@pytest.mark.parametrize("backend, flags, expected, note", [
    (Remote(), [], (1, 8), ""),  # a server: its max_concurrency
    (Remote(), ["--concurrency", "3"], (1, 3), ""),
    (Remote(), ["--concurrency", "16"], (1, 16), ""),  # the user knows the server; not capped
    (Remote(), ["--batch-size", "4"], (1, 8), "--batch-size is ignored"),
    (FakeBackend(), [], (1, 1), ""),  # a local model: one at a time
    (FakeBackend(), ["--concurrency", "4"], (1, 1), "--concurrency is ignored"),
    (LocalBatching(), [], (1, 1), ""),  # one at a time unless asked: what the shipped maps were collected as
    (LocalBatching(), ["--batch-size", "8"], (8, 1), ""),
    (LocalBatching(), ["--concurrency", "4"], (1, 4), ""),  # four at once through the chat's batching
    (RemoteBatching(), [], (1, 8), ""),  # batching does not make a server local: still its max_concurrency
])
def test_default_concurrency_comes_from_the_backend(capsys, backend, flags, expected, note):
    args = build_parser().parse_args(["collect", "--data", "d.jsonl", "--out", "r.jsonl", *flags])
    assert _parallelism(args, backend) == expected
    err = capsys.readouterr().err
    assert (note in err) if note else err == ""
