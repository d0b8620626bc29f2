"""Records that can be committed: benchmark text out, ids and outcomes in; and the text put back by id.

The shared benchmarks are evaluation data (BIG-Bench-Hard carries a canary asking that its items
never appear in training corpora), so a committed record keeps the item's `id`, `source`,
`license`, domain, gold answer, graded outcome and confidence signals, and leaves out the
question and the model's answer. Fitting needs neither; `rebuild` restores the question from
the question files by id when a person wants to read the records.

    calibrate records strip --records runs/calib.jsonl --data ../shared/calib/*.jsonl --out calibration/records/real/x.jsonl
    calibrate records rebuild --records calibration/records/real/x.jsonl --data ../shared/calib/*.jsonl --out x.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.core.errors import DataError
from assistant.core.files import atomic_write
from assistant.core.jsonl import read_jsonl

__all__ = ["TEXT_FIELDS", "items_by_id", "strip_records", "rebuild_records"]

TEXT_FIELDS = ("question", "answer")  # what never goes into a committed record


def items_by_id(data_paths) -> dict[str, dict]:
    """Every item of the question files `data_paths`, by id (a later file's item wins)."""
    items = {}
    for path in data_paths:
        for item in read_jsonl(Path(path)):
            items[item["id"]] = item
    return items


def _rewrite(records_path: Path, data_paths, out: Path, change) -> int:
    """Write each record of `records_path` as `change(record, item)` to `out` (atomically); return how many.
    Every record's id must be in the question files: that is what makes the text rebuildable."""
    items = items_by_id(data_paths)
    lines = []
    for record in read_jsonl(Path(records_path)):
        item = items.get(record.get("id"))
        if item is None:
            raise DataError(f"{records_path}: record {record.get('id')!r} is in none of the question files "
                            "(pass the --data files the records were collected from)")
        lines.append(json.dumps(change(record, item), ensure_ascii=False) + "\n")
    atomic_write("".join(lines), Path(out))
    return len(lines)


def strip_records(records_path: Path, data_paths, out: Path) -> int:
    """Write `records_path` without TEXT_FIELDS, with each item's `source` and `license`; return how many."""
    return _rewrite(records_path, data_paths, out, lambda record, item: {
        **{k: v for k, v in record.items() if k not in TEXT_FIELDS},
        "source": item.get("source"), "license": item.get("license")})


def rebuild_records(records_path: Path, data_paths, out: Path) -> int:
    """Write `records_path` with each record's question restored from the question files; return how many."""
    return _rewrite(records_path, data_paths, out, lambda record, item: {**record, "question": item["question"]})
