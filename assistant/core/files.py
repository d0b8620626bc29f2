"""Crash-safe file writing: the one atomic write every map, record, export, users file and cache uses."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(text: str | Iterable[str], path: Path, *, overwrite: bool = True, mode: int | None = None) -> None:
    """Write `text` (a string, or pieces of one streamed in order) to `path` so a reader sees the old
    file or the new one, never half of either.

    The text goes to a uniquely named temp file in the same folder, is fsynced, then renamed
    over `path` (or hard-linked to it when `overwrite` is False, which raises FileExistsError
    instead of replacing a file), and the folder is fsynced so the rename survives a power cut.
    `mode` (e.g. 0o600) is set on the temp file before it becomes visible.
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
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable: without this a power cut can bring back the old name."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform without folder handles (Windows): the rename is all there is
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder; the data itself is already synced
        pass
    finally:
        os.close(fd)
