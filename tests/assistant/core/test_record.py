"""assistant/core/record.py: the one graded-record schema that collect writes, the review store exports
and fit reads."""

from __future__ import annotations

import pytest

from assistant.core.errors import DataError
from assistant.core.record import RECORD_FIELDS, REQUIRED_FIELDS, Record

LINE = {"id": "q1", "domain": "math", "raw_confidence": 0.8, "correct": True, "model": "m", "prompt": "p"}


def test_a_line_round_trips_with_every_field_in_schema_order():
    record = Record.from_dict({**LINE, "issues": ["truncated"], "signals": {"stated": 0.8}, "extra": 1})
    assert tuple(record.to_dict()) == RECORD_FIELDS  # unknown keys are dropped, every field is written
    assert Record.from_dict(record.to_dict()) == record
    assert record.issues == ("truncated",) and record.to_dict()["issues"] == ["truncated"]


@pytest.mark.parametrize("change, words", [
    ({"domain": "poetry"}, "field domain: 'poetry' is not one of math"),
    ({"raw_confidence": 1.5}, "field raw_confidence: 1.5"),
    ({"raw_confidence": True}, "field raw_confidence: True"),
    ({"correct": "yes"}, "field correct: 'yes'"),
    ({"model": ["m"]}, "field(s) model must be text"),
    ({"issues": 3}, "field issues: 3 is not a list of issue names"),  # was a TypeError
    ({"issues": "truncated"}, "field issues: 'truncated' is not a list"),  # was read as 9 one-letter issues
])
def test_a_wrong_value_names_the_record_and_the_field(change, words):
    with pytest.raises(DataError) as info:
        Record.from_dict({**LINE, **change}, where="r.jsonl:3: record")
    assert str(info.value).startswith("r.jsonl:3: record (id 'q1'): ") and words in str(info.value)


def test_required_fields_are_listed_together():
    with pytest.raises(DataError, match=r"lacks field\(s\) raw_confidence, correct, model, prompt"):
        Record.from_dict({"id": "q1", "domain": "math"})
    assert Record.from_dict({"domain": "math"}, required=()).model == ""  # what a fit on plain dicts needs
    assert REQUIRED_FIELDS[:2] == ("id", "domain")


def test_records_from_before_signals_read_their_stated_confidence():
    assert Record.from_dict(LINE).signals_or_stated() == {"stated": 0.8}
    assert Record.from_dict({**LINE, "signals": {"probe_ev": 0.4}}).signals_or_stated() == {"probe_ev": 0.4}
