"""The confidence signals of one answer: what they are, as a record shared by the live reply,
collected records, the review store and the fusion that calibrates them.

`assistant.answering.evidence.compute_signals` reads them from an answer; `assistant.calibrated.fusion`
combines them into one score. Any of them is None when its evidence was missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from assistant.core.validate import is_number

__all__ = ["Signals", "SIGNAL_NAMES", "VERBAL_ORDER"]

# The model's own word on its confidence, most informative reading first (fusion reads the same).
VERBAL_ORDER = ("stated_ev", "probe_ev", "stated")


@dataclass(frozen=True)
class Signals:
    stated: float | None = None  # the confidence the model wrote, in [0, 1]
    stated_ev: float | None = None  # its expected value under the model's first-digit distribution
    probe_ev: float | None = None  # the expected confidence after a forced confidence tag (none written)
    answer_mean_logp: float | None = None  # mean log probability of the answer's tokens
    answer_min_logp: float | None = None  # lowest log probability among them
    answer_first_logp: float | None = None  # log probability of the answer's first token
    agreement: float | None = None  # share of k sampled answers that agree with it (self-consistency; optional)

    def to_dict(self) -> dict:
        return {k: (None if v is None else round(float(v), 6)) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict | None) -> "Signals":
        data = data or {}
        return cls(**{name: _number(data.get(name)) for name in SIGNAL_NAMES})

    @property
    def verbal(self) -> float | None:
        """The model's own word on its confidence, most informative reading first."""
        return next((v for v in (getattr(self, n) for n in VERBAL_ORDER) if v is not None), None)


SIGNAL_NAMES = tuple(Signals.__dataclass_fields__)


def _number(value) -> float | None:
    return float(value) if is_number(value) else None
