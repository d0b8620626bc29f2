"""Split a model's output into reasoning and final part; extract answer and verbalized confidence.

`parse_output` is lenient and never raises: whatever it could not find is listed
in `ParsedOutput.issues` with the review-reason keys of `assistant/core/reply.py`,
and the pipeline flags the answer for review instead of failing.

Where things are looked for:

* `split_reasoning` cuts `<think>…</think>` off (also output that starts inside a
  think block, when the chat template opened it). An unterminated `<think>` means
  the output was cut off: everything is reasoning, the final part is empty and the
  issue is `truncated`. Without think tags the reasoning is the text before the
  first `<answer>` tag (or before an earlier `<confidence>` tag); without either
  the whole text is the final part.
* Answer and confidence come from the final part only, never from the reasoning.
* Answer, first rule that finds a non-empty one: the last `<answer>…</answer>`
  (an unclosed `<answer>` takes the rest of the text up to a `<confidence>` tag);
  the last `Answer: …` / `Final answer: …` / `**Answer:** …` line; the last
  "the answer is …" (not "the answer is correct", which is a verdict); for a short final part (≤ 200 characters) its first line
  with any confidence statement cut off. "I don't know" and its variants
  (`assistant.core.refusals.is_not_attempted`, the same detector grading uses) set `not_attempted`.
* Confidence, first kind found: `<confidence>…</confidence>` tags; labelled or
  explicit statements (`Confidence: 85%`, `**Confidence:** 85 %`,
  `confidence level: high`, `my confidence is 0.9`, `I am 90% confident`, but not
  "not 100% sure");
  fractions `85/100`; linguistic phrases (`LINGUISTIC_CONFIDENCE`). Within a kind
  the last one wins. When the tagged, labelled and fraction statements hold
  several *different* values, the issue is `ambiguous_confidence` (hedging words
  such as "likely" never count towards ambiguity: they are too common in prose).
* Numbers: with `%`/"percent", or above 1, a number is a percentage; at most 1
  without `%` it is a probability — so `1` means 1.0 and `0.85` means 85%.
  `N/100` and `N/10` are fractions. A stated value outside [0, 1] after that is
  clamped into it with the issue `confidence_out_of_range` (`250%` → 1.0,
  `-5` → 0.0). Nothing found gives `raw_confidence=None` and `no_confidence`:
  never a silent default.

Every regular expression here runs in linear time (bounded repetitions, tags
found with `str.find`), so 200k characters of adversarial text parse quickly.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from assistant.core.refusals import is_not_attempted
from assistant.core.reply import REVIEW_REASONS

__all__ = [
    "ParsedOutput",
    "parse_output",
    "split_reasoning",
    "extract_answer",
    "extract_confidence",
    "LINGUISTIC_CONFIDENCE",
    "CONFIDENCE_LEVELS",
]

# Hedging phrases → probability. Searched in the final part only when no number is
# stated; the longest phrase matches first, so "very unlikely" is never read as "likely".
# The numbers follow the usual words-of-estimative-probability scales.
LINGUISTIC_CONFIDENCE: dict[str, float] = {
    "absolutely certain": 0.99,
    "completely certain": 0.99,
    "certainly": 0.95,
    "definitely": 0.95,
    "almost certain": 0.95,
    "almost certainly": 0.95,
    "nearly certain": 0.95,
    "highly confident": 0.9,
    "very confident": 0.9,
    "highly likely": 0.9,
    "very likely": 0.85,
    "very probably": 0.85,
    "confident": 0.8,
    "fairly confident": 0.75,
    "quite likely": 0.75,
    "likely": 0.7,
    "probably": 0.7,
    "probable": 0.7,
    "somewhat confident": 0.6,
    "maybe": 0.5,
    "perhaps": 0.5,
    "possibly": 0.5,
    "uncertain": 0.5,
    "unsure": 0.5,
    "not sure": 0.5,
    "not certain": 0.5,
    "not confident": 0.3,
    "unlikely": 0.25,
    "not likely": 0.25,
    "probably not": 0.25,
    "improbable": 0.25,
    "very unlikely": 0.1,
    "highly unlikely": 0.1,
    "almost impossible": 0.05,
}

# Level words, accepted only as the value of a label or tag ("Confidence level: high"),
# never in free prose, where "high" and "low" rarely speak of confidence.
CONFIDENCE_LEVELS: dict[str, float] = {
    "very high": 0.9,
    "high": 0.8,
    "medium": 0.5,
    "moderate": 0.5,
    "low": 0.3,
    "very low": 0.1,
}

_PLACEHOLDER_ANSWERS = frozenset(
    {"", "...", "…", "your answer", "your final answer", "answer", "final answer"}
)
_VERDICTS = frozenset({"correct", "incorrect", "right", "wrong", "not correct", "accurate", "inaccurate"})
_ISSUE_ORDER = tuple(REVIEW_REASONS)
_SHORT_FINAL = 200  # characters: a final part this short may be the bare answer


@dataclass(frozen=True)
class ParsedOutput:
    reasoning: str  # reasoning trace: <think> content, or the text before the answer
    final: str  # the part after the reasoning, where answer and confidence are read
    answer: str | None  # extracted answer; None when none was found
    raw_confidence: float | None  # verbalized confidence in [0, 1]; None when none was stated
    not_attempted: bool  # True when the answer is "I don't know" or a variant
    issues: tuple[str, ...]  # REVIEW_REASONS keys, in that dict's order

    @property
    def ok(self) -> bool:
        """True when both an answer and a confidence were found."""
        return self.answer is not None and self.raw_confidence is not None


def _tag(name: str) -> tuple[re.Pattern, re.Pattern]:
    return (re.compile(rf"<\s*{name}\s*>", re.I), re.compile(rf"<\s*/\s*{name}\s*>", re.I))


_THINK_OPEN, _THINK_CLOSE = _tag("think")
_ANSWER_OPEN, _ANSWER_CLOSE = _tag("answer")
_CONF_OPEN, _CONF_CLOSE = _tag("confidence")
_ANY_TAG = re.compile(r"</?[A-Za-z][\w-]{0,30}\s*/?>")
_NUMBER = r"[-−]?(?:\d+(?:\.\d+)?|\.\d+)"
_UNIT = r"(?:%|percent\b|/\s{0,3}100\b|/\s{0,3}10\b)"
_VALUE_AT_START = re.compile(
    rf"^[\s*_~\"'(\[]{{0,8}}(?:(?:about|around|approximately|roughly|~)\s{{0,3}})?(?P<num>{_NUMBER})\s{{0,3}}(?P<unit>{_UNIT})?",
    re.I,
)
_PERCENT_ANYWHERE = re.compile(rf"(?<![\w.])(?P<num>{_NUMBER})\s{{0,3}}(?P<unit>%|percent\b)", re.I)
_LABELLED = re.compile(
    r"\b(?:confidence|certainty|probability)\b[^\n:=<>]{0,40}?(?:[:=]|\s(?:is|of|at)\s|\s(?=[~\d.]))"
    r"[ \t*_]{0,8}(?P<value>[^\n<]{1,40})",
    re.I,
)
_PERCENT_CONFIDENT = re.compile(
    rf"(?<![\w.])(?P<num>{_NUMBER})\s{{0,3}}(?P<unit>%|percent\b)\s{{0,3}}"
    r"(?:confident|confidence|sure|certain|likely|chance|probability)\b",
    re.I,
)
_VALUE_END = re.compile(r"\n|<")  # where an unclosed <confidence> value ends
_NEGATED = re.compile(r"\bnot\s{1,3}$", re.I)
_FRACTION = re.compile(r"(?<![\w.])(?P<num>\d{1,3}(?:\.\d+)?)\s{0,3}(?P<unit>/\s{0,3}100)\b")


def _phrase_regex(phrases) -> re.Pattern:
    ordered = sorted(phrases, key=len, reverse=True)  # longest first: "very unlikely" before "likely"
    return re.compile(
        r"\b(?:" + "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in ordered) + r")\b", re.I
    )


_PHRASES = _phrase_regex(LINGUISTIC_CONFIDENCE)
_PHRASES_AND_LEVELS = _phrase_regex({**LINGUISTIC_CONFIDENCE, **CONFIDENCE_LEVELS})
_ANSWER_LINE = re.compile(
    r"^[ \t>#*_-]{0,10}(?:final[ \t]+|correct[ \t]+)?answer[ \t*_]{0,4}[:：]"
    r"[ \t*_]{0,4}(?P<value>[^\n]{1,300})",
    re.I | re.M,
)
_ANSWER_IS = re.compile(r"\banswer[ \t]+is\b[ \t]*:?[ \t*_]{0,4}", re.I)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CONFIDENCE_SENTENCE = re.compile(r"(?i)\b(?:confidence|confident|probability|certainty|certain|sure)\b")
_CONFIDENCE_TAIL = re.compile(
    r"(?i)[\s(\[,;–—-]*(?:<\s*confidence|\bconfidence\b|\(?\s*\d+(?:\.\d+)?\s*(?:%|/\s*100\b))"
)


def _phrase_value(phrase: str) -> float:
    key = " ".join(phrase.lower().split())
    return LINGUISTIC_CONFIDENCE.get(key, CONFIDENCE_LEVELS.get(key, 0.5))


def _tag_spans(text: str, open_re: re.Pattern, close_re: re.Pattern, stop_re: re.Pattern | None = None):
    """(start, end, inner) of each open…close pair; an unclosed last tag runs to `stop_re` or the end."""
    closes = [(m.start(), m.end()) for m in close_re.finditer(text)]
    close_starts = [c[0] for c in closes]
    spans, pos = [], 0
    for m in open_re.finditer(text):
        if m.start() < pos:
            continue
        i = bisect.bisect_left(close_starts, m.end())
        if i < len(closes):
            spans.append((m.start(), closes[i][1], text[m.end() : closes[i][0]]))
            pos = closes[i][1]
        else:
            stop = stop_re.search(text, m.end()) if stop_re else None
            end = stop.start() if stop else len(text)
            spans.append((m.start(), end, text[m.end() : end]))
            pos = end
    return spans


def _split(text: str) -> tuple[str, str, bool]:
    """(reasoning, final, truncated) — see `split_reasoning`."""
    text = text.replace("\x00", "").replace("\r\n", "\n")
    closes = list(_THINK_CLOSE.finditer(text))
    last_close = closes[-1] if closes else None
    if last_close is not None:
        head, final = text[: last_close.start()], text[last_close.end() :]
        opened = _THINK_OPEN.search(head)
        reasoning = head[opened.end() :] if opened else head
        reopened = _THINK_OPEN.search(final)  # a new think block that never closed
        if reopened:
            return (
                (reasoning + "\n" + final[reopened.end() :]).strip(),
                final[: reopened.start()].strip(),
                True,
            )
        return reasoning.strip(), final.strip(), False
    opened = _THINK_OPEN.search(text)
    if opened:
        return text[opened.end() :].strip(), "", True
    answer = _ANSWER_OPEN.search(text)
    if answer is None:
        return "", text.strip(), False
    conf = _CONF_OPEN.search(text, 0, answer.start())
    cut = conf.start() if conf else answer.start()
    return text[:cut].strip(), text[cut:].strip(), False


def split_reasoning(text: str) -> tuple[str, str]:
    """(reasoning, final): the `<think>` trace or the text before the answer tag, and the rest."""
    reasoning, final, _ = _split(text)
    return reasoning, final


def _clean_answer(value: str) -> str | None:
    value = _CONF_OPEN.split(value, maxsplit=1)[0]
    value = _ANY_TAG.sub("", value)
    for _ in range(
        3
    ):  # peel whitespace, markdown, quotes and a final period ("**Paris.**"); bounded: stays linear
        value = value.strip().strip("*_`\"'").strip()
        if value.endswith(".") and not value.endswith(".."):
            value = value[:-1]
    return None if value.lower() in _PLACEHOLDER_ANSWERS else value


def extract_answer(final: str) -> str | None:
    """The answer stated in a final part (see the module docstring for the rules); None if none."""
    for _, _, inner in reversed(_tag_spans(final, _ANSWER_OPEN, _ANSWER_CLOSE, _CONF_OPEN)):
        if (answer := _clean_answer(inner)) is not None:
            return answer
    labelled = [m["value"] for m in _ANSWER_LINE.finditer(final)]
    stated = [final[m.end() : m.end() + 300].split("\n", 1)[0] for m in _ANSWER_IS.finditer(final)]
    for values, is_sentence in ((labelled, False), (stated, True)):
        for value in reversed(values):
            first_sentence = _SENTENCE_END.split(value, maxsplit=1)[0]
            answer = _clean_answer(_CONFIDENCE_TAIL.split(first_sentence, maxsplit=1)[0])
            # "The answer is correct." judges an answer rather than giving one.
            if answer is not None and not (is_sentence and answer.lower() in _VERDICTS):
                return answer
    masked = _mask(final, _CONF_OPEN, _CONF_CLOSE).strip()
    if not masked or len(masked) > _SHORT_FINAL:
        return None
    for line in masked.split("\n"):
        # Drop whole sentences that state a confidence ("I am 90% sure."), then any trailing "(90%)".
        kept = [s for s in _SENTENCE_END.split(line) if not _CONFIDENCE_SENTENCE.search(s)]
        if kept and (answer := _clean_answer(_CONFIDENCE_TAIL.split(" ".join(kept), maxsplit=1)[0])):
            return answer
    return None


def _mask(text: str, open_re: re.Pattern, close_re: re.Pattern) -> str:
    """The text with every open…close span replaced by a newline."""
    pieces, pos = [], 0
    for start, end, _ in _tag_spans(text, open_re, close_re, _VALUE_END):
        pieces += [text[pos:start], "\n"]
        pos = end
    return "".join(pieces) + text[pos:]


def _number(num: str, unit: str | None) -> float:
    num = num.replace("−", "-")
    whole, _, fraction = num.partition(".")
    value = (
        float("inf") if len(whole) > 20 else float(f"{whole or 0}.{fraction[:20] or 0}")
    )  # "99.999…" stays 100%
    unit = (unit or "").replace(" ", "").lower()
    if unit == "/10":
        value /= 10
    elif unit in ("%", "percent", "/100") or value > 1:
        value /= 100
    return round(value, 6) if abs(value) < 1e9 else value  # 99.9% is 0.999, not 0.9990000000000001


def _parse_value(text: str) -> float | None:
    """A confidence value written as a number, percentage, fraction or words; None if unreadable."""
    text = text[:60]
    if match := _VALUE_AT_START.match(text):
        return _number(match["num"], match["unit"])
    stripped = text.lstrip(" \t*_~\"'(")
    if (match := _PHRASES_AND_LEVELS.match(stripped)) is not None:
        return _phrase_value(match[0])
    if match := _PERCENT_ANYWHERE.search(text):
        return _number(match["num"], match["unit"])
    return None


def extract_confidence(final: str) -> tuple[float | None, tuple[str, ...]]:
    """(confidence in [0, 1] or None, issues) from a final part; rules in the module docstring."""
    tagged = [
        v
        for _, _, inner in _tag_spans(final, _CONF_OPEN, _CONF_CLOSE, _VALUE_END)
        if (v := _parse_value(inner)) is not None
    ]
    rest = _mask(_mask(final, _CONF_OPEN, _CONF_CLOSE), _ANSWER_OPEN, _ANSWER_CLOSE)
    explicit = sorted(
        [(m.start(), v) for m in _LABELLED.finditer(rest) if (v := _parse_value(m["value"])) is not None]
        + [
            (m.start(), _number(m["num"], m["unit"]))
            for m in _PERCENT_CONFIDENT.finditer(rest)
            if not _NEGATED.search(rest, max(0, m.start() - 5), m.start())
        ]  # "not 100% sure" states no number
    )
    explicit_values = [v for _, v in explicit]
    fractions = [_number(m["num"], m["unit"]) for m in _FRACTION.finditer(rest)]
    issues = []
    stated = tagged or explicit_values or fractions
    if stated:
        value = stated[-1]
        if len({round(v, 6) for v in tagged + explicit_values + fractions}) > 1:
            issues.append("ambiguous_confidence")
    else:
        phrases = list(_PHRASES.finditer(rest))
        if not phrases:
            return None, ("no_confidence",)
        value = _phrase_value(phrases[-1][0])
    if not 0.0 <= value <= 1.0:
        issues.append("confidence_out_of_range")
        value = min(1.0, max(0.0, value))
    return value, tuple(issues)


def _ordered(issues) -> tuple[str, ...]:
    return tuple(key for key in _ISSUE_ORDER if key in set(issues))


def parse_output(text: str) -> ParsedOutput:
    """Lenient parse of a model output: never raises; what is missing is listed in `issues`."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    reasoning, final, truncated = _split(text)
    answer = extract_answer(final)
    confidence, issues = extract_confidence(final)
    issues = list(issues)
    not_attempted = answer is not None and is_not_attempted(answer)
    issues += ["truncated"] * truncated + ["no_answer"] * (answer is None) + ["not_attempted"] * not_attempted
    return ParsedOutput(reasoning, final, answer, confidence, not_attempted, _ordered(issues))
