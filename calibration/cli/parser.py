"""`calibrate`: the admin CLI that builds, measures and versions calibration maps.

    calibrate data --sources benchmarks/ --out questions/   # fitting + held-out questions
    calibrate make-data --domain math --n 300 --seed 1 --out data/math.jsonl
    calibrate collect --data data/*.jsonl --out records.jsonl [--model M] [--batch-size N]
    calibrate collect --backend openai --base-url URL --model NAME --data … --out … [--concurrency N]
    calibrate onboard --questions questions/ [--model M | --backend openai --base-url URL --model NAME]
    calibrate fit --records records.jsonl [more …]            # saves a new map version
    calibrate report --records records.jsonl --maps v0002 --plots plots/
    calibrate eval --data ../shared/data/math.jsonl --maps active
    calibrate compare-models --data heldout/*.jsonl --runs runs/ --pair A "--prompt direct" --pair B "--model M"
    calibrate maps list | show VERSION | activate VERSION | rollback
    calibrate reviews export --out reviews.jsonl
    calibrate domains list | show NAME | add NAME --description TEXT --examples FILE | remove NAME | refit

Exit status: 0 done, 2 bad input (one line on stderr, `error: …`, names the
file/line/field and what to do), 1 unexpected failure, 130 interrupted (Ctrl-C or
SIGTERM; re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from assistant.calibrated.maps import SIGNAL_SETS
from assistant.core.domainfile import MIN_EXAMPLES
from assistant.core.domains import DOMAINS
from assistant.core.errors import run_cli
from assistant.core.flags import add_answer_flags, add_folder_flags, add_model_flags, positive_int
from assistant.models.backend import GenerationOptions
from calibration.cli.commands import (
    cmd_collect,
    cmd_compare,
    cmd_eval,
    cmd_fit,
    cmd_make_data,
    cmd_records,
    cmd_report,
    cmd_reviews,
)
from calibration.cli.data import add_data_command
from calibration.cli.domains import cmd_domains
from calibration.cli.maps import cmd_maps
from calibration.cli.models import add_models_command
from calibration.cli.onboard import cmd_onboard

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (`error: …`, exit 2), like every other error of the CLI."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see `{self.prog} --help`)\n")


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1), not {text!r}")
    return value


_FORMAT = argparse.RawDescriptionHelpFormatter


def _command(parent, name: str, help: str, *examples: str, on_error: bool = True, folders: bool = True):
    """A subcommand with its examples; --on-error for those that read JSONL, the folder flags for all
    that read or write the data folder (accepted before or after the command's name)."""
    # argparse %-formats a help string (not a description): "95%" would break `calibrate --help`
    p = parent.add_parser(name, help=help.replace("%", "%%"), description=help, formatter_class=_FORMAT,
                          epilog="examples:\n" + "\n".join("  " + e for e in examples))
    if on_error:
        p.add_argument("--on-error", choices=["stop", "skip"], default="stop",
                       help="on a malformed JSONL line: stop with its line number (default) or skip it")
    if folders:
        add_folder_flags(p, keep_earlier=True)
    return p


def _collect_flags(p) -> None:
    p.add_argument("--data", nargs="+", type=Path, required=True, help="question JSONL file(s)")
    p.add_argument("--limit", type=positive_int, help="answer at most N new questions")
    p.add_argument("--batch-size", type=positive_int, default=1,
                   help="questions decoded together (llama.cpp, transformers); their answers differ in float "
                        "rounding from the chat's, so 1 (the default) collects exactly what the chat answers")
    p.add_argument("--concurrency", type=positive_int, default=None,
                   help="questions sent to a model server at once (default: the backend's max_concurrency, "
                        "8 for --backend openai; a local model answers one at a time)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_answer_flags(p, max_new_tokens=GenerationOptions.max_new_tokens, uncalibrated=False)
    add_model_flags(p)


def _fit_flags(p, question_files: bool = True) -> None:
    p.add_argument("--target-risk", type=float, default=0.1,
                   help="max error rate among answers not flagged (default 0.1)")
    p.add_argument("--delta", type=float, default=0.05, help="1 - confidence level of the risk bound")
    p.add_argument("--min-samples", type=positive_int, default=30,
                   help="usable records a domain needs for its own map (default 30; fewer: general map)")
    p.add_argument("--signals", choices=SIGNAL_SETS, default="fused",
                   help="fused (default): every confidence signal, combined per domain; stated: the "
                        "stated confidence only (the paper's baseline)")
    p.add_argument("--holdout", type=_share, default=1 / 3,
                   help="share of each domain's records held out to test review thresholds on, which "
                        "makes their guarantee hold (default 1/3; 0: no guarantee)")
    if question_files:
        p.add_argument("--questions", nargs="+", type=Path,
                       help="question JSONL files giving the text of records that carry only an id (default: "
                            "../shared/calib/*.jsonl where it exists), for the question features")
    p.add_argument("--no-question-features", action="store_true",
                   help="fused combiners read the answer's signals only, not the question's embedding and length")


def _records_flags(p, required: bool = True) -> None:
    p.add_argument("--records", nargs="+", type=Path, required=required)
    p.add_argument("--keep-model", help="use only records of this model")
    p.add_argument("--keep-prompt", help="use only records of this prompt")


def _report_flags(p) -> None:
    p.add_argument("--baseline-maps", help="stated-only maps (file, version or 'active') to show beside the "
                                           "measured ones, e.g. v0002; omitted: a stated-only fit "
                                           "cross-validated on the records")
    p.add_argument("--plots", help="write reliability and risk-coverage PNGs here")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _fit_flags(p)


def _add_data_commands(sub) -> None:
    p = _command(sub, "make-data", "write generated labelled questions with certain gold answers",
                 "calibrate make-data --domain reasoning --n 300 --seed 7 --out data/reasoning.jsonl",
                 on_error=False, folders=False)
    p.add_argument("--domain", required=True, help=f"one of {', '.join(DOMAINS)}")
    p.add_argument("--n", type=positive_int, required=True, help="how many questions")
    p.add_argument("--seed", type=int, default=0, help="same seed, same questions (default 0)")
    p.add_argument("--out", required=True, help="JSONL file to write (replaced atomically)")
    p.set_defaults(func=cmd_make_data)

    p = _command(sub, "collect", "answer and grade questions, appending records (resumable)",
                 "calibrate collect --data data/math.jsonl data/factual.jsonl --out records.jsonl",
                 "calibrate collect --data data/*.jsonl --out records.jsonl --batch-size 8",
                 "calibrate collect --backend openai --base-url http://127.0.0.1:8000/v1 --model M "
                 "--data data/*.jsonl --out records.jsonl --concurrency 8",
                 "(re-run the same command after a crash or Ctrl-C: ids already in records.jsonl are skipped)")
    _collect_flags(p)
    p.add_argument("--out", required=True, help="records JSONL (appended to; ids already there are skipped)")
    p.set_defaults(func=cmd_collect)

    p = _command(sub, "records", "strip benchmark text from records to commit them, or put the questions back by id",
                 "calibrate records strip --records runs/calib.jsonl --data ../shared/calib/*.jsonl --out kept.jsonl",
                 "calibrate records rebuild --records kept.jsonl --data ../shared/calib/*.jsonl --out full.jsonl",
                 on_error=False, folders=False)
    actions = p.add_subparsers(dest="records_command", required=True, metavar="ACTION")
    for action, help in (("strip", "drop question and answer text, add each item's source and license"),
                         ("rebuild", "restore each record's question from the question files")):
        r = _command(actions, action, help, f"calibrate records {action} --records IN --data QUESTIONS --out OUT",
                     on_error=False, folders=False)
        r.add_argument("--records", type=Path, required=True)
        r.add_argument("--data", nargs="+", type=Path, required=True, help="the question JSONL files, by id")
        r.add_argument("--out", required=True)
    p.set_defaults(func=cmd_records)


def _add_fit_commands(sub) -> None:
    p = _command(sub, "fit", "fit per-domain isotonic maps and review thresholds; saves a new version",
                 "calibrate fit --records records.jsonl",
                 "calibrate fit --records records.jsonl reviews.jsonl --activate",
                 "calibrate fit --records old.jsonl --keep-model SmolLM2-135M-Instruct.Q4_1 --out maps.json")
    _records_flags(p)
    p.add_argument("--out", help="also write the maps to this file")
    p.add_argument("--activate", action="store_true", help="make the new version live at once")
    _fit_flags(p)
    p.set_defaults(func=cmd_fit)

    p = _command(sub, "report", "raw vs calibrated metrics per domain on held-out records",
                 "calibrate report --records heldout.jsonl --maps active --plots plots/",
                 "calibrate report --records records.jsonl --maps v0002 --json   # cross-validated if v0002 "
                 "was fitted on them",
                 "calibrate report --maps v0004 --baseline-maps v0005 --heldout benchmark runs/real/data-*.jsonl "
                 "--heldout everyday calibration/records/everyday/heldout-*.jsonl")
    _records_flags(p, required=False)
    p.add_argument("--maps", help="maps file, version (v0003) or 'active'; omitted: 5-fold cross-validation")
    p.add_argument("--heldout", nargs="+", action="append", metavar=("NAME", "FILE"),
                   help="a named held-out set (repeat for each): prints every set side by side per domain, "
                        "the --maps pipeline and the --baseline-maps one, instead of the --records report")
    _report_flags(p)
    p.set_defaults(func=cmd_report)

    p = _command(sub, "compare", "two runs over the same questions under one map: what changed, with 95% intervals",
                 "calibrate compare --records runs/real/data-*.jsonl --against runs/batched/data-*.jsonl "
                 "--maps active",
                 "calibrate compare --records before.jsonl --against after.jsonl --maps v0003 --json")
    _records_flags(p)
    p.add_argument("--against", nargs="+", type=Path, required=True,
                   help="the second run's records (the same questions, answered another way)")
    p.add_argument("--maps", default="active", help="maps file, version or 'active' (default) to score both runs")
    p.add_argument("--resamples", type=positive_int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_compare)

    p = _command(sub, "eval", "collect on held-out questions, then report with the given maps",
                 "calibrate eval --data ../shared/data/math.jsonl --maps active",
                 "calibrate eval --data ../shared/data/*.jsonl --maps v0002 --limit 100 --json")
    _collect_flags(p)
    p.add_argument("--maps", default="active", help="maps file, version or 'active' (default)")
    p.add_argument("--out", help="records file to write (default <data folder>/runs/eval-<version>-<data>.jsonl; "
                                 "resumable)")
    _report_flags(p)
    p.set_defaults(func=cmd_eval)


def _add_onboard_command(sub) -> None:
    p = _command(sub, "onboard", "one command from a model to active maps: collect, fit, measure on held-out "
                 "questions, write a calibration card, activate if not worse than the active maps",
                 "calibrate onboard --questions questions/   # the default model",
                 "calibrate onboard --questions questions/ --backend openai --base-url http://127.0.0.1:8000/v1 "
                 "--model M --per-domain 200",
                 "(questions/ as `calibrate data` writes it; re-run after a crash to resume; exit 3: the gate "
                 "kept the active maps, --force activates anyway)")
    p.add_argument("--questions", required=True, type=Path,
                   help="a folder with fitting/<domain>.jsonl and heldout/<domain>.jsonl (`calibrate data --out`)")
    p.add_argument("--per-domain", type=positive_int, default=100,
                   help="fitting answers per domain (default 100), from --questions and again from the everyday set")
    p.add_argument("--heldout-per-domain", type=positive_int, default=50,
                   help="held-out answers per domain for the card and the gate (default 50), likewise")
    p.add_argument("--no-everyday", action="store_true",
                   help="only the --questions folder: not also the project's own everyday questions "
                        "(calibration/everyday), which are fitted and measured on by default")
    p.add_argument("--card", type=Path, help="the calibration card's folder (default <data folder>/onboard/<model>--"
                                             "<prompt>/card)")
    p.add_argument("--force", action="store_true", help="activate the new maps even if the gate refuses them")
    p.add_argument("--resamples", type=positive_int, default=1000, help="the gate's bootstrap resamples (default 1000)")
    p.add_argument("--batch-size", type=positive_int, default=1, help="questions decoded together (local models)")
    p.add_argument("--concurrency", type=positive_int, default=None,
                   help="questions sent to a model server at once (default: the backend's max_concurrency)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_answer_flags(p, max_new_tokens=GenerationOptions.max_new_tokens, uncalibrated=False)
    add_model_flags(p)
    _fit_flags(p, question_files=False)
    p.set_defaults(func=cmd_onboard, limit=None)


def _add_admin_commands(sub) -> None:
    p = _command(sub, "maps", "list, show, activate or roll back map versions",
                 "calibrate maps list", "calibrate maps show v0002", "calibrate maps activate v0002",
                 "calibrate maps rollback", on_error=False)
    actions = p.add_subparsers(dest="maps_command", required=True, metavar="ACTION")
    _command(actions, "list", "every version; * marks the active one of each (model, prompt) pair",
             "calibrate maps list", on_error=False)
    sp = _command(actions, "show", "print one version (a table, or JSON with --json)",
                  "calibrate maps show v0002 --json", on_error=False)
    sp.add_argument("version")
    sp.add_argument("--json", action="store_true", help="the whole map file as JSON")
    sp = _command(actions, "activate", "make a version live for the model and prompt it was fitted for (atomic)",
                  "calibrate maps activate v0002",
                  on_error=False)
    sp.add_argument("version")
    sp = _command(actions, "rollback", "re-activate the version active before for one (model, prompt) pair",
                  "calibrate maps rollback",
                  "calibrate maps rollback --model Qwen2.5-0.5B-Instruct --prompt confidence_tags", on_error=False)
    sp.add_argument("--model", help="the model id the maps were fitted for (needed when several pairs have maps)")
    sp.add_argument("--prompt", help="the prompt id (needed when several pairs have maps)")
    p.set_defaults(func=cmd_maps)

    p = _command(sub, "reviews", "turn reviewers' verdicts into records", "calibrate reviews export --out reviews.jsonl",
                 on_error=False, folders=False)
    actions = p.add_subparsers(dest="reviews_command", required=True, metavar="ACTION")
    e = _command(actions, "export", "write verdicts as records (same schema as collect)",
                 "calibrate reviews export --out reviews.jsonl --data-dir data/", on_error=False)
    e.add_argument("--out", required=True)
    e.add_argument("--store", default=os.environ.get("CALIBRATED_CHAT_STORE") or None, metavar="postgresql://…",
                   help="read the reviews from this PostgreSQL store, as the app's --store "
                        "(default: the SQLite file in the data folder) [env CALIBRATED_CHAT_STORE]")
    p.set_defaults(func=cmd_reviews)


def _add_domains_command(sub) -> None:
    p = _command(sub, "domains", "your own domains: list, show, add, remove; add/remove/refit refit the router",
                 "calibrate domains list", "calibrate domains add it-helpdesk --description 'Laptops, VPN, "
                 "passwords' --examples it.jsonl --labelled it-qa.jsonl", "calibrate domains remove it-helpdesk",
                 on_error=False)
    actions = p.add_subparsers(dest="domains_command", required=True, metavar="ACTION")
    _command(actions, "list", "every domain and whether the router was fitted on them", "calibrate domains list",
             on_error=False)
    _command(actions, "refit", "refit the router on the domains file", "calibrate domains refit", on_error=False)
    for action, help in (("show", "one domain, with its routing recall"), ("remove", "remove one of your domains")):
        _command(actions, action, help, f"calibrate domains {action} it-helpdesk", on_error=False).add_argument("name")
    a = _command(actions, "add", "add a domain and refit the router", "calibrate domains add NAME --description "
                 "TEXT --examples FILE", on_error=False)
    a.add_argument("name", help="lowercase words joined by '-' (e.g. it-helpdesk)")
    a.add_argument("--description", required=True, help="plain words shown to staff and reviewers")
    a.add_argument("--examples", required=True, help=f"at least {MIN_EXAMPLES} example questions: JSONL with a "
                                                     "'question' per line, or text, one per line")
    a.add_argument("--labelled", nargs="+", help="question JSONL files with answers, to collect and fit on")
    a.add_argument("--heldout", nargs="+", help="question JSONL files only ever measured on")
    a.add_argument("--target-risk", type=float, help="its review threshold's target risk (default: fit's)")
    p.set_defaults(func=cmd_domains)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="calibrate", description=__doc__.split("\n\n")[0],
                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=_FORMAT)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and warnings to stderr")
    add_folder_flags(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_command(sub, _command)
    _add_data_commands(sub)
    _add_fit_commands(sub)
    _add_onboard_command(sub)
    add_models_command(sub, _command)
    _add_admin_commands(sub)
    _add_domains_command(sub)
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as typed, for reports that show it
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` ends like Ctrl-C: the records file stays whole
    # os_errors: an unwritable --out or a full disk is bad input; `calibrate maps show --json | head` is fine.
    return run_cli(lambda: args.func(args), interrupted="interrupted: re-run the same command to resume",
                   os_errors=True)
