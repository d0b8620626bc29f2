"""The model-backend protocol: what every backend takes (options) and gives (text, stats, token evidence).

A backend turns a list of chat messages into streamed text. One method to
implement (`stream`); capability flags are class attributes. Heavy imports
(torch, transformers, llama_cpp) live in the implementations, so importing this
module stays cheap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Generator, Literal, Protocol, runtime_checkable

__all__ = [
    "Message",
    "GenerationOptions",
    "GenerationStats",
    "TokenEvidence",
    "Backend",
    "run_to_end",
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


@runtime_checkable
class Backend(Protocol):
    """Streams text for chat messages.

    `stream` is a generator: it yields text pieces as they are decoded and
    *returns* a `GenerationStats` (read it with `run_to_end` or from
    `StopIteration.value`). Implementations serialise generations on one model
    with a lock. Setting `cancel` (a `threading.Event`) stops generation early.

    Optional: `generate_batch(batch, options)` when `supports_batching` (several message
    lists decoded together, results in order), and `generate_many(batch, options, parallel)`
    for continuous batching (results yielded as each conversation finishes); `count_tokens(text)`,
    how many of the model's tokens a text is (the chat refuses a question over its token limit);
    `count_prompt(messages)` with `context_tokens`, how many tokens the model reads for a conversation
    (template included) and the most a prompt and its answer may hold (older turns are left out, or
    an API call refused, when they would not fit: `Assistant.fit_history`);
    `max_concurrency`, how many `stream` calls may run at once from different threads (taken
    as 1 when absent: `TransformersBackend` serialises on one lock; `LlamaCppBackend` decodes
    that many together in one batch; a remote server, e.g. `OpenAICompatBackend`, serves
    several and batches them itself).
    """

    model_id: str  # names the model in replies and calibration maps
    supports_batching: bool  # True if `generate_batch` runs prompts as one batch

    def stream(
        self,
        messages: list[Message],
        options: GenerationOptions = GenerationOptions(),
        cancel: threading.Event | None = None,
    ) -> Generator[str, None, GenerationStats]: ...


def run_to_end(gen: Generator[str, None, GenerationStats]) -> tuple[str, GenerationStats]:
    """Drain a `Backend.stream` generator; return the whole text and its stats."""
    pieces = []
    while True:
        try:
            pieces.append(next(gen))
        except StopIteration as stop:
            return "".join(pieces), stop.value
