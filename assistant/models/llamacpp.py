"""`LlamaCppBackend`: .gguf models through llama.cpp's C API (llama-cpp-python), the fast CPU path.

The GGUF runs in its own quantization: no dequantizing, no converted-model cache. Prompts are
rendered with the chat template stored in the GGUF (the one transformers uses), and `model_id`
is the file's stem, exactly as `TransformersBackend` names the same file, so calibration maps
fitted with one backend apply to the other.

Two things make it faster than llama-cpp-python's high-level `Llama.generate`:

- Shared prompt prefix. Every question opens with the same system prompt and worked examples.
  Their KV cache stays in sequence 0 of the context and later requests share it (llama.cpp
  tags the same cache cells with several sequence ids, nothing is copied), so a request
  prefills only the tokens that differ from the previous prompt.
- Batched decoding. `generate_many` runs several conversations as sequences of one KV cache:
  each step evaluates one token of every running sequence in a single `llama_decode` call, and
  waiting conversations join as others finish (continuous batching). `stream` calls from
  several threads (the chat's users) join the same loop as they arrive (`ChatBatcher`).

Greedy decoding takes the argmax of the logits in place; sampling runs llama.cpp's C samplers
(top-k/top-p/min-p/temperature with a seeded RNG per sequence). One lock is held by whatever
decodes. Several llama.cpp processes on one machine each take their share of the cores, and
take them back when the others end (`llamacpp_peers`, bench/SHARE.md).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import deque
from typing import Callable, Iterator

import numpy as np

from assistant.core.config import ModelConfig
from assistant.core.errors import InputError, ModelLoadError
from assistant.models.backend import (
    Capabilities,
    GenerationOptions,
    GenerationStats,
    Message,
    Stream,
    TokenEvidence,
)
from assistant.models.llamacpp_batch import CLOSED, ChatBatcher
from assistant.models.llamacpp_c import (
    PROBE_CELLS,
    Sequence,
    chat_formatter,
    common_length,
    free_when_idle,
    load_model,
    log_sum_exp,
    new_sampler,
    number_tokens,
    route_llama_logs,
    shared_threads,
    token_piece,
)
from assistant.models.llamacpp_peers import CoreShare
from assistant.models.sources import read_chat_template, resolve_model

__all__ = ["LlamaCppBackend", "N_CTX", "MAX_SEQUENCES"]

N_CTX = 4096  # the most tokens one conversation may hold: prompt + reply
MAX_SEQUENCES = 16  # conversations decoded together at most by `generate_many`
_KV_CELLS = 2 * N_CTX  # KV-cache cells shared by the prefix and every running sequence
_PREFIX_SEQ = 0  # the sequence that holds the shared prompt prefix
_PROBE_DIGITS = 3  # number tokens read greedily after the probe text

log = logging.getLogger(__name__)


class LlamaCppBackend:
    """A .gguf model through llama.cpp; see the module docstring."""

    evidence = True  # read token probabilities (TokenEvidence); bench/evidence.py turns it off to time its cost
    context_tokens = N_CTX - PROBE_CELLS  # the most one conversation's prompt and answer may hold together

    def __init__(self, config: ModelConfig = ModelConfig(), source=None):
        self.config = config
        self.source = source if source is not None else resolve_model(config.model)
        if self.source.kind != "gguf":
            raise ModelLoadError(f"the llamacpp backend runs .gguf files only, not {self.source.location!r}: "
                                 "use --backend transformers")
        template = read_chat_template(config.chat_template)  # before loading: a bad file costs no load
        try:
            import llama_cpp
        except ImportError as error:
            raise ModelLoadError(f"the llamacpp backend needs llama-cpp-python ({error}): install it with "
                                 "`pip install llama-cpp-python` (or `make install`)") from error
        self._c = llama_cpp
        route_llama_logs(llama_cpp)
        self.model_id = self.source.model_id
        self._model = load_model(llama_cpp, str(self.source.location))
        self._share = CoreShare(config.threads or shared_threads())  # or its share among llama.cpp processes
        try:
            self._ctx = self._new_context()
        except ModelLoadError:
            self._share.close()
            raise
        self._share.apply = lambda n, ctx=self._ctx: llama_cpp.llama_set_n_threads(ctx, n, n)  # not self: no cycle
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(self._vocab)
        self._batch = llama_cpp.llama_batch_init(N_CTX, 0, 1)
        self._number_ids, self._number_texts = number_tokens(self._n_vocab, self._piece)
        self._number_set = frozenset(int(t) for t in self._number_ids)
        self._lock = threading.Lock()  # held by whatever decodes: the chat's batch loop or `generate_many`
        self._stopping = threading.Event()  # set first when the model is freed: no decode starts after
        # Frees the C objects on close, garbage collection or exit, whichever comes first, once no decode runs.
        self._free = weakref.finalize(self, free_when_idle, self._stopping, self._lock, llama_cpp, self._batch,
                                      self._ctx, self._model)
        self._leave = weakref.finalize(self, self._share.close)
        self._prefix: list[int] = []  # the tokens whose KV cache sequence 0 holds
        self._formatter = chat_formatter(llama_cpp, self._model, self._vocab, self.source.location, template)
        parallel = max(1, min(config.parallel, MAX_SEQUENCES))  # chat requests decoded together
        self.capabilities = Capabilities(local=True, batching=True, continuous_batching=True, counts_tokens=True,
                                         logprobs=True, max_concurrency=parallel)
        self._batcher = ChatBatcher(self._decode, self._lock, self._piece, self._evidence, parallel, self._stopping)

    # -- loading --------------------------------------------------------------------------

    def _new_context(self):
        c = self._c
        params = c.llama_context_default_params()
        params.n_ctx = _KV_CELLS
        params.n_batch = N_CTX  # any single prompt fits in one llama_decode call
        params.n_ubatch = 512
        params.n_seq_max = MAX_SEQUENCES + 1  # + the prefix sequence
        params.kv_unified = True  # one cache the sequences share, so the prefix is stored once
        params.n_threads = params.n_threads_batch = self.threads
        params.no_perf = True
        params.flash_attn_type = 0  # off, as in llama-cpp-python's Llama (on, a reused prefix changed answers)
        ctx = c.llama_init_from_model(self._model, params)
        if not ctx:
            c.llama_model_free(self._model)
            raise ModelLoadError(
                f"llama.cpp could not create a {_KV_CELLS}-token context for {self.source.location} "
                "(out of memory?)"
            )
        return ctx

    @property
    def threads(self) -> int:
        """CPU threads the model decodes with now (see `CoreShare`)."""
        return self._share.threads

    def close(self) -> None:
        """Free the context and the model now (the backend is unusable afterwards)."""
        self._free()
        self._leave()

    # -- tokens ---------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` is for this model (without the chat template around it)."""
        return len(self._tokenize(text))

    def count_prompt(self, messages: list[Message]) -> int:
        """How many tokens the model reads for `messages`, chat template included."""
        return len(self._tokenize(self._formatter(messages=messages).prompt))

    def _tokenize(self, text: str) -> list[int]:
        data = text.encode("utf-8")
        size = len(data) + 8  # a token covers at least one byte
        buffer = (self._c.llama_token * size)()
        # The template writes its own special tokens, as transformers' apply_chat_template does.
        n = self._c.llama_tokenize(self._vocab, data, len(data), buffer, size, False, True)
        if n < 0:
            raise InputError(f"the prompt could not be tokenized ({-n} tokens needed)")
        return buffer[:n]

    def _piece(self, token: int) -> bytes:
        return token_piece(self._c, self._vocab, token)

    def _evidence(self, seq: Sequence) -> TokenEvidence:
        pieces = tuple(self._piece(t).decode("utf-8", errors="replace") for t in seq.tokens)
        return TokenEvidence(pieces, tuple(seq.logprobs), dict(seq.numbers), seq.probe)

    def _prompt_tokens(self, messages: list[Message]) -> list[int]:
        tokens = self._tokenize(self._formatter(messages=messages).prompt)
        if len(tokens) >= N_CTX:
            raise InputError(
                f"the prompt is {len(tokens)} tokens, more than the {N_CTX}-token context: "
                "shorten the question or start a new conversation"
            )
        return tokens

    # -- generation -----------------------------------------------------------------------

    def stream(self, messages, options=GenerationOptions(), cancel=None) -> Stream[GenerationStats]:
        """Decoded pieces, then GenerationStats; closing it stops generation. Calls from several threads
        decode together, up to `max_concurrency` (`ChatBatcher`); one alone as `generate_many` does one."""
        def pieces():  # runs from the first piece asked for, as the stream is read
            if cancel is not None and cancel.is_set():
                return GenerationStats(0, "cancelled")
            if not self._free.alive:
                raise ModelLoadError(CLOSED)
            prompt = self._prompt_tokens(messages)
            seq = Sequence(0, prompt, self._budget(prompt, options), options, cancel)
            return (yield from self._batcher.stream(seq))
        return Stream(pieces())

    def generate_batch(self, batch, options=GenerationOptions()) -> list[tuple[str, GenerationStats]]:
        """Generate for several message lists decoded together, results in order."""
        results: list = [None] * len(batch)
        for index, text, stats in self.generate_many(batch, options):
            results[index] = (text, stats)
        return results

    def generate_many(
        self, batch: list[list[Message]], options=GenerationOptions(), parallel: int = MAX_SEQUENCES
    ) -> Iterator[tuple[int, str, GenerationStats]]:
        """Yield (index, text, stats) per conversation as soon as it finishes (so not in order).

        At most `parallel` (capped at MAX_SEQUENCES) conversations decode at once; a finished
        one's place goes to the next waiting (continuous batching). Every prompt is tokenized
        before decoding starts, so one too long for the context raises InputError before
        anything is generated.
        Each stats.seconds is that conversation's own time from joining to finishing.
        """
        parallel = max(1, min(parallel, MAX_SEQUENCES))
        with self._lock:
            if not self._free.alive:
                raise ModelLoadError(CLOSED)
            seqs = [Sequence(i, p, self._budget(p, options), options.for_row(i))
                    for i, p in enumerate(self._prompt_tokens(messages) for messages in batch)]
            for seq, token in self._decode(seqs, parallel):
                if token is None:
                    text = b"".join(self._piece(t) for t in seq.tokens).decode("utf-8", errors="replace")
                    seconds = time.perf_counter() - seq.joined
                    yield seq.index, text, GenerationStats(len(seq.tokens), seq.reason, seconds,
                                                           evidence=self._evidence(seq), prompt_tokens=len(seq.prompt))

    @staticmethod
    def _budget(prompt: list[int], options: GenerationOptions) -> int:
        return min(options.max_new_tokens, N_CTX - len(prompt) - PROBE_CELLS)

    def _decode(
        self, seqs: list[Sequence], parallel: int = 1, arrivals: Callable[[], list[Sequence]] | None = None
    ) -> Iterator[tuple[Sequence, int | None]]:
        """Decode `seqs`, at most `parallel` at once; yield (sequence, token) per new token and
        (sequence, None) when a sequence ends, its `reason` set ("stop", "length" or "cancelled").

        `arrivals`, when given, is asked before every step for sequences that joined since (the
        chat's concurrent requests); the loop ends when none waits or runs. Closing the generator
        frees every sequence it started. Call with the lock held.
        """
        waiting: deque[Sequence] = deque(seqs)
        running: list[Sequence] = []
        free_ids = list(range(parallel, 0, -1))
        if seqs:  # given together: they share the prefix common to all of them
            shared = self._share_prefix([seq.prompt for seq in seqs])
            for seq in seqs:
                seq.shared = shared
        try:
            while True:
                self._share.refit()  # another llama.cpp process started or ended: take its share of the cores
                waiting.extend(arrivals() if arrivals is not None else ())
                yield from self._admit(waiting, running, free_ids)
                for seq in [s for s in running if s.cancelled]:
                    seq.reason = "cancelled"
                    self._end(seq, running, free_ids)
                    yield seq, None
                if not running:  # all cancelled or finished: admit the next, or stop
                    if waiting:
                        continue
                    break
                yield from self._advance(running, free_ids)
        finally:
            for seq in running:
                self._release(seq)

    def _advance(self, running: list[Sequence], free_ids: list[int]) -> Iterator[tuple[Sequence, int | None]]:
        """One step of `_decode`: every running sequence's next token, then the ends of those that finished."""
        outputs = self._step(running)
        finished = []
        for seq, at in zip(list(running), outputs):
            token = self._next_token(seq, at)
            if self._c.llama_vocab_is_eog(self._vocab, token):
                seq.reason = "stop"
                seq.logprobs.pop()  # the end-of-text token is not part of the output
                seq.numbers.pop(len(seq.tokens), None)
            else:
                seq.tokens.append(token)
                seq.pending = [token]
                if seq.options.stop and seq.stop.completed_by(self._piece(token).decode("utf-8", errors="replace")):
                    seq.reason = "stop"
                yield seq, token
            if seq.reason == "stop" or len(seq.tokens) >= seq.budget:
                finished.append(seq)
        for seq in finished:  # after the loop: a probe's decode overwrites the batch's logits
            if seq.options.probe:
                self._probe(seq, seq.options.probe)
            self._end(seq, running, free_ids)
            yield seq, None

    def _admit(self, waiting: deque[Sequence], running: list[Sequence], free_ids: list[int]):
        """Start waiting sequences in order while the cache and the batch have room; yield (sequence, None)
        for each one given up while it waited.

        A sequence that arrived alone reads what it can of its prompt from the prefix when it starts:
        with nothing else decoding the prefix is re-made for it, exactly as for a conversation alone;
        beside others it shares what the prefix holds (for the chat, its system prompt and examples).
        """
        room = _KV_CELLS - len(self._prefix) - sum(s.cells for s in running)
        queued = sum(len(s.pending) for s in running)
        while waiting and free_ids:
            new = waiting[0]
            if new.shared is None and not new.cancelled:
                if running:
                    new.shared = common_length(self._prefix, new.prompt, max(0, len(new.prompt) - 2))
                else:
                    new.shared = self._share_prefix([new.prompt])
                    room = _KV_CELLS - len(self._prefix)
            if running and not new.cancelled and (new.cells > room or queued + len(new.prompt) - new.shared > N_CTX):
                break
            waiting.popleft()
            if new.cancelled:
                new.reason = "cancelled"
                yield new, None
                continue
            new.seq_id, new.sampler = free_ids.pop(), new_sampler(self._c, new.options)
            new.joined = time.perf_counter()
            self._c.llama_memory_seq_cp(self._memory, _PREFIX_SEQ, new.seq_id, 0, new.shared)
            new.pending = new.prompt[new.shared:]
            running.append(new)
            room -= new.cells
            queued += len(new.pending)

    def _end(self, seq: Sequence, running: list[Sequence], free_ids: list[int]) -> None:
        running.remove(seq)
        self._release(seq)
        free_ids.append(seq.seq_id)

    def _share_prefix(self, prompts: list[list[int]]) -> int:
        """Make sequence 0 hold the prompts' common prefix (reusing what it holds); return its length.

        The last two tokens of every prompt are left out, so each sequence evaluates at least
        two tokens of its own: llama.cpp's CPU kernels round a one-row batch differently from a
        longer one, and evaluating the last prompt token alone changed the greedy answer to 12
        of 40 benchmark questions, against llama-cpp-python's whole-prompt evaluation; with two
        or more rows all 40 were identical, whether the prefix was reused or not.
        """
        common = max(0, min(len(p) for p in prompts) - 2)
        for p in prompts[1:]:
            common = min(common, common_length(prompts[0], p, common))
        keep = common_length(self._prefix, prompts[0], common)
        self._c.llama_memory_seq_rm(self._memory, _PREFIX_SEQ, keep, -1)
        self._prefix = self._prefix[:keep]
        for chunk_start in range(keep, common, N_CTX):
            chunk = prompts[0][chunk_start : min(common, chunk_start + N_CTX)]
            self._fill_batch([(_PREFIX_SEQ, chunk_start + k, t, False) for k, t in enumerate(chunk)])
            self._prefix += chunk
        return common

    def _drop_prefix(self) -> None:
        """Empty the whole cache, the shared prefix included (the next prompt is prefilled whole)."""
        self._c.llama_memory_clear(self._memory, True)
        self._prefix = []

    def _step(self, running: list[Sequence]) -> list[int]:
        """Evaluate every running sequence's pending tokens in one call; return each one's logits row."""
        entries, outputs = [], []
        for seq in running:
            position = len(seq.prompt) + len(seq.tokens) - len(seq.pending)
            last = len(seq.pending) - 1
            entries += [(seq.seq_id, position + k, t, k == last) for k, t in enumerate(seq.pending)]
            outputs.append(len(entries) - 1)
            seq.pending = []
        self._fill_batch(entries)
        return outputs

    def _fill_batch(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """Run llama_decode on (sequence, position, token, wants logits) entries."""
        batch = self._batch
        batch.n_tokens = len(entries)
        for i, (seq_id, position, token, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = position
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq_id
            batch.logits[i] = logits
        status = self._c.llama_decode(self._ctx, batch)
        if status != 0:
            self._drop_prefix()  # a failed call may leave partial cells
            raise RuntimeError(f"llama_decode failed with status {status}")

    def _logits(self, at: int) -> np.ndarray:
        """The logits row of batch entry `at`, as a view (valid until the next decode)."""
        return np.ctypeslib.as_array(self._c.llama_get_logits_ith(self._ctx, at), shape=(self._n_vocab,))

    def _next_token(self, seq: Sequence, at: int) -> int:
        """Sample from the logits of batch entry `at` and record the token's evidence: its log
        probability and, for a number token, the distribution over every number token.

        Greedy is an argmax over the logits in place (llama.cpp's greedy sampler first copies
        the whole vocabulary into a candidate list, and picks the same token: the first of
        equal maxima)."""
        row = self._logits(at)
        if seq.sampler is not None:
            token = int(self._c.llama_sampler_sample(seq.sampler, self._ctx, at))
        else:
            token = int(row.argmax())
        if not self.evidence:
            seq.logprobs.append(0.0)
            return token
        log_total = log_sum_exp(row)
        seq.logprobs.append(float(row[token]) - log_total)
        if token in self._number_set:
            seq.numbers[len(seq.tokens)] = self._number_distribution(row, log_total)
        return token

    def _number_distribution(self, row: np.ndarray, log_total: float) -> dict[str, float]:
        probs = np.exp(row[self._number_ids].astype(np.float64) - log_total)
        return {text: float(p) for text, p in zip(self._number_texts, probs)}

    def _probe(self, seq: Sequence, text: str) -> None:
        """Evaluate `text` after the sequence's output (when the output lacks it) and read the number
        the model writes next: the distribution at its first token and its greedy digits."""
        output = b"".join(self._piece(t) for t in seq.tokens).decode("utf-8", errors="replace")
        if text in output:
            return
        position = len(seq.prompt) + len(seq.tokens) - len(seq.pending)
        tokens = seq.pending + self._tokenize(" " + text)
        self._fill_batch([(seq.seq_id, position + k, t, k == len(tokens) - 1) for k, t in enumerate(tokens)])
        seq.pending = []
        position += len(tokens)
        row = self._logits(len(tokens) - 1)
        first = self._number_distribution(row, log_sum_exp(row))
        digits = ""
        for _ in range(_PROBE_DIGITS):
            token = int(row.argmax())
            if token not in self._number_set:
                break
            digits += self._piece(token).decode("ascii")
            self._fill_batch([(seq.seq_id, position, token, True)])
            position += 1
            row = self._logits(0)
        seq.probe = (digits, first)

    def _release(self, seq: Sequence) -> None:
        self._c.llama_memory_seq_rm(self._memory, seq.seq_id, -1, -1)
        if seq.sampler is not None:
            self._c.llama_sampler_free(seq.sampler)
