"""Two runs over the same questions, under one map: did a change in how the answers were made
(decoding in a batch, another server, another quantization) change how right they are, or how
well the map calibrates them?

`compare_runs(before, after, maps)` pairs the records by question id. Per domain and overall it
counts the answers that stayed the same and the grades that flipped, and gives accuracy, ECE,
Brier score and AUROC of the calibrated confidence in each run, with the change (after - before)
and its 95% paired-bootstrap interval: the questions are resampled, and both runs' answers to a
question go into a resample together. An interval that holds 0 says these questions cannot tell
the runs apart; it does not show that a smaller change is absent.
"""

from __future__ import annotations

import math

import numpy as np

from assistant.calibrated import metrics as M
from assistant.calibrated.maps import CalibrationMaps
from assistant.core.domains import MAP_DOMAINS
from assistant.core.errors import DataError
from assistant.core.record import Record
from calibration.measuring.report import calibrated_confidences

__all__ = ["COMPARED", "compare_runs", "format_comparison", "paired_interval"]

COMPARED = {  # metric -> f(correct, calibrated confidence)
    "accuracy": lambda y, c: float(np.mean(y)),
    "ece": M.expected_calibration_error,
    "brier": M.brier_score,
    "auroc": M.auroc,
}


def _pairs(before: list[Record], after: list[Record]) -> list[tuple[Record, Record]]:
    later = {r.id: r for r in after}
    pairs = [(b, later[b.id]) for b in before if b.id in later]
    if not pairs:
        raise DataError("the two runs share no question id: compare runs over the same questions")
    clash = next((b.id for b, a in pairs if b.domain != a.domain), None)
    if clash is not None:
        raise DataError(f"question {clash!r} has a different domain in the two runs: are they the same data?")
    return pairs


def paired_interval(y_b, c_b, y_a, c_a, metric, resamples: int, rng) -> tuple[float | None, float | None]:
    """95% paired-bootstrap interval of metric(y_a, c_a) - metric(y_b, c_b): the rows are resampled together;
    (None, None) when the metric is undefined on half the resamples or more."""
    diffs = []
    for rows in rng.integers(0, len(y_b), size=(resamples, len(y_b))):
        d = metric(y_a[rows], c_a[rows]) - metric(y_b[rows], c_b[rows])
        if not math.isnan(d):  # AUROC is undefined on a resample of one class
            diffs.append(d)
    if len(diffs) < resamples / 2:
        return None, None
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(low), float(high)


def _section(pairs, c_b, c_a, resamples: int, rng) -> dict:
    same = sum(b.answer == a.answer and b.raw_confidence == a.raw_confidence for b, a in pairs)
    graded = np.array([b.correct is not None and a.correct is not None for b, a in pairs], dtype=bool)
    scored = graded & ~np.isnan(c_b) & ~np.isnan(c_a)
    y_b = np.array([bool(b.correct) for b, _ in pairs], dtype=float)[scored]
    y_a = np.array([bool(a.correct) for _, a in pairs], dtype=float)[scored]
    section = {"n": len(pairs), "same_answer": same, "n_scored": int(scored.sum()),
               "grade_flips": int(sum(bool(b.correct) != bool(a.correct) for (b, a), g in zip(pairs, graded) if g))}
    for name, metric in COMPARED.items():
        if not scored.any():
            section[name] = {"before": None, "after": None, "change": None, "interval": [None, None]}
            continue
        before, after = metric(y_b, c_b[scored]), metric(y_a, c_a[scored])
        known = not (math.isnan(before) or math.isnan(after))
        section[name] = {
            "before": round(before, 4) if not math.isnan(before) else None,
            "after": round(after, 4) if not math.isnan(after) else None,
            "change": round(after - before, 4) if known else None,
            "interval": [None if v is None else round(v, 4)
                         for v in paired_interval(y_b, c_b[scored], y_a, c_a[scored], metric, resamples, rng)]
            if known else [None, None],
        }
    return section


def compare_runs(before: list[Record], after: list[Record], maps: CalibrationMaps, *,
                 resamples: int = 1000, seed: int = 0) -> dict:
    """{"maps", "resamples", "domains": {domain: section}, "overall": section}: see the module docstring.

    A section: ``n`` question pairs, ``same_answer`` (same answer and stated confidence),
    ``grade_flips`` (right in one run, wrong in the other), ``n_scored`` (graded in both, with
    a calibrated confidence in both), and per metric of COMPARED ``{"before", "after",
    "change", "interval"}`` over the scored pairs (None where undefined)."""
    pairs = _pairs(before, after)
    c_b = calibrated_confidences([b for b, _ in pairs], maps)
    c_a = calibrated_confidences([a for _, a in pairs], maps)
    rng = np.random.default_rng(seed)
    domains = {}
    for domain in MAP_DOMAINS:
        rows = [i for i, (b, _) in enumerate(pairs) if b.domain == domain]
        if rows:
            domains[domain] = _section([pairs[i] for i in rows], c_b[rows], c_a[rows], resamples, rng)
    return {"maps": maps.version, "resamples": resamples, "domains": domains,
            "overall": _section(pairs, c_b, c_a, resamples, rng)}


def _cell(entry: dict) -> str:
    if entry["change"] is None:
        return "-"
    low, high = entry["interval"]
    spread = f" [{low:+.3f}, {high:+.3f}]" if low is not None else ""
    return f"{entry['before']:.3f}→{entry['after']:.3f} ({entry['change']:+.3f}{spread})"


def format_comparison(comparison: dict) -> str:
    """The table `calibrate compare` prints: one row per domain, then overall (`scored`: the pairs the
    metrics are over, graded and given a calibrated confidence in both runs)."""
    head = f"{'domain':<10}{'n':>5}{'same':>6}{'flips':>6}{'scored':>7}  " + "  ".join(f"{k:<36}" for k in COMPARED)
    lines = [f"maps {comparison['maps']}; before→after (change [95% paired bootstrap, "
             f"{comparison['resamples']} resamples])", head.rstrip(), "-" * len(head.rstrip())]
    for name, s in [*comparison["domains"].items(), ("overall", comparison["overall"])]:
        cells = "  ".join(f"{_cell(s[k]):<36}" for k in COMPARED)
        lines.append(f"{name:<10}{s['n']:>5}{s['same_answer']:>6}{s['grade_flips']:>6}{s['n_scored']:>7}  "
                     f"{cells}".rstrip())
    return "\n".join(lines)
