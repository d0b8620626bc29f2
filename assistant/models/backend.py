"""The model-backend protocol: what every backend takes (options) and gives (text, stats, token evidence).

A backend turns a list of chat messages into streamed text. One method to
implement (`stream`, returning a `Stream`); what else it can do is declared in its `capabilities`. Heavy imports
(torch, transformers, llama_cpp) live in the implementations, so importing this
module stays cheap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Generator, Generic, Iterator, Literal, Protocol, TypeVar, runtime_checkable

__all__ = [
    "Message",
    "GenerationOptions",
    "GenerationStats",
    "TokenEvidence",
    "Backend",
    "Capabilities",
    "Stream",
    "StopText",
    "THINK_CLOSE",
    "THINK_OPEN",
]

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 256  # hard cap on generated tokens; hitting it marks the reply truncated
    temperature: float = 0.0  # 0 means greedy decoding (reproducible calibration data)
    seed: int = 0  # used only when temperature > 0
    # When the output does not contain this text, evaluate it after the output and read what
    # number the model would write next (TokenEvidence.probe): the prompt's confidence tag opening.
    probe: str | None = None
    # End the output with the token that completes one of these texts, kept in the output (an OpenAI
    # server's own `stop` would drop it): for prompts whose reply is complete once its last tag closes,
    # and for base models that never stop by themselves.
    stop: tuple[str, ...] = ()

    def for_row(self, row: int) -> "GenerationOptions":
        """The options of a batch's row `row`: sampled, each row draws with seed + row, so rows of one
        conversation asked k times (self-consistency) draw k different answers."""
        return replace(self, seed=self.seed + row) if self.temperature > 0 and row else self


THINK_OPEN, THINK_CLOSE = "<think>", "</think>"  # a reasoning trace, as every backend's text marks it


class StopText:
    """Finds GenerationOptions.stop in an output that arrives piece by piece, outside any think block: a
    reasoning model may rehearse the reply's format (and so a stop text) while it thinks."""

    def __init__(self, stop: tuple[str, ...]):
        self.stop = stop
        # enough of the output to hold the start of any stop text or think tag
        self._keep = max(map(len, (*stop, THINK_OPEN, THINK_CLOSE)))
        self._tail = ""
        self._thinking = False

    def completed_by(self, piece: str) -> bool:
        """Whether `piece`, the output's next text, completes one of the stop texts outside a think block."""
        if not self.stop:
            return False
        start = len(self._tail)
        self._tail += piece
        marks = sorted((at, text) for text in (THINK_OPEN, THINK_CLOSE, *self.stop)
                       for at in _ends(self._tail, text, start))  # in order: a piece may close a block, then stop
        found = False
        for _, text in marks:
            if text in (THINK_OPEN, THINK_CLOSE):
                self._thinking = text == THINK_OPEN
            elif not self._thinking:
                found = True
                break
        self._tail = self._tail[-self._keep:]
        return found


def _ends(text: str, sub: str, start: int) -> list[int]:
    """Where each occurrence of `sub` that ends after `start` ends in `text`."""
    ends, at = [], text.find(sub, max(0, start - len(sub) + 1))
    while at >= 0:
        ends.append(at + len(sub))
        at = text.find(sub, at + 1)
    return ends


@dataclass(frozen=True)
class TokenEvidence:
    """What the model's own probabilities say about a generated text (backends that can read them).

    Number tokens are tokens whose text is 1 to 3 ASCII digits; their distributions are the
    probabilities of every number token at that position, so the digits a model *almost* wrote
    (a confidence of 80% vs 90%) can be read back.
    """

    pieces: tuple[str, ...] = ()  # text of each generated token; joined, they are the output
    logprobs: tuple[float, ...] = ()  # natural-log probability of each generated token (temperature 1)
    numbers: dict[int, dict[str, float]] = field(default_factory=dict)  # position -> {number token: p}
    probe: tuple[str, dict[str, float]] | None = None  # (digits written after the probe text, the
    #   {number token: p} distribution of the first), when GenerationOptions.probe was evaluated


@dataclass(frozen=True)
class GenerationStats:
    tokens: int  # new tokens generated
    finish_reason: Literal["stop", "length", "cancelled"]  # why generation ended
    seconds: float = 0.0  # wall time of the generation
    first_token_seconds: float | None = None  # time to the first streamed piece
    evidence: TokenEvidence | None = None  # token probabilities; None where the backend gives none
    prompt_tokens: int | None = None  # tokens the model read before answering (chat template included); None: unknown


