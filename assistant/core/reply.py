"""The reply object: one answer with its raw and calibrated confidence.

The same fields appear in the Python API, `python -m assistant ask --json`, the
web app's `/ask` endpoint and the review store.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from assistant.core.signals import Signals

__all__ = ["Reply", "REVIEW_REASONS", "QUEUE_REASONS", "REASON_TEXT"]

# Every reason an answer can be flagged for a human check, in plain words for the UI.
REVIEW_REASONS = {
    "low_confidence": "its chance of being right is below the cut-off this domain needs to skip a human check",
    "no_confidence": "the model stated no confidence",
    "no_answer": "the model gave no final answer",
    "not_attempted": "the model said it does not know",
    "ambiguous_confidence": "the model stated several different confidences",
    "confidence_out_of_range": "the stated confidence was outside 0–100% and was clamped",
    "truncated": "the answer was cut off at the length limit",
    "uncertain_domain": "the question's domain is unclear, so the general map was used",
    "unlike_fitting": "the question is unlike the questions its confidence figure was learned from, so the "
                      "figure may not hold for it",
    "uncalibrated": "the model's own figure is unchecked: no record of how often it was right fits this model "
                    "and prompt",
    "user_requested": "a user asked for a human check",
}
# Reasons a stored answer enters the review queue that come from outside the answer itself.
QUEUE_REASONS = {
    "thumbs_down": "a user gave the answer a thumbs down",
    "interrupted": "the app stopped while this answer was being written",
}
REASON_TEXT = {**REVIEW_REASONS, **QUEUE_REASONS}  # every reason key, in plain words


@dataclass(frozen=True)
class Reply:
    answer: str | None  # final answer text; None when the model gave none
    reasoning: str  # reasoning trace (<think> content or text before the answer)
    raw_confidence: float | None  # verbalized confidence in [0, 1]; None when none was stated
    confidence: float | None  # calibrated confidence in [0, 1]; None when uncalibrated or no raw
    domain: str  # routed domain: math, factual, science, reasoning or general
    domain_probability: float  # classifier probability of the routed domain
    needs_review: bool  # True when any review reason applies
    review_reasons: tuple[str, ...]  # keys of REVIEW_REASONS, in a fixed order
    model: str  # model id the answer came from
    prompt: str  # prompt id used
    map_version: str | None  # calibration-map version applied; None when none applied
    timings_ms: dict = field(default_factory=dict)  # generation, parse, embed, calibrate
    question: str = ""  # the question as asked
    raw_output: str = ""  # the model's whole output, for review and debugging
    tokens: int = 0  # new tokens generated
    prompt_tokens: int | None = None  # tokens the model read (prompt and history); None where the backend cannot say
    signals: Signals | None = None  # what went into `confidence`; None: not known (a reply made by hand)
    confidence_low: float | None = None  # low end of the range on `confidence` (assistant.calibrated.intervals); None: no range
    confidence_high: float | None = None  # high end of that range; None: no range
    range_level: float | None = None  # how often the true rate lies inside the range (0.9); None: no range
    ood_score: float | None = None  # distance to the map's fitting questions / its threshold; None: not measured
    extrapolating: bool | None = None  # ood_score > 1: unlike the fitting questions; None: not measured
    domain_description: str = ""  # the domain's plain-words description from the domains file; "" when unknown

    def to_dict(self) -> dict:
        """A JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["review_reasons"] = list(self.review_reasons)
        d["signals"] = self.signals.to_dict() if self.signals is not None else {}
        return d
