"""Data items: the labelled questions `collect` answers and grades.

`validate_item` checks one item against the data-record format of
docs/architecture.md; `read_items` streams a JSONL file of them (with
`assistant.core.jsonl.read_numbered`) and validates each. Every error names the
file, the 1-based line number and the field.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from assistant.core.domains import CUSTOM_NAMES, DOMAINS, GENERAL, is_domain_name
from assistant.core.errors import DataError
from assistant.core.jsonl import read_numbered
from calibration.labelling.grading import ANSWER_TYPES, parse_boolean, parse_number

__all__ = ["read_items", "validate_item"]

log = logging.getLogger(__name__)


def validate_item(item: dict, path: str | os.PathLike = "<items>", lineno: int = 0) -> dict:
    """Check one data item's fields and types; return it, or raise `DataError` naming file, line and field.

    Required: ``id`` (non-empty str), ``domain`` (one of DOMAINS, or a custom domain's name), ``question``
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
    if not is_domain_name(item.get("domain")) or item.get("domain") == GENERAL:
        raise fail("domain", f"must be one of {', '.join(DOMAINS)} or {CUSTOM_NAMES}, got {item.get('domain')!r}")
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
    for lineno, item in read_numbered(Path(path), on_error):
        try:
            yield validate_item(item, path, lineno)
        except DataError as e:
            if on_error == "stop":
                raise
            log.warning("skipping %s", e)
