"""`calibrate onboard`: one command from a model to active maps.

    calibrate data --sources benchmarks/ --out questions/
    calibrate onboard --questions questions/ --backend openai --base-url http://127.0.0.1:8000/v1 --model M

collects `--per-domain` answers to the fitting questions and `--heldout-per-domain` to the held-out ones,
from the --questions folder and as many again from the project's everyday set unless --no-everyday
(resumable, into <data folder>/onboard/<model>--<prompt>/), fits maps on the fitting answers and saves them
as a new version, measures them on the held-out answers beside the stated-only baseline, writes a
calibration card, and activates the new maps only if `calibration.measuring.gate` finds them not worse
than the pair's active maps beyond noise (`--force` activates regardless). Exit 0 when activated, 3 when
the gate refused.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from assistant.answering.prompts import load_prompt
from assistant.calibrated.mapstore import map_store
from assistant.core.config import default_data_dir
from assistant.core.errors import DataError, MapError
from assistant.core.flags import model_config_from_args
from assistant.models.registry import load_backend
from calibration.cli.answering import answer_missing, first_per_domain
from calibration.fitting.fit import fit_maps
from calibration.fitting.populations import population_of
from calibration.fitting.sources import describe_sources
from calibration.labelling.question_text import question_features
from calibration.measuring.card import Card, write_card
from calibration.measuring.gate import answers_needed, gate
from calibration.measuring.plots import write_plots
from calibration.measuring.report import build_report, calibrated_confidences

__all__ = ["EVERYDAY", "GATE_REFUSED", "cmd_onboard"]

GATE_REFUSED = 3  # exit status when the gate kept the active maps
# The project's own everyday questions (calibration/everyday/README.md): fitted and measured on beside the
# benchmarks by default, so a model is calibrated for the questions staff type too, not only for benchmarks.
EVERYDAY = Path(__file__).resolve().parents[1] / "everyday"


def _split_files(folder: Path, everyday: bool) -> dict[str, list[list[Path]]]:
    """Per part (fitting, heldout): the groups of question files, each group taking its own per-domain share:
    the --questions folder, then (`everyday`) the project's own everyday questions."""
    files = {part: sorted((folder / part).glob("*.jsonl")) for part in ("fitting", "heldout")}
    if not folder.is_dir() or not all(files.values()):
        raise DataError(f"--questions {folder}: needs fitting/<domain>.jsonl and heldout/<domain>.jsonl, as "
                        f"`calibrate data --sources BENCHMARKS --out {folder}` writes them")
    groups = {part: [paths] for part, paths in files.items()}
    if everyday:
        for part, prefix in (("fitting", "fit"), ("heldout", "heldout")):
            groups[part].append(sorted(EVERYDAY.glob(f"{prefix}-*.jsonl")))
    return groups


def _first_per_domain(groups: list[list[Path]], n: int, on_error: str) -> list[dict]:
    """The first `n` questions of each domain from each group of files."""
    return [item for paths in groups for item in first_per_domain(paths, n, on_error)]


def _collect(args, backend, items: list[dict], out: Path) -> tuple[list, float | None]:
    """Answer what `out` lacks of `items`; (the records of `items`, answers per minute or None if none were new)."""
    records, summary = answer_missing(args, items, out, label=out.stem, backend=backend)
    rate = None
    if summary is not None and summary.seconds > 0 and summary.written:
        rate = summary.written / summary.seconds * 60
    if len(records) < len(items):
        raise DataError(f"{out}: {len(items) - len(records)} of {len(items)} questions are still unanswered (the "
                        "model refused them, see above): re-run to try again")
    return records, rate


def _features(args, records, files, data_dir: Path):
    if args.signals != "fused" or args.no_question_features:
        return None
    return question_features(records, question_files=files, cache=data_dir / "cache" / "question-embeddings.npz")


def cmd_onboard(args) -> int:
    files = _split_files(Path(args.questions), not args.no_everyday)
    fitting_items = _first_per_domain(files["fitting"], args.per_domain, args.on_error)
    heldout_items = _first_per_domain(files["heldout"], args.heldout_per_domain, args.on_error)
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    store = map_store(args.maps_dir, args.data_dir)
    prompt = load_prompt(args.prompt)
    backend = load_backend(model_config_from_args(args))
    model = backend.model_id
    folder = data_dir / "onboard" / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}--{prompt.id}")
    fitting, fit_rate = _collect(args, backend, fitting_items, folder / "fitting.jsonl")
    heldout, held_rate = _collect(args, backend, heldout_items, folder / "heldout.jsonl")
    print("\n".join(answers_needed(fitting)))

    options = {"target_risk": args.target_risk, "delta": args.delta, "min_samples": args.min_samples,
               "holdout": args.holdout}
    fit_q, held_q = (_features(args, records, [f for group in files[part] for f in group], data_dir)
                     for records, part in ((fitting, "fitting"), (heldout, "heldout")))
    new = fit_maps(fitting, model=model, prompt=prompt.id, signals=args.signals, **options, questions=fit_q,
                   source=describe_sources([folder / "fitting.jsonl"], data_dir),
                   notes=f"calibrate onboard: {len(fitting)} fitting answers")
    version = store.save_new(new)
    new = store.load(version)
    stated = fit_maps(fitting, model=model, prompt=prompt.id, signals="stated", **options)
    reports = {}  # per population of held-out questions (benchmark, everyday), each on its own
    for population in sorted({population_of(r) for r in heldout}):
        rows = [i for i, r in enumerate(heldout) if population_of(r) == population]
        reports[population] = build_report([heldout[i] for i in rows], new, baseline_maps=stated,
                                           questions=None if held_q is None else [held_q[i] for i in rows])
    try:
        active = store.active(model, prompt.id)
    except MapError as error:  # a broken active file: anything that loads is better
        print(f"note: the active maps cannot be read ({error}); the gate compares with none", file=sys.stderr)
        active = None
    decision = gate(heldout, new, active, questions=held_q, resamples=args.resamples)
    activated = decision.passed or args.force
    if activated:
        store.activate(version)
    card_dir = Path(args.card) if args.card else folder / "card"
    plots = write_plots(heldout, calibrated_confidences(heldout, new, questions=held_q), card_dir)
    rates = [r for r in (fit_rate, held_rate) if r]
    card = write_card(Card(model, prompt.id, version, fitting, heldout, reports, decision, activated, args.argv,
                           sum(rates) / len(rates) if rates else None), card_dir, plots)
    for check in decision.checks:
        print(check.line())
    verdict = ("activated" if decision.passed else "activated anyway (--force)") if activated else "NOT activated"
    print(f"{version} {verdict} for {model} / {prompt.id}: {decision.reason}")
    print(f"calibration card: {card}")
    return 0 if activated else GATE_REFUSED
