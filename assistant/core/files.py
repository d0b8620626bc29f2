"""Crash-safe, private file writing: the one atomic write every map, record, export, users file and
cache uses, and the one way the app makes a folder or appends to a file.

Everything the app creates is its user's alone: folders 0700, files 0600 (what the app writes
holds questions, answers, reviews and password hashes)."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PRIVATE_FILE", "PRIVATE_FOLDER", "append_private", "atomic_write", "private_folder"]

PRIVATE_FOLDER = 0o700  # every folder the app creates
PRIVATE_FILE = 0o600  # every file the app creates


def private_folder(folder: Path) -> Path:
    """Make `folder` and each missing folder above it 0700 (whatever the umask); return it. A folder
    that already exists keeps its mode: the user chose it."""
    folder = Path(folder)
    for missing in [f for f in (*reversed(folder.parents), folder) if not f.exists()]:
        try:
            missing.mkdir(mode=PRIVATE_FOLDER)
        except FileExistsError:  # another process made it first
            continue
        os.chmod(missing, PRIVATE_FOLDER)  # mkdir's mode is cut by the umask
    return folder


def append_private(path: Path):
    """`path` opened to append text (utf-8), created 0600 when it is new, in a private folder."""
    path = Path(path)
    private_folder(path.parent)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE), "a", encoding="utf-8")


def atomic_write(text: str | Iterable[str], path: Path, *, overwrite: bool = True, mode: int = PRIVATE_FILE) -> None:
    """Write `text` (a string, or pieces of one streamed in order) to `path` so a reader sees the old
    file or the new one, never half of either.

    The text goes to a uniquely named temp file in the same folder, is fsynced, then renamed
    over `path` (or hard-linked to it when `overwrite` is False, which raises FileExistsError
    instead of replacing a file), and the folder is fsynced so the rename survives a power cut.
    `mode` is set on the temp file before it becomes visible: PRIVATE_FILE (0600) unless told
    otherwise; a missing folder is made 0700 (`private_folder`).
    """
    path = Path(path)
    if path.is_dir():  # else the rename fails naming the hidden temp file, not what the user passed
        raise IsADirectoryError(errno.EISDIR, "is a folder; pass a file path", str(path))
    private_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
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
