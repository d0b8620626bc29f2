"""`python -m assistant`: ask one question, or check and refit the domain router.

    python -m assistant ask "What is 17 + 25?" [--json] [--show-reasoning] [--model M]
    python -m assistant route --data ../shared/data/*.jsonl [--json]
    python -m assistant fit-router [--examples FILE] [--out FILE]

Errors print one line (`error: …`) and exit with status 2 (bad input or files)
or 1 (anything else unexpected).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap

from assistant.models.backend import GenerationOptions
from assistant.core.errors import run_cli

__all__ = ["main", "add_model_arguments", "model_config_from_args", "DATA_DIR_HELP", "MAPS_DIR_HELP"]

DATA_DIR_HELP = ("the one data folder: review store, map versions, runs, caches "
                 "[env CALIBRATED_CHAT_DATA_DIR; default the user data folder, see README]")
MAPS_DIR_HELP = ("a folder of map versions used alone, instead of <data folder>/maps over the shipped maps "
                 "[env CALIBRATED_CHAT_MAPS_DIR]")

EXAMPLES = """examples:
  python -m assistant ask "What is 12 times 11?"
  python -m assistant ask "Who wrote Hamlet?" --json
  python -m assistant ask "Is 91 prime?" --show-reasoning --model /models/Qwen3-0.6B
  python -m assistant route --data ../shared/data/math.jsonl --json
  python -m assistant fit-router
"""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags that pick and place the chat model (shared with the app and `calibrate`)."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", help="HF id (local cache), model folder or .gguf file "
                   "[env CALIBRATED_CHAT_MODEL; default: embedded SmolLM2-135M-Instruct]")
    g.add_argument("--backend", choices=["auto", "transformers", "llamacpp"],
                   help="inference backend [env CALIBRATED_CHAT_BACKEND; default auto]")
    g.add_argument("--device", help="auto, cpu, cuda, cuda:1 … [env CALIBRATED_CHAT_DEVICE]")
    g.add_argument("--dtype", help="auto, float32, bfloat16, float16 [env CALIBRATED_CHAT_DTYPE]")
    g.add_argument("--threads", type=int, help="CPU threads [env CALIBRATED_CHAT_THREADS]")


def model_config_from_args(args: argparse.Namespace):
    """Environment first, then command-line flags over it (a `--data-dir` also holds the model cache)."""
    from pathlib import Path

    from assistant.core.config import model_config_from_env

    config = model_config_from_env().with_overrides(
        model=args.model, backend=args.backend, device=args.device, dtype=args.dtype, threads=args.threads
    )
    data_dir = getattr(args, "data_dir", None)
    if data_dir and config.cache_dir is None:
        config = config.with_overrides(cache_dir=Path(data_dir) / "cache")
    return config


def _pct(value) -> str:
    return "none" if value is None else f"{value * 100:.0f}%"


def format_reply(reply, show_reasoning: bool = False) -> str:
    """The human-readable form of a Reply for the terminal."""
    from assistant.core.reply import REVIEW_REASONS

    lines = []
    if show_reasoning and reply.reasoning:
        lines += ["Reasoning:", textwrap.indent(reply.reasoning.strip(), "  "), ""]
    lines += [
        f"Answer:      {reply.answer if reply.answer is not None else '(no answer found)'}",
        f"Confidence:  {_pct(reply.confidence)} calibrated   (model said {_pct(reply.raw_confidence)})",
        f"Domain:      {reply.domain} (p={reply.domain_probability:.2f})",
        f"Map:         {reply.map_version or 'none'}   model {reply.model}, prompt {reply.prompt}",
    ]
    if reply.needs_review:
        lines.append("Human check: NEEDED")
        lines += [f"  - {REVIEW_REASONS[r]} ({r})" for r in reply.review_reasons]
    else:
        lines.append("Human check: not needed")
    return "\n".join(lines)


def _ask(args) -> int:
    from assistant.pipeline import Assistant

    assistant = Assistant.from_config(
        model_config_from_args(args),
        prompt_id=args.prompt,
        maps_dir=args.maps_dir,
        data_dir=args.data_dir,
        allow_uncalibrated=args.allow_uncalibrated,
        options=GenerationOptions(max_new_tokens=args.max_new_tokens),
    )
    reply = assistant.ask(args.question)
    if args.json:
        print(json.dumps(reply.to_dict(), ensure_ascii=False))
    else:
        print(format_reply(reply, args.show_reasoning))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m assistant", description=__doc__.split("\n")[0],
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="answer one question with a calibrated confidence",
                         epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print one JSON object with every reply field")
    ask.add_argument("--show-reasoning", action="store_true", help="also print the reasoning trace")
    ask.add_argument("--prompt", default="confidence_tags", help="prompt id in prompts/ (default confidence_tags)")
    ask.add_argument("--data-dir", help=DATA_DIR_HELP)
    ask.add_argument("--maps-dir", help=MAPS_DIR_HELP)
    ask.add_argument("--max-new-tokens", type=int, default=GenerationOptions.max_new_tokens)
    ask.add_argument("--allow-uncalibrated", action="store_true",
                     help="run even if the active map is invalid (every answer is flagged)")
    add_model_arguments(ask)

    sub.add_parser("route", help="route the questions of JSONL files and score the router", add_help=False)
    sub.add_parser("fit-router", help="refit the domain classifier on its example questions", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # route and fit-router keep their own argument parsers in assistant.routing.
    if argv and argv[0] in ("route", "fit-router"):
        from assistant import routing

        entry = routing.route_main if argv[0] == "route" else routing.fit_main
        return run_cli(lambda: entry(argv[1:]), interrupted="interrupted")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return run_cli(lambda: _ask(args), interrupted="interrupted")
