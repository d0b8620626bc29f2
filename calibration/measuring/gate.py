"""Whether newly fitted maps may replace the active ones, and what a domain's fit still lacks.

`gate(records, new, active)` scores the same held-out answers with both maps and asks, for the Brier
score and ECE (lower is better for both), whether the new maps are worse beyond the noise of a
paired bootstrap: the answers are resampled, both maps' confidences for an answer go into a resample
together, and the new maps fail when the 95% interval of (new - active) lies wholly above 0. No
active maps: nothing to be worse than, so the gate passes and says so.

`answers_needed(records)` says per domain whether its fit had the right and wrong answers it needs
to learn its own signal weights (`calibration.fitting.fusion_fit.OWN_WEIGHTS_MIN` of each), and
roughly how many more questions would give them at the accuracy seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assistant.calibrated import metrics as M
from assistant.calibrated.maps import CalibrationMaps
from assistant.core.domains import in_order
from assistant.core.record import Record
from calibration.fitting.fusion_fit import OWN_WEIGHTS_MIN
from calibration.measuring.compare import paired_interval
from calibration.measuring.report import calibrated_confidences

__all__ = ["GATED", "Gate", "GateCheck", "answers_needed", "gate"]

GATED = {"brier": M.brier_score, "ece": M.expected_calibration_error}  # lower is better for both


@dataclass(frozen=True)
class GateCheck:
    metric: str
    new: float
    active: float
    interval: tuple[float, float]  # 95% paired-bootstrap interval of new - active

    @property
    def worse(self) -> bool:
        return self.interval[0] > 0

    def line(self) -> str:
        low, high = self.interval
        verdict = "worse beyond noise" if self.worse else "not worse beyond noise"
        return (f"{self.metric}: new {self.new:.4f}, active {self.active:.4f}, change {self.new - self.active:+.4f} "
                f"[{low:+.4f}, {high:+.4f}]: {verdict}")


@dataclass(frozen=True)
class Gate:
    passed: bool
    reason: str
    checks: tuple[GateCheck, ...] = ()


def gate(records: list[Record], new: CalibrationMaps, active: CalibrationMaps | None, *, questions=None,
         resamples: int = 1000, seed: int = 0) -> Gate:
    """See the module docstring. `questions`: the records' QuestionFeatures (aligned), for question-aware maps."""
    if active is None:
        return Gate(True, "no maps are active for this model and prompt yet: nothing to compare with")
    c_new = calibrated_confidences(records, new, questions=questions)
    c_old = calibrated_confidences(records, active, questions=questions)
    y = np.array([np.nan if r.correct is None else float(r.correct) for r in records])
    keep = ~np.isnan(y) & ~np.isnan(c_new) & ~np.isnan(c_old)
    if keep.sum() < 2:
        return Gate(False, f"only {int(keep.sum())} held-out answers have a figure under both maps: too few to "
                           "tell whether the new maps are worse (collect more held-out answers, or --force)")
    y, c_new, c_old = y[keep], c_new[keep], c_old[keep]
    # Both metrics on the same resamples (one seed each); Brier and ECE are defined on every resample.
    checks = [GateCheck(name, float(metric(y, c_new)), float(metric(y, c_old)),
                        paired_interval(y, c_old, y, c_new, metric, resamples, np.random.default_rng(seed)))
              for name, metric in GATED.items()]
    worse = [c.metric for c in checks if c.worse]
    if worse:
        return Gate(False, f"the new maps are worse than the active {active.version} on {' and '.join(worse)} "
                           f"beyond the noise of {len(y)} held-out answers", tuple(checks))
    return Gate(True, f"the new maps are not worse than the active {active.version} beyond the noise of "
                      f"{len(y)} held-out answers", tuple(checks))


def answers_needed(records: list[Record]) -> list[str]:
    """One line per domain: its right and wrong answers, and whether they are enough for its own weights."""
    lines = []
    for domain in in_order({r.domain for r in records}):
        graded = [r.correct for r in records if r.domain == domain and r.correct is not None]
        right, wrong = sum(graded), len(graded) - sum(graded)
        head = f"{domain}: {right} right, {wrong} wrong"
        if min(right, wrong) >= OWN_WEIGHTS_MIN:
            lines.append(f"{head}: enough for its own signal weights")
            continue
        short, rate = (right, right / len(graded)) if right < wrong else (wrong, wrong / len(graded))
        which = "right" if right < wrong else "wrong"
        more = (f"about {math.ceil((OWN_WEIGHTS_MIN - short) / rate)} more questions at this accuracy would give "
                f"{OWN_WEIGHTS_MIN}" if rate > 0 else f"no {which} answer yet, so more questions alone may not help")
        lines.append(f"{head}: its own signal weights need {OWN_WEIGHTS_MIN} {which} answers; until then it "
                     f"borrows the weights pooled over every domain ({more})")
    return lines