R = TypeVar("R")


class Stream(Generic[R]):
    """Text pieces as they are written, then the result they add up to (after simonw/llm's `Response`).

    Iterate it for the pieces; once it is exhausted, `result` holds what the generation returned
    (a `GenerationStats` from `Backend.stream`, an `Answer` from `answer.stream_answer`) and `text()`
    the whole text. `drain()` reads whatever is left and returns both. `close()` stops the generation
    (the result is then never known). Nothing runs until the first piece is asked for.
    """

    def __init__(self, pieces: Generator[str, None, R]):
        self._pieces = pieces
        self._text: list[str] = []
        self._done = False  # read to its end: `_result` is what the generation returned
        self._closed = False  # stopped before its end: there is no result
        self._result: R | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._done or self._closed:
            raise StopIteration
        try:
            piece = next(self._pieces)
        except StopIteration as stop:
            self._done, self._result = True, stop.value
            raise StopIteration from None
        self._text.append(piece)
        return piece

    @property
    def done(self) -> bool:
        """True once every piece has been read (and `result` is known)."""
        return self._done

    @property
    def result(self) -> R:
        """What the generation returned; RuntimeError before the stream has been read to its end."""
        if self._closed:
            raise RuntimeError("the stream was closed before its end, so it has no result")
        if not self._done:
            raise RuntimeError("the stream has not been read to its end: iterate it, or call drain(), first")
        return self._result  # type: ignore[return-value]  # set with _done

    def text(self) -> str:
        """The whole text, reading what is left of the stream first."""
        for _ in self:
            pass
        return "".join(self._text)

    def drain(self) -> tuple[str, R]:
        """(the whole text, the result), reading what is left of the stream first."""
        return self.text(), self.result

    def close(self) -> None:
        """Stop the generation now (as closing a generator does); nothing is read after it."""
        if not self._done:
            self._closed = True
        self._pieces.close()


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond `stream`, declared by each backend (`Backend.capabilities`)."""

    local: bool  # runs the model in this process (False: a server answers, e.g. OpenAICompatBackend)
    batching: bool = False  # `generate_batch` decodes several conversations as one batch
    continuous_batching: bool = False  # `generate_many` keeps `parallel` conversations decoding over a run
    counts_tokens: bool = False  # `count_tokens`, `count_prompt` and `context_tokens` are there
    logprobs: bool = False  # `GenerationStats.evidence` can hold token probabilities (TokenEvidence)
    max_concurrency: int = 1  # `stream` calls served at once from different threads; 1: one at a time

    def __post_init__(self):
        if self.continuous_batching and not self.batching:
            raise ValueError("a backend with continuous_batching also batches: set batching=True")
        if isinstance(self.max_concurrency, bool) or not isinstance(self.max_concurrency, int) or self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be a whole number of at least 1, not {self.max_concurrency!r}")


@runtime_checkable
class Backend(Protocol):
    """Streams text for chat messages; `capabilities` says what else it does.

    `stream` returns a `Stream`: iterate it for text pieces as they are decoded, then read its
    `result`, a `GenerationStats` (`drain()` does both). Implementations serialise generations on
    one model with a lock. Setting `cancel` (a `threading.Event`) stops generation early.

    The other methods exist where `capabilities` declares them:
    - `batching`: `generate_batch(batch, options)`, several message lists decoded together, results in order;
    - `continuous_batching`: `generate_many(batch, options, parallel)`, results yielded as each
      conversation finishes;
    - `counts_tokens`: `count_tokens(text)`, how many of the model's tokens a text is (the chat refuses
      a question over its token limit); `count_prompt(messages)` with `context_tokens`, how many tokens
      the model reads for a conversation (template included) and the most a prompt and its answer may
      hold, or None when unknown (older turns are left out, or an API call refused, when they would not
      fit: `Assistant.fit_history`).
    `capabilities.max_concurrency` is how many `stream` calls may run at once from different threads
    (`TransformersBackend` serialises on one lock: 1; `LlamaCppBackend` decodes that many together in
    one batch; a remote server, e.g. `OpenAICompatBackend`, serves several and batches them itself).
    """

    model_id: str  # names the model in replies and calibration maps
    capabilities: Capabilities  # what it can do beyond `stream`

    def stream(
        self,
        messages: list[Message],
        options: GenerationOptions = GenerationOptions(),
        cancel: threading.Event | None = None,
    ) -> Stream[GenerationStats]: ...
