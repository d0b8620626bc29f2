"""The command-line flags shared by `calibrated-chat`, `python -m assistant` and `calibrate`, each defined once.

    add_model_flags(parser)     --model --backend --device --dtype --threads --parallel --base-url --no-logprobs
                                --api-key-env --chat-template
    add_folder_flags(parser)    --data-dir --maps-dir
    add_answer_flags(parser)    --prompt --max-new-tokens --allow-uncalibrated

Flag defaults come from the environment where config.py documents a variable
(CALIBRATED_CHAT_MODEL, CALIBRATED_CHAT_PROMPT, …), so every command honours it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from assistant.core.config import DEFAULT_PROMPT, ModelConfig, default_prompt, model_config_from_env

__all__ = ["add_answer_flags", "add_folder_flags", "add_model_flags", "model_config_from_args",
           "positive_int"]

DATA_DIR_HELP = ("the one data folder: review store, map versions, runs, caches "
                 "[env CALIBRATED_CHAT_DATA_DIR; default the user data folder, see README]")
MAPS_DIR_HELP = ("a folder of map versions used alone, instead of <data folder>/maps over the shipped maps "
                 "[env CALIBRATED_CHAT_MAPS_DIR]")


def positive_int(text: str, least: int = 1) -> int:
    """An argparse type: a whole number of at least 1 (`least`)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
    return value


def _samples(text: str) -> int:
    return positive_int(text, least=0)


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that pick and place the chat model."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", help="HF id (local cache), model folder or .gguf file "
                   "[env CALIBRATED_CHAT_MODEL; default: embedded SmolLM2-135M-Instruct]")
    g.add_argument("--backend", help="inference backend: auto, transformers, llamacpp or openai (an OpenAI-compatible "
                   "server; checked when the model loads) [env CALIBRATED_CHAT_BACKEND; default auto]")
    g.add_argument("--device", help="auto, cpu, cuda, cuda:1 … [env CALIBRATED_CHAT_DEVICE]")
    g.add_argument("--dtype", help="auto, float32, bfloat16, float16 [env CALIBRATED_CHAT_DTYPE]")
    g.add_argument("--threads", type=int, help="CPU threads [env CALIBRATED_CHAT_THREADS]")
    g.add_argument("--parallel", type=positive_int, help="llama.cpp: chat requests decoded together at most, the "
                   "rest wait in order; 1 answers one at a time [env CALIBRATED_CHAT_PARALLEL; default 16]")
    g.add_argument("--base-url", help="with --backend openai: the server, e.g. http://127.0.0.1:8000/v1 "
                   "(--model is then its model name) [env CALIBRATED_CHAT_BASE_URL]")
    g.add_argument("--no-logprobs", dest="logprobs", action="store_false", default=None,
                   help="with --backend openai: do not ask for token log probabilities (a CPU llama.cpp server "
                   "answers about 4x faster; the token signals are then missing, so fit maps the same way) "
                   "[env CALIBRATED_CHAT_LOGPROBS=0]")
    g.add_argument("--api-key-env", help="with --backend openai: the environment variable that holds the server's "
                   "API key [env CALIBRATED_CHAT_API_KEY_ENV; default OPENAI_API_KEY]")
    g.add_argument("--chat-template", type=Path, help="a Jinja chat template file used instead of the model's own, "
                   "e.g. for a base model that has none (local backends) [env CALIBRATED_CHAT_CHAT_TEMPLATE]")


def add_folder_flags(parser: argparse.ArgumentParser, *, maps: bool = True, keep_earlier: bool = False) -> None:
    """--data-dir (and --maps-dir). `keep_earlier`: on a subcommand, keep a value given before its name."""
    default = argparse.SUPPRESS if keep_earlier else None
    parser.add_argument("--data-dir", type=Path, default=default, help=DATA_DIR_HELP)
    if maps:
        parser.add_argument("--maps-dir", type=Path, default=default, help=MAPS_DIR_HELP)


def add_answer_flags(parser: argparse.ArgumentParser, *, max_new_tokens: int | None = None,
                     uncalibrated: bool = True) -> None:
    """The flags that shape an answer: prompt, length cap, and (`uncalibrated`) running without a valid map."""
    parser.add_argument("--prompt", default=default_prompt(),
                        help=f"prompt id in prompts/ [env CALIBRATED_CHAT_PROMPT; default {DEFAULT_PROMPT}]")
    parser.add_argument("--max-new-tokens", type=positive_int, default=max_new_tokens,
                        help="cap on generated tokens per answer" + (f" (default {max_new_tokens})"
                                                                     if max_new_tokens else ""))
    parser.add_argument("--self-consistency", type=_samples, metavar="K",  # a string default goes through `type`
                        default=os.environ.get("CALIBRATED_CHAT_SELF_CONSISTENCY") or "0",
                        help="also sample K answers per question and use how often they agree as a signal (K more "
                             "generations, decoded together; maps read it when fitted on records collected with it) "
                             "[env CALIBRATED_CHAT_SELF_CONSISTENCY; default 0: off]")
    if uncalibrated:
        parser.add_argument("--allow-uncalibrated", action="store_true",
                            help="run even if the active map is invalid (every answer is then flagged)")


def model_config_from_args(args: argparse.Namespace) -> ModelConfig:
    """Environment first, then command-line flags over it (a `--data-dir` also holds the model cache)."""
    config = model_config_from_env().with_overrides(
        model=args.model, backend=args.backend, device=args.device, dtype=args.dtype, threads=args.threads,
        parallel=getattr(args, "parallel", None),
        base_url=getattr(args, "base_url", None), api_key_env=getattr(args, "api_key_env", None),
        logprobs=getattr(args, "logprobs", None), chat_template=getattr(args, "chat_template", None),
    )
    data_dir = getattr(args, "data_dir", None)
    if data_dir and config.cache_dir is None:
        config = config.with_overrides(cache_dir=Path(data_dir) / "cache")
    return config
