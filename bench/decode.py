"""Decode speed and model load time: this project's backends next to raw llama.cpp on the same GGUF.

Decode tokens/s = (tokens produced − 1) ÷ (time of the last token − time of the first token),
timed by the consumer of the stream: the first token carries the prompt's prefill, so it is
left out, and a model that stops early is measured over what it produced. Raw llama.cpp is
`Llama.generate` in a plain loop (greedy, no detokenizing) — the engine's own speed, the bar a
wrapper is held to. The two take turns run by run (`interleaved_decode`), best of each.

Load times come from a fresh interpreter per load (`python -m bench.decode BACKEND CACHE_DIR`
prints one JSON line): "cold" with an empty converted-model cache, "warm" with it filled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from assistant.core.config import ModelConfig
from assistant.models.backend import GenerationOptions
from assistant.models.registry import llama_cpp_installed, load_backend
from bench.questions import decode_messages

__all__ = ["RawLlamaCpp", "backend_decode", "interleaved_decode", "load_times", "probe_load", "weight_bytes"]

ROOT = Path(__file__).resolve().parent.parent


def _rate(tokens: int, first: float | None, last: float) -> float | None:
    if first is None or tokens < 2 or last <= first:
        return None
    return round((tokens - 1) / (last - first), 2)


def _best(runs: list[dict]) -> dict:
    return max(runs, key=lambda run: run["tokens_per_s"] or 0)


def backend_run(backend, max_new_tokens: int) -> dict:
    """One greedy decode of the decode prompt through a project Backend, timed token by token."""
    stream = backend.stream(decode_messages(), GenerationOptions(max_new_tokens=max_new_tokens, temperature=0.0))
    first = None
    start = time.perf_counter()
    for piece in stream:
        if piece and first is None:
            first = time.perf_counter() - start
    last = time.perf_counter() - start
    text, stats = stream.drain()
    return {
        "tokens": stats.tokens,
        "prefill_s": round(first, 4) if first is not None else None,
        "total_s": round(last, 3),
        "tokens_per_s": _rate(stats.tokens, first, last),
        "finish_reason": stats.finish_reason,
        "text": text,
    }


def backend_decode(backend, max_new_tokens: int, repeats: int = 1) -> dict:
    """Decode tokens/s of a project Backend at batch 1, greedy, on the decode prompt (best of `repeats`)."""
    return _best([backend_run(backend, max_new_tokens) for _ in range(repeats)])


class RawLlamaCpp:
    """llama-cpp-python's own `Llama.generate` on a GGUF: the engine without this project's code."""

    def __init__(self, model_path, threads: int, n_ctx: int):
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        start = time.perf_counter()
        self.llm = llama_cpp.Llama(
            model_path=str(model_path), n_threads=threads, n_threads_batch=threads, n_ctx=n_ctx, verbose=False
        )
        self.load_s = time.perf_counter() - start
        text_of = lambda t: self.llm._model.token_get_text(t) if t != -1 else ""  # noqa: E731
        self.formatter = Jinja2ChatFormatter(
            template=self.llm.metadata["tokenizer.chat_template"],
            eos_token=text_of(self.llm.token_eos()),
            bos_token=text_of(self.llm.token_bos()),
            add_generation_prompt=True,
        )
        self.is_eog = lambda token: llama_cpp.llama_vocab_is_eog(self.llm._model.vocab, token)  # noqa: E731

    def run(self, max_new_tokens: int, messages=None) -> dict:
        """One greedy decode (of the decode prompt by default) in a plain `generate` loop (no detokenizing)."""
        prompt = self.formatter(messages=messages or decode_messages()).prompt
        tokens = self.llm.tokenize(prompt.encode(), add_bos=False, special=True)
        self.llm.reset()
        produced: list[int] = []
        first = None
        start = time.perf_counter()
        for token in self.llm.generate(tokens, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
            if self.is_eog(token):
                break
            if first is None:
                first = time.perf_counter() - start
            produced.append(token)
            if len(produced) >= max_new_tokens:
                break
        last = time.perf_counter() - start
        return {
            "tokens": len(produced),
            "prefill_s": round(first, 4) if first is not None else None,
            "total_s": round(last, 3),
            "tokens_per_s": _rate(len(produced), first, last),
            "load_s": round(self.load_s, 3),
            "text": self.llm.detokenize(produced).decode("utf-8", "replace"),
        }

    def close(self) -> None:
        self.llm.close()


def interleaved_decode(backend, raw: RawLlamaCpp, max_new_tokens: int, repeats: int) -> tuple[dict, dict]:
    """Best-of-`repeats` runs of the project backend and of raw llama.cpp, taken in turns, so a
    noisy spell on the machine hits both alike."""
    ours, theirs = [], []
    for _ in range(repeats):
        ours.append(backend_run(backend, max_new_tokens))
        theirs.append(raw.run(max_new_tokens))
    return _best(ours), _best(theirs)


def weight_bytes(backend) -> tuple[int, str]:
    """Bytes of weights one decode step reads, and how that was counted."""
    model = getattr(backend, "model", None)
    if model is not None and hasattr(
        model, "parameters"
    ):  # transformers: every parameter once (tied ones once)
        total = sum(p.numel() * p.element_size() for p in model.parameters())
        return total, f"parameter bytes ({next(model.parameters()).dtype})"
    source = getattr(backend, "source", None)
    if source is not None and source.kind == "gguf":
        return Path(source.location).stat().st_size, "GGUF file size"
    raise ValueError(f"cannot count the weight bytes of {type(backend).__name__}")


def probe_load(backend: str, cache_dir: str, threads: int | None) -> dict:
    """In this (fresh) interpreter: import the engine library, then time `load_backend` for `backend`.

    `engine_import_s` is the engine's own import (llama_cpp, or torch + transformers); `load_s` is
    `load_backend()` after it, including whatever else the project imports on the way
    (`imports_torch` says whether torch was first imported inside `load_backend`).
    """

    start = time.perf_counter()
    if backend == "llamacpp" or (backend == "auto" and llama_cpp_installed()):
        import llama_cpp  # noqa: F401
    else:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    imported = time.perf_counter()
    torch_before = "torch" in sys.modules
    built = load_backend(ModelConfig(backend=backend, cache_dir=Path(cache_dir), threads=threads))
    done = time.perf_counter()
    return {
        "backend": type(built).__name__,
        "engine_import_s": round(imported - start, 3),
        "load_s": round(done - imported, 3),
        "imports_torch": not torch_before and "torch" in sys.modules,
        "from": getattr(built, "loaded_from", "") or str(built.source.location),
    }


def load_times(backend: str, cache_dir: Path, threads: int | None, timeout: float = 600) -> dict:
    """Cold then warm load of the default model with `backend`, each in a fresh interpreter.

    Cold: `cache_dir` is empty (transformers dequantizes the GGUF and fills it); warm: the same
    folder again. The OS file cache is not dropped (that needs root), so "cold" is a cold project
    cache, not a cold disk.
    """
    out = {}
    for kind in ("cold", "warm"):
        cmd = [sys.executable, "-m", "bench.decode", backend, str(cache_dir), str(threads or 0)]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"{kind} load failed: {done.stderr.strip()[-400:]}")
        out[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


if __name__ == "__main__":  # the load probe: python -m bench.decode BACKEND CACHE_DIR THREADS
    import logging

    logging.disable(logging.WARNING)
    name, folder, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(json.dumps(probe_load(name, folder, n or None)))
