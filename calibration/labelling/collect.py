"""Run a model over labelled questions, grade every answer, append one record per question.

Used by `calibrate collect` and `calibrate eval`. The records file is append-only:
each record is one line written with a single `write` and fsynced, so a kill at any
moment loses at most the line being written. On start, a torn last line (no
trailing newline) is cut off, and ids already present are skipped, so re-running
the same command finishes the job with no record lost or duplicated. With
`concurrency` > 1 (`calibrate collect --concurrency N`, for a model server) N worker threads
answer at once, but only the calling thread writes: each record is appended as its answer
finishes, so the promise is the same, and the answers still in flight at a kill are asked
again on the next run. An exclusive lock on the file keeps two runs from appending to it at once, and a
file that already holds another (model, prompt) pair's records is refused,
since fitting refuses to mix them anyway.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from assistant.answering.answer import Answer, answer_batch, answer_many
from assistant.answering.consistency import with_agreement
from assistant.answering.prompts import Prompt
from assistant.core.errors import DataError, InputError
from assistant.core.files import append_private
from assistant.core.jsonl import read_jsonl
from assistant.core.record import Record
from assistant.models.backend import Backend, GenerationOptions
from calibration.labelling.grading import grade

__all__ = ["CollectSummary", "collect", "existing_ids", "make_record"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectSummary:
    written: int  # records appended by this run
    skipped: int  # questions whose id was already in the records file
    total: int  # records in the file after this run
    seconds: float  # wall time of this run
    failed: int = 0  # questions the backend refused (e.g. longer than the context); retried next run


def existing_ids(path: Path) -> set[str]:
    """Ids already in a records file, after cutting off a torn last line left by a kill."""
    return _existing(Path(path))[0]


def _existing(path: Path) -> tuple[set[str], set[tuple]]:
    """Ids and (model, prompt) pairs in a records file, after cutting off a torn last line."""
    if not path.exists():
        return set(), set()
    _cut_torn_tail(path)
    ids, pairs = set(), set()
    for rec in read_jsonl(path, on_error="skip"):
        if "id" in rec:
            ids.add(rec["id"])
            pairs.add((rec.get("model"), rec.get("prompt")))
    return ids, pairs


def _lock(f, path: Path) -> None:
    """Hold an exclusive lock on the open records file (released when the process ends, even by kill -9)."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock, as before
        return
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        raise DataError(f"{path}: another `calibrate collect` is appending to this file; wait for it "
                        "to finish or pass another --out") from err


def _cut_torn_tail(path: Path) -> None:
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if size == 0:
            return
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        # Walk back to the last newline; everything after it is a half-written record.
        pos = size - 1
        while pos > 0:
            step = min(65536, pos)
            f.seek(pos - step)
            chunk = f.read(step)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                pos = pos - step + idx + 1
                break
            pos -= step
        log.warning("%s: cut off a half-written last record (%d bytes) left by an interrupted run",
                    path, size - pos)
        f.truncate(pos)
        f.flush()
        os.fsync(f.fileno())


def make_record(item: dict, answer: Answer, *, model: str, prompt: str) -> Record:
    """The graded record of one item's answer."""
    parsed = answer.parsed
    return Record(
        id=item["id"], domain=item["domain"], question=item["question"], gold=item["answer"],
        answer=parsed.answer, raw_confidence=parsed.raw_confidence,
        correct=None if parsed.not_attempted else grade(parsed.answer, item),
        parse_ok=parsed.answer is not None and parsed.raw_confidence is not None,
        model=model, prompt=prompt, tokens=answer.stats.tokens, seconds=round(answer.stats.seconds, 3),
        issues=answer.issues, signals=answer.signals.to_dict(),
        source=item.get("source"), license=item.get("license"),  # kept when the text is stripped
    )


