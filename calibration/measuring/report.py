"""Held-out calibration reports: metrics per domain, the stated-only baseline beside them, and text tables.

`build_report(records)` scores records with cross-validated maps (each record
calibrated by maps fitted without it); `build_report(records, maps)` scores
held-out records with given maps. Every report also carries the stated-only
baseline (the paper's pipeline): fixed `baseline_maps`, or cross-validated on the
same records in the same folds. `format_report` prints the tables that `calibrate
report` shows; plots are `calibration.measuring.plots`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from assistant.calibrated import metrics as M
from assistant.calibrated.fusion import SIGNAL_COLUMNS, signal_matrix
from assistant.calibrated.maps import CalibrationMaps
from assistant.calibrated.measures import SHORT_NAMES, signal_aurocs
from assistant.core.domains import MAP_DOMAINS, in_order
from assistant.core.errors import DataError
from assistant.core.validate import is_number
from calibration.fitting.fit import as_records, cross_validate, fit_maps, records_to_arrays

__all__ = ["METRIC_KEYS", "SIGNAL_COLUMNS", "build_report", "calibrated_confidences", "format_baseline_table",
           "format_maps_summary", "format_report", "format_signal_table"]

# Keys of the "raw" and "calibrated" blocks of every report section.
METRIC_KEYS = ("accuracy", "ece", "ace", "mce", "brier", "auroc", "aurc", "overconfidence",
               "parse_failure_rate", "not_attempted_rate")


def _num(value) -> float | None:
    """Float, or None for NaN (reports are JSON, which has no NaN)."""
    return None if value is None or not math.isfinite(value) else float(value)


def _block(y: np.ndarray, q: np.ndarray, parse_failure_rate, not_attempted_rate) -> dict:
    scored = len(y) > 0
    values = {
        "accuracy": float(y.mean()) if scored else None,
        "ece": M.expected_calibration_error(y, q) if scored else None,
        "ace": M.adaptive_calibration_error(y, q) if scored else None,
        "mce": M.maximum_calibration_error(y, q) if scored else None,
        "brier": M.brier_score(y, q) if scored else None,
        "auroc": M.auroc(y, q) if scored else None,
        "aurc": M.aurc(y, q) if scored else None,
        "overconfidence": M.overconfidence(y, q) if scored else None,
        "parse_failure_rate": parse_failure_rate,
        "not_attempted_rate": not_attempted_rate,
    }
    return {k: _num(v) for k, v in values.items()}


def _section(mask, p, y, c, t, threshold, signals) -> dict:
    """One report section over the records in `mask`."""
    n = int(mask.sum())
    usable = mask & ~np.isnan(p) & ~np.isnan(y)
    graded = mask & ~np.isnan(y)
    scored = graded & ~np.isnan(c)
    pf = float(np.isnan(p[mask]).mean()) if n else None
    na = float(np.isnan(y[mask]).mean()) if n else None
    # Same rule as DomainMap.needs_review: kept when c >= t, and t == 1.0 flags everything.
    kept = scored & (c >= t) & (t < 1.0)
    return {
        "n": n,
        # These two speak also for a model that never states a confidence (its metric blocks are empty).
        "n_stated": int((mask & ~np.isnan(p)).sum()),
        "accuracy_all": float(y[graded].mean()) if graded.any() else None,
        "raw": _block(y[usable], p[usable], pf, na),
        # Every graded answer the maps give a confidence: with fused maps that is (nearly) all of them.
        "calibrated": _block(y[scored], c[scored], pf, na),
        "n_calibrated": int(scored.sum()),
        "no_confidence_rate": float(1 - scored.sum() / graded.sum()) if graded.any() else None,
        "signal_auroc": signal_aurocs(y[mask], signals[mask], c[mask]),
        "threshold": _num(threshold),
        "coverage": float(kept.sum() / scored.sum()) if scored.any() else None,
        "selective_accuracy": float(y[kept].mean()) if kept.any() else None,
    }


def calibrated_confidences(records, maps: CalibrationMaps | None = None, *, cv_folds: int = 5, seed: int = 0,
                           fit_options: dict | None = None, questions=None) -> np.ndarray:
    """Each record's calibrated confidence under `maps` (its domain's map); NaN without a raw confidence.

    With ``maps=None``, cross-validated confidences as `build_report` uses them
    (also NaN for records that are not attempted). `questions`: the records' QuestionFeatures
    (aligned; None: question-aware maps read the question features at their mean).
    """
    if maps is None:
        return cross_validate(records, k=cv_folds, seed=seed, questions=questions, **(fit_options or {}))[0]
    records = as_records(records)
    questions = questions if questions is not None else [None] * len(records)
    values = (maps.calibrate_signals(r.domain, r.signals_or_stated(), q) for r, q in zip(records, questions))
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _warn_other_model(records, maps: CalibrationMaps) -> None:
    for model, prompt in sorted({(r.model, r.prompt) for r in records if r.model or r.prompt}):
        if not maps.matches(model, prompt):
            warnings.warn(f"records of model {model!r} / prompt {prompt!r} scored with maps for "
                          f"{maps.model!r} / {maps.prompt!r}", stacklevel=4)


def _target_risk(maps: CalibrationMaps) -> float | None:
    """The target risk the maps' review thresholds were chosen for (None for maps that do not say)."""
    risks = [m.metrics.get("target_risk") for m in maps.maps.values() if m.metrics]
    return next((float(r) for r in risks if is_number(r)), None)


