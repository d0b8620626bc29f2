"""`LlamaCppBackend`: .gguf models through llama.cpp (llama-cpp-python), the fast CPU path.

The GGUF runs in its own quantization, so there is no dequantizing and no
converted-model cache. Prompts are rendered with the chat template stored in
the GGUF (the same template transformers uses), and `model_id` is the file's
stem, exactly as `TransformersBackend` names the same file, so calibration maps
fitted with one backend apply to the other.

llama-cpp-python has no batch API, so `supports_batching` is False; one lock
serialises generations on the model.
"""

from __future__ import annotations

import codecs
import os
import threading
import time

from .backend import GenerationOptions, GenerationStats, Message
from .config import ModelConfig
from .errors import InputError, ModelLoadError

__all__ = ["LlamaCppBackend", "N_CTX"]

N_CTX = 4096  # context window (prompt + reply tokens) llama.cpp allocates


class LlamaCppBackend:
    """A .gguf model through llama.cpp; see the module docstring."""

    supports_batching = False

    def __init__(self, config: ModelConfig = ModelConfig(), source=None):
        from .loading import resolve_model

        self.config = config
        self.source = source if source is not None else resolve_model(config.model)
        if self.source.kind != "gguf":
            raise ModelLoadError(
                f"the llamacpp backend runs .gguf files only, not {self.source.location!r}: "
                "use --backend transformers"
            )
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as error:
            raise ModelLoadError(
                f"the llamacpp backend needs llama-cpp-python ({error}): install it with "
                "`pip install llama-cpp-python` (or `make install`)"
            ) from error
        self.model_id = self.source.model_id
        self.threads = config.threads or os.cpu_count() or 1
        start = time.perf_counter()
        try:
            self.llm = llama_cpp.Llama(
                model_path=self.source.location,
                n_ctx=N_CTX,
                n_threads=self.threads,
                n_threads_batch=self.threads,
                verbose=False,
            )
        except MemoryError as error:
            raise ModelLoadError(f"not enough memory to load {self.source.location}") from error
        except Exception as error:  # llama-cpp-python raises ValueError for unreadable files
            raise ModelLoadError(
                f"llama.cpp could not load {self.source.location}: {type(error).__name__}: {error} "
                "(is it a complete, uncorrupted .gguf file?)"
            ) from error
        self.load_seconds = time.perf_counter() - start  # wall time of the load, for benchmarks
        self._is_eog = lambda token: llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token)
        self._formatter = self._chat_formatter(Jinja2ChatFormatter)
        self._lock = threading.Lock()

    def _chat_formatter(self, formatter_cls):
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelLoadError(f"{self.source.location} holds no chat template: use an instruct/chat GGUF")
        text = lambda token: self.llm._model.token_get_text(token) if token != -1 else ""  # noqa: E731
        return formatter_cls(
            template=template,
            eos_token=text(self.llm.token_eos()),
            bos_token=text(self.llm.token_bos()),
            add_generation_prompt=True,
        )

    def _prompt_tokens(self, messages: list[Message]) -> list[int]:
        prompt = self._formatter(messages=messages).prompt
        # The template writes its own special tokens, as transformers' apply_chat_template does.
        return self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

    def stream(self, messages, options=GenerationOptions(), cancel=None):
        """Yield decoded pieces; return GenerationStats. Closing the generator stops generation."""
        sampling = (
            dict(temp=options.temperature, top_k=40, top_p=0.95, min_p=0.05)
            if options.temperature > 0
            else dict(temp=0.0, top_k=1, top_p=1.0, min_p=0.0)
        )
        with self._lock:
            if cancel is not None and cancel.is_set():
                return GenerationStats(0, "cancelled")
            prompt = self._prompt_tokens(messages)
            budget = min(options.max_new_tokens, N_CTX - len(prompt))
            if budget <= 0:
                raise InputError(f"the prompt is {len(prompt)} tokens, more than the {N_CTX}-token context")
            self.llm.set_seed(options.seed)
            self.llm.reset()  # re-evaluate the whole prompt: reusing a cached prefix can change greedy output
            start = time.perf_counter()
            first = None
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            history = list(prompt)
            tokens, reason = 0, "length"
            tokens_gen = self.llm.generate(prompt, repeat_penalty=1.0, **sampling)
            try:
                for token in tokens_gen:
                    if self._is_eog(token):
                        reason = "stop"
                        break
                    piece = decoder.decode(self.llm.detokenize([token], prev_tokens=history))
                    history.append(token)
                    tokens += 1
                    if piece:
                        first = time.perf_counter() - start if first is None else first
                        yield piece
                    if tokens >= budget:
                        break
                    if cancel is not None and cancel.is_set():
                        reason = "cancelled"
                        break
                tail = decoder.decode(b"", final=True)
                if tail:
                    yield tail
            finally:
                tokens_gen.close()
            seconds = time.perf_counter() - start
        return GenerationStats(tokens, reason, seconds, first)
