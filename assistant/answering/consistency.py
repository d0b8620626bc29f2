"""Self-consistency: how often k sampled answers to the same question agree with the answer given.

The answer shown is decoded greedily; `sample_answers` draws k more at `SAMPLE_TEMPERATURE` (first
turn only, no confidence probe), all of a call's questions × k decoded together where the backend
batches (row i samples with seed + i, so no two rows draw alike). `agreement` is the share
of the samples whose answer is the same as the given one (`answer_key`: the same number, the same
option letter, or the same normalised text). A sample with no answer, or "I don't know", disagrees.

It is an optional signal (`Signals.agreement`): k more generations per question cost latency, so the
chat samples only with `--self-consistency K`, and a map uses it only where its fitting records carry it.
What it measured on this machine: docs/calibration.md, "Self-consistency".
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from assistant.answering.answer import Answer, generate
from assistant.answering.parsing import parse_output
from assistant.answering.prompts import Prompt
from assistant.core.normalize import normalize_text, strip_answer_prefix, strip_punctuation
from assistant.models.backend import Backend, GenerationOptions, Message

__all__ = ["SAMPLE_TEMPERATURE", "Samples", "agreement", "answer_key", "sample_answers", "with_agreement"]

SAMPLE_TEMPERATURE = 0.7  # with top-k 40, top-p 0.95, min-p 0.05 (the llama.cpp sampler chain)
_LETTER = re.compile(r"^\(?([A-J])(?:[).:]|\s*$|\s+[-–]\s)")  # "B", "(B)", "B. text", "B - text"; not "A dog"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def answer_key(answer: str) -> tuple[str, object]:
    """What two answers must share to agree: ("number", value) for an answer holding one number,
    ("option", letter) for a multiple-choice letter ("B", "(B)", "B. Mitochondria"), else ("text",
    the SQuAD-normalised text)."""
    text = strip_answer_prefix(answer)
    if letter := _LETTER.match(text):
        return "option", letter.group(1)
    numbers = _NUMBER.findall(text.replace(",", ""))
    if len(numbers) == 1 and len(strip_punctuation(text).split()) <= 4:  # "132", "132 apples", "$4.50"
        return "number", float(numbers[0])
    return "text", normalize_text(text)


def agreement(answer: str | None, samples: list[str | None]) -> float | None:
    """Share of `samples` that give the same answer as `answer`; None without an answer or samples."""
    if answer is None or not samples:
        return None
    key = answer_key(answer)
    return sum(s is not None and answer_key(s) == key for s in samples) / len(samples)


@dataclass(frozen=True)
class Samples:
    answers: list[list[str | None]]  # per conversation, its k sampled answers (None: none given)
    tokens: int  # generated over every sample
    seconds: float  # wall time of the sampling call


def sample_answers(backend: Backend, prompt: Prompt, conversations: list[list[Message]], k: int,
                   options: GenerationOptions, cancel: threading.Event | None = None) -> Samples:
    """k sampled answers to each conversation (the prompt's messages for a question), decoded together:
    as concurrent streams that the backend's batcher decodes as one batch, beside whatever else it is
    answering (`capabilities.max_concurrency` > 1, e.g. llama.cpp), else as one `generate_batch`, else
    one after another."""
    if k < 1:
        raise ValueError(f"self-consistency needs at least 1 sample, not {k}")
    sampling = replace(options, temperature=SAMPLE_TEMPERATURE, probe=None, stop=options.stop or prompt.stop)
    rows = [messages for messages in conversations for _ in range(k)]
    start = time.perf_counter()
    if backend.capabilities.max_concurrency > 1 and len(rows) > 1:
        with ThreadPoolExecutor(min(len(rows), backend.capabilities.max_concurrency)) as pool:
            outputs = list(pool.map(lambda i: backend.stream(rows[i], sampling.for_row(i), cancel).drain(),
                                    range(len(rows))))
    else:
        outputs = generate(backend, rows, sampling)
    seconds = time.perf_counter() - start
    parsed = [parse_output(text) for text, _ in outputs]
    answers = [None if p.not_attempted else p.answer for p in parsed]
    return Samples([answers[i * k:(i + 1) * k] for i in range(len(conversations))],
                   sum(stats.tokens for _, stats in outputs), seconds)


def with_agreement(backend: Backend, prompt: Prompt, answer: Answer, messages: list[Message], k: int,
                   options: GenerationOptions, cancel: threading.Event | None = None) -> Answer:
    """`answer` with its `agreement` over k samples of the same conversation (`messages`); an answer
    that gives nothing to agree with ("I don't know", none) is returned as it is, with no sampling, and
    so is one whose generation was stopped (`cancel`): cut-short samples would read as disagreeing."""
    if k < 1 or answer.parsed.answer is None or answer.parsed.not_attempted or _stopped(cancel):
        return answer
    drawn = sample_answers(backend, prompt, [messages], k, options, cancel)
    return answer if _stopped(cancel) else replace(answer, agreement=agreement(answer.parsed.answer, drawn.answers[0]))


def _stopped(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()
