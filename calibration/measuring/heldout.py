"""Held-out sets side by side: per domain and set, the fused pipeline beside the stated-only baseline.

For each set (e.g. the benchmark questions of `../shared/data` and the everyday held-out part) and
each domain: how many answers and how many right, accuracy, calibrated ECE, within-domain AUROC,
the no-confidence rate, the coverage of the stated ranges (`assistant.calibrated.intervals.bin_coverage`,
noise-aware, at the ranges' level; "-" for maps without ranges) and the coverage at the target
risk (the share of answers the review threshold leaves unflagged). Then the AUROC over every set
together, and each issue-20 target with the margin by which it is met or missed.

    calibrate report --maps v0004 --baseline-maps v0005 \\
        --heldout benchmark runs/real/data-*.jsonl --heldout everyday calibration/records/everyday/heldout-*.jsonl
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.calibrated import metrics as M
from assistant.calibrated.intervals import bin_coverage
from assistant.calibrated.maps import CalibrationMaps
from assistant.calibrated.support import support_of
from assistant.core.domains import MAP_DOMAINS, in_order
from calibration.fitting.fit import as_records, records_to_arrays

__all__ = ["TARGETS", "HeldoutSet", "format_side_by_side", "side_by_side"]

# Issue 20's targets: ECE per domain, within-domain AUROC (where a domain has `min_each` right and
# wrong answers), AUROC over every set together, no-confidence rate.
TARGETS = {"ece": 0.06, "auroc_domain": 0.65, "min_each": 15, "auroc_together": 0.75, "no_confidence": 0.05}


@dataclass(frozen=True)
class HeldoutSet:
    """One named held-out set."""

    name: str  # e.g. "benchmark", "everyday"
    records: list  # graded records (Record or dict)
    questions: list | None = None  # their QuestionFeatures (aligned), for question-aware maps


def _scores(maps: CalibrationMaps, records, questions) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated confidence, range low and high (NaN: none), and whether the answer is kept (not
    flagged by its domain's review threshold), per record."""
    out = np.full((4, len(records)), np.nan)
    for i, r in enumerate(records):
        q = questions[i] if questions is not None else None
        dmap = maps.map_for(r.domain)
        score = dmap.score(r.signals_or_stated(), q)
        if score is None:
            continue
        c = dmap(score)
        support = support_of(maps, r.domain, score, c, None if q is None else q.embedding)
        kept = not maps.needs_review(r.domain, c)
        out[:, i] = (c, np.nan if support.low is None else support.low,
                     np.nan if support.high is None else support.high, float(kept))
    return out[0], out[1], out[2], out[3]