def _pipeline(records, maps: CalibrationMaps | None, fit_options: dict, cv_folds: int, seed: int,
              what: str = "", questions=None) -> dict:
    """One pipeline's figures on `records`: `maps` applied, or `cv_folds`-fold cross-validated fits."""
    domains, p, y = records_to_arrays(records)
    if maps is not None:
        _warn_other_model(records, maps)
        c = calibrated_confidences(records, maps, questions=questions)
        t = np.array([maps.threshold(d) for d in domains])
        fitted, source = maps, f"maps {maps.version}"
    else:
        c, t = cross_validate(records, k=cv_folds, seed=seed, questions=questions, **fit_options)
        # Only the sections' threshold column comes from this fit on every record; coverage and
        # selective accuracy apply each record's own fold's threshold (t).
        fitted = fit_maps(records, **{"model": "report", "prompt": "report", **fit_options}, questions=questions)
        source = f"{cv_folds}-fold cross-validated on these records"
    present = in_order(domains.tolist())
    signals = signal_matrix([r.signals_or_stated() for r in records])
    return {
        "signals": fitted.signals,
        "source": what + source,
        "target_risk": _target_risk(fitted),
        "domains": {d: _section(domains == d, p, y, c, t, fitted.threshold(d), signals) for d in present},
        "overall": _section(np.ones(len(p), dtype=bool), p, y, c, t, None, signals),
    }


