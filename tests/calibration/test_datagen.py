"""Tests for calibration.labelling.datagen: generated questions (determinism, validity, gold answers) and JSONL files."""

from __future__ import annotations

import json
import logging
import re
import tracemalloc
from collections import Counter

import pytest

from assistant.core import jsonl
from assistant.core.domains import DOMAINS
from assistant.core.errors import DataError
from assistant.core.jsonl import read_jsonl, write_jsonl
from calibration.labelling.datagen import GENERATED_MAX, make_questions, max_questions
from calibration.labelling.grading import ANSWER_TYPES, grade, normalize_text
from calibration.labelling.items import read_items, validate_item
from tests.conftest import SHARED

SHARED_DATA = SHARED / "data"
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@pytest.fixture(scope="module")
def generated():
    return {domain: make_questions(domain, 300, 0) for domain in DOMAINS}


# ----------------------------------------------------------------------------- make_questions


@pytest.mark.parametrize("domain", DOMAINS)
def test_deterministic_and_prefix_stable(domain):
    items = make_questions(domain, 60, 7)
    assert items == make_questions(domain, 60, 7)
    assert make_questions(domain, 25, 7) == items[:25]
    assert [i["question"] for i in make_questions(domain, 60, 8)] != [i["question"] for i in items]


@pytest.mark.parametrize("domain", DOMAINS)
def test_items_are_valid_unique_and_self_grading(generated, domain):
    items = generated[domain]
    assert [i["id"] for i in items] == [f"gen-{domain}-0-{k}" for k in range(300)]
    stems = [normalize_text(i["question"].split("\nA) ")[0]) for i in items]
    assert len(set(stems)) == len(items)
    for item in items:
        validate_item(item, "generated", 0)
        assert item["domain"] == domain and item["answer_type"] in ANSWER_TYPES
        assert grade(item["answer"], item) is True, item
        for alias in item["aliases"]:
            assert grade(alias, item) is True, (item, alias)
        if item["answer_type"] == "choice":
            index = ord(item["answer"]) - ord("A")
            assert 0 <= index < len(item["choices"])
            for letter, option in zip("ABCDEFGHIJ", item["choices"]):
                assert f"\n{letter}) {option}" in item["question"]
            assert grade(item["choices"][index], item) is True, item
            assert grade("A" if index else "B", item) is False, item
            assert len({c.casefold() for c in item["choices"]}) == len(item["choices"])


@pytest.mark.parametrize(
    ("domain", "types", "min_templates"),
    [
        ("math", {"number"}, 20),
        ("factual", {"text", "number"}, 10),
        ("science", {"choice", "number"}, 15),
        ("reasoning", {"boolean", "text", "choice", "number"}, 10),
    ],
)
def test_each_domain_mixes_templates_and_answer_types(generated, domain, types, min_templates):
    items = generated[domain]
    assert {i["answer_type"] for i in items} == types
    assert len({i["source"] for i in items}) >= min_templates


def test_math_numbers_span_small_and_large(generated):
    values = [abs(float(i["answer"])) for i in generated["math"]]
    assert min(values) < 20 and max(values) > 10_000
    assert any("." in i["answer"] for i in generated["math"])  # some decimal answers
    assert any(i["answer"].startswith("-") for i in generated["math"])  # and some negative ones


def test_boolean_answers_are_balanced(generated):
    answers = Counter(i["answer"].lower() for i in generated["reasoning"] if i["answer_type"] == "boolean")
    yes, no = answers["yes"] + answers["true"], answers["no"] + answers["false"]
    assert yes > 0.25 * (yes + no) and no > 0.25 * (yes + no)


def test_choice_letters_are_spread(generated):
    letters = Counter(i["answer"] for i in generated["science"] if i["answer_type"] == "choice")
    assert set(letters) == set("ABCD") and min(letters.values()) > 20


# Gold answers recomputed independently from the question text.
def _arith(question: str) -> float:
    expr = re.fullmatch(r"What is (.+)\?", question).group(1)
    return eval(expr.replace("×", "*").replace("÷", "/"))  # safe: generated digits and operators


