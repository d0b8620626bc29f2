"""Crash-safe file writing: the one atomic write every map, record export, users file and cache uses."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["write_atomic", "write_jsonl"]


def write_atomic(text: str | Iterable[str], path: Path, *, overwrite: bool = True, mode: int | None = None) -> None:
    """Write `text` (a string, or pieces of one streamed in order) to `path` so a reader sees the old
    file or the new one, never half of either.

    The text goes to a temp file in the same folder, is fsynced, then renamed over `path`
    (or hard-linked to it when `overwrite` is False, which raises FileExistsError instead of
    replacing a file). `mode` (e.g. 0o600) is set on the temp file before it becomes visible.
    """
    path = Path(path)
    if path.is_dir():  # else the rename fails naming the hidden temp file, not what the user passed
        raise IsADirectoryError(errno.EISDIR, "is a folder; pass a file path", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            for piece in [text] if isinstance(text, str) else text:
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # atomic, and fails with FileExistsError instead of overwriting
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_jsonl(items: Iterable[dict], path: Path, *, mode: int | None = None) -> int:
    """Write `items` as JSON Lines with `write_atomic`, streamed; return how many were written."""
    count = 0

    def lines():
        nonlocal count
        for item in items:
            count += 1
            yield json.dumps(item, ensure_ascii=False) + "\n"

    write_atomic(lines(), Path(path), mode=mode)
    return count
