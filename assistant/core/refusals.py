"""One detector for answers that decline ("I don't know", "N/A", "Not enough information"), and the
text normalisation it and grading share. The live reply (`parsing`) and grading (`calibration.labelling.grading`)
both call `is_not_attempted`, so an answer left out of every fit is also one the app does not calibrate.
"""

from __future__ import annotations

import re
import string
import unicodedata

__all__ = ["is_not_attempted", "normalize_text", "strip_answer_prefix"]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)

# Leading phrases a model puts before its answer; removed before every comparison.
_ANSWER_PREFIX = re.compile(
    r"^\s*(?:(?:so|thus|therefore|hence)\s*,?\s+)?(?:(?:my|the)\s+)?(?:final\s+|correct\s+|best\s+)?"
    r"(?:answer|option|choice)\s*(?:is|would be|:|-)\s*:?\s*",
    re.IGNORECASE,
)

# Not-attempted answers, matched on the normalised text: a refusal phrase, then only filler words.
_REFUSAL = re.compile(
    r"^(?:sorry |unfortunately |im afraid |i am afraid |honestly )?(?:i )?"
    r"(?:(?:really |honestly |just |simply )?(?:dont|do not|did not|didnt) know"
    r"|(?:am |m |im )?(?:not sure|unsure|not certain|uncertain)|(?:have )?no idea|idk|unknown"
    r"|(?:cannot|cant|can not|am unable to|m unable to|im unable to|am not able to|im not able to) "
    r"(?:answer|say|tell|determine|be determined|know)"
    r"|cannot be determined|not known|unanswerable|no answer|not enough information"
    r"|insufficient information|(?:dont|do not) have enough information)"
    r"(?P<rest>(?: \w+)*)$"
)
# Written-out "not applicable"; checked on the raw text because "na" is also sodium's symbol.
_NOT_APPLICABLE = frozenset({"n/a", "n.a.", "n/a."})
_REFUSAL_FILLER = frozenset(
    "answer that this it for sure certain certainly exactly question to of about any enough "  # noqa: SIM905
    "information know really honestly sorry here correct right one".split()
)


def _strip_punctuation(text: str) -> str:
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
    return " ".join(_ARTICLES.sub(" ", _strip_punctuation(text)).split())


def strip_answer_prefix(answer: str) -> str:
    """Remove a leading "The answer is" / "Answer:" and surrounding whitespace."""
    return _ANSWER_PREFIX.sub("", answer.strip(), count=1).strip()


def is_not_attempted(answer: str | None) -> bool:
    """True when the answer is missing, empty, punctuation only, or an "I don't know"-like refusal.

    A refusal phrase may be followed only by filler words ("I don't know the
    answer to this question"); "I don't know, maybe Paris" offers an answer and
    counts as attempted.

    >>> is_not_attempted("I'm not sure."), is_not_attempted("Paris")
    (True, False)
    """
    if answer is None or answer.strip().lower() in _NOT_APPLICABLE:
        return True
    stripped = strip_answer_prefix(answer)
    if not _strip_punctuation(stripped).strip():
        return True
    norm = normalize_text(stripped)
    match = _REFUSAL.match(norm)
    return bool(match) and all(w in _REFUSAL_FILLER for w in match.group("rest").split())
