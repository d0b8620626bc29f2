"""`calibrate data`: calibration questions from the public benchmarks' own files.

    calibrate data --sources benchmarks/ --out questions/ [--seed 1234] [--heldout 200] [--fitting 1000]

reads the source repositories under ``benchmarks/<owner>/<name>/`` (see
`calibration.labelling.benchmarks`) and writes ``questions/fitting/<domain>.jsonl`` and
``questions/heldout/<domain>.jsonl``: disjoint, the same for the same seed, with each item's id,
source and license. These files hold benchmark text: keep them out of any repository.
"""

from __future__ import annotations

from pathlib import Path

from assistant.core.errors import DataError
from assistant.core.flags import positive_int
from assistant.core.jsonl import write_jsonl
from calibration.labelling.benchmarks import BENCHMARKS, read_benchmark
from calibration.labelling.splits import split_items

__all__ = ["add_data_command", "cmd_data"]

_EXAMPLE = "calibrate data --sources benchmarks/ --out questions/ --seed 1234 --heldout 200"


def _missing_message(sources: Path) -> str:
    wanted = "\n".join(f"  {b.name}: git clone https://github.com/{b.repository} {sources / b.repository}"
                       for b in BENCHMARKS)
    return (f"{sources}: none of the benchmarks' files are there. Put the source repositories under it, "
            f"one folder per <owner>/<name>:\n{wanted}")


def cmd_data(args) -> int:
    sources, out = Path(args.sources), Path(args.out)
    if not sources.is_dir():
        raise DataError(f"--sources {sources}: no such folder")
    splits = {b.domain: split_items(read_benchmark(b, sources), seed=args.seed, heldout=args.heldout,
                                    fitting=args.fitting) for b in BENCHMARKS}
    if not any(s.fitting or s.heldout for s in splits.values()):
        raise DataError(_missing_message(sources))
    for benchmark in BENCHMARKS:
        split = splits[benchmark.domain]
        if not (split.fitting or split.heldout):
            print(f"{benchmark.domain:9s} {benchmark.name}: no files under {sources / benchmark.repository}, skipped")
            continue
        for part, items in (("fitting", split.fitting), ("heldout", split.heldout)):
            (out / part).mkdir(parents=True, exist_ok=True)
            write_jsonl(items, out / part / f"{benchmark.domain}.jsonl")
        print(f"{benchmark.domain:9s} {benchmark.name}: {len(split.fitting)} fitting, {len(split.heldout)} held out"
              f" ({split.dropped} duplicates dropped, {split.unused} unused) -> {out}/{{fitting,heldout}}/"
              f"{benchmark.domain}.jsonl")
    return 0


def add_data_command(sub, command) -> None:
    """Register `calibrate data` with `command`, the CLI's subcommand factory."""
    p = command(sub, "data", "turn the benchmarks' original files into fitting and held-out questions",
                _EXAMPLE, "(benchmarks/ holds openai/grade-school-math, google-research-datasets/natural-questions, "
                "stanford-cs336/assignment5-alignment and suzgunmirac/BIG-Bench-Hard, as cloned)",
                on_error=False, folders=False)
    p.add_argument("--sources", required=True, type=Path,
                   help="folder holding the source repositories as <owner>/<name>/")
    p.add_argument("--out", required=True, type=Path, help="writes OUT/fitting/<domain>.jsonl and OUT/heldout/…")
    p.add_argument("--seed", type=int, default=1234, help="same seed, same split (default 1234)")
    p.add_argument("--heldout", type=positive_int, default=200, help="held-out questions per domain (default 200)")
    p.add_argument("--fitting", type=positive_int, default=None,
                   help="at most this many fitting questions per domain (default: all the rest)")
    p.set_defaults(func=cmd_data)

