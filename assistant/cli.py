"""`python -m assistant`: ask one question, or check and refit the domain router.

    python -m assistant ask "What is 17 + 25?" [--json] [--show-reasoning] [--model M]
    python -m assistant route --data ../shared/data/*.jsonl [--json]   # or questions to route
    python -m assistant fit-router [--examples FILE ...] [--out FILE] [--threshold T]

Errors print one line (`error: …`) and exit with status 2 (bad input or files)
or 1 (anything else unexpected).
"""

from __future__ import annotations

import argparse
import json
import logging
import textwrap
from dataclasses import asdict

from assistant.answering.pipeline import Assistant
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
from assistant.routing import fit as router_fit
from assistant.routing import router as routing
from assistant.web.render import EVERY_ANSWER_CHECKED, every_answer_checked

__all__ = ["main", "build_parser", "format_reply"]

EXAMPLES = """examples:
  python -m assistant ask "What is 12 times 11?"
  python -m assistant ask "Who wrote Hamlet?" --json
  python -m assistant ask "Is 91 prime?" --show-reasoning --model /models/Qwen3-0.6B
  python -m assistant route --data ../shared/data/math.jsonl --json
  python -m assistant route --data ../shared/data/*.jsonl assistant/data/off_domain_heldout.jsonl
  python -m assistant fit-router --examples assistant/data/domain_examples.jsonl \
      assistant/data/off_domain_fit.jsonl ../shared/calib/*.jsonl
"""


def _pct(value) -> str:
    return "none" if value is None else f"{value * 100:.0f}%"


def _range(reply) -> str:
    """" (range 22–49%, 9 times in 10)", or why there is none ("" without a calibrated figure)."""
    if reply.confidence is None:
        return ""
    if reply.confidence_low is None:
        return " (no range: this map was fitted without one)"
    times = round((reply.range_level or 0.9) * 10)
    return f" (range {reply.confidence_low * 100:.0f}–{_pct(reply.confidence_high)}, {times} times in 10)"


def _likeness(reply) -> str:
    """Whether the question is like the questions the map was fitted on, in words."""
    if reply.ood_score is None:
        return "not measured (no map, or the map stores no fitting questions)"
    distance = f"distance {reply.ood_score:.2f} × the threshold"
    return f"NO, the figure may not hold ({distance})" if reply.extrapolating else f"yes ({distance})"


def format_reply(reply, show_reasoning: bool = False, maps=None) -> str:
    """The human-readable form of a Reply for the terminal. With `maps` (those that calibrated it), a domain
    where every answer is checked says so, instead of that this answer's figure is below a cut-off."""
    lines = []
    if show_reasoning and reply.reasoning:
        lines += ["Reasoning:", textwrap.indent(reply.reasoning.strip(), "  "), ""]
    lines += [
        f"Answer:      {reply.answer if reply.answer is not None else '(no answer found)'}",
        f"Confidence:  {_pct(reply.confidence)} calibrated{_range(reply)}   (model said {_pct(reply.raw_confidence)})",
        f"Like fitting questions: {_likeness(reply)}",
        *([f"Sampled answers that agree: {_pct(reply.signals.agreement)}"] if reply.signals.agreement is not None else []),
        f"Domain:      {reply.domain} (p={reply.domain_probability:.2f})"
        + (f": {reply.domain_description}" if reply.domain_description else ""),
        f"Map:         {reply.map_version or 'none'}   model {reply.model}, prompt {reply.prompt}",
    ]
    if reply.needs_review:
        lines.append("Human check: NEEDED")
        checked = every_answer_checked(maps, reply.domain)
        lines += [f"  - {EVERY_ANSWER_CHECKED if r == 'low_confidence' and checked else REVIEW_REASONS[r]} ({r})"
                  for r in reply.review_reasons]
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
        self_consistency=args.self_consistency,
    )
    reply = assistant.ask(args.question)
    if args.json:
        print(json.dumps(reply.to_dict(), ensure_ascii=False))
    else:
        print(format_reply(reply, args.show_reasoning, assistant.maps))
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
    # os_errors: an unwritable --out is bad input; `python -m assistant ask … | head` is fine.
    return run_cli(lambda: args.func(args), interrupted="interrupted", os_errors=True)


