"""Field checks for the files the app reads: map files, records, data items, router and users files.

One mechanism for every format: the format declares a table of rules, field by field, and
`check` runs it. The format keeps its own error class and message prefix (the file, the line,
the record), given as a `fail` callback, so an error still names where the bad value is, which
field, and what it must be.

    from assistant.core.errors import DataError
    from assistant.core.validate import Rule, check, is_text, is_unit, list_of, missing

    RULES = {
        "name": Rule(is_text, "must be a non-empty string"),
        "threshold": Rule(is_unit, "must be a number in [0, 1], got {value}"),
        "tags": Rule(list_of(is_text), "must be a list of non-empty strings"),
    }

    def read(data: dict, where: str) -> dict:
        def fail(name: str, problem: str):
            raise DataError(f"{where}: field {name}: {problem}")

        for name in missing(data, ("name", "threshold")):
            fail(name, "missing")
        check(data, RULES, fail)  # the first rule a present field breaks calls fail(field, problem)
        return data

Rules
    Rule(test, problem): `test(value)` is True for a good value. `problem` says what is wrong; it is
    formatted with `value` (the bad value, shown by `check`'s `show`, repr by default) and `data`
    (the whole object, for a message that names another field: "{data[name]!r}"). Write literal
    braces as {{ and }}. A field's entry may be one Rule or a tuple of Rules, checked in order.
    check(data, rules, fail, show=repr): runs the rules of the fields `data` holds (an absent field
    is not checked: list the required ones with `missing`), in the table's order, and calls
    `fail(field, problem)` for the first rule broken. `fail` must raise the format's error.
    missing(data, names) / unknown(data, known): the names absent from `data` / present but not
    in `known` (sorted), for the format to report as it words them.

Predicates (value -> bool), each written once; JSON's true/false are never numbers:
    is_number(v)   a real number, not a bool (numpy's numbers count)
    is_finite(v)   a finite number (an integer too large for a float is not)
    is_unit(v)     a finite number in [0, 1]
    is_whole(v)    an integer >= 0, not a bool
    is_text(v)     a string with something besides white space
    is_object(v)   a JSON object (a dict)
    list_of(test, min_len=0): a predicate for a list (or tuple) of at least min_len items that all
    pass `test`
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, NoReturn

__all__ = ["Rule", "check", "missing", "unknown", "is_number", "is_finite", "is_unit", "is_whole", "is_text",
           "is_object", "list_of"]


def is_number(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def is_finite(v: Any) -> bool:
    try:
        return is_number(v) and math.isfinite(v)
    except OverflowError:  # JSON allows integers too large for a float (1 followed by 400 zeros)
        return False


def is_unit(v: Any) -> bool:
    return is_finite(v) and 0 <= v <= 1


def is_whole(v: Any) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool) and v >= 0


def is_text(v: Any) -> bool:
    return isinstance(v, str) and bool(v.strip())


def is_object(v: Any) -> bool:
    return isinstance(v, dict)


def list_of(test: Callable[[Any], bool], min_len: int = 0) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, (list, tuple)) and len(v) >= min_len and all(test(t) for t in v)


@dataclass(frozen=True)
class Rule:
    test: Callable[[Any], bool]  # True for a good value
    problem: str  # what is wrong, formatted with `value` (the bad value, shown) and `data` (the object)


def check(data: Mapping, rules: Mapping[str, Rule | tuple[Rule, ...]], fail: Callable[[str, str], NoReturn],
          show: Callable[[Any], str] = repr) -> None:
    """Run `rules` on the fields `data` holds; `fail(field, problem)` raises for the first one broken."""
    for name, field_rules in rules.items():
        if name not in data:
            continue
        for rule in field_rules if isinstance(field_rules, tuple) else (field_rules,):
            if not rule.test(data[name]):
                fail(name, rule.problem.format(value=show(data[name]), data=data))


def missing(data: Mapping, names) -> list[str]:
    """The `names` that `data` lacks, in their order."""
    return [n for n in names if n not in data]


def unknown(data: Mapping, known) -> list[str]:
    """The fields of `data` not in `known`, sorted."""
    return sorted(set(data) - set(known))
