"""The everyday question set (issue 20): every file validates, the split is the one split.py makes, and the
grader reads the gold answers, aliases, units and option texts as right and plain wrong answers as wrong."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from calibration.labelling.grading import grade
from calibration.labelling.items import read_items

EVERYDAY = Path(__file__).resolve().parents[2] / "calibration" / "everyday"
DOMAINS = ("math", "factual", "science", "reasoning")
PARTS = [EVERYDAY / f"{part}-{d}.jsonl" for d in DOMAINS for part in ("fit", "heldout")]


def _items(path: Path) -> list[dict]:
    return list(read_items(path))


def _by_id() -> dict[str, dict]:
    return {it["id"]: it for path in PARTS for it in _items(path)}


def _split_module():
    spec = importlib.util.spec_from_file_location("everyday_split", EVERYDAY / "split.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", PARTS, ids=lambda p: p.name)
def test_every_gold_alias_and_option_text_grades_right(path):
    items = _items(path)
    assert len(items) >= 55
    for item in items:
        assert item["split"] == path.name.split("-")[0]
        assert item["source"] == "calibrated-chat everyday set (written for this project)"
        for gold in (item["answer"], *item.get("aliases", [])):
            assert grade(gold, item) is True, (item["id"], gold)
        if item["answer_type"] == "choice":
            option = item["choices"]["ABCDEFGH".index(item["answer"])]
            assert grade(option, item) is True, (item["id"], option)
            assert grade(f"({item['answer']}) {option}", item) is True, item["id"]


def test_fit_and_heldout_are_disjoint_and_are_what_split_py_writes():
    split = _split_module()
    for domain in DOMAINS:
        written = _items(EVERYDAY / "written" / f"{domain}.jsonl")
        fit, heldout = split.split(written)
        assert [it["id"] for it in fit] == [it["id"] for it in _items(EVERYDAY / f"fit-{domain}.jsonl")]
        assert [it["id"] for it in heldout] == [it["id"] for it in _items(EVERYDAY / f"heldout-{domain}.jsonl")]
        assert not {it["id"] for it in fit} & {it["id"] for it in heldout}
        assert len(fit) + len(heldout) == len(written)
        assert abs(len(fit) - len(heldout)) <= 4


def test_no_question_is_written_twice():
    questions = [it["question"] for d in DOMAINS for it in _items(EVERYDAY / "written" / f"{d}.jsonl")]
    assert len(questions) == len(set(questions))


# (item id, answers that grade right, answers that grade wrong)
CASES = [
    ("everyday-math-001", ["132", "132.", "12 x 11 = 132"], ["121", "132 or 144"]),
    ("everyday-math-046", ["250 cm", "250 centimetres", "2.5 m = 250 cm"], ["25 cm", "2500"]),
    ("everyday-math-061", ["3.5 kg", "3.50"], ["35", "3"]),
    ("everyday-math-066", ["212 °F", "212 degrees Fahrenheit"], ["100", "112 F"]),
    ("everyday-math-086", ["20%", "20 percent"], ["0.2", "5"]),
    ("everyday-math-088", ["$30", "30 dollars", "$30.00"], ["$10", "$40"]),
    ("everyday-factual-008", ["Brasilia", "Brasília, Brazil"], ["Rio de Janeiro", "São Paulo"]),
    ("everyday-factual-014", ["Washington DC", "Washington"], ["New York", "not Washington"]),
    ("everyday-factual-033", ["Orwell", "George Orwell (Eric Blair)"], ["Aldous Huxley", "Orwell or Huxley"]),
    ("everyday-factual-096", ["7", "seven continents"], ["6", "five"]),
    ("everyday-science-001", ["C", "Carbon dioxide", "Option C"], ["A", "Oxygen", "C) Oxygen"]),
    ("everyday-science-068", ["CO2", "CO₂"], ["CO", "O2"]),
    ("everyday-science-101", ["joules", "the joule (J)"], ["watt", "newton"]),
    ("everyday-reasoning-001", ["A", "Thursday", "(A) Thursday"], ["B", "Saturday"]),
    ("everyday-reasoning-013", ["B", "Wednesday"], ["D", "Thursday"]),
    ("everyday-reasoning-034", ["A", "Carl"], ["Anna", "C"]),
    ("everyday-reasoning-061", ["No", "no, a rectangle need not be a square"], ["Yes"]),
    ("everyday-reasoning-103", ["True", "yes"], ["False", "no"]),
]


@pytest.mark.parametrize(("item_id", "right", "wrong"), CASES, ids=[c[0] for c in CASES])
def test_answers_in_everyday_wording_grade_as_expected(item_id, right, wrong):
    item = _by_id()[item_id]
    for answer in right:
        assert grade(answer, item) is True, (item_id, answer)
    for answer in wrong:
        assert grade(answer, item) is False, (item_id, answer)


def test_an_empty_or_refused_answer_is_not_attempted():
    item = _by_id()["everyday-math-001"]
    assert grade("", item) is None
    assert grade("I don't know", item) is None