def format_routing(report: router_fit.RoutingReport) -> str:
    """A plain-text table of a RoutingReport for the terminal."""
    columns = (*DOMAINS, GENERAL)
    parts = [f"routed {report.n} questions: accuracy {report.accuracy:.2%} (general counts as wrong for a "
             "domain's question)"]
    if any(report.per_domain[d]["n"] for d in DOMAINS):
        parts.append(f"in-domain sent to general {report.general_rate:.2%}")
    if report.fallback_rate is not None:
        parts.append(f"off-domain sent to general {report.fallback_rate:.2%}")
    lines = [", ".join(parts),
             f"router probability: ECE {report.ece:.4f}, Brier {report.brier:.4f} (against: the route is right)", "",
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
    fit.add_argument("--examples", nargs="+", default=[routing.DEFAULT_EXAMPLES_PATH, routing.OFF_DOMAIN_FIT_PATH],
                     help="labelled JSONL files, off-domain questions (domain 'general') among them")
    fit.add_argument("--out", default=routing.DEFAULT_ROUTER_PATH, help="router JSON to write")
    fit.add_argument("--threshold", type=float, default=None,
                     help="a domain below it goes to general (default: chosen by cross-validation)")
    fit.add_argument("--folds", type=positive_int, default=5, help="cross-validation folds")
    fit.set_defaults(func=_fit)
    route = sub.add_parser("route", help="route questions, or score labelled JSONL files",
                           description="Route questions, or score labelled JSONL files (accuracy, "
                                       "precision/recall, confusion).")
    route.add_argument("questions", nargs="*", help="questions to route one by one")
    route.add_argument("--data", nargs="+", default=[],
                       help="JSONL files with 'question' and 'domain' (a domain, or 'general' for off-domain ones)")
    route.add_argument("--router", default=None, help="router JSON (default: the shipped one)")
    route.add_argument("--json", action="store_true", help="print one JSON object")
    route.set_defaults(func=_route)


def _fit(args: argparse.Namespace) -> None:
    router = router_fit.fit_router(router_fit.read_labelled(args.examples), routing.load_embedder(),
                                   threshold=args.threshold, folds=args.folds,
                                   fitted_on=router_fit.file_summary(args.examples))
    path = router.save(args.out)
    cv = router.extra["cv"]
    print(f"{router.n_examples} examples, {args.folds}-fold CV accuracy {router.cv_accuracy:.2%} "
          f"(in-domain {cv['in_domain_accuracy']:.2%}, off-domain sent to general {cv['off_domain_fallback_rate']:.2%}); "
          f"temperature {router.temperature:.3f}, ECE {cv['ece_before_temperature']:.4f} -> {cv['ece']:.4f}")
    print("threshold  in-domain acc  in-domain to general  off-domain to general")
    for row in router.extra["cv_threshold_table"]:
        print(f"{row['threshold']:>9}  {row['in_domain_accuracy']:>13.2%}  {row['in_domain_general_rate']:>20.2%}  "
              f"{row['off_domain_fallback_rate']:>21.2%}")
    print(f"wrote {path} (threshold {router.threshold}; chosen by CV: {router.extra['threshold_chosen_by_cv']})")


def _route(args: argparse.Namespace) -> None:
    if not args.questions and not args.data:
        raise InputError("give questions to route, or --data FILE ... to score labelled ones")
    router = routing.DomainRouter.load(args.router)
    if args.data:
        report = router_fit.evaluate(router, router_fit.read_labelled(args.data))
        print(json.dumps(report.to_dict()) if args.json else format_routing(report))
        return
    for question, r in zip(args.questions, router.route_many(args.questions)):
        if args.json:
            print(json.dumps({"question": question, **asdict(r)}))
        else:
            print(f"{r.domain:<10} {r.probability:.3f}  {question}")
