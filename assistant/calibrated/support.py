"""How well a calibrated figure is supported: its range (assistant.calibrated.intervals) and whether the
question is like the fitting questions (assistant.calibrated.ood), for one answer, live.

`support_of` is what the pipeline calls after the map has given its figure; `Support.reply_fields`
are the Reply fields it fills. A map file fitted before these existed has neither: every field is
then None, and the badge says the figure comes without a range.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.calibrated.intervals import widen
from assistant.calibrated.ood import OodScore

__all__ = ["Support", "support_of"]

_MAX_RATIO = 99.0  # an ood_score is reported up to this (a zero threshold would make it infinite)


@dataclass(frozen=True)
class Support:
    """The range on one calibrated figure, and how far its question lies from the fitting questions."""

    low: float | None = None  # low end of the range; None: the map stores no bands
    high: float | None = None  # high end of the range; None: the map stores no bands
    level: float | None = None  # the range's nominal level; None: no range
    ood: OodScore | None = None  # None: the maps store no reference questions, or no embedding

    @property
    def extrapolating(self) -> bool:
        return self.ood is not None and self.ood.extrapolating

    def reply_fields(self) -> dict:
        """confidence_low, confidence_high, range_level, ood_score and extrapolating for the Reply."""
        ratio = None if self.ood is None else round(min(self.ood.ratio, _MAX_RATIO), 3)
        return {"confidence_low": self.low, "confidence_high": self.high, "range_level": self.level,
                "ood_score": ratio, "extrapolating": None if self.ood is None else self.extrapolating}


def support_of(maps, domain: str, score: float | None, confidence: float | None, embedding=None) -> Support:
    """The Support of the figure `confidence` that `maps` read at `score` for a question of `domain`
    with router `embedding` (None: not measured). A question unlike the fitting ones has its range
    stretched by `OodScore.stretch`.

    >>> Support().reply_fields()["confidence_low"] is None
    True
    """
    dmap = maps.map_for(domain)
    ood = maps.unlike_fitting(domain, embedding)
    span = None if score is None or confidence is None else dmap.range(score, confidence)
    if span is None:
        return Support(ood=ood)
    low, high = span
    if ood is not None and ood.extrapolating:
        low, high = widen(confidence, low, high, ood.stretch)
    return Support(low, high, dmap.range_level, ood)
