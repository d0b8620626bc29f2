"""`TransformersBackend`: any Hugging Face causal LM, streamed token by token.

Loads a model by Hugging Face id (local cache only), from a folder saved with
`save_pretrained`, or from a .gguf file. transformers dequantizes a GGUF on every
load (~20 s for the 135M default on 2 idle cores), so the first load saves the dense model to
`config.cache_folder/<stem>-<hash>` and later loads read that (under 1 s). The cache is
written to a temporary folder and renamed into place, so a kill mid-save never
leaves a half-written cache behind.

One lock serialises generations on the model; `generate_batch` runs several
prompts as one left-padded batch (for `calibrate collect`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path

from assistant.core.config import ModelConfig, set_offline_env
from assistant.core.errors import ModelLoadError, ModelNotFoundError
from assistant.core.files import private_folder
from assistant.models.backend import (
    Capabilities,
    GenerationOptions,
    GenerationStats,
    Message,
    StopText,
    Stream,
    TokenEvidence,
)
from assistant.models.sources import read_chat_template, resolve_model

__all__ = ["TransformersBackend", "gguf_cache_folder", "hidden_token_ids", "save_model_atomically"]

log = logging.getLogger(__name__)

_DTYPES = ("float32", "bfloat16", "float16")
# Reasoning markers stay in the decoded text even where a tokenizer marks them special;
# assistant.answering.parsing splits them off.
_KEEP_TOKEN = re.compile(r"^</?think>$")


def gguf_cache_folder(cache_dir: Path, gguf: Path, dtype: str = "float32") -> Path:
    """Where the dense `dtype` copy of `gguf` lives: `<stem>-<hash>`, a new one when the file changes."""
    stat = gguf.stat()
    key = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}"
    key = hashlib.sha1(key.encode()).hexdigest()[:12]
    return Path(cache_dir).expanduser() / f"{gguf.stem}-{key}"


def hidden_token_ids(tokenizer) -> frozenset[int]:
    """Special tokens to drop from decoded text: all of them except `<think>` / `</think>`."""
    keep = {i for t, i in tokenizer.get_vocab().items() if _KEEP_TOKEN.match(t)}
    return frozenset(tokenizer.all_special_ids) - keep


def _pick_device_dtype(config: ModelConfig, torch) -> tuple[str, object]:  # (device, torch.dtype)
    device = (config.device or "auto").lower()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"device {config.device!r} asked for but CUDA is not available: use --device cpu")
    dtype = (config.dtype or "auto").lower()
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in _DTYPES:
        raise ModelLoadError(f"unknown dtype {config.dtype!r}: use auto, {', '.join(_DTYPES)}")
    return device, getattr(torch, dtype)


def save_model_atomically(model, tokenizer, folder: Path) -> None:
    """`save_pretrained` into a temporary sibling of `folder`, then rename it into place (warns on failure)."""
    try:
        private_folder(folder.parent)  # a cache folder the user made themselves keeps its mode
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        tmp.chmod(0o755)  # mkdtemp's 0o700 would hide a cache the user shares (a folder they opened) from others
    except OSError as error:
        warnings.warn(f"cannot write the converted-model cache in {folder.parent}: {error}", stacklevel=2)
        return
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.rename(tmp, folder)
    except OSError as error:
        if not folder.is_dir():  # another process renaming first is fine; anything else is worth a word
            warnings.warn(f"cannot write the converted-model cache {folder}: {error}", stacklevel=2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _StopOnEvent:
    """A StoppingCriteria that ends generation once any of its events is set."""

    def __init__(self, *events: threading.Event | None):
        self.events = [e for e in events if e is not None]

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        stop = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class _StopOnText:
    """A StoppingCriteria that ends each row once its new text completes a stop text outside a think block
    (GenerationOptions.stop), as the other backends do: transformers' own `stop_strings` knows no think blocks."""

    def __init__(self, decode, stop: tuple[str, ...], rows: int):
        self.decode, self.watch, self.done = decode, [StopText(stop) for _ in range(rows)], [False] * rows

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        for i, token in enumerate(input_ids[:, -1].tolist()):
            self.done[i] = self.done[i] or self.watch[i].completed_by(self.decode([token]))
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


