"""`calibrate compare-models`: several (model, prompt) pairs answer the same held-out questions, side by side.

    calibrate compare-models --data heldout/*.jsonl --per-domain 100 --runs runs/compare \\
        --pair "smollm2-reasoning --prompt confidence_tags" --pair "smollm2-direct --prompt direct" \\
        --pair "qwen-direct --model qwen.gguf --prompt direct" --out docs/model-comparison.md

Each pair's answers are collected once into ``RUNS/<name>.jsonl`` (resumable: a re-run answers only what
is missing, and loads no model when nothing is), then `calibration.measuring.models` compares them.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from assistant.core.errors import DataError
from assistant.core.flags import add_answer_flags, add_model_flags, positive_int
from assistant.models.backend import GenerationOptions
from calibration.cli.answering import answer_missing, first_per_domain
from calibration.cli.commands import load_records
from calibration.measuring.models import Run, compare_models, format_markdown
from calibration.measuring.plots import write_model_plots

__all__ = ["add_models_command", "cmd_compare_models", "pair_parser"]

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.")


class _PairParser(argparse.ArgumentParser):
    def error(self, message):
        raise DataError(f"--pair {self.prog!r}: {message} (a pair's flags are those of `calibrate collect`: "
                        "--model, --backend, --base-url, --prompt, --chat-template, --batch-size, …)")


def pair_parser(name: str) -> argparse.ArgumentParser:
    """The flags one pair takes: the model's and the answer's, as `calibrate collect` has them."""
    p = _PairParser(prog=name, add_help=False)
    add_model_flags(p)
    add_answer_flags(p, max_new_tokens=GenerationOptions.max_new_tokens, uncalibrated=False)
    p.add_argument("--batch-size", type=positive_int, default=1)
    p.add_argument("--concurrency", type=positive_int, default=None)
    return p


def _pairs(specs: list[str], quiet: bool) -> list[tuple[str, argparse.Namespace]]:
    pairs = []
    for spec in specs:
        name, *flags = shlex.split(spec) or [""]
        if not set(name) <= _NAME_CHARS or not name[:1].isalnum():
            raise DataError(f"--pair {name!r}: a pair's name is lower-case letters, digits, '-', '_' and '.' only "
                            "(it names the records file)")
        args = pair_parser(name).parse_args(flags)
        args.limit, args.quiet = None, quiet
        pairs.append((name, args))
    return pairs


def cmd_compare_models(args) -> int:
    pairs = _pairs(args.pair, args.quiet)  # every pair's flags are checked before any model loads
    items = first_per_domain(args.data, args.per_domain, args.on_error) if args.data else None
    runs = []
    for name, pair_args in pairs:
        out = Path(args.runs) / f"{name}.jsonl"
        if items is not None:
            records, _ = answer_missing(pair_args, items, out, label=name)
        elif out.exists():
            records = load_records([out])
        else:
            raise DataError(f"{out}: no records of pair {name!r} yet: pass --data QUESTIONS to collect them")
        runs.append(Run(name, records))
    result = compare_models(runs, target_risk=args.target_risk, resamples=args.resamples, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
    if args.out:
        _write_report(result, Path(args.out), args)
    if not args.json:
        print(format_markdown(result))
    return 0


def _write_report(result: dict, path: Path, args) -> None:
    plots = path.with_suffix("")
    written = write_model_plots(result, plots)
    pairs = "\n".join(f"| {p['name']} | `{p['model']}` | `{p['prompt']}` |" for p in result["pairs"])
    images = "\n".join(f"![{f.stem}]({plots.name}/{f.name})" for f in written)
    text = f"""# Model comparison

{result['pairs'][0]['n']} held-out questions answered by every pair; {args.resamples} paired-bootstrap resamples.
Made with:

```bash
calibrate {' '.join(shlex.quote(a) for a in args.argv)}
```

| pair | model | prompt |
|---|---|---|
{pairs}

How to read it: accuracy counts "I don't know" and no answer (cut off, or none given) as not right.
Calibrated figures come from maps fitted on each pair's own answers here, 5-fold cross-validated. Coverage at the target risk is the largest share of
graded answers that could go out unchecked with an error rate at or below it (the best cut-off on these
answers, so an upper figure). A pair after the first shows its change from the first pair and the 95%
paired-bootstrap interval of that change; `~` marks an interval that holds 0 (within noise).

{format_markdown(result)}

{images}
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path} and {len(written)} plots in {plots}", file=sys.stderr)


def add_models_command(sub, command) -> None:
    """Register `calibrate compare-models` with `command`, the CLI's subcommand factory."""
    p = command(sub, "compare-models", "several (model, prompt) pairs on the same held-out questions: accuracy, "
                "calibration, coverage and cost side by side, with paired-bootstrap intervals",
                "calibrate compare-models --data heldout/*.jsonl --per-domain 100 --runs runs/compare "
                "--pair 'smollm2-reasoning --prompt confidence_tags' --pair 'smollm2-direct --prompt direct' "
                "--out docs/model-comparison.md",
                "calibrate compare-models --runs runs/compare --pair a --pair b   # report on what is collected",
                folders=False)
    p.add_argument("--pair", action="append", required=True, metavar="'NAME [FLAGS…]'",
                   help="a pair's name, then its flags as `calibrate collect` takes them (--model, --prompt, "
                        "--backend, --chat-template, --batch-size …), quoted as one argument; repeat for each pair: "
                        "the first is the one the others are measured against")
    p.add_argument("--data", nargs="+", type=Path,
                   help="held-out question JSONL files; answers missing from RUNS/<name>.jsonl are collected")
    p.add_argument("--per-domain", type=positive_int, help="only the first N questions of each domain")
    p.add_argument("--runs", type=Path, required=True, help="the folder of each pair's records, <name>.jsonl")
    p.add_argument("--out", help="write a Markdown report here, with its plots in a folder of the same name")
    p.add_argument("--target-risk", type=float, default=0.1, help="the error rate for coverage (default 0.1)")
    p.add_argument("--resamples", type=positive_int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="folds and resamples (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_compare_models)
