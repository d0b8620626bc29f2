"""JSON Lines: the one streaming reader and the one atomic writer.

`read_jsonl` streams any JSONL file (data items, collected records, review exports)
line by line, each at most `MAX_LINE_BYTES`; every error names the file and the
1-based line number. `write_jsonl` writes a whole file with `atomic_write`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from assistant.core.errors import DataError
from assistant.core.files import PRIVATE_FILE, atomic_write

__all__ = ["MAX_LINE_BYTES", "read_jsonl", "read_numbered", "write_jsonl"]

log = logging.getLogger(__name__)

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


def read_numbered(path: Path, on_error: str) -> Iterator[tuple[int, dict]]:
    """The objects of a JSONL file with their 1-based line numbers; see `read_jsonl` (which drops them)."""
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
    for _, obj in read_numbered(Path(path), on_error):
        yield obj


def write_jsonl(items: Iterable[dict], path: Path, *, mode: int = PRIVATE_FILE) -> int:
    """Write `items` as JSON Lines with `atomic_write`, streamed; return how many were written."""
    count = 0

    def lines():
        nonlocal count
        for item in items:
            count += 1
            yield json.dumps(item, ensure_ascii=False) + "\n"

    atomic_write(lines(), Path(path), mode=mode)
    return count