def build_report(records, maps: CalibrationMaps | None = None, *, baseline_maps: CalibrationMaps | None = None,
                 baseline: bool = True, cv_folds: int = 5, seed: int = 0, fit_options: dict | None = None,
                 target_risk: float | None = None, delta: float | None = None, questions=None) -> dict:
    """Raw vs calibrated metrics, threshold, coverage and selective accuracy per domain and overall,
    for the pipeline measured and for the stated-only baseline.

    Parameters
    ----------
    records : list of dict
        Graded records (`domain`, `raw_confidence`, `correct`, optionally `model`, `prompt`, `signals`).
    maps : CalibrationMaps, optional
        When given, applied to `records`, which are assumed held out from its fit.
        When None, `cv_folds`-fold cross-validated maps are used, so every
        record is scored by maps fitted without it.
    baseline_maps : CalibrationMaps, optional
        Stated-only maps to measure as the baseline (assumed held out from `records`
        too). When None, the baseline is a stated-only fit cross-validated on
        `records`, in the same folds as the pipeline when that is cross-validated.
    baseline : bool, default True
        False leaves the baseline out. It is also left out (None) when the pipeline
        measured is itself stated-only and no `baseline_maps` are given.
    cv_folds, seed : int
        Folds and shuffle seed of the cross-validation.
    fit_options : dict, optional
        Passed to `fit_maps` (min_samples, strict, signals, …) when `maps` is None;
        the baseline's cross-validated fits take them too, with ``signals="stated"``.
    target_risk, delta : float, optional
        Shorthands for the same `fit_options` keys; ignored when `maps` is
        given (its thresholds are already fixed).
    questions : list, optional
        The records' `assistant.calibrated.questions.QuestionFeatures` (aligned), for question-aware
        maps and fits; None: no question features.

    Returns
    -------
    dict
        ``{"signals", "source", "target_risk", "domains": {domain: section},
        "overall": section, "baseline"}``, domains in MAP_DOMAINS order, present
        ones only; ``source`` says where the maps measured come from (``maps v0003``,
        or ``5-fold cross-validated on these records``). ``baseline`` is the same
        dict (without its own baseline) for the stated-only pipeline, or None. A
        section is ``{"n", "n_stated", "accuracy_all", "raw", "calibrated",
        "n_calibrated", "no_confidence_rate", "signal_auroc", "threshold",
        "coverage", "selective_accuracy"}``; ``n`` counts all records, ``n_stated``
        those with a stated confidence, ``accuracy_all`` is the share correct of all
        graded records (stated confidence or not). The raw block uses the records with
        a stated confidence and a grade, the calibrated block every graded record the
        maps give a confidence (``n_calibrated``; ``no_confidence_rate`` is the share of
        graded records they give none); the parse-failure and not-attempted rates are
        shares of all. ``signal_auroc`` is `signal_aurocs`. ``threshold`` is the
        domain's review threshold (the maps', or a fit on all records under
        cross-validation; None overall, where each record meets its own domain's);
        coverage and selective accuracy apply each record's threshold (its fold's
        under cross-validation). Undefined numbers (AUROC of one class, …) are None.
    """
    records = as_records(records)
    fit_options = dict(fit_options or {})
    for key, value in (("target_risk", target_risk), ("delta", delta)):
        if value is not None:
            fit_options[key] = value
    report = _pipeline(records, maps, fit_options, cv_folds, seed, questions=questions)
    report["baseline"] = None
    if baseline and (baseline_maps is not None or report["signals"] != "stated"):
        stated = {**fit_options, "signals": "stated"}
        try:
            report["baseline"] = _pipeline(records, baseline_maps, stated, cv_folds, seed,
                                           what="stated-only, " if baseline_maps is None else "")
        except DataError as err:  # too few stated confidences to fit the baseline in folds: say so, go on
            report["baseline"] = {"source": "stated-only, not measured", "unavailable": str(err)}
    return report


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def format_report(report: dict) -> str:
    """Plain-text tables of a `build_report` result: raw vs calibrated per domain and overall, the AUROC
    of each signal, and the stated-only baseline beside the pipeline measured.

    ``n`` counts all records, ``stated`` those with a stated confidence, ``acc.all`` is the
    accuracy of all graded records; ``acc`` and the raw metrics use the stated ones only.
    """
    head = (f"{'domain':<10} {'n':>5} {'stated':>6} {'acc.all':>7} {'acc':>6} {'ECE raw→cal':>13} "
            f"{'Brier raw→cal':>13} {'AUROC raw→cal':>13} {'thresh':>6} {'cover':>6} {'sel.acc':>7}")
    lines = [head, "-" * len(head)]
    rows = [*report["domains"].items(), ("overall", report["overall"])]
    for name, s in rows:
        raw, cal = s["raw"], s["calibrated"]
        ece, brier, auroc = (f"{_fmt(raw[k])}→{_fmt(cal[k])}" for k in ("ece", "brier", "auroc"))
        lines.append(f"{name:<10} {s['n']:>5} {s['n_stated']:>6} {_fmt(s['accuracy_all']):>7} "
                     f"{_fmt(raw['accuracy']):>6} {ece:>13} {brier:>13} {auroc:>13} "
                     f"{_fmt(s['threshold'], '.2f'):>6} {_fmt(s['coverage']):>6} "
                     f"{_fmt(s['selective_accuracy']):>7}")
    lines += ["", format_signal_table(report), "", format_baseline_table(report)]
    return "\n".join(lines)


def format_signal_table(report: dict) -> str:
    """AUROC of each signal and of the calibrated confidence, per domain, and the no-confidence rate.

    ``calib.`` is the confidence the maps give (the fused score under fused maps), over every graded
    answer it covers; ``no-conf`` is the share of graded answers it does not cover.
    """
    names = [*SIGNAL_COLUMNS, "calibrated"]
    head = f"{'AUROC':<10} " + " ".join(f"{SHORT_NAMES[n]:>8}" for n in names) + f" {'ECE cal':>7} {'no-conf':>7}"
    lines = [f"calibrated confidence from: {report.get('signals', 'stated')} signals", head, "-" * len(head)]
    for name, s in [*report["domains"].items(), ("overall", report["overall"])]:
        cells = [_fmt(s["signal_auroc"][n]["auroc"]) for n in names]
        lines.append(f"{name:<10} " + " ".join(f"{c:>8}" for c in cells)
                     + f" {_fmt(s['calibrated']['ece']):>7} {_fmt(s['no_confidence_rate']):>7}")
    return "\n".join(lines)


