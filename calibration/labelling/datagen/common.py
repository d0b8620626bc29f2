"""Building blocks shared by the question generators of every domain.

`_item` and `_choice` build one question dict (without id/domain), `_fmt`
writes exact numeric answers, `_table` and `_aliases` parse the '|'-separated
fact tables, and `_NAMES`/`_num`/`_a` fill templates. The leading underscores
mark these as private to the `calibration.labelling.datagen` package.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from decimal import Decimal
from fractions import Fraction

Template = Callable[[random.Random], dict]  # draws one question (without id/domain) from the RNG
_LETTERS = "ABCDEFGHIJ"


def _item(
    source: str, question: str, answer, answer_type: str, aliases: Iterable[str] = (), choices=None
) -> dict:
    """One question without id/domain; numbers are formatted with `_fmt`."""
    item = {
        "question": question,
        "answer": _fmt(answer) if answer_type == "number" else str(answer),
        "aliases": list(aliases),
        "answer_type": answer_type,
    }
    if choices is not None:
        item["choices"] = list(choices)
    item["source"] = f"datagen:{source}"
    return item


def _fmt(value) -> str:
    """Exact decimal text of an int or Fraction ("12", "2.5", "-0.75"); a repeating decimal is a bug."""
    value = Fraction(value)
    if value.denominator == 1:
        return str(value.numerator)
    scaled = value * 10**4
    if scaled.denominator != 1:
        raise AssertionError(f"generated answer {value} has no short exact decimal form")
    return format(Decimal(scaled.numerator).scaleb(-4).normalize(), "f")


def _choice(
    source: str,
    stem: str,
    correct: str,
    distractors: Iterable[str],
    rng: random.Random,
    *,
    header: bool = False,
    k: int = 4,
) -> dict:
    """A multiple-choice item: `correct` plus up to k-1 distinct distractors, shuffled, letter answer."""
    options, seen = [correct], {correct.casefold()}
    for d in distractors:
        if d.casefold() not in seen and len(options) < k:
            options.append(d)
            seen.add(d.casefold())
    rng.shuffle(options)
    lines = "".join(f"\n{_LETTERS[i]}) {o}" for i, o in enumerate(options))
    question = stem + ("\nOptions:" if header else "") + lines
    return _item(source, question, _LETTERS[options.index(correct)], "choice", choices=options)


def _table(text: str) -> list[list[str]]:
    """Parse a '|'-separated fact table (one row a line, '#' comments)."""
    rows = []
    for line in text.strip().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            rows.append([cell.strip() for cell in line.split("|")])
    return rows


def _aliases(cell: str) -> list[str]:
    """';'-separated aliases of a table cell ('' -> [])."""
    return [a.strip() for a in cell.split(";") if a.strip()]


_NAMES = (  # noqa: SIM905 -- a word list reads better as one string
    "Alice Bob Carol Dave Emma Frank Grace Henry Irene Jack Kate Liam Maya Noah Olivia Paul Quinn "
    "Rosa Sam Tara Umar Vera Will Xena Yusuf Zoe Aisha Bruno Chen Dina Elif Farid Gina Hugo Ines "
    "Jonas"
).split()
_SIZES = {"small": (1, 20), "medium": (10, 999), "large": (1000, 99999)}


def _a(noun: str) -> str:
    """The noun with its indefinite article ("an orange", "a plum")."""
    return f"{'an' if noun[0].lower() in 'aeiou' else 'a'} {noun}"


def _num(rng: random.Random, size: str | None = None) -> int:
    """A random positive int of a random (or given) size class."""
    lo, hi = _SIZES[size or rng.choice(list(_SIZES))]
    return rng.randint(lo, hi)