class TransformersBackend:
    """Any causal LM through transformers; see the module docstring."""

    # one lock serialises `stream` calls (max_concurrency 1); `generate_batch` decodes several as one batch
    capabilities = Capabilities(local=True, batching=True, counts_tokens=True, logprobs=True)

    def __init__(self, config: ModelConfig = ModelConfig(), source=None):
        set_offline_env()
        import torch


        self.config = config
        self.source = source if source is not None else resolve_model(config.model)
        self.model_id = self.source.model_id
        template = read_chat_template(config.chat_template)  # before loading: a bad file costs no load
        if config.threads:
            torch.set_num_threads(config.threads)
        self.device, self.dtype = _pick_device_dtype(config, torch)
        self.loaded_from = ""  # the folder or file the weights came from (the cache, for a GGUF)
        self.model, self.tokenizer = self._load()
        self.tokenizer.chat_template = template or self.tokenizer.chat_template
        self._prepare_tokenizer()
        self._lock = threading.Lock()
        # the most a prompt and its answer may hold together (None: the model does not say)
        self.context_tokens = getattr(self.model.config, "max_position_embeddings", None)

    # ---- loading -------------------------------------------------------------------------------

    def _load(self):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = self.source
        try:
            if source.kind == "gguf":
                model, tokenizer = self._load_gguf(AutoModelForCausalLM, AutoTokenizer)
            else:
                kwargs = {"local_files_only": True}
                self.loaded_from = source.location
                model = AutoModelForCausalLM.from_pretrained(source.location, dtype=self.dtype, **kwargs)
                tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
            return model.to(self.device).eval(), tokenizer
        except (ModelLoadError, ModelNotFoundError):
            raise
        except MemoryError as error:  # torch.OutOfMemoryError (CUDA) subclasses RuntimeError, caught below
            raise ModelLoadError(
                f"not enough memory to load {source.location}: use a smaller model or free memory"
            ) from error
        except Exception as error:  # transformers raises OSError, ValueError, RuntimeError, …
            raise ModelLoadError(
                f"could not load {source.kind} model {source.location}: {type(error).__name__}: {error}"
            ) from error

    def _load_gguf(self, model_cls, tokenizer_cls):
        gguf = self.source.path
        cached = gguf_cache_folder(self.config.cache_folder, gguf, str(self.dtype).removeprefix("torch."))
        if cached.is_dir():
            try:
                model = model_cls.from_pretrained(cached, dtype=self.dtype, local_files_only=True)
                tokenizer = tokenizer_cls.from_pretrained(cached, local_files_only=True)
                self.loaded_from = str(cached)
                return model, tokenizer
            except MemoryError:
                raise  # out of memory says nothing about the cache: keep it (the caller reports the error)
            except Exception as error:  # a cache damaged by hand: convert again
                warnings.warn(f"converted-model cache {cached} is unreadable ({error}); converting again", stacklevel=2)
                shutil.rmtree(cached, ignore_errors=True)
        log.info("dequantizing %s (first load; later loads use %s)", gguf.name, cached)
        tokenizer = tokenizer_cls.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
        model = model_cls.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=self.dtype, local_files_only=True
        )
        quantizer = getattr(model, "hf_quantizer", None)
        if quantizer is not None and not getattr(quantizer, "packed_modules", None):
            # Every weight was dequantized, so the model is a plain dense one that can be saved.
            quantizer.remove_quantization_config(model)
        self.loaded_from = str(gguf)
        if getattr(model, "hf_quantizer", None) is None:  # weights kept packed cannot be saved
            save_model_atomically(model, tokenizer, cached)
        return model, tokenizer

    def _prepare_tokenizer(self) -> None:
        tok = self.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        tok.padding_side = "left"  # generation continues the right end of every row
        self._hidden = hidden_token_ids(tok)
        numbers = sorted((i, t) for t, i in tok.get_vocab().items() if re.fullmatch(r"[0-9]{1,3}", t))
        self._number_ids, self._number_texts = [i for i, _ in numbers], [t for _, t in numbers]
        self._number_set = frozenset(self._number_ids)
        eos = self.model.generation_config.eos_token_id
        eos = list(eos) if isinstance(eos, (list, tuple)) else [eos]
        self._eos_ids = {i for i in [*eos, tok.eos_token_id] if i is not None}
        if not getattr(tok, "chat_template", None):
            warnings.warn(f"{self.model_id} has no chat template; using a plain 'role: content' layout", stacklevel=2)

    # ---- generation ----------------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """How many tokens `text` is for this model (without the chat template around it)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_prompt(self, messages: list[Message]) -> int:
        """How many tokens the model reads for `messages`, chat template included."""
        return len(self.tokenizer(self._render(messages), add_special_tokens=False)["input_ids"])

    def _render(self, messages: list[Message]) -> str:
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        turns = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return turns + "assistant:"

    def _encode(self, batch: list[list[Message]]):
        texts = [self._render(m) for m in batch]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        return enc.to(self.device)

    def _generate_kwargs(self, options: GenerationOptions, *events, rows: int = 1) -> dict:
        from transformers import StoppingCriteriaList

        stops = [_StopOnText(self._decode, options.stop, rows)] if options.stop else []
        kwargs = dict(
            max_new_tokens=options.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            stopping_criteria=StoppingCriteriaList([_StopOnEvent(*events), *stops]),
            output_logits=True,  # the raw logits of every step: TokenEvidence
            return_dict_in_generate=True,
        )
        if options.temperature > 0:
            kwargs.update(do_sample=True, temperature=options.temperature)
        else:  # clear a sampling default a model's generation_config may carry
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        return kwargs

    def _seed(self, options: GenerationOptions) -> None:
        if options.temperature > 0:
            import torch

            torch.manual_seed(options.seed)

    def _decode(self, ids) -> str:
        kept = [i for i in ids if i not in self._hidden]
        return self.tokenizer.decode(kept, skip_special_tokens=False)

    def _finish(self, new_ids: list[int], max_new: int, cancelled: bool) -> tuple[int, str]:
        """(tokens before the end, finish reason) for one row: an end-of-sequence token, or the pad after a stop text."""
        for n, token in enumerate(new_ids):
            if token in self._eos_ids or token == self.tokenizer.pad_token_id:
                return n, "stop"
        if len(new_ids) >= max_new:
            return len(new_ids), "length"
        return len(new_ids), "cancelled" if cancelled else "stop"

    def stream(self, messages, options=GenerationOptions(), cancel=None) -> Stream[GenerationStats]:
        """The decoded pieces, then GenerationStats. Closing the stream stops generation."""
        return Stream(self._stream(messages, options, cancel))

    def _stream(self, messages, options, cancel):
        abandoned = threading.Event()  # set when the consumer stops early or closes the generator
        kwargs = self._generate_kwargs(options, cancel, abandoned)
        result: dict = {}

        def work(inputs, streamer):
            try:
                result["out"] = self.model.generate(**inputs, streamer=streamer, **kwargs)
                if options.probe:
                    result["probe"] = self._probe(inputs, result["out"].sequences, options.probe)
            except BaseException as error:  # surfaced in the consumer's thread below
                result["error"] = error
                streamer.end()

        # The tokenizer is used under the lock too: a fast tokenizer shared by threads can raise "Already borrowed".
        with self._lock:
            start = time.perf_counter()
            inputs = self._encode([messages])
            streamer = _filtering_streamer_class()(self.tokenizer, self._hidden)
            self._seed(options)
            first = None
            thread = threading.Thread(target=work, args=(inputs, streamer), name="generate", daemon=True)
            thread.start()
            try:
                for piece in streamer:
                    if piece:
                        first = time.perf_counter() - start if first is None else first
                        yield piece
            finally:
                abandoned.set()
                thread.join()
            seconds = time.perf_counter() - start
        if "error" in result:
            raise result["error"]
        new_ids = result["out"].sequences[0, inputs["input_ids"].shape[1] :].tolist()
        cancelled = cancel is not None and cancel.is_set()
        tokens, reason = self._finish(new_ids, options.max_new_tokens, cancelled)
        evidence = self._evidence(new_ids[:tokens], [step[0] for step in result["out"].logits[:tokens]],
                                  result.get("probe"))
        return GenerationStats(tokens, reason, seconds, first, evidence, int(inputs["input_ids"].shape[1]))

    def _numbers(self, logprobs) -> dict[str, float]:
        return {t: float(logprobs[i].exp()) for i, t in zip(self._number_ids, self._number_texts)}

    def _evidence(self, ids: list[int], logits: list, probe) -> TokenEvidence:
        """Token probabilities of one generated row (`logits`: one vocabulary row per token)."""
        pieces, logprobs, numbers, shown = [], [], {}, ""
        for n, (token, row) in enumerate(zip(ids, logits)):
            text = self._decode(ids[: n + 1])  # whole-prefix decoding: the pieces join to the output exactly
            pieces.append(text[len(shown):])
            shown = text
            lp = row.float().log_softmax(-1)
            logprobs.append(float(lp[token]))
            if token in self._number_set:
                numbers[n] = self._numbers(lp)
        return TokenEvidence(tuple(pieces), tuple(logprobs), numbers, probe)

    def _probe(self, inputs, sequences, text: str):
        """After the output, evaluate `text` (unless the output holds it) and read the number written next:
        its first token's distribution over number tokens, and up to three greedy digits."""
        import torch

        output = self._decode(sequences[0, inputs["input_ids"].shape[1]:].tolist())
        if text in output:
            return None
        ids = [i for i in sequences[0].tolist() if i not in self._eos_ids] + self.tokenizer(
            " " + text, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = self.model.generate(torch.tensor([ids], device=self.device), max_new_tokens=3, do_sample=False,
                                      temperature=None, top_p=None, top_k=None, output_logits=True,
                                      return_dict_in_generate=True, pad_token_id=self.tokenizer.pad_token_id)
        digits = ""
        for token in out.sequences[0, len(ids):].tolist():
            if token not in self._number_set:
                break
            digits += self.tokenizer.decode([token])
        return digits, self._numbers(out.logits[0][0].float().log_softmax(-1))

    def generate_batch(self, batch, options=GenerationOptions()) -> list[tuple[str, GenerationStats]]:
        """Generate for several message lists as one left-padded batch; each gets the batch's wall time."""
        if not batch:
            return []
        kwargs = self._generate_kwargs(options, rows=len(batch))
        with self._lock:
            start = time.perf_counter()
            inputs = self._encode(batch)
            self._seed(options)
            kwargs.update(output_logits=False, return_dict_in_generate=False)  # no evidence for batches (memory)
            out = self.model.generate(**inputs, **kwargs)
            seconds = time.perf_counter() - start
            results = []
            for row in out[:, inputs["input_ids"].shape[1] :].tolist():
                tokens, reason = self._finish(row, options.max_new_tokens, cancelled=False)
                results.append((self._decode(row[:tokens]), GenerationStats(tokens, reason, seconds)))
        return results


@functools.cache
def _filtering_streamer_class():
    from transformers import TextIteratorStreamer

    class FilteringStreamer(TextIteratorStreamer):
        """Skips the prompt and the hidden special tokens, but keeps `<think>` markers."""

        def __init__(self, tokenizer, hidden_ids: frozenset):
            super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=False)
            self.hidden = hidden_ids

        def put(self, value):
            if self.next_tokens_are_prompt:
                return super().put(value)
            ids = [i for i in value.reshape(-1).tolist() if i not in self.hidden]
            if ids:
                super().put(value.new_tensor(ids))

    return FilteringStreamer
