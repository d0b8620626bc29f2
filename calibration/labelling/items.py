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
from assistant.core.validate import Rule, check, is_text, list_of
from calibration.labelling.grading import ANSWER_TYPES, parse_boolean, parse_number

__all__ = ["read_items", "validate_item"]

log = logging.getLogger(__name__)


_TEXT = Rule(is_text, "must be a non-empty string")
# Every item's fields, in this order; an absent id, question, answer, domain or answer_type is refused too.
_RULES = {
    "id": _TEXT, "question": _TEXT, "answer": _TEXT,
    "domain": Rule(lambda v: is_domain_name(v) and v != GENERAL,
                   f"must be one of {', '.join(DOMAINS)} or {CUSTOM_NAMES}, got {{value}}"),
    "answer_type": Rule(lambda v: v in ANSWER_TYPES, f"must be one of {', '.join(ANSWER_TYPES)}, got {{value}}"),
    "aliases": Rule(list_of(lambda a: isinstance(a, str)), "must be a list of strings"),
}
_CHOICES = Rule(lambda v: isinstance(v, list) and list_of(lambda c: isinstance(c, str) and c != "", 2)(v),
                "must be a list of at least 2 non-empty strings for a choice item")
# What the gold answer of each answer type must be (a choice item's letters depend on its choices).
_ANSWERS = {
    "number": Rule(lambda a: parse_number(a) is not None, "must be a number, got {value}"),
    "boolean": Rule(lambda a: parse_boolean(a) is not None, "must be yes/no/true/false, got {value}"),
}


def validate_item(item: dict, path: str | os.PathLike = "<items>", lineno: int = 0) -> dict:
    """Check one data item's fields and types; return it, or raise `DataError` naming file, line and field.

    Required: ``id`` (non-empty str), ``domain`` (one of DOMAINS, or a custom domain's name), ``question``
    (non-empty str), ``answer`` (non-empty str), ``answer_type`` (number, text,
    choice, boolean). ``aliases``, when present, is a list of str. A choice
    item needs ``choices`` (at least 2 non-empty str) and a letter answer
    inside them; a number answer must parse as a number and a boolean one as
    yes/no/true/false.
    """

    def fail(field: str, why: str):
        raise DataError(f"{path}:{lineno}: field {field!r} {why} (item {item.get('id', '?')!r})")

    if not isinstance(item, dict):
        raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(item).__name__}")
    check({k: None for k in ("id", "question", "answer", "domain", "answer_type")} | item, _RULES, fail)
    answer_type, answer = item["answer_type"], item["answer"]
    if answer_type == "choice":
        check({"choices": None} | item, {"choices": _CHOICES}, fail)
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: len(item["choices"])]
        if len(answer) != 1 or answer.upper() not in letters:
            fail("answer", f"must be one of the letters {letters}, got {answer!r}")
    elif answer_type in _ANSWERS:
        check(item, {"answer": _ANSWERS[answer_type]}, fail)
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
