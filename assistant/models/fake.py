"""A scripted backend for tests and demos without a model (after llm's MockModel)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from assistant.models.backend import GenerationOptions, GenerationStats

__all__ = ["FakeBackend"]


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
        return GenerationStats(tokens=min(len(words), options.max_new_tokens), finish_reason=reason,
                               prompt_tokens=self.count_prompt(messages))
