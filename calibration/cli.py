"""`calibrate`: the admin CLI that builds, measures and versions calibration maps.

    calibrate make-data --domain math --n 300 --seed 1 --out data/math.jsonl
    calibrate collect --data data/*.jsonl --out records.jsonl [--model M] [--batch-size N]
    calibrate fit --records records.jsonl [more …]            # saves a new map version
    calibrate report --records records.jsonl --maps v0002 --plots plots/
    calibrate eval --data ../shared/data/math.jsonl --maps active
    calibrate maps list | show VERSION | activate VERSION | rollback
    calibrate reviews export --out reviews.jsonl

Exit status: 0 done, 2 bad input (one line on stderr, `error: …`, names the
file/line/field and what to do), 1 unexpected failure, 130 interrupted (Ctrl-C or
SIGTERM; re-run the same command to resume).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from assistant.models.backend import GenerationOptions
from assistant.core.errors import DataError, MapError, run_cli

from assistant.core.domains import DOMAINS
from assistant.core.jsonl import read_numbered
from assistant.core.record import Record
from calibration.items import read_items
from calibration.maps import SIGNAL_SETS

__all__ = ["build_parser", "load_records", "main"]

log = logging.getLogger("calibrate")



def _check_exists(paths) -> None:
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"{path}: no such file")


def _read_items(paths: list[Path], on_error: str) -> Iterator[dict]:
    """Check every data file in one streaming pass (so bad input stops us before the model loads),
    then stream the items again; DataError when there are none. Nothing is held in memory whole."""
    _check_exists(paths)
    if not sum(1 for path in paths for _ in read_items(path, on_error=on_error)):
        raise DataError(f"no questions in {', '.join(map(str, paths))}: nothing to do")
    return _items_again(paths, on_error)


def _items_again(paths: list[Path], on_error: str) -> Iterator[dict]:
    """The items of `paths`, without repeating the first pass's warnings about skipped lines."""
    quiet = logging.getLogger(read_items.__module__)
    for path in paths:
        items = read_items(path, on_error=on_error)
        while True:
            quiet.disabled = True
            try:
                item = next(items, None)
            finally:
                quiet.disabled = False
            if item is None:
                break
            yield item


def load_records(paths: list[Path], *, on_error: str = "stop", keep_model=None, keep_prompt=None) -> list[Record]:
    """Read records files; refuse to mix (model, prompt) pairs unless told which to keep."""
    _check_exists(paths)
    records, seen = [], set()
    for path in paths:
        for lineno, data in read_numbered(Path(path), on_error):
            try:
                rec = Record.from_dict(data, where=f"{path}:{lineno}: record")
            except DataError as err:
                if on_error == "stop":
                    raise DataError(f"{err} (pass --on-error skip to skip such records)") from None
                log.warning("skipping %s", err)
                continue
            if rec.id in seen:
                log.warning("%s: duplicate record id %r, keeping the first", path, rec.id)
                continue
            seen.add(rec.id)
            records.append(rec)
    pairs = sorted({(r.model, r.prompt) for r in records})
    if keep_model or keep_prompt:
        records = [r for r in records if (keep_model in (None, r.model)) and (keep_prompt in (None, r.prompt))]
        pairs = sorted({(r.model, r.prompt) for r in records})
    if len(pairs) > 1:
        listing = "; ".join(f"model={m} prompt={p}" for m, p in pairs)
        raise DataError(f"records mix {len(pairs)} (model, prompt) pairs ({listing}): a map is valid for one "
                        "pair only — pass --keep-model and/or --keep-prompt to choose")
    if not records:
        raise DataError(f"no usable records in {', '.join(map(str, paths))}")
    return records


def _store(args):
    from calibration.maps import map_store

    return map_store(args.maps_dir, args.data_dir)


def _resolve_maps(args, spec: str):
    """A maps file path, a version name (v0003), or 'active'."""
    from calibration.maps import load_maps

    if spec == "active":
        maps = _store(args).active()
        if maps is None:
            raise MapError(f"no active map version in {_store(args).folder}: run `calibrate fit` then "
                           "`calibrate maps activate VERSION`")
        return maps
    if Path(spec).suffix == ".json" or Path(spec).exists():
        return load_maps(Path(spec))
    return _store(args).load(spec)


