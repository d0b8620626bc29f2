"""Grade a model's final answer against a data item's gold answer.

`grade(answer, item)` returns True (correct), False (wrong) or None (not
attempted: no answer, or an "I don't know"-like answer). The item is a data
record (`{"id", "domain", "question", "answer", "aliases", "answer_type",
["choices"]}`, see docs/architecture.md); how the answer is compared depends on
`answer_type`:

* ``number``  -- both sides go through `parse_number` and are compared with
  `numbers_match` (relative tolerance 1e-6, absolute 1e-9).
* ``text``    -- NQ-open normalised exact match (`normalize_text`) against the
  gold answer and every alias, plus one documented, looser fallback
  (`text_matches`): the gold appears as a whole-token span inside a *short*
  answer ("Paris, France" for "Paris").
* ``choice``  -- `grade_choice`: a letter ("B", "(B)", "Option B", "B. text")
  or the option text itself.
* ``boolean`` -- `grade_boolean`: yes/no/true/false, case-insensitively, with
  yes == true.

The grader is deliberately conservative: a hedged answer that lists several
candidates ("Paris or Lyon") or several different numbers is wrong, not right.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from fractions import Fraction

from assistant.core.errors import DataError
from assistant.core.normalize import normalize_text, strip_answer_prefix
from assistant.core.refusals import is_not_attempted

__all__ = [
    "ANSWER_TYPES",
    "grade",
    "grade_boolean",
    "grade_choice",
    "is_not_attempted",
    "normalize_text",
    "numbers_match",
    "parse_boolean",
    "parse_choice",
    "parse_number",
    "text_matches",
]

ANSWER_TYPES = ("number", "text", "choice", "boolean")

# How many tokens a text answer may have beyond the gold's for the containment fallback.
MAX_EXTRA_TOKENS = 5
# Extra words that turn "gold inside the answer" into a hedge or a negation ("not Paris", "Paris or Lyon").
_HEDGE_WORDS = frozenset(
    "or and not no never nor neither either except but maybe perhaps possibly probably isnt wasnt "  # noqa: SIM905
    "arent werent unlike instead rather than".split()
)
# Tolerances of numbers_match: absorbs float noise and "2.50" vs "2.5", never real rounding.
REL_TOL = 1e-6
ABS_TOL = 1e-9

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "  # noqa: SIM905
        "fifteen sixteen seventeen eighteen nineteen twenty".split()
    )
}
_NUMBER_WORDS.update(
    {w: 10 * i for i, w in enumerate(["thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 3)}
)
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}

# Scientific notation written out: "1.5 x 10^3", "2 × 10**-4", "3*10^5".
_TIMES_TEN = re.compile(r"(\d+(?:\.\d+)?)\s*(?:x|×|\*|·)\s*10\s*(?:\^|\*\*)\s*([-+−]?\d+)", re.IGNORECASE)
# One number: optional sign, digits with optional decimals or a fraction, optional exponent, optional scale.
# Digits glued to a letter or a caret ("km2", "m/s^2", "CO2") belong to a unit or a name, not the answer.
_NUMBER = re.compile(
    r"(?<![\w^.])(?P<sign>[-+−]\s?|(?:minus|negative)\s+)?(?:[$€£¥]\s?)?"
    r"(?P<num>\d+/\d+|\d+(?:\.\d+)?(?:e[-+]?\d+)?|\.\d+)"
    r"(?:\s*(?P<scale>thousand|million|billion|trillion)\b)?",
    re.IGNORECASE,
)
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _words_to_number(text: str) -> float | None:
    """Read the one number written in words from 0 to 99 ("seven apples", "twenty-one"), else None."""
    runs: list[list[int]] = [[]]
    for word in normalize_text(text.replace("-", " ")).split():
        if word in _NUMBER_WORDS:
            runs[-1].append(_NUMBER_WORDS[word])
        elif runs[-1]:
            runs.append([])
    runs = [r for r in runs if r]
    if len(runs) != 1 or len(runs[0]) > 2:
        return None
    values = runs[0]
    if len(values) == 2 and not (values[0] >= 20 and values[0] % 10 == 0 and 0 < values[1] < 10):
        return None
    return float(sum(values))


def parse_number(text: str) -> float | None:
    """Extract the single number an answer states, or None.

    Accepts "18", "-7", "−7", "1,234.50", "$18", "18 dollars", "18%", "x = 18",
    "The answer is 18.", "3/4" (a fraction -> 0.75), "1.5e3", "1.5 x 10^3",
    "2 million", and small numbers in words ("seven", "twenty-one"). Digits glued
    to a unit ("m/s^2", "km2") are ignored. A trailing ".0"/".00" changes nothing
    (the value is compared, not the text). When an "=" appears, only the text after
    the last one counts ("2 + 3 = 5"). When several *different* numbers remain
    the answer is ambiguous and the result is None; a percentage is read as its
    number ("25%" -> 25), matching GSM8K-style gold answers.

    >>> parse_number("$1,234.50"), parse_number("x = 18"), parse_number("3 or 4")
    (1234.5, 18.0, None)
    """
    text = strip_answer_prefix(text)
    if "=" in text:
        text = text.rsplit("=", 1)[1]
    text = _THOUSANDS_COMMA.sub("", text)
    try:
        text = _TIMES_TEN.sub(
            lambda m: repr(float(m.group(1)) * 10.0 ** int(m.group(2).replace("−", "-"))), text
        )
    except OverflowError:  # "2 x 10^400" is no answer a float can compare
        return None
    values: list[float] = []
    for m in _NUMBER.finditer(text):
        num = m.group("num")
        if "/" in num:
            top, bottom = num.split("/")
            if int(bottom) == 0:
                return None
            value = float(Fraction(int(top), int(bottom)))
        else:
            value = float(num)
        if m.group("sign") and m.group("sign").strip().lower() != "+":
            value = -value
        if m.group("scale"):
            value *= _SCALES[m.group("scale").lower()]
        values.append(value)
    if not values:
        return _words_to_number(text)
    first = values[0]
    return first if all(numbers_match(v, first) for v in values) else None


def numbers_match(a: float, b: float) -> bool:
    """Equal within a relative tolerance of 1e-6 or an absolute one of 1e-9.

    Tight on purpose: it forgives float noise ("0.30000000000000004") and
    formatting ("2.50"), but not rounding ("3.33" is not 10/3).

    >>> numbers_match(0.1 + 0.2, 0.3), numbers_match(3.33, 10 / 3)
    (True, False)
    """
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def _token_span_in(needle: list[str], hay: list[str]) -> int:
    """Start index of `needle` as a contiguous token span of `hay`, or -1."""
    for i in range(len(hay) - len(needle) + 1):
        if hay[i : i + len(needle)] == needle:
            return i
    return -1


def text_matches(answer: str, golds: Sequence[str]) -> bool:
    """NQ-open exact match against any gold, plus a conservative containment fallback.

    Exact match: `normalize_text(answer)` equals a normalised gold. Fallback
    (looser, documented): a normalised gold occurs as a whole-token span in the
    answer, the answer has at most `MAX_EXTRA_TOKENS` (5) tokens more than that
    gold, and none of the extra tokens is a hedge or negation word ("or",
    "and", "not", "maybe", ...). So "Paris, France" and "in 1939" pass for
    "Paris" / "1939", while "Paris or Lyon", "not Paris" and "Matthews" for
    "Jimmy Matthews" do not. A gold that is a bare number also matches the same
    number written differently ("fourteen", "1,000").

    >>> text_matches("Paris, France", ["Paris"]), text_matches("Paris or Lyon", ["Paris"])
    (True, False)
    """
    norm = normalize_text(strip_answer_prefix(answer))
    tokens = norm.split()
    for gold in golds:
        gold_norm = normalize_text(gold)
        if not gold_norm:
            continue
        if norm == gold_norm:
            return True
        gold_tokens = gold_norm.split()
        start = _token_span_in(gold_tokens, tokens)
        if start >= 0 and len(tokens) - len(gold_tokens) <= MAX_EXTRA_TOKENS:
            extra = tokens[:start] + tokens[start + len(gold_tokens) :]
            if not _HEDGE_WORDS.intersection(extra):
                return True
        if re.fullmatch(r"\s*[-+−]?[\d,]*\.?\d+\s*", gold):
            value = parse_number(answer)
            if value is not None and numbers_match(value, float(gold.replace(",", "").replace("−", "-"))):
                return True
    return False


def _letter_index(letter: str, n_choices: int | None) -> int | None:
    """0-based index of an option letter, or None when out of range."""
    index = ord(letter.upper()) - ord("A")
    return index if 0 <= index < (n_choices if n_choices is not None else 26) else None


_LETTER_ONLY = re.compile(r"^\(?([A-Za-z])\)?[.):]?$")
_LETTER_WORD = re.compile(r"^(?:option|choice|letter)\s*\(?([A-Za-z])\)?[.):]?$", re.IGNORECASE)
_LETTER_THEN_TEXT = re.compile(r"^\(?([A-Za-z])(?:\)|[.:]\s|\)\s)\s*(?P<text>.*)$", re.DOTALL)


def parse_choice(answer: str, choices: Sequence[str] = ()) -> int | None:
    """The 0-based option index an answer picks, or None when it picks none or several.

    Understands "B", "(B)", "B)", "b.", "Option B", "The answer is B", "B. text",
    "(B) text", and the option text itself (normalised exact match against
    `choices`). When a letter comes with a text that is exactly a *different*
    option ("B) Paris" where Paris is option A) the answer contradicts itself
    and None is returned.

    >>> parse_choice("(B)", ["red", "blue"]), parse_choice("Blue", ["red", "blue"]), parse_choice("E", ["red", "blue"])
    (1, 1, None)
    """
    text = strip_answer_prefix(answer)
    n = len(choices) if choices else None
    norm_choices = [normalize_text(c) for c in choices]

    def text_index(candidate: str) -> int | None:
        # Exact (case-folded) text first: options such as "36m" / "-36m" normalise to the same string.
        raw = [
            i
            for i, c in enumerate(choices)
            if " ".join(c.casefold().split()) == " ".join(candidate.casefold().split())
        ]
        hits = raw or [i for i, c in enumerate(norm_choices) if c and c == normalize_text(candidate)]
        return hits[0] if len(hits) == 1 else None

    for pattern in (_LETTER_ONLY, _LETTER_WORD):
        m = pattern.match(text)
        if m and _letter_index(m.group(1), n) is not None:
            return _letter_index(m.group(1), n)
    by_text = text_index(text)
    if by_text is not None:
        return by_text
    m = _LETTER_THEN_TEXT.match(text)
    if m:
        index = _letter_index(m.group(1), n)
        named = text_index(m.group("text"))
        if index is None or (named is not None and named != index):
            return None
        return index
    return None


def grade_choice(answer: str, gold: str, choices: Sequence[str] = ()) -> bool:
    """True when the answer picks the gold option (gold is a letter, or the gold option's text).

    >>> grade_choice("Option B", "B", ["red", "blue"]), grade_choice("blue", "B", ["red", "blue"])
    (True, True)
    """
    gold_index = parse_choice(gold, choices)
    if gold_index is None:
        raise DataError(f"choice gold {gold!r} is not a letter or option of {list(choices)!r}")
    return parse_choice(answer, choices) == gold_index


def parse_boolean(answer: str) -> bool | None:
    """True for yes/true, False for no/false (first word, any case), else None.

    >>> parse_boolean("Yes."), parse_boolean("false, because ..."), parse_boolean("maybe")
    (True, False, None)
    """
    words = normalize_text(strip_answer_prefix(answer)).split()
    if not words:
        return None
    if words[0] in ("yes", "true"):
        return True
    if words[0] in ("no", "false"):
        return False
    return None


def grade_boolean(answer: str, gold: str) -> bool:
    """True when answer and gold state the same truth value (yes == true).

    >>> grade_boolean("TRUE", "Yes"), grade_boolean("No.", "yes")
    (True, False)
    """
    gold_value = parse_boolean(gold)
    if gold_value is None:
        raise DataError(f"boolean gold {gold!r} is not yes/no/true/false")
    return parse_boolean(answer) is gold_value


def grade(answer: str | None, item: dict) -> bool | None:
    """Grade one answer against a data item.

    Parameters
    ----------
    answer : str or None
        The model's final answer (already extracted from its output).
    item : dict
        A data record with at least ``answer`` and ``answer_type``; ``aliases``
        and ``choices`` are used when present.

    Returns
    -------
    bool or None
        True if correct, False if wrong, None if not attempted (no answer, an
        empty one, or an "I don't know"-like refusal; see `is_not_attempted`).

    Raises
    ------
    DataError
        When the item's answer_type is unknown or its gold answer cannot be read.

    >>> grade("Paris, France", {"answer": "Paris", "aliases": [], "answer_type": "text"})
    True
    """
    answer_type = item.get("answer_type")
    gold = item.get("answer")
    if answer_type not in ANSWER_TYPES or not isinstance(gold, str):
        raise DataError(
            f"item {item.get('id', '?')!r}: answer_type must be one of {', '.join(ANSWER_TYPES)} "
            f"and answer a string, got {answer_type!r} / {gold!r}"
        )
    if is_not_attempted(answer):
        return None
    assert answer is not None
    if answer_type == "number":
        gold_value = parse_number(gold)
        if gold_value is None:
            raise DataError(f"item {item.get('id', '?')!r}: number gold {gold!r} is not a number")
        value = parse_number(answer)
        return value is not None and numbers_match(value, gold_value)
    if answer_type == "choice":
        return grade_choice(answer, gold, item.get("choices") or ())
    if answer_type == "boolean":
        return grade_boolean(answer, gold)
    return text_matches(answer, [gold, *(item.get("aliases") or [])])