def _weekday_after(question: str) -> str:
    n, day = re.fullmatch(r"What day of the week is (\d+) days? after a (\w+)\?", question).groups()
    return DAYS[(DAYS.index(day) + int(n)) % 7]


def _boolean_expression(question: str) -> str:
    return str(eval(question.removesuffix(" is")))  # safe: True/False/and/or/not/() only


def _navigate(question: str) -> str:
    pos = [0, 0]
    for count, way in re.findall(r"Take (\d+) steps? (\w+)\.", question):
        axis, sign = {"forward": (1, 1), "backward": (1, -1), "right": (0, 1), "left": (0, -1)}[way]
        pos[axis] += sign * int(count)
    return "Yes" if pos == [0, 0] else "No"


def _web_of_lies(question: str) -> str:
    first, first_says = re.search(r"Question: (\w+) (tells the truth|lies)\.", question).groups()
    truthful = {first: first_says == "tells the truth"}
    for person, other, claim in re.findall(r"(\w+) says (\w+) (tells the truth|lies)\.", question):
        truthful[person] = truthful[other] == (claim == "tells the truth")
    return "Yes" if truthful[re.search(r"Does (\w+) tell the truth\?", question).group(1)] else "No"


@pytest.mark.parametrize(
    ("domain", "source", "recompute"),
    [
        ("math", "datagen:order_of_operations", _arith),
        ("reasoning", "datagen:weekday_after", _weekday_after),
        ("reasoning", "datagen:boolean_expression", _boolean_expression),
        ("reasoning", "datagen:navigate", _navigate),
        ("reasoning", "datagen:web_of_lies", _web_of_lies),
    ],
)
def test_gold_answers_recomputed_from_text(domain, source, recompute):
    items = [i for i in make_questions(domain, 1000, 3) if i["source"] == source]
    assert len(items) >= 10
    for item in items:
        expected = recompute(item["question"])
        assert grade(str(expected), item) is True, (item["question"], item["answer"], expected)


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("What is the capital of Japan?", "Tokyo"),
        ("Canberra is the capital of which country?", "Australia"),
        ("What is the currency of Switzerland?", "Swiss franc"),
        ("On which continent is Kenya?", "Africa"),
        ("What is the chemical symbol for gold?", "Au"),
        ("Which element has the chemical symbol Fe?", "iron"),
        ("Who wrote Moby-Dick?", "Herman Melville"),
        ("Which planet is third from the Sun?", "Earth"),
        ("In which city is the Taj Mahal?", "Agra"),
        ("Who painted The Starry Night?", "Vincent van Gogh"),
    ],
)
def test_factual_table_facts(question, answer):
    pool = {i["question"]: i for i in make_questions("factual", max_questions("factual"), 0)}
    assert pool[question]["answer"] == answer


def test_factual_has_many_distinct_facts_first():
    items = make_questions("factual", 400, 1)
    assert len({i["answer"] for i in make_questions("factual", max_questions("factual"), 1)}) >= 150
    # The first pass asks each fact once, so the first 400 questions carry ~400 different (relation, answer) pairs
    # (the same answer may belong to several facts: "euro" for many countries).
    assert len({(i["source"], i["answer"]) for i in items}) > 250


@pytest.mark.parametrize("domain", DOMAINS)
def test_two_thousand_per_domain(domain):
    items = make_questions(domain, 2000, 5)
    assert len(items) == 2000 and len({i["question"] for i in items}) == 2000


@pytest.mark.parametrize(
    ("domain", "n", "message"),
    [
        ("history", 10, "math, factual, science, reasoning"),
        ("math", 0, "positive integer"),
        ("math", -3, "positive integer"),
        ("math", "5", "positive integer"),
        ("math", True, "positive integer"),
        ("math", GENERATED_MAX + 1, f"at most {GENERATED_MAX}"),
        ("factual", 10**6, "distinct factual questions"),
        ("math", 10, "seed must be an integer"),
    ],
)
def test_make_questions_rejects_bad_arguments(domain, n, message):
    seed = "7" if "seed" in message else 0
    with pytest.raises(DataError, match=message):
        make_questions(domain, n, seed)


