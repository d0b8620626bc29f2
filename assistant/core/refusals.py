"""One detector for answers that decline ("I don't know", "N/A", "Not enough information").

The live reply (`assistant.answering.parsing`) and grading (`calibration.labelling.grading`) both call
`is_not_attempted`, so an answer left out of every fit is also one the app does not calibrate.
"""

from __future__ import annotations

import re

from assistant.core.normalize import normalize_text, strip_answer_prefix, strip_punctuation

__all__ = ["is_not_attempted"]

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
    if not strip_punctuation(stripped).strip():
        return True
    norm = normalize_text(stripped)
    match = _REFUSAL.match(norm)
    return bool(match) and all(w in _REFUSAL_FILLER for w in match.group("rest").split())
