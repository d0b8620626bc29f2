"""Tests for calibration.labelling.grading: one table of answer/gold cases per answer type, plus the pieces."""

from __future__ import annotations

import json

import pytest

from assistant.core.errors import DataError
from calibration.labelling.grading import (
    ANSWER_TYPES,
    grade,
    grade_boolean,
    grade_choice,
    is_not_attempted,
    normalize_text,
    numbers_match,
    parse_boolean,
    parse_choice,
    parse_number,
    text_matches,
)
from tests.conftest import SHARED

SHARED_DATA = SHARED / "data"


def num(gold):
    return {"id": "t-num", "answer": gold, "aliases": [], "answer_type": "number"}


def text(gold, *aliases):
    return {"id": "t-text", "answer": gold, "aliases": list(aliases), "answer_type": "text"}


def boolean(gold):
    return {"id": "t-bool", "answer": gold, "aliases": [], "answer_type": "boolean"}


COLOURS = ["red ball", "blue ball", "green ball", "36m"]
SIGNS = ["36m", "-36m", "99m", "-99m"]


def choice(gold, choices=COLOURS):
    return {
        "id": "t-choice",
        "answer": gold,
        "aliases": [],
        "answer_type": "choice",
        "choices": list(choices),
    }


# (answer, item, expected grade)
CASES = [
    # --- numbers: currency, units, commas, signs, trailing .0, words, fractions, notation
    ("18", num("18"), True),
    ("$18", num("18"), True),
    ("$18.00", num("18"), True),
    ("18 dollars", num("18"), True),
    ("18.0", num("18"), True),
    ("x = 18", num("18"), True),
    ("The answer is 18.", num("18"), True),
    ("1,234.50", num("1234.5"), True),
    ("1,234", num("1234"), True),
    ("-7", num("-7"), True),
    ("−7", num("-7"), True),
    ("minus 7", num("-7"), True),
    ("7", num("-7"), False),
    ("18%", num("18"), True),
    ("3/4", num("0.75"), True),
    ("1.5e3", num("1500"), True),
    ("1.5 x 10^3", num("1500"), True),
    ("2 million", num("2000000"), True),
    ("eighteen", num("18"), True),
    ("twenty-one", num("21"), True),
    ("I have seven apples", num("7"), True),
    ("9.8 m/s^2", num("9.8"), True),
    ("12 km2", num("12"), True),
    ("2 + 3 = 5", num("5"), True),
    ("18 apples and 18 pears? No: 18.", num("18"), True),
    ("17", num("18"), False),
    ("17.99", num("18"), False),
    ("3.33", num("3.3333"), False),
    ("17 or 18", num("18"), False),
    ("10:30", num("10"), False),
    ("lots", num("18"), False),
    # --- text: NQ-open EM on gold and aliases, articles/punctuation, conservative containment
    ("Paris", text("Paris"), True),
    ("paris.", text("Paris"), True),
    ("The Paris", text("Paris"), True),
    ("Paris, France", text("Paris"), True),
    ("It is in Paris, the capital city.", text("Paris"), True),
    ("Paris or Lyon", text("Paris"), False),
    ("not Paris", text("Paris"), False),
    ("Lyon", text("Paris"), False),
    ("USA", text("United States", "USA", "US"), True),
    ("the U.S.", text("United States", "USA", "US"), True),
    ("America", text("United States", "USA", "America"), True),
    ("United Kingdom", text("United States", "USA"), False),
    ("Matthews", text("leg spinner Jimmy Matthews", "Jimmy Matthews"), False),
    ("Jimmy Matthews", text("leg spinner Jimmy Matthews", "Jimmy Matthews"), True),
    ("Zurich", text("Zürich"), True),
    ("Olivia D’Abo", text("Olivia d'Abo"), True),
    ("The capital of Russia is Moscow.", text("Moscow"), True),
    ("Moscow is a large city in the west of Russia", text("Moscow"), False),
    ("fourteen", text("14"), True),
    ("1,000", text("1000"), True),
    ("Canadian dollar (CAD)", text("Canadian dollar", "dollar"), True),
    # --- choice: letters in several forms, the option text, contradictions, out of range
    ("B", choice("B"), True),
    ("(B)", choice("B"), True),
    ("B)", choice("B"), True),
    ("b.", choice("B"), True),
    ("Option B", choice("B"), True),
    ("The answer is B", choice("B"), True),
    ("B. blue ball", choice("B"), True),
    ("(B) blue ball", choice("B"), True),
    ("Blue Ball", choice("B"), True),
    ("A", choice("B"), False),
    ("A) red ball", choice("B"), False),
    ("B) red ball", choice("B"), False),
    ("E", choice("B"), False),
    ("36m", choice("D"), True),
    ("-36m", choice("B", SIGNS), True),
    ("36m", choice("B", SIGNS), False),
    ("A", choice("A"), True),
    ("purple ball", choice("B"), False),
    # --- boolean: yes/no/true/false in any case, yes == true
    ("Yes", boolean("Yes"), True),
    ("yes.", boolean("Yes"), True),
    ("YES, because all wugs are daxes", boolean("yes"), True),
    ("True", boolean("Yes"), True),
    ("false", boolean("False"), True),
    ("No", boolean("Yes"), False),
    ("no", boolean("no"), True),
    ("True", boolean("False"), False),
    ("maybe", boolean("Yes"), False),
    # --- not attempted (None): missing, empty, refusals; real answers are never refusals
    (None, text("Paris"), None),
    ("", num("18"), None),
    ("   ", choice("B"), None),
    ("...", boolean("Yes"), None),
    ("I don't know", text("Paris"), None),
    ("I do not know.", num("18"), None),
    ("I don’t know the answer to this question.", text("Paris"), None),
    ("Not sure", boolean("Yes"), None),
    ("I'm not sure.", choice("B"), None),
    ("No idea", boolean("No"), None),
    ("Unknown", text("Paris"), None),
    ("I cannot answer that.", num("18"), None),
    ("N/A", text("Paris"), None),
    ("Sorry, I don't know.", text("Paris"), None),
    ("I don't know, maybe Paris", text("Paris"), False),
    ("Na", text("Na"), True),
    ("No", boolean("No"), True),
    # --- garbage
    ("asdf qwerty", text("Paris"), False),
    ("}{][", num("18"), None),
    ("🙂", choice("B"), False),
]


