"""Errors raised by the library, and the one wrapper that turns them into a CLI exit status.

The library raises; the CLIs (through `run_cli`) and the web app turn each error
into one line that says what to do next. Every error names what was wrong (a
file, a field, a variable) in its message.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

__all__ = [
    "CalibratedChatError",
    "ModelNotFoundError",
    "ModelLoadError",
    "TemplateError",
    "MapError",
    "DataError",
    "InputError",
    "StoreError",
    "run_cli",
]


class CalibratedChatError(Exception):
    """Base class of every error this project raises on purpose."""


class ModelNotFoundError(CalibratedChatError):
    """The chat or embedding model is not on disk; the message says how to get it."""


class ModelLoadError(CalibratedChatError):
    """The model exists but could not be loaded (corrupt file, out of memory, …)."""


class TemplateError(CalibratedChatError):
    """A prompt template is unknown, malformed, or missing a variable (named)."""


class MapError(CalibratedChatError):
    """A calibration-map file is invalid; the message names the file and the field."""


class DataError(CalibratedChatError):
    """A data or records file is invalid; the message names the file and line."""


class InputError(CalibratedChatError):
    """A user's question is unusable (empty, too long, …)."""


class StoreError(CalibratedChatError):
    """The review store cannot be read or written (read-only folder, disk full, …)."""


def run_cli(command: Callable[[], int | None], *, interrupted: str | None = None,
            os_errors: bool = False) -> int:
    """Run one CLI command and return its exit status (0 when it returns None).

    A CalibratedChatError becomes one `error: …` line on stderr and status 2.
    `interrupted`: the line printed on Ctrl-C, with status 130; None lets the
    KeyboardInterrupt through. `os_errors`: also turn an OSError (unwritable
    --out, disk full, …) into `error: FILE: reason` with status 2, and a reader
    that left the pipe (`… | head`) into a silent status 1; False lets them through.
    """
    try:
        return command() or 0
    except CalibratedChatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        if not os_errors:
            raise
        # Point stdout at /dev/null so the interpreter's final flush does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as err:
        if not os_errors:
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(f"error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if interrupted is None:
            raise
        print(interrupted, file=sys.stderr)
        return 130
