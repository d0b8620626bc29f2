"""Text normalisation for comparing answers: the SQuAD / NQ-open `normalize_text`, and
`strip_answer_prefix` for the "The answer is" a model puts first. Grading compares answers with
gold answers through these; `refusals` reads "I don't know" on the same normalised text.
"""

from __future__ import annotations

import re
import string
import unicodedata

__all__ = ["normalize_text", "strip_answer_prefix", "strip_punctuation"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)

# Leading phrases a model puts before its answer; removed before every comparison.
_ANSWER_PREFIX = re.compile(
    r"^\s*(?:(?:so|thus|therefore|hence)\s*,?\s+)?(?:(?:my|the)\s+)?(?:final\s+|correct\s+|best\s+)?"
    r"(?:answer|option|choice)\s*(?:is|would be|:|-)\s*:?\s*",
    re.IGNORECASE,
)


def strip_punctuation(text: str) -> str:
    """Lower-case, fold accents, drop ASCII and Unicode punctuation (no article removal)."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(
        ch
        for ch in text
        if not unicodedata.combining(ch)
        and ch not in _ASCII_PUNCT
        and not unicodedata.category(ch).startswith("P")
    )


def normalize_text(text: str) -> str:
    """Normalise text the SQuAD / NQ-open way.

    Lower-case, drop punctuation, drop the articles a/an/the, collapse
    whitespace. Two deliberate extensions: Unicode punctuation (’ “ – …) is
    dropped like ASCII punctuation, and accents are folded ("Zürich" ->
    "zurich"), so typographic variants of the same name compare equal.

    >>> normalize_text("  The Eiffel-Tower, Paris! ")
    'eiffeltower paris'
    """
    return " ".join(_ARTICLES.sub(" ", strip_punctuation(text)).split())


def strip_answer_prefix(answer: str) -> str:
    """Remove a leading "The answer is" / "Answer:" and surrounding whitespace."""
    return _ANSWER_PREFIX.sub("", answer.strip(), count=1).strip()
