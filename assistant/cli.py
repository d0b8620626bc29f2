"""`python -m assistant`: ask one question, or check and refit the domain router.

    python -m assistant ask "What is 17 + 25?" [--json] [--show-reasoning] [--model M]
    python -m assistant route --data ../shared/data/*.jsonl [--json]   # or questions to route
    python -m assistant fit-router [--examples FILE] [--out FILE]

Errors print one line (`error: …`) and exit with status 2 (bad input or files)
or 1 (anything else unexpected).
"""

from __future__ import annotations

import argparse
import json
import logging
import textwrap
from dataclasses import asdict

from assistant import routing
from assistant.core.domains import DOMAINS, GENERAL
from assistant.core.errors import InputError, run_cli
from assistant.core.flags import (
    add_answer_flags,
    add_folder_flags,
    add_model_flags,
    model_config_from_args,
    positive_int,
)
from assistant.core.reply import REVIEW_REASONS
from assistant.models.backend import GenerationOptions
from assistant.pipeline import Assistant

__all__ = ["main", "build_parser", "format_reply"]

EXAMPLES = """examples:
  python -m assistant ask "What is 12 times 11?"
  python -m assistant ask "Who wrote Hamlet?" --json
  python -m assistant ask "Is 91 prime?" --show-reasoning --model /models/Qwen3-0.6B
  python -m assistant route --data ../shared/data/math.jsonl --json
  python -m assistant fit-router
"""


def _pct(value) -> str:
    return "none" if value is None else f"{value * 100:.0f}%"


def format_reply(reply, show_reasoning: bool = False) -> str:
    """The human-readable form of a Reply for the terminal."""
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
    add_answer_flags(ask, max_new_tokens=GenerationOptions.max_new_tokens)
    add_folder_flags(ask)
    add_model_flags(ask)
    ask.set_defaults(func=_ask)
    _add_router_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return run_cli(lambda: args.func(args), interrupted="interrupted")


def format_routing(report: routing.RoutingReport) -> str:
    """A plain-text table of a RoutingReport for the terminal."""
    columns = (*DOMAINS, GENERAL)
    lines = [f"routed {report.n} questions: accuracy {report.accuracy:.2%} (general counts as wrong), "
             f"general {report.general_rate:.2%}", "",
             f"{'domain':<10} {'precision':>9} {'recall':>7} {'n':>5}"]
    for d, row in report.per_domain.items():
        lines.append(f"{d:<10} {row['precision']:>9.3f} {row['recall']:>7.3f} {row['n']:>5}")
    lines += ["", "true \\ predicted " + " ".join(f"{c:>9}" for c in columns)]
    for t, row in report.confusion.items():
        lines.append(f"{t:<17} " + " ".join(f"{row[c]:>9}" for c in columns))
    return "\n".join(lines)


def _add_router_commands(sub) -> None:
    fit = sub.add_parser("fit-router", help="refit the domain classifier on its example questions",
                         description="Refit the router on labelled examples, print CV accuracy, write router.json.")
    fit.add_argument("--examples", nargs="+", default=[routing.DEFAULT_EXAMPLES_PATH], help="labelled JSONL files")
    fit.add_argument("--out", default=routing.DEFAULT_ROUTER_PATH, help="router JSON to write")
    fit.add_argument("--threshold", type=float, default=routing.DEFAULT_THRESHOLD, help="below it: general")
    fit.add_argument("--folds", type=positive_int, default=5, help="cross-validation folds")
    fit.set_defaults(func=_fit)
    route = sub.add_parser("route", help="route questions, or score labelled JSONL files",
                           description="Route questions, or score labelled JSONL files (accuracy, "
                                       "precision/recall, confusion).")
    route.add_argument("questions", nargs="*", help="questions to route one by one")
    route.add_argument("--data", nargs="+", default=[], help="JSONL files with 'question' and 'domain'")
    route.add_argument("--router", default=None, help="router JSON (default: the shipped one)")
    route.add_argument("--json", action="store_true", help="print one JSON object")
    route.set_defaults(func=_route)


def _fit(args: argparse.Namespace) -> None:
    router = routing.fit_router(routing.read_labelled(args.examples), routing.load_embedder(),
                                threshold=args.threshold, folds=args.folds)
    path = router.save(args.out)
    print(f"{router.n_examples} examples, {args.folds}-fold CV accuracy {router.cv_accuracy:.2%}")
    print("threshold  general  acc(kept)  acc(sent to general)  acc(general=wrong)")
    pct = lambda v: "-" if v is None else f"{v:.2%}"  # noqa: E731
    for row in router.extra["cv_threshold_table"]:
        print(f"{row['threshold']:>9}  {row['general_rate']:>7.2%}  {pct(row['accuracy_kept']):>9}  "
              f"{pct(row['accuracy_dropped']):>20}  {row['accuracy_general_as_wrong']:>18.2%}")
    print(f"wrote {path} (threshold {router.threshold})")


def _route(args: argparse.Namespace) -> None:
    if not args.questions and not args.data:
        raise InputError("give questions to route, or --data FILE ... to score labelled ones")
    router = routing.DomainRouter.load(args.router)
    if args.data:
        report = routing.evaluate(router, routing.read_labelled(args.data))
        print(json.dumps(report.to_dict()) if args.json else format_routing(report))
        return
    for question, r in zip(args.questions, router.route_many(args.questions)):
        if args.json:
            print(json.dumps({"question": question, **asdict(r)}))
        else:
            print(f"{r.domain:<10} {r.probability:.3f}  {question}")
