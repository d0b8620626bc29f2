"""Which records files a map was fitted on: their paths as a map file names them, and their sha256."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["describe_sources", "file_sha256", "source_path"]


def file_sha256(path) -> str:
    """The sha256 of a file, read in 1 MiB chunks (records files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_path(path, data_dir) -> str:
    """How a map file names a records file: relative to the data folder, else to the working folder,
    else by its name alone; never the absolute path of the machine it was fitted on (the sha256
    identifies the content wherever it lies)."""
    path = Path(path).resolve()
    for base in (Path(data_dir).resolve(), Path.cwd().resolve()):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return path.name


def describe_sources(paths, data_dir) -> tuple[dict, ...]:
    """``({"path": ..., "sha256": ...}, ...)`` for the records files behind a fit (see `source_path`)."""
    return tuple({"path": source_path(p, data_dir), "sha256": file_sha256(p)} for p in paths)