@pytest.mark.parametrize(("answer", "item", "expected"), CASES)
def test_grade_table(answer, item, expected):
    assert grade(answer, item) is expected


def test_table_covers_every_answer_type_the_grader_knows():
    assert {item["answer_type"] for _, item, _ in CASES} == set(ANSWER_TYPES)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  An   apple, a day ", "apple day"),
        ("Washington, D.C.", "washington dc"),
        ("Brontë’s “Jane Eyre”", "brontes jane eyre"),
        ("THE", ""),
        ("theory", "theory"),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("42", 42.0),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("$1,000,000", 1e6),
        ("1/0", None),
        ("2 × 10**-3", 0.002),
        ("3 hours and 20 minutes", None),
        ("no number", None),
        ("CO2", None),
        ("negative 4", -4.0),
        ("2 x 10^400", None),
    ],
)
def test_parse_number(raw, expected):
    assert parse_number(raw) == expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (0.1 + 0.2, 0.3, True),
        (1e9, 1e9 + 1, True),
        (1e9, 1e9 + 10_000, False),
        (0.0, 1e-10, True),
        (0.0, 1e-6, False),
        (10 / 3, 3.333333, True),
        (10 / 3, 3.33, False),
    ],
)
def test_numbers_match_tolerance(a, b, expected):
    assert numbers_match(a, b) is expected


@pytest.mark.parametrize(
    ("answer", "choices", "expected"),
    [
        ("C", COLOURS, 2),
        ("choice: c", COLOURS, 2),
        ("green ball", COLOURS, 2),
        ("D)", COLOURS, 3),
        ("F", COLOURS, None),
        ("A cat", COLOURS, None),
        ("I think B", COLOURS, None),
        ("-99m", SIGNS, 3),
    ],
)
def test_parse_choice(answer, choices, expected):
    assert parse_choice(answer, choices) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Yes.", True),
        ("TRUE", True),
        ("No!", False),
        ("false", False),
        ("Answer: yes", True),
        ("nope", None),
        ("", None),
    ],
)
def test_parse_boolean(answer, expected):
    assert parse_boolean(answer) is expected


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: grade("x", {"id": "q1", "answer": "x", "answer_type": "essay"}), "q1"),
        (lambda: grade("x", {"id": "q2", "answer_type": "text"}), "q2"),
        (lambda: grade("5", num("many")), "not a number"),
        (lambda: grade_boolean("yes", "perhaps"), "perhaps"),
        (lambda: grade_choice("A", "Z", ["x", "y"]), "'Z'"),
    ],
)
def test_bad_gold_raises_data_error(call, message):
    with pytest.raises(DataError, match=message):
        call()


def test_not_attempted_is_checked_before_yes_no():
    assert is_not_attempted("No idea.") and not is_not_attempted("No.")


def test_text_matches_limits_extra_tokens():
    gold = ["Paris"]
    assert text_matches("Paris is where it is found", gold)  # 5 extra tokens: still short
    assert not text_matches(
        "Paris is where it can be found", gold
    )  # 6 extra tokens: a sentence, not an answer


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")
@pytest.mark.parametrize("domain", ["math", "factual", "science", "reasoning"])
def test_gold_and_aliases_of_shared_data_grade_true(domain):
    items = [
        json.loads(line)
        for line in (SHARED_DATA / f"{domain}.jsonl").read_text().splitlines()
        if line.strip()
    ]
    for item in items:
        assert grade(item["answer"], item) is True, item["id"]
        for alias in item["aliases"]:
            assert grade(alias, item) is True, (item["id"], alias)
        if item["answer_type"] == "choice":
            index = ord(item["answer"]) - ord("A")
            assert grade(item["choices"][index], item) is True, item["id"]
            wrong = "A" if index else "B"
            assert grade(wrong, item) is False, item["id"]
