"""Errors raised by the library.

The library raises; the CLIs and the web app turn each error into one line that
says what to do next. Every error names what was wrong (a file, a field, a
variable) in its message.
"""

from __future__ import annotations

__all__ = [
    "CalibratedChatError",
    "ModelNotFoundError",
    "ModelLoadError",
    "TemplateError",
    "ParseError",
    "MapError",
    "DataError",
    "InputError",
    "StoreError",
]


class CalibratedChatError(Exception):
    """Base class of every error this project raises on purpose."""


class ModelNotFoundError(CalibratedChatError):
    """The chat or embedding model is not on disk; the message says how to get it."""


class ModelLoadError(CalibratedChatError):
    """The model exists but could not be loaded (corrupt file, out of memory, …)."""


class TemplateError(CalibratedChatError):
    """A prompt template is unknown, malformed, or missing a variable (named)."""


class ParseError(CalibratedChatError):
    """Strict parsing failed; the message quotes the model output and the expected format."""


class MapError(CalibratedChatError):
    """A calibration-map file is invalid; the message names the file and the field."""


class DataError(CalibratedChatError):
    """A data or records file is invalid; the message names the file and line."""


class InputError(CalibratedChatError):
    """A user's question is unusable (empty, too long, …)."""


class StoreError(CalibratedChatError):
    """The review store cannot be read or written (read-only folder, disk full, …)."""