def _batches(items: Iterable[dict], size: int) -> Iterator[list[dict]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _todo(items: Iterable[dict], done: set[str], limit: int | None) -> tuple[list[dict], int]:
    """The items still to answer (first occurrence of each id not in `done`, at most `limit`), and how many
    were skipped because their id is in `done`."""
    todo, skipped, seen = [], 0, set()
    for item in items:
        if limit is not None and len(todo) >= limit:
            break
        if item["id"] in done:
            skipped += 1
        elif item["id"] in seen:
            log.warning("duplicate id %r in the data: answered once", item["id"])
        else:
            seen.add(item["id"])
            todo.append(item)
    return todo, skipped


def collect(
    items: Iterable[dict],
    out: Path,
    backend: Backend,
    prompt: Prompt,
    *,
    options: GenerationOptions | None = None,
    batch_size: int = 1,
    concurrency: int = 1,
    limit: int | None = None,
    progress: bool = True,
    self_consistency: int = 0,
) -> CollectSummary:
    """Answer and grade every item whose id is not yet in `out`; append records to `out`.

    Items whose id is already in `out` are skipped, duplicate ids in `items` are
    answered once, and at most `limit` new questions are answered. A question the
    backend refuses with InputError (too long for the context) is logged,
    counted in `failed` and left for the next run. `concurrency` > 1 answers that
    many questions at once from worker threads (the backend's `stream` must allow
    it: `max_concurrency`); records are then written in the order answers finish.
    `self_consistency` > 0 also samples that many answers per question and records how often they
    agree with the answer (`Signals.agreement`, assistant.answering.consistency).
    Raises DataError when `out` holds records of another model or prompt, another
    run is writing to it, or both `batch_size` and `concurrency` are over 1.
    """
    for name, value in (("--batch-size", batch_size), ("--concurrency", concurrency)):
        if value < 1:
            raise DataError(f"{name} must be at least 1, not {value}")
    if batch_size > 1 and concurrency > 1:
        raise DataError("--batch-size and --concurrency are both over 1: batch on a local model, or send "
                        "concurrent requests to a server, not both")
    options = options or GenerationOptions()  # answer.py adds the prompt's probe
    out = Path(out)
    start = time.perf_counter()
    with append_private(out) as f:
        _lock(f, out)
        done, pairs = _existing(out)
        others = sorted(map(str, pairs - {(backend.model_id, prompt.id)}))
        if others:
            raise DataError(f"{out} already holds records of other (model, prompt) pairs {', '.join(others)}, "
                            f"not of {backend.model_id} / {prompt.id}: pass another --out")
        todo, skipped = _todo(items, done, limit)
        answers = (_pooled(backend, prompt, todo, concurrency, options) if concurrency > 1
                   else _answers(backend, prompt, todo, batch_size, options, continuous=not self_consistency))
        bar = _progress_bar(len(todo), progress)
        written = failed = 0
        try:
            for item, result in answers:  # only this thread writes to `f`
                bar.update(1)
                if result is None:
                    failed += 1
                    continue
                result = with_agreement(backend, prompt, result, prompt.messages(item["question"]), self_consistency,
                                        options)
                record = make_record(item, result, model=backend.model_id, prompt=prompt.id)
                f.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
                f.flush()
                os.fsync(f.fileno())
                written += 1
        finally:
            bar.close()
    return CollectSummary(written=written, skipped=skipped, total=len(done) + written,
                          seconds=time.perf_counter() - start, failed=failed)


def _answers(backend, prompt: Prompt, items: list[dict], batch_size: int, options,
             continuous: bool = True) -> Iterator[tuple[dict, Answer | None]]:
    """(item, its Answer or None when refused) for every item, each as soon as it is answered.

    A backend with continuous batching (`generate_many`) keeps `batch_size` questions decoding at once across the
    whole run (a finished answer's place goes to the next question); others answer in
    batches of `batch_size`. One-turn prompts only: a follow-up turn needs its first answer.
    Not `continuous` (self-consistency samples between answers, and the run would hold the model
    while they wait), every backend answers in batches.
    """
    if continuous and batch_size > 1 and not prompt.followup and backend.capabilities.continuous_batching:
        answered = 0
        try:
            for index, answer in answer_many(backend, prompt, [item["question"] for item in items], options,
                                             parallel=batch_size):
                answered += 1
                yield items[index], answer
            return
        except InputError:  # a prompt too long: raised before anything is generated
            if answered:
                raise
        # find the refused item(s) batch by batch
    for batch in _batches(items, batch_size):
        yield from zip(batch, _answer_safely(backend, prompt, batch, options))


def _pooled(backend, prompt: Prompt, items: list[dict], concurrency: int,
            options) -> Iterator[tuple[dict, Answer | None]]:
    """(item, its Answer or None when refused) for every item in the order they finish, with at most
    `concurrency` answering at once, each in its own worker thread.

    The workers only answer; the caller writes. An error other than a refusal stops the workers
    taking new questions and is raised here once the answers finished before it have been yielded.
    The workers are daemon threads, so a Ctrl-C or kill does not wait for the requests in flight.
    """
    work: queue.SimpleQueue = queue.SimpleQueue()
    for index in range(len(items)):
        work.put(index)
    results: queue.SimpleQueue = queue.SimpleQueue()
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                index = work.get_nowait()
            except queue.Empty:
                return
            try:
                results.put((index, _answer_safely(backend, prompt, [items[index]], options)[0], None))
            except BaseException as error:  # handed to the writer, which raises it
                results.put((index, None, error))
                return

    for n in range(min(concurrency, len(items))):
        threading.Thread(target=worker, name=f"collect-{n}", daemon=True).start()
    try:
        for _ in range(len(items)):
            index, answer, error = results.get()
            if error is not None:
                raise error
            yield items[index], answer
    finally:
        stop.set()


def _answer_safely(backend, prompt: Prompt, batch: list[dict], options) -> list:
    """`answer_batch`, but an item the backend refuses (InputError) gives None instead of stopping the run."""
    try:
        return answer_batch(backend, prompt, [item["question"] for item in batch], options)
    except InputError as err:
        if len(batch) > 1:  # find the offending item(s) one by one
            return [r for item in batch for r in _answer_safely(backend, prompt, [item], options)]
        log.warning("question %r skipped: %s", batch[0]["id"], err)
        return [None]


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="q", desc="collect", dynamic_ncols=True,
                bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| {rate_fmt} ETA {remaining}")