def _cells(y, c, low, high, kept) -> dict:
    graded = ~np.isnan(y)
    scored = graded & ~np.isnan(c)
    ys, cs = y[scored], c[scored]
    right = int(np.nansum(y[graded]))
    has_range = scored & ~np.isnan(low)
    cover = bin_coverage(ys[has_range[scored]], cs[has_range[scored]], low[has_range], high[has_range],
                         n_bins=min(10, int(has_range.sum()) // 20)) if has_range.sum() >= 20 else None
    return {
        "n": int(graded.sum()), "right": right, "wrong": int(graded.sum()) - right, "scored": int(scored.sum()),
        "accuracy": float(y[graded].mean()) if graded.any() else None,
        "ece": M.expected_calibration_error(ys, cs) if scored.any() else None,
        "ece_if_calibrated": M.ece_if_calibrated(cs) if scored.any() else None,
        "auroc": M.auroc(ys, cs) if scored.any() and 0 < ys.sum() < len(ys) else None,
        "no_confidence": float(1 - scored.sum() / graded.sum()) if graded.any() else None,
        "interval_coverage": None if cover is None else cover.noise_aware,
        "coverage_at_risk": float(np.mean(kept[scored])) if scored.any() else None,
    }


def _pipeline(maps: CalibrationMaps, sets: list[HeldoutSet], question_aware: bool) -> dict:
    rows, together_y, together_c = {}, [], []
    for s in sets:
        records = as_records(s.records)
        domains, _, y = records_to_arrays(records)
        c, low, high, kept = _scores(maps, records, s.questions if question_aware else None)
        rows[s.name] = {d: _cells(y[domains == d], c[domains == d], low[domains == d], high[domains == d],
                                  kept[domains == d]) for d in in_order(domains.tolist())}
        rows[s.name]["all"] = _cells(y, c, low, high, kept)
        together_y.append(y)
        together_c.append(c)
    y, c = np.concatenate(together_y), np.concatenate(together_c)
    ok = ~np.isnan(y) & ~np.isnan(c)
    return {"maps": maps.version, "signals": maps.signals, "sets": rows,
            "auroc_together": M.auroc(y[ok], c[ok]) if ok.any() else None,
            "target_risk": next((m.metrics.get("target_risk") for m in maps.maps.values() if m.metrics), None)}


def side_by_side(sets: list[HeldoutSet], maps: CalibrationMaps, baseline_maps: CalibrationMaps | None = None) -> dict:
    """``{"fused": pipeline, "baseline": pipeline or None}``; a pipeline is ``{"maps", "signals", "sets":
    {set: {domain or "all": cells}}, "auroc_together", "target_risk"}`` and cells are ``{"n", "right",
    "wrong", "scored", "accuracy", "ece", "ece_if_calibrated", "auroc", "no_confidence", "interval_coverage",
    "coverage_at_risk"}`` (None where undefined; `scored`: the graded answers with a figure;
    `ece_if_calibrated`: the ECE exactly right figures would show 9 times in 10 or less)."""
    return {"fused": _pipeline(maps, sets, True),
            "baseline": None if baseline_maps is None else _pipeline(baseline_maps, sets, False)}


def _fmt(value, spec=".3f") -> str:
    return "-" if value is None else format(value, spec)


_COLUMNS = (("acc", "accuracy"), ("ECE", "ece"), ("AUROC", "auroc"), ("no-conf", "no_confidence"),
            ("range", "interval_coverage"), ("cover", "coverage_at_risk"))


def _block(cell: dict | None) -> str:
    if cell is None:
        return " " * (9 + 8 * len(_COLUMNS))
    return f"{cell['right']:>4}/{cell['n']:<4}" + "".join(f"{_fmt(cell[k]):>8}" for _, k in _COLUMNS)


def _table(pipeline: dict, names: list[str]) -> list[str]:
    width = 9 + 8 * len(_COLUMNS)
    head = f"{'domain':<10} " + " | ".join(f"{name[:width]:<{width}}" for name in names)
    sub = f"{'':<10} " + " | ".join(f"{'right/n':>9}" + "".join(f"{c:>8}" for c, _ in _COLUMNS) for _ in names)
    lines = [head, sub, "-" * len(sub)]
    for domain in [*MAP_DOMAINS, "all"]:
        cells = [pipeline["sets"][n].get(domain) for n in names]
        if any(cells):
            lines.append(f"{domain:<10} " + " | ".join(_block(c) for c in cells))
    return lines


def _targets(pipeline: dict) -> list[str]:
    t, missed = TARGETS, []
    for name, rows in pipeline["sets"].items():
        for domain, cell in rows.items():
            if domain == "all":
                continue
            if cell["ece"] is not None and cell["ece"] > t["ece"]:
                noise = cell["ece_if_calibrated"]
                beyond = "beyond" if cell["ece"] > noise else "within"
                missed.append(f"{name}/{domain} ECE {cell['ece']:.3f} > {t['ece']} by {cell['ece'] - t['ece']:.3f} "
                              f"({beyond} noise: exactly right figures would show up to {noise:.3f} on these "
                              f"{cell['scored']} answers 9 times in 10)")
            enough = min(cell["right"], cell["wrong"]) >= t["min_each"]
            if enough and cell["auroc"] is not None and cell["auroc"] < t["auroc_domain"]:
                missed.append(f"{name}/{domain} AUROC {cell['auroc']:.3f} < {t['auroc_domain']} "
                              f"by {t['auroc_domain'] - cell['auroc']:.3f}")
            if cell["no_confidence"] is not None and cell["no_confidence"] > t["no_confidence"]:
                missed.append(f"{name}/{domain} no-confidence {cell['no_confidence']:.3f} > {t['no_confidence']}")
    together = pipeline["auroc_together"]
    if together is not None and together < t["auroc_together"]:
        missed.append(f"AUROC over every set {together:.3f} < {t['auroc_together']} by {t['auroc_together'] - together:.3f}")
    return ["targets: all met"] if not missed else ["targets missed:", *("  " + m for m in missed)]


def format_side_by_side(result: dict) -> str:
    """Plain-text tables of a `side_by_side` result: the fused maps, then the stated-only baseline."""
    lines = []
    for key, title in (("fused", "fused"), ("baseline", "stated-only baseline")):
        pipeline = result.get(key)
        if pipeline is None:
            lines += [f"{title}: not measured (pass --baseline-maps VERSION, a `--signals stated` fit)", ""]
            continue
        names = list(pipeline["sets"])
        lines += [f"{title}: maps {pipeline['maps']} ({pipeline['signals']} signals); AUROC over "
                  f"{' + '.join(names)} together: {_fmt(pipeline['auroc_together'])}", *_table(pipeline, names)]
        lines += [*_targets(pipeline), ""]
    lines.append("right/n: right answers of the graded ones; range: share of held-out bins whose accuracy lies in "
                 "the stated ranges (noise-aware, '-' without ranges); cover: share unflagged at the target risk "
                 f"({_fmt(result['fused'].get('target_risk'), '.2f')})")
    return "\n".join(lines)
