"""The one answering path: a question through the prompt and the model to a parsed answer with its signals.

The chat (`pipeline.Assistant`), `python -m assistant ask` and `calibrate collect` all answer
here, so a one-turn and a two-turn prompt behave the same everywhere:

- `stream_answer` streams the first turn's text, then holds the `Answer` (one question, live);
- `answer_batch` answers several questions at once (batched when the backend can);
- `answer_many` keeps `parallel` questions decoding at once over a whole run (one-turn prompts).

A two-turn prompt asks for the answer first, then, in a second generation that sees it,
for the confidence alone; an answer that is missing or "I don't know" gets no second turn.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from assistant.answering.evidence import compute_signals
from assistant.answering.parsing import ParsedOutput, parse_output
from assistant.answering.prompts import Prompt
from assistant.core.signals import Signals
from assistant.models.backend import Backend, GenerationOptions, GenerationStats, Message, Stream

__all__ = ["Answer", "answer_batch", "answer_many", "combine_stats", "conversation", "generate", "merge_followup",
           "stream_answer", "with_prompt"]

FOLLOWUP_MARK = "\n\n[confidence turn]\n"  # between the two turns in `Answer.raw_output`


@dataclass(frozen=True)
class Answer:
    parsed: ParsedOutput  # answer, stated confidence and reasoning, read from the output
    stats: GenerationStats  # of both turns together
    raw_output: str  # the model's whole output (both turns)
    parse_ms: float = 0.0  # time spent parsing
    agreement: float | None = None  # share of sampled answers that agree (assistant.answering.consistency)

    @property
    def issues(self) -> tuple[str, ...]:
        """Parsing issues, plus `truncated` when the model hit the length limit."""
        truncated = ("truncated",) if self.stats.finish_reason == "length" else ()
        return tuple(dict.fromkeys((*self.parsed.issues, *truncated)))

    @property
    def signals(self) -> Signals:
        return replace(compute_signals(self.parsed, self.stats.evidence), agreement=self.agreement)


def merge_followup(first: ParsedOutput, confidence_text: str) -> ParsedOutput:
    """Combine a two-turn prompt's answer (first turn) with its confidence (second turn)."""
    second = parse_output(confidence_text)
    issues = [i for i in first.issues if i != "no_confidence"]
    issues += [i for i in second.issues if i not in ("no_answer", "not_attempted")]
    return ParsedOutput(
        reasoning=first.reasoning, final=first.final, answer=first.answer,
        raw_confidence=second.raw_confidence, not_attempted=first.not_attempted,
        issues=tuple(dict.fromkeys(issues)),
    )


def combine_stats(first: GenerationStats, second: GenerationStats) -> GenerationStats:
    """Stats of two generations for one reply (a two-turn prompt)."""
    return GenerationStats(
        tokens=first.tokens + second.tokens,
        finish_reason=second.finish_reason if second.finish_reason != "stop" else first.finish_reason,
        seconds=first.seconds + second.seconds,
        first_token_seconds=first.first_token_seconds,
        # The answer's tokens. Their number distributions go: the stated confidence was written in the
        # second turn, and a number of the first (the answer "90") must not be read as its digits.
        evidence=replace(first.evidence, numbers={}) if first.evidence is not None else None,
        prompt_tokens=(None if first.prompt_tokens is None or second.prompt_tokens is None
                       else first.prompt_tokens + second.prompt_tokens),  # both turns read a prompt
    )


def with_prompt(prompt: Prompt, options: GenerationOptions) -> GenerationOptions:
    """`options` with the prompt's probe (`Prompt.probe`) unless they name one, and its stop texts. Both
    change the answer and its signals, so they are set here, on the one answering path, for the chat and
    collect alike."""
    probe = options.probe if options.probe is not None else prompt.probe
    return replace(options, probe=probe, stop=options.stop or prompt.stop)


def _needs_followup(prompt: Prompt, parsed: ParsedOutput) -> bool:
    return prompt.followup and parsed.answer is not None and not parsed.not_attempted


