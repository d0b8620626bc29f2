"""Reading the confidence signals (`assistant.core.signals.Signals`) of one answer from its text
and the model's token probabilities.

`compute_signals(text, parsed, evidence)` is the one place they are computed, for the live
reply and for `calibrate collect` alike:

- `stated`: the confidence the model wrote (what Zeng et al. 2025 study), in [0, 1];
- `stated_ev`: the expected value of that number under the model's own distribution over
  its first digit: "85%" written with P("8") = 0.6, P("9") = 0.3, P("7") = 0.1 reads as
  0.6·0.85 + 0.3·0.95 + 0.1·0.75. Continuous, so it ranks where the rounded number ties;
- `probe_ev`: the same, read after appending the prompt's confidence tag to an output
  that has none (`GenerationOptions.probe`): "no confidence" becomes rare;
- `answer_mean_logp`, `answer_min_logp`, `answer_first_logp`: log probabilities of the
  tokens inside the answer (mean, minimum, first).

Any of them is None when its evidence is missing (a backend without token probabilities,
no answer found, …); calibration then uses what there is.
"""

from __future__ import annotations

import re

from assistant.answering.parsing import ParsedOutput
from assistant.core.signals import Signals
from assistant.models.backend import TokenEvidence

__all__ = ["compute_signals", "expected_percent"]

_CONFIDENCE_TAG = re.compile(r"<confidence>\s*(\d{1,3})")


def expected_percent(first: dict[str, float], written: str) -> float | None:
    """Expected value in [0, 1] of a percentage whose first number token was drawn from `first`
    ({token text: probability}) and which the model wrote as `written` (e.g. "85").

    Each alternative first token keeps the written number's remaining digits ("9" + "5" = 95);
    an alternative above 100 loses digits from the end ("9" + "00" → 90). With nothing written,
    a one-digit alternative reads as tens ("8" → 80).
    """
    if not first:
        return None
    head = next((t for t in sorted(first, key=len, reverse=True) if written.startswith(t)), None)
    rest = written[len(head):] if head is not None else "0"
    total = weighted = 0.0
    for token, p in first.items():
        digits = token + rest
        while len(digits) > 1 and int(digits) > 100:
            digits = digits[:-1]
        total += p
        weighted += p * int(digits)
    return None if total <= 0 else min(1.0, weighted / total / 100)


def _token_spans(pieces: tuple[str, ...]) -> list[tuple[int, int]]:
    spans, start = [], 0
    for piece in pieces:
        spans.append((start, start + len(piece)))
        start += len(piece)
    return spans


def _stated_ev(text: str, stated: float | None, evidence: TokenEvidence, spans) -> float | None:
    """The expected value of the written confidence: the number in the last confidence tag (or else the
    last run of number tokens that spells the stated percentage)."""
    if stated is None or not evidence.numbers:
        return None
    tags = list(_CONFIDENCE_TAG.finditer(text))
    target = tags[-1].start(1) if tags else None  # the last confidence tag
    runs, run = [], []
    for position in sorted(evidence.numbers):
        if run and position != run[-1] + 1:
            runs.append(run)
            run = []
        run.append(position)
    if run:
        runs.append(run)
    for run in reversed(runs):
        written = "".join(evidence.pieces[i] for i in run)
        at_tag = target is not None and spans[run[0]][0] <= target < spans[run[-1]][1]
        if at_tag or (target is None and written.isdigit() and int(written) == round(stated * 100)):
            return expected_percent(evidence.numbers[run[0]], written)
    return None


def _answer_logps(text: str, answer: str | None, evidence: TokenEvidence, spans) -> list[float]:
    """Log probabilities of the tokens that overlap the answer's last occurrence in the output."""
    if not answer:
        return []
    start = text.rfind(answer)
    if start < 0:
        return []
    end = start + len(answer)
    return [lp for (a, b), lp in zip(spans, evidence.logprobs) if a < end and b > start]


def compute_signals(parsed: ParsedOutput, evidence: TokenEvidence | None) -> Signals:
    """Every signal `parsed` and `evidence` support (see the module docstring)."""
    if evidence is None or not evidence.pieces:
        return Signals(stated=parsed.raw_confidence)
    text = "".join(evidence.pieces)
    spans = _token_spans(evidence.pieces)
    answer = _answer_logps(text, parsed.answer, evidence, spans)
    probe_ev = None
    if evidence.probe is not None and parsed.raw_confidence is None:
        probe_ev = expected_percent(evidence.probe[1], evidence.probe[0])
    return Signals(
        stated=parsed.raw_confidence,
        stated_ev=_stated_ev(text, parsed.raw_confidence, evidence, spans),
        probe_ev=probe_ev,
        answer_mean_logp=sum(answer) / len(answer) if answer else None,
        answer_min_logp=min(answer) if answer else None,
        answer_first_logp=answer[0] if answer else None,
    )
