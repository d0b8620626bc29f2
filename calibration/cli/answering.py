"""Held-out and fitting questions for the commands that collect their own answers (`onboard`, `compare-models`):
the first N of each domain, and the answers a records file still lacks."""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from assistant.core.record import Record
from calibration.cli.commands import load_records, question_items, run_collect
from calibration.labelling.collect import CollectSummary, existing_ids

__all__ = ["answer_missing", "first_per_domain"]


def first_per_domain(paths: list[Path], n: int | None, on_error: str) -> list[dict]:
    """The first `n` questions of each domain in `paths` (every one for None), in file order."""
    taken: dict[str, int] = defaultdict(int)
    items = []
    for item in question_items(paths, on_error):
        if n is None or taken[item["domain"]] < n:
            taken[item["domain"]] += 1
            items.append(item)
    return items


def answer_missing(args, items: list[dict], out: Path, *, label: str,
                   backend=None) -> tuple[list[Record], CollectSummary | None]:
    """Collect the `items` whose id `out` lacks (loading the model, unless given, only then); return the records of
    `items` that `out` holds, and the summary of the collection (None when nothing was missing)."""
    done = existing_ids(out)
    missing = [item for item in items if item["id"] not in done]
    summary = None
    if missing:
        out.parent.mkdir(parents=True, exist_ok=True)
        print(f"{label}: {len(missing)} of {len(items)} questions to answer", file=sys.stderr)
        summary = run_collect(args, iter(missing), out, backend=backend)
    wanted = {item["id"] for item in items}
    return [r for r in load_records([out]) if r.id in wanted], summary