_VERSUS = (("ECE", "calibrated", "ece"), ("Brier", "calibrated", "brier"), ("AUROC", "calibrated", "auroc"),
           ("cover", None, "coverage"), ("sel.acc", None, "selective_accuracy"), ("no-conf", None, "no_confidence_rate"))


def format_baseline_table(report: dict) -> str:
    """The stated-only baseline beside the pipeline measured, per domain: calibrated ECE, Brier and AUROC,
    coverage and selective accuracy at the review thresholds, and the no-confidence rate.

    Each cell reads ``baseline→pipeline``; each pipeline's metrics are over the graded answers it gives a
    confidence (``n cal``), so a baseline that covers few answers is judged on those few.
    """
    base = report.get("baseline")
    if base is None:
        return f"baseline: none apart (the pipeline above reads {report.get('signals', 'stated')} signals only)"
    if "unavailable" in base:
        return f"baseline: stated-only, not measured: {base['unavailable']}"
    risk = report.get("target_risk") or base.get("target_risk")
    lines = [f"baseline: {base['source']}; {report['signals']}: {report['source']}",
             f"each cell: stated-only baseline → {report['signals']}; calibrated confidence; coverage and "
             f"sel.acc at each pipeline's review thresholds (target risk {_fmt(risk, '.2f')})"]
    head = f"{'domain':<10} {'n cal':>11} " + " ".join(f"{label:>13}" for label, _, _ in _VERSUS)
    lines += [head, "-" * len(head)]
    for name, s in [*report["domains"].items(), ("overall", report["overall"])]:
        b = base["overall"] if name == "overall" else base["domains"][name]
        cells = [f"{_fmt((b[blk] if blk else b)[k])}→{_fmt((s[blk] if blk else s)[k])}" for _, blk, k in _VERSUS]
        lines.append(f"{name:<10} {str(b['n_calibrated']) + '→' + str(s['n_calibrated']):>11} "
                     + " ".join(f"{c:>13}" for c in cells))
    return "\n".join(lines)


def format_maps_summary(maps: CalibrationMaps) -> str:
    """A plain-text table of fitted maps: knots, shrinkage, threshold and in-sample fit numbers."""
    head = (f"{maps.model} / {maps.prompt}  {maps.version}  fitted {maps.fitted_at}\n"
            f"{'domain':<10} {'n':>5} {'right':>5} {'wrong':>5} {'knots':>5} {'shrink':>6} {'thresh':>6} {'cover':>6} "
            f"{'risk≤':>6} {'ECE raw→cal (in-sample)':>24}  combiner weights")
    lines = [head, "-" * len(head.splitlines()[1])]
    for domain in in_order(maps.maps):
        m = maps.maps[domain]
        g = m.metrics.get
        how = (g("combiner_fit") or {}).get("weights", "-")
        lines.append(f"{domain:<10} {m.n_samples:>5} {_fmt(g('right'), 'd'):>5} {_fmt(g('wrong'), 'd'):>5} "
                     f"{len(m.x):>5} {_fmt(g('shrink_weight'), '.2f'):>6} "
                     f"{m.threshold:>6.2f} {_fmt(g('coverage')):>6} {_fmt(g('risk_ucb')):>6} "
                     f"{_fmt(g('ece_raw')) + '→' + _fmt(g('ece_calibrated')):>24}  {how}")
    borrowed = maps.maps["general"].metrics.get("borrowed_by") or {}
    for domain, n in borrowed.items():
        lines.append(f"{domain}: {n} usable graded answers, too few for a map of its own: it borrows the pooled "
                     "(general) map, fitted on every domain's answers")
    missing = [d for d in MAP_DOMAINS if d not in maps.maps and d not in borrowed]
    if missing:
        lines.append(f"(no map for {', '.join(missing)}: they use the general map)")
    lines.append("right, wrong: the fitting answers each map rests on (review thresholds are tested on others)")
    return "\n".join(lines)