def test_factual_max_is_reachable():
    limit = max_questions("factual")
    assert limit >= 2000
    assert len(make_questions("factual", limit, 2)) == limit


# ----------------------------------------------------------------------------- JSONL files


def test_write_then_read_round_trip(tmp_path):
    items = make_questions("science", 20, 0)
    path = tmp_path / "sub" / "science.jsonl"
    assert write_jsonl(items, path) == 20
    assert list(read_jsonl(path)) == items
    assert list(read_items(path)) == items
    assert write_jsonl(items[:3], path) == 3  # overwrites atomically
    assert len(list(read_jsonl(path))) == 3
    assert [p.name for p in path.parent.iterdir()] == ["science.jsonl"]  # no temp file left behind


def test_failed_write_keeps_old_file(tmp_path):
    path = tmp_path / "data.jsonl"
    write_jsonl([{"a": 1}], path)

    def broken():
        yield {"a": 2}
        raise RuntimeError("generator failed")

    with pytest.raises(RuntimeError):
        write_jsonl(broken(), path)
    assert list(read_jsonl(path)) == [{"a": 1}]
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]


BAD_FILE = '{"id": "a"}\n\n{"id": "b"\n[1, 2]\n{"id": "c"}\n'


@pytest.mark.parametrize(("line", "why"), [(3, "malformed JSON"), (4, "expected a JSON object")])
def test_malformed_line_names_file_and_line(tmp_path, line, why):
    path = tmp_path / "bad.jsonl"
    path.write_text(BAD_FILE if line == 3 else BAD_FILE.replace('{"id": "b"\n', '{"id": "b"}\n'))
    with pytest.raises(DataError, match=rf"bad\.jsonl:{line}: {why}"):
        list(read_jsonl(path))


def test_skip_mode_logs_and_continues(tmp_path, caplog):
    path = tmp_path / "bad.jsonl"
    path.write_text(BAD_FILE)
    with caplog.at_level(logging.WARNING, logger="calibration.labelling.datagen"):
        assert [o["id"] for o in read_jsonl(path, on_error="skip")] == ["a", "c"]
    assert "bad.jsonl:3" in caplog.text and "bad.jsonl:4" in caplog.text


def test_read_is_lazy_line_by_line(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text('{"id": "first"}\n' + "not json\n" * 1000)
    reader = read_jsonl(path)
    assert next(reader) == {"id": "first"}  # the bad lines further down are not read yet
    with pytest.raises(DataError, match=":2:"):
        next(reader)


# 16 bytes: the limit the next tests set; `{"id": "abcdef"}` is exactly that long.
AT_LIMIT, OVER_LIMIT = b'{"id": "abcdef"}', b'{"id": "abcdefg"}'


@pytest.mark.parametrize(
    ("second_line", "refused"),
    [
        (AT_LIMIT + b"\n", False),
        (AT_LIMIT, False),  # the last line, without a newline
        (AT_LIMIT + b"\r\n", True),  # the limit counts every byte but the newline
        (OVER_LIMIT + b"\n", True),
        (OVER_LIMIT, True),
        (b" " * 40 + b"\n", True),  # even a blank one
    ],
)
def test_line_length_is_capped(tmp_path, monkeypatch, caplog, second_line, refused):
    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", 16)
    path = tmp_path / "long.jsonl"
    third = [b'{"id": "c"}\n'] if second_line.endswith(b"\n") else []  # only after a complete line
    path.write_bytes(b"".join([b'{"id": "a"}\n', second_line, *third]))
    if not refused:
        assert [o["id"] for o in read_jsonl(path)] == ["a", "abcdef", "c"][: 2 + len(third)]
        return
    with pytest.raises(DataError, match=r"long\.jsonl:2: line longer than the 16 bytes limit"):
        list(read_jsonl(path))
    with caplog.at_level(logging.WARNING):
        assert [o["id"] for o in read_jsonl(path, on_error="skip")] == ["a", "c"][: 1 + len(third)]
    assert "long.jsonl:2: line longer than the 16 bytes limit" in caplog.text


def test_a_line_without_end_is_never_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "MAX_LINE_BYTES", 2**10)
    path = tmp_path / "array.json"
    path.write_bytes(b"[" + b"1," * 2_000_000 + b'1]\n{"id": "after"}\n')  # 4 MB on one line
    tracemalloc.start()
    try:
        kept = [o["id"] for o in read_jsonl(path, on_error="skip")]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert kept == ["after"] and peak < 2**18, f"peak {peak} bytes"  # the line alone is 4 MB