def _fit_options(args) -> dict:
    return {"target_risk": args.target_risk, "delta": args.delta, "min_samples": args.min_samples,
            "signals": args.signals, "holdout": args.holdout}


# -- commands --------------------------------------------------------------------------------


def cmd_make_data(args) -> int:
    from calibration.datagen import make_questions
    from assistant.core.jsonl import write_jsonl

    items = make_questions(args.domain, args.n, args.seed)
    write_jsonl(items, Path(args.out))
    print(f"wrote {len(items)} {args.domain} questions to {args.out}")
    return 0


def _run_collect(args, items: Iterator[dict], out: Path, maps=None):
    """Load the model, check it matches `maps` (when given), then collect records into `out`."""
    from assistant.cli import model_config_from_args
    from assistant.models.registry import load_backend
    from assistant.prompts import load_prompt

    from calibration.collect import collect

    prompt = load_prompt(args.prompt)
    backend = load_backend(model_config_from_args(args))
    if maps is not None and not maps.matches(backend.model_id, prompt.id):
        raise MapError(f"map {maps.version} was fitted for model {maps.model!r} / prompt {maps.prompt!r}, not "
                       f"{backend.model_id!r} / {prompt.id!r}: pass the matching --model/--prompt or other --maps")
    if args.batch_size > 1 and not getattr(backend, "supports_batching", False):
        print(f"note: {type(backend).__name__} does not batch; --batch-size is ignored",
              file=sys.stderr)
    summary = collect(items, out, backend, prompt, batch_size=args.batch_size, limit=args.limit,
                      options=GenerationOptions(max_new_tokens=args.max_new_tokens), progress=not args.quiet)
    rate = summary.written / summary.seconds * 60 if summary.seconds > 0 else 0.0
    failed = f", {summary.failed} refused by the model (see the log)" if summary.failed else ""
    print(f"{out}: {summary.written} new records, {summary.skipped} already there, {summary.total} in all"
          f"{failed} ({rate:.1f} questions/min)", file=sys.stderr)
    return summary


def cmd_collect(args) -> int:
    _run_collect(args, _read_items(args.data, args.on_error), Path(args.out))
    return 0


def cmd_fit(args) -> int:
    from calibration.fitting import describe_sources, fit_maps
    from calibration.maps import save_maps
    from calibration.report import format_maps_summary

    records = load_records(args.records, on_error=args.on_error, keep_model=args.keep_model,
                           keep_prompt=args.keep_prompt)
    revised = sum(1 for r in records if r.revisions)  # review exports count changed verdicts
    if revised:
        print(f"{revised} of {len(records)} records carry a reviewer verdict that was revised; "
              "the latest verdict is used")
    options = _fit_options(args)
    maps = fit_maps(records, model=records[0].model, prompt=records[0].prompt, **options,
                    source=describe_sources(args.records),
                    notes="fit options: " + ", ".join(f"{k}={v}" for k, v in options.items()))
    store = _store(args)
    version = store.save_new(maps)
    maps = store.load(version)
    if args.out:
        save_maps(maps, Path(args.out))
    print(format_maps_summary(maps))
    print(f"saved as {version} in {store.folder}" + (f" and {args.out}" if args.out else "")
          + ("" if args.activate else f"; make it live with `calibrate maps activate {version}`"))
    if args.activate:
        store.activate(version)
        print(f"activated {version}")
    return 0


