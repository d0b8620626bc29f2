"""JSONL files of calibration: streaming reads, atomic writes, and data-item validation.

`read_jsonl` streams any JSONL file (data items or collected records) line by
line, each at most `MAX_LINE_BYTES`; `validate_item` checks one data item
against the data-record format of docs/architecture.md, `read_items` does both,
and `write_jsonl` writes atomically. Every error names the file and the 1-based
line number.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from assistant.files import write_jsonl  # re-exported: the one atomic JSONL writer
from assistant.errors import DataError
from calibration.grading import ANSWER_TYPES, parse_boolean, parse_number

__all__ = [
    "ANSWER_TYPES",
    "DOMAINS",
    "MAX_LINE_BYTES",
    "read_items",
    "read_jsonl",
    "validate_item",
    "write_jsonl",
]

log = logging.getLogger(__name__)

DOMAINS = ("math", "factual", "science", "reasoning")  # the same four as assistant.routing.DOMAINS

# The longest line a reader accepts, in bytes without its newline. A data item or record is a few
# KiB; the cap only stops a file with no newlines (a multi-GB JSON array, a binary file) from being
# read into memory at once.
MAX_LINE_BYTES = 16 * 2**20


def _size(n: int) -> str:
    return f"{n // 2**20} MiB" if n % 2**20 == 0 else f"{n} bytes"


def _bounded_lines(f) -> Iterator[bytes | None]:
    """The lines of a binary file, read with a bounded readline; None stands for a line longer
    than MAX_LINE_BYTES, which is read past in chunks of that size (never held whole)."""
    limit = MAX_LINE_BYTES
    while raw := f.readline(limit + 1):
        if raw.endswith(b"\n") or len(raw) <= limit:
            yield raw
            continue
        while raw and not raw.endswith(b"\n"):
            raw = f.readline(limit + 1)
        yield None


def _read_numbered(path: Path, on_error: str) -> Iterator[tuple[int, dict]]:
    """The objects of a JSONL file with their 1-based line numbers; see `read_jsonl`."""
    if on_error not in ("stop", "skip"):
        raise ValueError(f"on_error must be 'stop' or 'skip', got {on_error!r}")
    try:
        f = path.open("rb")  # bytes, decoded per line, so a decoding error names its own line
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from e
    with f:
        for lineno, raw in enumerate(_bounded_lines(f), 1):
            if raw is None:
                problem = (f"line longer than the {_size(MAX_LINE_BYTES)} limit (is it JSON Lines, "
                           "one object per line?)")
                if on_error == "stop":
                    raise DataError(f"{path}:{lineno}: {problem}")
                log.warning("skipping %s:%d: %s", path, lineno, problem)
                continue
            try:
                line = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{lineno}: not UTF-8 text ({e.reason})") from e
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                problem = (
                    None if isinstance(obj, dict) else f"expected a JSON object, got {type(obj).__name__}"
                )
            except (ValueError, RecursionError) as e:  # RecursionError: arrays nested thousands deep
                problem = f"malformed JSON line ({e})"
            if problem is None:
                yield lineno, obj
            elif on_error == "stop":
                raise DataError(f"{path}:{lineno}: {problem}")
            else:
                log.warning("skipping %s:%d: %s", path, lineno, problem)


def read_jsonl(path: str | os.PathLike, *, on_error: Literal["stop", "skip"] = "stop") -> Iterator[dict]:
    """Stream the JSON objects of a JSONL file, one line at a time (never the whole file).

    Blank lines are ignored. A line that is not a JSON object, or is longer
    than `MAX_LINE_BYTES` (16 MiB, so memory use stays bounded however large
    the file), raises `DataError` naming the file and the 1-based line number
    (``on_error="stop"``) or is logged as a warning and skipped
    (``on_error="skip"``). A missing or unreadable file always raises
    `DataError` (on the first ``next()``, as the function is a generator).
    """
    for _, obj in _read_numbered(Path(path), on_error):
        yield obj


def validate_item(item: dict, path: str | os.PathLike = "<items>", lineno: int = 0) -> dict:
    """Check one data item's fields and types; return it, or raise `DataError` naming file, line and field.

    Required: ``id`` (non-empty str), ``domain`` (one of DOMAINS), ``question``
    (non-empty str), ``answer`` (non-empty str), ``answer_type`` (number, text,
    choice, boolean). ``aliases``, when present, is a list of str. A choice
    item needs ``choices`` (at least 2 non-empty str) and a letter answer
    inside them; a number answer must parse as a number and a boolean one as
    yes/no/true/false.
    """

    def fail(field: str, why: str) -> DataError:
        return DataError(f"{path}:{lineno}: field {field!r} {why} (item {item.get('id', '?')!r})")

    if not isinstance(item, dict):
        raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(item).__name__}")
    for field in ("id", "question", "answer"):
        value = item.get(field)
        if not isinstance(value, str) or not value.strip():
            raise fail(field, "must be a non-empty string")
    if item.get("domain") not in DOMAINS:
        raise fail("domain", f"must be one of {', '.join(DOMAINS)}, got {item.get('domain')!r}")
    answer_type = item.get("answer_type")
    if answer_type not in ANSWER_TYPES:
        raise fail("answer_type", f"must be one of {', '.join(ANSWER_TYPES)}, got {answer_type!r}")
    aliases = item.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise fail("aliases", "must be a list of strings")
    answer = item["answer"]
    if answer_type == "choice":
        choices = item.get("choices")
        if (
            not isinstance(choices, list)
            or len(choices) < 2
            or not all(isinstance(c, str) and c for c in choices)
        ):
            raise fail("choices", "must be a list of at least 2 non-empty strings for a choice item")
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: len(choices)]
        if len(answer) != 1 or answer.upper() not in letters:
            raise fail("answer", f"must be one of the letters {letters}, got {answer!r}")
    elif answer_type == "number" and parse_number(answer) is None:
        raise fail("answer", f"must be a number, got {answer!r}")
    elif answer_type == "boolean" and parse_boolean(answer) is None:
        raise fail("answer", f"must be yes/no/true/false, got {answer!r}")
    return item


def read_items(path: str | os.PathLike, *, on_error: Literal["stop", "skip"] = "stop") -> Iterator[dict]:
    """`read_jsonl` plus `validate_item` on every object; invalid items stop or are skipped like bad JSON."""
    for lineno, item in _read_numbered(Path(path), on_error):
        try:
            yield validate_item(item, path, lineno)
        except DataError as e:
            if on_error == "stop":
                raise
            log.warning("skipping %s", e)
