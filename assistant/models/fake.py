"""A scripted backend for tests and demos without a model (after llm's MockModel)."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, field

from assistant.models.backend import Capabilities, GenerationOptions, GenerationStats, StopText, Stream

__all__ = ["FakeBackend"]


@dataclass
class FakeBackend:
    """A scripted backend for tests (after llm's MockModel).

    `enqueue` the outputs it should give; each `stream` call pops one and yields
    it word by word. `history` records every message list it was sent. A test backend
    that scripts its output otherwise overrides `pieces`, the generator `stream` wraps.
    """

    model_id: str = "fake-model"
    # Counts words as tokens; no batching, no token probabilities, one answer at a time.
    capabilities: Capabilities = Capabilities(local=True, counts_tokens=True)
    outputs: deque = field(default_factory=deque)
    history: list = field(default_factory=list)
    default_output: str | None = None  # used when the queue is empty; None raises
    context_tokens: int | None = None  # when set, the conversation must fit this many tokens (`count_prompt`)

    def enqueue(self, *outputs: str) -> "FakeBackend":
        self.outputs.extend(outputs)
        return self

    def count_tokens(self, text: str) -> int:
        """One token per word, as `stream` yields them."""
        return len(text.split())

    def count_prompt(self, messages) -> int:
        """The words of every message: what `stream` counts as read."""
        return sum(self.count_tokens(m["content"]) for m in messages)

    def stream(self, messages, options=GenerationOptions(), cancel=None) -> Stream[GenerationStats]:
        """The next output word by word, then its GenerationStats."""
        return Stream(self.pieces(messages, options, cancel))

    def pieces(self, messages, options, cancel) -> Generator[str, None, GenerationStats]:
        self.history.append(list(messages))
        if self.outputs:
            text = self.outputs.popleft()
        elif self.default_output is not None:
            text = self.default_output
        else:
            raise AssertionError("FakeBackend: no output enqueued")
        words, stop = text.split(" "), StopText(options.stop)
        for i, word in enumerate(words[: options.max_new_tokens]):
            if cancel is not None and cancel.is_set():
                return GenerationStats(tokens=i, finish_reason="cancelled")
            piece = word if i == 0 else " " + word
            yield piece
            if stop.completed_by(piece):
                words = words[: i + 1]
                break
        reason = "length" if len(words) > options.max_new_tokens else "stop"
        return GenerationStats(tokens=min(len(words), options.max_new_tokens), finish_reason=reason,
                               prompt_tokens=self.count_prompt(messages) if self.capabilities.counts_tokens else None)