def _first_turn(text: str, stats: GenerationStats) -> Answer:
    start = time.perf_counter()
    parsed = parse_output(text)
    return Answer(parsed, stats, text, (time.perf_counter() - start) * 1000)


def _second_turn(first: Answer, text: str, stats: GenerationStats) -> Answer:
    start = time.perf_counter()
    parsed = merge_followup(first.parsed, text)
    parse_ms = first.parse_ms + (time.perf_counter() - start) * 1000
    return Answer(parsed, combine_stats(first.stats, stats), first.raw_output + FOLLOWUP_MARK + text, parse_ms)


def conversation(prompt: Prompt, question: str, history: list[Message] | None) -> list[Message]:
    """The prompt's messages, with earlier user and assistant turns between the system message and the question."""
    messages = prompt.messages(question)
    if history:
        turns = [m for m in history if m.get("role") in ("user", "assistant")]
        messages = messages[:-1] + turns + messages[-1:]
    return messages


def stream_answer(
    backend: Backend,
    prompt: Prompt,
    question: str,
    options: GenerationOptions,
    *,
    history: list[Message] | None = None,
    cancel: threading.Event | None = None,
) -> Stream[Answer]:
    """The first turn's text piece by piece while the model writes; then `result` is the `Answer`.

    `history` (earlier user and assistant turns) goes between the system message and the question.
    """
    options = with_prompt(prompt, options)

    def pieces():
        first_turn = backend.stream(conversation(prompt, question, history), options, cancel)
        yield from first_turn
        first = _first_turn(*first_turn.drain())
        if not _needs_followup(prompt, first.parsed):
            return first
        followup = prompt.followup_messages(question, first.parsed.answer)
        return _second_turn(first, *backend.stream(followup, options, cancel).drain())
    return Stream(pieces())


def generate(backend: Backend, conversations: list, options: GenerationOptions) -> list[tuple[str, GenerationStats]]:
    """(text, stats) of each conversation, in order: one batch when the backend batches, else one by one.
    Sampled (temperature > 0), conversation i draws with seed + i, as a batch's rows do."""
    if len(conversations) > 1 and backend.capabilities.batching:
        return backend.generate_batch(conversations, options)
    return [backend.stream(messages, options.for_row(i)).drain() for i, messages in enumerate(conversations)]


def answer_batch(backend: Backend, prompt: Prompt, questions: list[str], options: GenerationOptions) -> list[Answer]:
    """The `Answer` to each question, in order (each turn generated as one batch when the backend can)."""
    options = with_prompt(prompt, options)
    outputs = generate(backend, [prompt.messages(q) for q in questions], options)
    answers = [_first_turn(text, stats) for text, stats in outputs]
    todo = [i for i, a in enumerate(answers) if _needs_followup(prompt, a.parsed)]
    followups = generate(backend, [prompt.followup_messages(questions[i], answers[i].parsed.answer) for i in todo],
                          options)
    for i, (text, stats) in zip(todo, followups):
        answers[i] = _second_turn(answers[i], text, stats)
    return answers


def answer_many(backend: Backend, prompt: Prompt, questions: list[str], options: GenerationOptions, *,
                parallel: int) -> Iterator[tuple[int, Answer]]:
    """(index, Answer) for every question as soon as it is answered, `parallel` decoding at once.

    Needs a backend with `capabilities.continuous_batching` and a one-turn prompt (a second turn needs
    its first answer).
    """
    if prompt.followup:
        raise ValueError(f"prompt {prompt.id!r} has a follow-up turn; answer it with answer_batch")
    if not backend.capabilities.continuous_batching:
        raise ValueError(f"{type(backend).__name__} has no continuous batching (generate_many); "
                         "answer with answer_batch")
    conversations = [prompt.messages(q) for q in questions]
    for index, text, stats in backend.generate_many(conversations, with_prompt(prompt, options), parallel=parallel):
        yield index, _first_turn(text, stats)
