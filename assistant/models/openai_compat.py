"""`OpenAICompatBackend`: a model behind an OpenAI-compatible server (vLLM, SGLang, llama.cpp's server, Ollama).

    calibrated-chat --backend openai --base-url http://127.0.0.1:8000/v1 --model Qwen/Qwen3-8B
    # the key, if the server wants one, from $OPENAI_API_KEY (or the variable --api-key-env names)

It streams `/v1/chat/completions` over server-sent events behind the same `Backend` protocol as
the local backends, so the chat, `ask`, `calibrate collect` and `eval` work through it:

- `delta.content` is the text. `delta.reasoning_content` (or `delta.reasoning`), which servers
  with a reasoning parser split off, is streamed between `<think>` and `</think>`, exactly what a
  local reasoning model writes, so `parsing.split_reasoning` makes it the reasoning trace.
- `logprobs` with `top_logprobs` fill `TokenEvidence` where the server gives them: each token's
  text and log probability, and at each number token (1-3 ASCII digits) the distribution over
  the number tokens among its top alternatives (the local backends read every number token of
  the vocabulary; a server shows only its top `TOP_LOGPROBS`). A server that gives none leaves
  `evidence` None, so the reply's probability signals are None (`Reply.signals` shows which).
  `GenerationOptions.probe` needs the model's state after the output and is not read here:
  `probe_ev` is always None through a server.
- `finish_reason` "length" means truncated; token counts come from `stream_options.include_usage`
  (else the number of streamed tokens); the time to the first text piece is recorded.
- Greedy (temperature 0) also sends `repeat_penalty: 1.0`: llama.cpp's server otherwise applies
  its default 1.1 even to greedy decoding, which the local backends never do. A server that
  rejects a field this backend adds (that one, or `logprobs`) gets the request again without it.

`model_id` is the server's model name and the base URL's host ("SmolLM2-135M-Instruct@127.0.0.1:8000"):
calibration maps are matched by model id, so maps fitted through one server are never applied to
answers from another. The API key is read from the environment when the backend is built and is
kept only in the request header (openai_http.Endpoint): never in `ModelConfig`, a log, a record or
a map. Requests are independent HTTP streams, so several may run at once (`max_concurrency`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time

from assistant.core.config import ModelConfig
from assistant.core.errors import ModelLoadError
from assistant.models.backend import (
    THINK_CLOSE,
    THINK_OPEN,
    Capabilities,
    GenerationOptions,
    GenerationStats,
    Message,
    StopText,
    Stream,
    TokenEvidence,
)
from assistant.models.openai_http import Endpoint, Retry, ServerError, Timeouts, sse_events

__all__ = ["OpenAICompatBackend", "TOP_LOGPROBS"]

log = logging.getLogger(__name__)

TOP_LOGPROBS = 20  # alternatives asked for at each token: OpenAI's and vLLM's default maximum
# Request fields this backend adds that a server may reject; dropped (with their companions) if it does.
_OPTIONAL_FIELDS = {"logprobs": ("logprobs", "top_logprobs"), "top_logprobs": ("logprobs", "top_logprobs"),
                    "repeat_penalty": ("repeat_penalty",), "stream_options": ("stream_options",)}


def _is_number(token: str) -> bool:
    return 1 <= len(token) <= 3 and token.isascii() and token.isdigit()


class _Reply:
    """What one streamed reply has given so far: text pieces to yield, evidence, finish reason, usage."""

    def __init__(self, stop: tuple[str, ...] = ()):
        self.stop = StopText(stop)  # found here, not sent: a server's own `stop` drops the stop text
        self.stopped = False  # a stop text was completed: read no further
        self.pieces: list[str] = []  # evidence: one text per token (plus the think tags it added)
        self.logprobs: list[float] = []
        self.numbers: dict[int, dict[str, float]] = {}
        self.saw_logprobs = False
        self.in_think = False
        self.tags = 0  # think tags this reply added (not the model's tokens)
        self.deltas = 0  # text deltas, the token count when the server reports neither usage nor logprobs
        self.finish: str | None = None
        self.usage: int | None = None
        self.prompt_usage: int | None = None  # the server's count of the prompt's tokens

    def _tag(self, tag: str) -> str:
        # The server split the think tags off; they go back into the text and, with probability 1 (the
        # model's template writes them, the model does not choose them), into the evidence.
        self.in_think = tag == THINK_OPEN
        self.tags += 1
        self.pieces.append(tag)
        self.logprobs.append(0.0)
        return tag

    def _tokens(self, entries) -> None:
        for entry in entries or ():
            token, logprob = entry.get("token"), entry.get("logprob")
            if not isinstance(token, str) or not isinstance(logprob, (int, float)):
                continue
            self.saw_logprobs = True
            if _is_number(token):
                top = {t["token"]: math.exp(t["logprob"]) for t in entry.get("top_logprobs") or ()
                       if isinstance(t.get("token"), str) and _is_number(t["token"])
                       and isinstance(t.get("logprob"), (int, float))}
                top[token] = math.exp(logprob)
                self.numbers[len(self.pieces)] = top
            self.pieces.append(token)
            self.logprobs.append(float(max(logprob, -1e30)))

    def feed(self, event: dict) -> list[str]:
        """The text pieces one event adds (think tags included), recording its evidence and finish reason."""
        usage = event.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.usage = usage["completion_tokens"]
        if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
            self.prompt_usage = usage["prompt_tokens"]
        out = []
        for choice in event.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            content = delta.get("content")
            if reasoning:
                if not self.in_think:
                    out.append(self._tag(THINK_OPEN))
                out.append(reasoning)
            if content:
                if self.in_think:
                    out.append(self._tag(THINK_CLOSE))
                out.append(content)
                self._find_stop(content)
            self.deltas += bool(reasoning) + bool(content)
            self._tokens((choice.get("logprobs") or {}).get("content"))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def _find_stop(self, content: str) -> None:
        if self.stop.completed_by(content):
            self.stopped, self.finish = True, "stop"

    def close_think(self) -> list[str]:
        """`</think>` when the reply ended inside the reasoning the server split off, unless it was cut short
        (an open think block is how a truncated reasoning reads locally too)."""
        return [self._tag(THINK_CLOSE)] if self.in_think and self.finish != "length" else []

    def stats(self, reason: str, seconds: float, first: float | None) -> GenerationStats:
        evidence = None
        if self.saw_logprobs:
            evidence = TokenEvidence(tuple(self.pieces), tuple(self.logprobs), dict(self.numbers))
        streamed = len(self.pieces) - self.tags if self.saw_logprobs else self.deltas
        tokens = self.usage if self.usage is not None else streamed
        return GenerationStats(tokens, reason, seconds, first, evidence, self.prompt_usage)


class OpenAICompatBackend:
    """A model behind an OpenAI-compatible server; see the module docstring."""


    def __init__(self, config: ModelConfig = ModelConfig(), source=None, *, timeouts: Timeouts = Timeouts(),
                 retry: Retry = Retry(), check: bool = True):
        if not config.base_url:
            raise ModelLoadError("the openai backend needs the server's address: pass --base-url URL "
                                 "(e.g. http://127.0.0.1:8000/v1) or set CALIBRATED_CHAT_BASE_URL")
        if not config.model:
            raise ModelLoadError("the openai backend needs the server's model name: pass --model NAME "
                                 f"(one of those {config.base_url.rstrip('/')}/models lists)")
        if config.chat_template is not None:
            raise ModelLoadError("--chat-template applies to local models only: a server formats chats with its "
                                 "own template (e.g. llama.cpp's server takes --chat-template-file)")
        key_env = config.api_key_env or "OPENAI_API_KEY"
        # Read here, at the edge, and kept only inside the endpoint's request header (never in the config).
        self._endpoint = Endpoint(config.base_url, os.environ.get(key_env) or None, key_env, timeouts, retry)
        self.model_name = config.model
        self.model_id = f"{config.model}@{self._endpoint.host}"
        self.url = self._endpoint.url  # the base URL, without any credentials or query
        # Optional request fields not sent: those this server rejected, and log probabilities when switched off.
        self._left_out: set[str] = set() if config.logprobs else set(_OPTIONAL_FIELDS["logprobs"])
        # One request per conversation, 8 in flight at once (the server batches them); no tokenizer here.
        self.capabilities = Capabilities(local=False, logprobs=config.logprobs, max_concurrency=8)
        if check:
            self.check_health()

    def __repr__(self) -> str:
        return f"OpenAICompatBackend({self.model_id!r}, {self.url!r})"

    def check_health(self) -> list[str]:
        """GET /v1/models; return the names the server serves. Raises ServerError naming the URL and the fix."""
        try:
            opened = self._endpoint.open("GET", "/models")
        except ServerError as error:
            raise ServerError(f"model server health check failed: {error}", error.status, error.detail) from None
        try:
            listed = json.loads(opened.response.read())
        except (ValueError, OSError) as error:
            raise ServerError(f"{self.url}/models did not answer with a model list ({error}): is --base-url "
                              "an OpenAI-compatible server?") from None
        finally:
            opened.close()
        names = [m.get("id") for m in (listed.get("data") or []) if isinstance(m, dict)] \
            if isinstance(listed, dict) else []
        if names and self.model_name not in names:
            log.warning("model %r is not among those %s/models lists (%s): servers that serve one model "
                        "answer with it whatever the name; others will refuse", self.model_name, self.url,
                        ", ".join(map(str, names[:5])))
        return names

    def _body(self, messages: list[Message], options: GenerationOptions) -> dict:
        body = {"model": self.model_name, "messages": list(messages), "stream": True,
                "max_tokens": options.max_new_tokens, "temperature": options.temperature,
                "stream_options": {"include_usage": True}, "logprobs": True, "top_logprobs": TOP_LOGPROBS}
        if options.temperature > 0:
            body["seed"] = options.seed
        else:
            body["repeat_penalty"] = 1.0
        return {k: v for k, v in body.items() if k not in self._left_out}

    def _open(self, messages: list[Message], options: GenerationOptions):
        """Open the stream, dropping an optional field the server rejects (400/422 naming it) and trying again."""
        while True:
            try:
                return self._endpoint.open("POST", "/chat/completions", self._body(messages, options))
            except ServerError as error:
                rejected = next((f for f in _OPTIONAL_FIELDS if f in error.detail and f not in self._left_out), None)
                if error.status not in (400, 422) or rejected is None:
                    raise
                log.info("model server %s rejected %r; asking without it", self.url, rejected)
                self._left_out.update(_OPTIONAL_FIELDS[rejected])

    def stream(self, messages, options=GenerationOptions(), cancel=None) -> Stream[GenerationStats]:
        """The text pieces as the server streams them, then GenerationStats. Setting `cancel` or closing
        the stream closes the connection."""
        return Stream(self._stream(messages, options, cancel))

    def _stream(self, messages, options, cancel):
        if cancel is not None and cancel.is_set():
            return GenerationStats(0, "cancelled")
        start = time.perf_counter()
        opened = self._open(messages, options)
        done = threading.Event()
        if cancel is not None:
            threading.Thread(target=_close_on_cancel, args=(cancel, done, opened.sock), daemon=True).start()
        reply, first = _Reply(options.stop), None
        try:
            for event in sse_events(opened, self._endpoint.timeouts):
                for piece in reply.feed(event):
                    first = time.perf_counter() - start if first is None else first
                    yield piece
                if reply.stopped or (cancel is not None and cancel.is_set()):
                    break
            else:
                yield from reply.close_think()
        except ServerError as error:
            if cancel is None or not cancel.is_set():
                got = f"after {reply.deltas} text pieces" if reply.deltas else "before any text"
                raise ServerError(f"the model server at {self.url} broke off the reply {got}: {error} "
                                  "(is it still running?)") from None
        finally:
            done.set()
            opened.close()
        if cancel is not None and cancel.is_set():
            reason = "cancelled"
        elif reply.finish is None:  # an answer cut short must never pass for a finished one
            raise ServerError(f"the model server at {self.url} ended the reply after {reply.deltas} text pieces "
                              "without a finish_reason, so it was cut short (llama-cpp-python's server does this "
                              "to a reply when another request arrives: start it with --interrupt_requests False)")
        else:
            reason = "length" if reply.finish == "length" else "stop"
        return reply.stats(reason, time.perf_counter() - start, first)


def _close_on_cancel(cancel: threading.Event, done: threading.Event, sock: socket.socket) -> None:
    """Shut the stream's socket when `cancel` is set, so a read waiting for the next token returns now."""
    while not done.wait(0.05):
        if cancel.is_set():
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # already closed
                pass
            return