def test_unreadable_files_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="missing.jsonl"):
        list(read_jsonl(tmp_path / "missing.jsonl"))
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"id": "a"}\n{"id": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin\.jsonl:2: not UTF-8"):
        list(read_jsonl(latin))
    with pytest.raises(ValueError, match="on_error"):
        list(read_jsonl(latin, on_error="ignore"))


GOOD = {
    "id": "x1",
    "domain": "science",
    "question": "Q?\nA) a\nB) b",
    "answer": "B",
    "aliases": [],
    "answer_type": "choice",
    "choices": ["a", "b"],
}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"question": ""}, "question"),
        ({"question": None}, "question"),
        ({"id": ""}, "id"),
        ({"answer": 5}, "answer"),
        ({"domain": "history"}, "domain"),
        ({"answer_type": "essay"}, "answer_type"),
        ({"aliases": "B"}, "aliases"),
        ({"choices": None}, "choices"),
        ({"choices": ["only one"]}, "choices"),
        ({"answer": "C"}, "answer"),
        ({"answer_type": "number", "answer": "lots"}, "answer"),
        ({"answer_type": "boolean", "answer": "maybe"}, "answer"),
    ],
)
def test_validate_item_names_field_and_line(change, field):
    with pytest.raises(DataError, match=rf"data\.jsonl:7: field '{field}'"):
        validate_item({**GOOD, **change}, "data.jsonl", 7)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"answer_type": "number", "answer": "-3.5"},
        {"answer_type": "boolean", "answer": "yes"},
        {"answer_type": "text", "answer": "Paris", "aliases": ["City of Light"]},
    ],
)
def test_validate_item_accepts_good_items(change):
    item = {**GOOD, **change}
    assert validate_item(item, "data.jsonl", 1) is item


def test_read_items_reports_true_line_numbers(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps({**GOOD, "domain": "art"}) + "\n")
    with pytest.raises(DataError, match=r"items\.jsonl:3: field 'domain'"):
        list(read_items(path))
    assert list(read_items(path, on_error="skip")) == [GOOD]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is not present")
@pytest.mark.parametrize("domain", DOMAINS)
def test_shared_data_validates(domain):
    items = list(read_items(SHARED_DATA / f"{domain}.jsonl"))
    assert len(items) == 400 and {i["domain"] for i in items} == {domain}


# ----------------------------------------------------------------------------- the real model


@pytest.mark.slow
def test_real_model_gets_some_generated_questions_right_and_some_wrong():
    """SmolLM2-135M answers two easy and one hard generated question; grading tells them apart."""
    from assistant.core.config import ModelConfig, set_offline_env
    from assistant.models.backend import GenerationOptions
    from assistant.models.registry import load_backend

    set_offline_env()
    backend = load_backend(ModelConfig(threads=2))
    easy_questions = ("What is the capital of Japan?", "Name the capital of Italy.")
    easy = [
        i for i in make_questions("factual", max_questions("factual"), 0) if i["question"] in easy_questions
    ]
    hard = [
        i
        for i in make_questions("math", 200, 0)
        if i["source"] == "datagen:mul" and float(i["answer"]) > 5000
    ]
    system = "Reply with only the final answer: a few words or a number, no explanation."
    grades = []
    for item in easy + hard[:1]:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": item["question"]}]
        text, _ = backend.stream(messages, GenerationOptions(max_new_tokens=10)).drain()
        grades.append(grade(text.strip(), item))
    assert len(grades) == 3 and set(grades) <= {True, False, None}
    assert True in grades[:2], (
        grades
    )  # an easy capital is answered correctly ("The capital of Japan is Tokyo.")
    assert grades[2] is not True, grades  # a 3-digit by 2-digit product is beyond this model in 10 tokens
