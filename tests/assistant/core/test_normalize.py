"""The examples in the docstrings of assistant.core.normalize and assistant.core.refusals run and hold.

(Grading's tables in tests/calibration/test_grading.py cover both modules case by case.)"""

from __future__ import annotations

import doctest

import pytest

from assistant.core import normalize, refusals


@pytest.mark.parametrize("module", [normalize, refusals], ids=["normalize", "refusals"])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def test_punctuation_only_is_not_attempted_but_a_lone_article_is_an_answer():
    # strip_punctuation keeps articles: "The" is an (odd) answer, "?!" is none
    assert normalize.normalize_text("The") == "" and normalize.strip_punctuation("The") == "the"
    assert refusals.is_not_attempted("?!") and not refusals.is_not_attempted("The")
