"""What each `calibrate` command does (`calibration.cli.parser` reads the command line and calls these).

Each `cmd_*` takes the parsed arguments and returns an exit status; a problem with the
input raises a CalibratedChatError whose one line names the file, line or field.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from assistant.answering.prompts import load_prompt
from assistant.calibrated.fusion import Combiner
from assistant.calibrated.maps import _json_safe, load_maps, save_maps
from assistant.calibrated.mapstore import map_store
from assistant.core.config import default_data_dir
from assistant.core.errors import DataError, MapError
from assistant.core.flags import model_config_from_args
from assistant.core.jsonl import read_numbered, write_jsonl
from assistant.core.record import Record
from assistant.models.backend import GenerationOptions
from assistant.models.registry import load_backend
from assistant.reviews import queries
from assistant.reviews.store import ReviewStore
from calibration.fitting.fit import describe_sources, file_sha256, fit_maps, source_path
from calibration.labelling.collect import collect
from calibration.labelling.datagen import make_questions
from calibration.labelling.items import read_items
from calibration.labelling.question_text import question_features
from calibration.labelling.redact import rebuild_records, strip_records
from calibration.measuring.compare import compare_runs, format_comparison
from calibration.measuring.heldout import HeldoutSet, format_side_by_side, side_by_side
from calibration.measuring.plots import write_plots
from calibration.measuring.report import (
    build_report,
    calibrated_confidences,
    format_maps_summary,
    format_report,
)

__all__ = ["cmd_collect", "cmd_compare", "cmd_eval", "cmd_fit", "cmd_make_data", "cmd_records", "cmd_report",
           "cmd_reviews", "load_records", "question_items", "run_collect"]

log = logging.getLogger("calibrate")


def _check_exists(paths) -> None:
    for path in paths:
        if not Path(path).is_file():
            raise DataError(f"{path}: no such file")


def question_items(paths: list[Path], on_error: str) -> Iterator[dict]:
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
    return map_store(args.maps_dir, args.data_dir)


def _resolve_maps(args, spec: str, pair: tuple[str, str] | None = None):
    """A maps file path, a version name (v0003), or 'active': the active version of `pair` (the
    model and prompt of the records or of the model being run; None: the one active pair)."""
    if spec == "active":
        maps = _store(args).active(*(pair or (None, None)))
        if maps is None:
            which = f" for model {pair[0]} / prompt {pair[1]}" if pair and all(pair) else ""
            raise MapError(f"no active map version{which} in {_store(args).folder}: run `calibrate fit` then "
                           "`calibrate maps activate VERSION`")
        return maps
    if Path(spec).suffix == ".json" or Path(spec).exists():
        return load_maps(Path(spec))
    return _store(args).load(spec)


def _fit_options(args) -> dict:
    return {"target_risk": args.target_risk, "delta": args.delta, "min_samples": args.min_samples,
            "signals": args.signals, "holdout": args.holdout}


DEFAULT_QUESTION_FILES = Path("../shared/calib")  # where committed benchmark records' text is found by id


def _questions(args, records, needed: bool):
    """The records' QuestionFeatures (`calibration.labelling.question_text`) when `needed` and not turned off,
    else None; embeddings are cached in <data folder>/cache/question-embeddings.npz."""
    if not needed or getattr(args, "no_question_features", False):
        return None
    files = args.questions or sorted(DEFAULT_QUESTION_FILES.glob("*.jsonl"))
    _check_exists(files)
    questions = question_features(records, question_files=files,
                                  cache=_data_dir(args) / "cache" / "question-embeddings.npz")
    missing = sum(q is None for q in questions)
    if missing:
        print(f"note: {missing} of {len(records)} records have no question text here (pass --questions with the "
              "question files they came from); their question features sit at the fit's mean", file=sys.stderr)
    return questions


def _question_aware(maps) -> bool:
    return any(m.combiner and Combiner.from_dict(m.combiner).reads_question for m in maps.maps.values())


# -- commands --------------------------------------------------------------------------------


def cmd_make_data(args) -> int:
    items = make_questions(args.domain, args.n, args.seed)
    write_jsonl(items, Path(args.out))
    print(f"wrote {len(items)} {args.domain} questions to {args.out}")
    return 0


def run_collect(args, items: Iterator[dict], out: Path, maps=None, backend=None):
    """Load the model (unless given), check it matches `maps` (when given), then collect records into `out`."""
    prompt = load_prompt(args.prompt)
    backend = backend or load_backend(model_config_from_args(args))
    if maps is not None and not maps.matches(backend.model_id, prompt.id):
        raise MapError(f"map {maps.version} was fitted for model {maps.model!r} / prompt {maps.prompt!r}, not "
                       f"{backend.model_id!r} / {prompt.id!r}: pass the matching --model/--prompt or other --maps")
    batch_size, concurrency = _parallelism(args, backend)
    summary = collect(items, out, backend, prompt, batch_size=batch_size, concurrency=concurrency,
                      limit=args.limit, options=GenerationOptions(max_new_tokens=args.max_new_tokens),
                      progress=not args.quiet, self_consistency=args.self_consistency)
    rate = summary.written / summary.seconds * 60 if summary.seconds > 0 else 0.0
    failed = f", {summary.failed} refused by the model (see the log)" if summary.failed else ""
    at_once = f", {concurrency} at once" if concurrency > 1 else ""
    print(f"{out}: {summary.written} new records, {summary.skipped} already there, {summary.total} in all"
          f"{failed} ({rate:.1f} questions/min{at_once})", file=sys.stderr)
    return summary


def _parallelism(args, backend) -> tuple[int, int]:
    """(batch size, concurrency) for `backend`: --batch-size where it decodes batches, --concurrency where
    several `stream` calls may run at once (default: a server's `max_concurrency`; 1 for a local model,
    whose concurrent calls would be batched: --batch-size says so explicitly)."""
    name, can = type(backend).__name__, backend.capabilities
    batch_size = args.batch_size
    if batch_size > 1 and not can.batching:
        print(f"note: {name} does not batch; --batch-size is ignored", file=sys.stderr)
        batch_size = 1
    concurrency = args.concurrency or (1 if can.local else can.max_concurrency)
    if concurrency > 1 and can.max_concurrency == 1:
        print(f"note: {name} answers one question at a time; --concurrency is ignored "
              "(--batch-size decodes several together)", file=sys.stderr)
        concurrency = 1
    return batch_size, concurrency


def cmd_collect(args) -> int:
    run_collect(args, question_items(args.data, args.on_error), Path(args.out))
    return 0


def cmd_fit(args) -> int:
    records = load_records(args.records, on_error=args.on_error, keep_model=args.keep_model,
                           keep_prompt=args.keep_prompt)
    revised = sum(1 for r in records if r.revisions)  # review exports count changed verdicts
    if revised:
        print(f"{revised} of {len(records)} records carry a reviewer verdict that was revised; "
              "the latest verdict is used")
    options = _fit_options(args)
    questions = _questions(args, records, args.signals == "fused")
    maps = fit_maps(records, model=records[0].model, prompt=records[0].prompt, **options,
                    source=describe_sources(args.records, _data_dir(args)), questions=questions,
                    notes="fit options: " + ", ".join(f"{k}={v}" for k, v in options.items())
                    + f", question features: {'yes' if questions is not None else 'no'}")
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


def _report(records, maps, args, baseline_maps=None) -> int:
    options = _fit_options(args)
    questions = _questions(args, records, _question_aware(maps) if maps is not None else args.signals == "fused")
    report = build_report(records, maps, baseline_maps=baseline_maps, fit_options=options, questions=questions)
    if args.plots:
        calibrated = calibrated_confidences(records, maps, fit_options=options, questions=questions)
        for path in write_plots(records, calibrated, Path(args.plots)):
            print(f"wrote {path}", file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _fitted_on(maps, paths, data_dir: Path) -> bool:
    """True when any of `paths` (same content, or the same file since grown) was used to fit `maps`."""
    used = {s.get("sha256") for s in maps.source} | {s.get("path") for s in maps.source}
    return any(file_sha256(p) in used or source_path(p, data_dir) in used for p in paths)


def _pair(records) -> tuple[str, str]:
    return (records[0].model, records[0].prompt)


def _check_matches(maps, records) -> None:
    if not maps.matches(records[0].model, records[0].prompt):
        raise MapError(f"map {maps.version} was fitted for model {maps.model!r} / prompt {maps.prompt!r}, "
                       f"but the records are from {records[0].model!r} / {records[0].prompt!r}")


def _baseline_maps(args, records, paths=()):
    """The --baseline-maps, checked: the records' model and prompt, stated-only, and not fitted on `paths`
    (then None: the baseline is cross-validated on the records instead, and a note says so)."""
    if not args.baseline_maps:
        return None
    maps = _resolve_maps(args, args.baseline_maps, _pair(records))
    _check_matches(maps, records)
    if maps.signals != "stated":
        raise MapError(f"--baseline-maps {maps.version} reads {maps.signals} signals: the baseline is the "
                       "stated-confidence-only pipeline (`calibrate fit --signals stated`)")
    if _fitted_on(maps, paths, _data_dir(args)):
        print(f"note: baseline {maps.version} was fitted on these records, so the baseline is cross-validated "
              "on them instead", file=sys.stderr)
        return None
    return maps


def _side_by_side(args) -> int:
    """`calibrate report --heldout NAME FILE… [--heldout …] --maps V [--baseline-maps B]`."""
    if not args.maps:
        raise DataError("--heldout needs --maps (the maps to measure): held-out sets are never fitted on")
    maps = _resolve_maps(args, args.maps, (args.keep_model, args.keep_prompt))
    baseline = _resolve_maps(args, args.baseline_maps, (maps.model, maps.prompt)) if args.baseline_maps else None
    sets = []
    for name, *paths in args.heldout:
        if not paths:
            raise DataError(f"--heldout {name}: give the set's records files after its name")
        records = load_records([Path(p) for p in paths], on_error=args.on_error, keep_model=args.keep_model,
                               keep_prompt=args.keep_prompt)
        for m in (maps, baseline):
            if m is not None:
                _check_matches(m, records)
                if _fitted_on(m, paths, _data_dir(args)):
                    raise DataError(f"--heldout {name}: {m.version} was fitted on some of these records: "
                                    "measure held-out sets only")
        sets.append(HeldoutSet(name, records, _questions(args, records, _question_aware(maps))))
    result = side_by_side(sets, maps, baseline)
    print(json.dumps(_json_safe(result), indent=2) if args.json else format_side_by_side(result))
    return 0


def cmd_report(args) -> int:
    if args.heldout:
        return _side_by_side(args)
    if not args.records:
        raise DataError("calibrate report needs --records FILE… (or --heldout NAME FILE… with --maps)")
    records = load_records(args.records, on_error=args.on_error, keep_model=args.keep_model,
                           keep_prompt=args.keep_prompt)
    maps = _resolve_maps(args, args.maps, _pair(records)) if args.maps else None
    if maps is not None:
        _check_matches(maps, records)
        if _fitted_on(maps, args.records, _data_dir(args)):
            # These records trained the map: score them out-of-fold instead of in-sample, with its signals.
            print(f"note: {maps.version} was fitted on these records, so the figures are 5-fold "
                  "cross-validated (maps refitted without each fold)", file=sys.stderr)
            args.signals, maps = maps.signals, None
    baseline = _baseline_maps(args, records, args.records)
    if not args.baseline_maps and (maps.signals if maps is not None else args.signals) != "stated":
        print("note: baseline: stated-only, cross-validated on these records"
              + (" (--baseline-maps VERSION measures fixed stated-only maps instead)" if maps is not None else ""),
              file=sys.stderr)
    return _report(records, maps, args, baseline)


def cmd_compare(args) -> int:
    before, after = (load_records(paths, on_error=args.on_error, keep_model=args.keep_model,
                                  keep_prompt=args.keep_prompt) for paths in (args.records, args.against))
    maps = _resolve_maps(args, args.maps, _pair(before))
    for records in (before, after):
        _check_matches(maps, records)
    if _fitted_on(maps, [*args.records, *args.against], _data_dir(args)):
        raise DataError(f"{maps.version} was fitted on some of these records: compare on held-out runs only")
    comparison = compare_runs(before, after, maps, resamples=args.resamples)
    print(json.dumps(comparison, indent=2) if args.json else format_comparison(comparison))
    return 0


def cmd_eval(args) -> int:
    if args.maps != "active" or not _store(args).active_pairs():
        _resolve_maps(args, args.maps)  # a missing or broken map stops us before the model loads
    items = question_items(args.data, args.on_error)
    backend = load_backend(model_config_from_args(args))
    maps = _resolve_maps(args, args.maps, (backend.model_id, load_prompt(args.prompt).id))
    out = Path(args.out) if args.out else _data_dir(args) / "runs" / f"eval-{maps.version}-{_data_key(args.data)}.jsonl"
    run_collect(args, items, out, maps=maps, backend=backend)
    ids = {item["id"] for item in _items_again(args.data, args.on_error)}
    records = [r for r in load_records([out]) if r.id in ids]
    if not records:
        raise DataError(f"{out}: no records of these questions yet (re-run to collect them)")
    return _report(records, maps, args, _baseline_maps(args, records))


def _data_dir(args) -> Path:
    return Path(args.data_dir) if args.data_dir else default_data_dir()


def _data_key(paths) -> str:
    return hashlib.sha256("|".join(sorted(str(Path(p).resolve()) for p in paths)).encode()).hexdigest()[:10]


def cmd_reviews(args) -> int:
    store = ReviewStore(_data_dir(args), url=args.store)
    n = queries.export_records(store, Path(args.out))
    revised = sum(1 for r in queries.records(store) if r.revisions)
    print(f"wrote {n} reviewed records to {args.out} ({revised} with a revised verdict; the latest is used)")
    return 0


def cmd_records(args) -> int:
    _check_exists([args.records, *args.data])
    run = strip_records if args.records_command == "strip" else rebuild_records
    n = run(args.records, args.data, Path(args.out))
    what = "without question or answer text" if args.records_command == "strip" else "with their questions"
    print(f"wrote {n} records {what} to {args.out}")
    return 0