def _report(records, maps, args) -> int:
    from calibration.report import build_report, calibrated_confidences, format_report, write_plots

    options = _fit_options(args)
    report = build_report(records, maps, fit_options=options)
    if args.plots:
        calibrated = calibrated_confidences(records, maps, fit_options=options)
        for path in write_plots(records, calibrated, Path(args.plots)):
            print(f"wrote {path}", file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _fitted_on(maps, paths) -> bool:
    """True when any of `paths` (same content, or the same file since grown) was used to fit `maps`."""
    from calibration.fitting import file_sha256

    used = {s.get("sha256") for s in maps.source} | {s.get("path") for s in maps.source}
    return any(file_sha256(p) in used or str(Path(p).resolve()) in used for p in paths)


def cmd_report(args) -> int:
    records = load_records(args.records, on_error=args.on_error, keep_model=args.keep_model,
                           keep_prompt=args.keep_prompt)
    maps = _resolve_maps(args, args.maps) if args.maps else None
    if maps is not None:
        if not maps.matches(records[0].model, records[0].prompt):
            raise MapError(f"map {maps.version} was fitted for model {maps.model!r} / prompt {maps.prompt!r}, "
                           f"but the records are from {records[0].model!r} / {records[0].prompt!r}")
        if _fitted_on(maps, args.records):
            # These records trained the map: score them out-of-fold instead of in-sample.
            print(f"note: {maps.version} was fitted on these records, so the figures are 5-fold "
                  "cross-validated (maps refitted without each fold)", file=sys.stderr)
            maps = None
    return _report(records, maps, args)


def cmd_eval(args) -> int:
    maps = _resolve_maps(args, args.maps)
    items = _read_items(args.data, args.on_error)
    out = Path(args.out) if args.out else _data_dir(args) / "runs" / f"eval-{maps.version}-{_data_key(args.data)}.jsonl"
    _run_collect(args, items, out, maps=maps)
    ids = {item["id"] for item in _items_again(args.data, args.on_error)}
    records = [r for r in load_records([out]) if r.id in ids]
    if not records:
        raise DataError(f"{out}: no records of these questions yet (re-run to collect them)")
    return _report(records, maps, args)


def _data_dir(args) -> Path:
    from assistant.core.config import default_data_dir

    return Path(args.data_dir) if args.data_dir else default_data_dir()


def _data_key(paths) -> str:
    return hashlib.sha256("|".join(sorted(str(Path(p).resolve()) for p in paths)).encode()).hexdigest()[:10]


def cmd_maps(args) -> int:
    store = _store(args)
    if args.maps_command == "list":
        rows = store.list_versions()
        if not rows:
            print(f"no map versions in {store.folder}")
        for row in rows:
            mark = "*" if row["active"] else " "
            if row["error"]:
                print(f"{mark} {row['version']}  UNREADABLE: {row['error']}")
            else:
                print(f"{mark} {row['version']}  fitted {row['fitted_at']}  n={row['n_samples']}  "
                      f"model={row['model']}  prompt={row['prompt']}")
    elif args.maps_command == "show":
        from calibration.report import format_maps_summary

        maps = store.load(args.version)
        print(json.dumps(maps.to_dict(), indent=2) if args.json else format_maps_summary(maps))
    elif args.maps_command == "activate":
        store.activate(args.version)
        print(f"active map is now {args.version}")
    elif args.maps_command == "rollback":
        print(f"active map is now {store.rollback()}")
    return 0


def cmd_reviews(args) -> int:
    from assistant.web.store import ReviewStore

    store = ReviewStore(_data_dir(args))
    n = store.export_records(Path(args.out))
    revised = sum(1 for r in store.records() if r.revisions)
    print(f"wrote {n} reviewed records to {args.out} ({revised} with a revised verdict; the latest is used)")
    return 0


def cmd_records(args) -> int:
    from calibration.redact import rebuild_records, strip_records

    _check_exists([args.records, *args.data])
    run = strip_records if args.records_command == "strip" else rebuild_records
    n = run(args.records, args.data, Path(args.out))
    what = "without question or answer text" if args.records_command == "strip" else "with their questions"
    print(f"wrote {n} records {what} to {args.out}")
    return 0


# -- parser ----------------------------------------------------------------------------------


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


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _data_args(p) -> None:
    from assistant.cli import DATA_DIR_HELP, MAPS_DIR_HELP

    # Accepted before or after the command; SUPPRESS keeps a value given before it.
    p.add_argument("--data-dir", default=argparse.SUPPRESS, help=DATA_DIR_HELP)
    p.add_argument("--maps-dir", default=argparse.SUPPRESS, help=MAPS_DIR_HELP)


def build_parser() -> argparse.ArgumentParser:
    from assistant.cli import DATA_DIR_HELP, MAPS_DIR_HELP, add_model_arguments

    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="calibrate", description=__doc__.split("\n\n")[0],
                     epilog=__doc__.split("\n\n", 1)[1], formatter_class=fmt)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and warnings to stderr")
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    parser.add_argument("--maps-dir", help=MAPS_DIR_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, help, *examples, parent=sub, on_error=True):
        p = parent.add_parser(name, help=help, description=help, formatter_class=fmt,
                              epilog="examples:\n" + "\n".join("  " + e for e in examples))
        if on_error:
            p.add_argument("--on-error", choices=["stop", "skip"], default="stop",
                           help="on a malformed JSONL line: stop with its line number (default) or skip it")
        return p

    p = command("make-data", "write generated labelled questions with certain gold answers",
                "calibrate make-data --domain reasoning --n 300 --seed 7 --out data/reasoning.jsonl",
                on_error=False)
    p.add_argument("--domain", required=True, help=f"one of {', '.join(DOMAINS)}")
    p.add_argument("--n", type=_positive, required=True, help="how many questions")
    p.add_argument("--seed", type=int, default=0, help="same seed, same questions (default 0)")
    p.add_argument("--out", required=True, help="JSONL file to write (replaced atomically)")
    p.set_defaults(func=cmd_make_data)

    def collect_args(p):
        p.add_argument("--data", nargs="+", type=Path, required=True, help="question JSONL file(s)")
        p.add_argument("--prompt", default="confidence_tags", help="prompt id in prompts/ (default confidence_tags)")
        p.add_argument("--limit", type=_positive, help="answer at most N new questions")
        p.add_argument("--batch-size", type=_positive, default=1,
                       help="questions decoded together (llama.cpp, transformers); their answers differ in float "
                            "rounding from the chat's, so 1 (the default) collects exactly what the chat answers")
        p.add_argument("--max-new-tokens", type=_positive, default=GenerationOptions.max_new_tokens)
        p.add_argument("--quiet", action="store_true", help="no progress bar")
        add_model_arguments(p)

    p = command("collect", "answer and grade questions, appending records (resumable)",
                "calibrate collect --data data/math.jsonl data/factual.jsonl --out records.jsonl",
                "calibrate collect --data data/*.jsonl --out records.jsonl --batch-size 8",
                "(re-run the same command after a crash or Ctrl-C: ids already in records.jsonl are skipped)")
    collect_args(p)
    p.add_argument("--out", required=True, help="records JSONL (appended to; ids already there are skipped)")
    _data_args(p)
    p.set_defaults(func=cmd_collect)

    def fit_args(p):
        p.add_argument("--target-risk", type=float, default=0.1,
                       help="max error rate among answers not flagged (default 0.1)")
        p.add_argument("--delta", type=float, default=0.05, help="1 - confidence level of the risk bound")
        p.add_argument("--min-samples", type=_positive, default=30,
                       help="usable records a domain needs for its own map (default 30; fewer: general map)")
        p.add_argument("--signals", choices=SIGNAL_SETS, default="fused",
                       help="fused (default): every confidence signal, combined per domain; stated: the "
                            "stated confidence only (the paper's baseline)")
        p.add_argument("--holdout", type=_share, default=1 / 3,
                       help="share of each domain's records held out to test review thresholds on, which "
                            "makes their guarantee hold (default 1/3; 0: no guarantee)")

    def keep_args(p):
        p.add_argument("--keep-model", help="use only records of this model")
        p.add_argument("--keep-prompt", help="use only records of this prompt")

    p = command("fit", "fit per-domain isotonic maps and review thresholds; saves a new version",
                "calibrate fit --records records.jsonl",
                "calibrate fit --records records.jsonl reviews.jsonl --activate",
                "calibrate fit --records old.jsonl --keep-model SmolLM2-135M-Instruct.Q4_1 --out maps.json")
    p.add_argument("--records", nargs="+", type=Path, required=True)
    p.add_argument("--out", help="also write the maps to this file")
    p.add_argument("--activate", action="store_true", help="make the new version live at once")
    keep_args(p)
    fit_args(p)
    _data_args(p)
    p.set_defaults(func=cmd_fit)

    def report_args(p):
        p.add_argument("--plots", help="write reliability and risk-coverage PNGs here")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        fit_args(p)
        _data_args(p)

    p = command("report", "raw vs calibrated metrics per domain on held-out records",
                "calibrate report --records heldout.jsonl --maps active --plots plots/",
                "calibrate report --records records.jsonl --maps v0002 --json   # cross-validated if v0002 "
                "was fitted on them")
    p.add_argument("--records", nargs="+", type=Path, required=True)
    p.add_argument("--maps", help="maps file, version (v0003) or 'active'; omitted: 5-fold cross-validation")
    keep_args(p)
    report_args(p)
    p.set_defaults(func=cmd_report)

    p = command("eval", "collect on held-out questions, then report with the given maps",
                "calibrate eval --data ../shared/data/math.jsonl --maps active",
                "calibrate eval --data ../shared/data/*.jsonl --maps v0002 --limit 100 --json")
    collect_args(p)
    p.add_argument("--maps", default="active", help="maps file, version or 'active' (default)")
    p.add_argument("--out", help="records file to write (default <data folder>/runs/eval-<version>-<data>.jsonl; resumable)")
    report_args(p)
    p.set_defaults(func=cmd_eval)

    p = command("maps", "list, show, activate or roll back map versions",
                "calibrate maps list", "calibrate maps show v0002", "calibrate maps activate v0002",
                "calibrate maps rollback", on_error=False)
    _data_args(p)
    msub = p.add_subparsers(dest="maps_command", required=True, metavar="ACTION")
    sp = command("list", "every version; * marks the active one", "calibrate maps list",
                 parent=msub, on_error=False)
    _data_args(sp)
    sp = command("show", "print one version (a table, or JSON with --json)", "calibrate maps show v0002 --json",
                 parent=msub, on_error=False)
    sp.add_argument("version")
    sp.add_argument("--json", action="store_true", help="the whole map file as JSON")
    _data_args(sp)
    sp = command("activate", "make a version live (atomic)", "calibrate maps activate v0002",
                 parent=msub, on_error=False)
    sp.add_argument("version")
    _data_args(sp)
    sp = command("rollback", "re-activate the previously active version", "calibrate maps rollback",
                 parent=msub, on_error=False)
    _data_args(sp)
    p.set_defaults(func=cmd_maps)

    p = command("reviews", "turn reviewers' verdicts into records", "calibrate reviews export --out reviews.jsonl",
                on_error=False)
    rsub = p.add_subparsers(dest="reviews_command", required=True, metavar="ACTION")
    e = command("export", "write verdicts as records (same schema as collect)",
                "calibrate reviews export --out reviews.jsonl --data-dir data/", parent=rsub, on_error=False)
    e.add_argument("--out", required=True)
    _data_args(e)
    p.set_defaults(func=cmd_reviews)

    p = command("records", "strip benchmark text from records to commit them, or put the questions back by id",
                "calibrate records strip --records runs/calib.jsonl --data ../shared/calib/*.jsonl --out kept.jsonl",
                "calibrate records rebuild --records kept.jsonl --data ../shared/calib/*.jsonl --out full.jsonl",
                on_error=False)
    rsub = p.add_subparsers(dest="records_command", required=True, metavar="ACTION")
    for action, help in (("strip", "drop question and answer text, add each item's source and license"),
                         ("rebuild", "restore each record's question from the question files")):
        r = command(action, help, f"calibrate records {action} --records IN --data QUESTIONS --out OUT",
                    parent=rsub, on_error=False)
        r.add_argument("--records", type=Path, required=True)
        r.add_argument("--data", nargs="+", type=Path, required=True, help="the question JSONL files, by id")
        r.add_argument("--out", required=True)
    p.set_defaults(func=cmd_records)
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` ends like Ctrl-C: the records file stays whole
    # os_errors: an unwritable --out or a full disk is bad input; `calibrate maps show --json | head` is fine.
    return run_cli(lambda: args.func(args), interrupted="interrupted: re-run the same command to resume",
                   os_errors=True)
