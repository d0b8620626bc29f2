"""Held-out calibration reports: metrics per domain, a text table, and plots.

`build_report(records)` scores records with cross-validated maps (each record
calibrated by maps fitted without it); `build_report(records, maps)` scores
held-out records with given maps. `format_report` prints the table that
`calibrate report` shows; `write_plots` draws reliability diagrams and
risk–coverage curves (matplotlib, loaded only there).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from assistant.core.domains import MAP_DOMAINS
from calibration import metrics as M
from calibration.fitting import as_records, cross_validate, fit_maps, records_to_arrays
from calibration.fusion import SIGNAL_COLUMNS, signal_matrix
from calibration.maps import CalibrationMaps

__all__ = ["METRIC_KEYS", "SIGNAL_COLUMNS", "build_report", "calibrated_confidences", "format_report",
           "format_signal_table", "format_maps_summary", "write_plots"]

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
    aurocs = {}
    for j, name in enumerate(SIGNAL_COLUMNS):
        has = graded & ~np.isnan(signals[:, j])
        aurocs[name] = {"auroc": _num(M.auroc(y[has], signals[has, j])) if has.any() else None, "n": int(has.sum())}
    aurocs["calibrated"] = {"auroc": _num(M.auroc(y[scored], c[scored])) if scored.any() else None,
                            "n": int(scored.sum())}
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
        "signal_auroc": aurocs,
        "threshold": _num(threshold),
        "coverage": float(kept.sum() / scored.sum()) if scored.any() else None,
        "selective_accuracy": float(y[kept].mean()) if kept.any() else None,
    }


def calibrated_confidences(records, maps: CalibrationMaps | None = None, *, cv_folds: int = 5, seed: int = 0,
                           fit_options: dict | None = None) -> np.ndarray:
    """Each record's calibrated confidence under `maps` (its domain's map); NaN without a raw confidence.

    With ``maps=None``, cross-validated confidences as `build_report` uses them
    (also NaN for records that are not attempted).
    """
    if maps is None:
        return cross_validate(records, k=cv_folds, seed=seed, **(fit_options or {}))[0]
    values = (maps.calibrate_signals(r.domain, r.signals_or_stated()) for r in as_records(records))
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def build_report(records, maps: CalibrationMaps | None = None, *, cv_folds: int = 5, seed: int = 0,
                 fit_options: dict | None = None, target_risk: float | None = None,
                 delta: float | None = None) -> dict:
    """Raw vs calibrated metrics, threshold, coverage and selective accuracy per domain and overall.

    Parameters
    ----------
    records : list of dict
        Graded records (`domain`, `raw_confidence`, `correct`, optionally `model`, `prompt`).
    maps : CalibrationMaps, optional
        When given, applied to `records`, which are assumed held out from its fit.
        When None, `cv_folds`-fold cross-validated maps are used, so every
        record is scored by maps fitted without it.
    cv_folds, seed : int
        Folds and shuffle seed of the cross-validation.
    fit_options : dict, optional
        Passed to `fit_maps` (min_samples, strict, …) when `maps` is None.
    target_risk, delta : float, optional
        Shorthands for the same `fit_options` keys; ignored when `maps` is
        given (its thresholds are already fixed).

    Returns
    -------
    dict
        ``{"domains": {domain: section}, "overall": section}``, domains in
        MAP_DOMAINS order, present ones only. A section is ``{"n", "n_stated",
        "accuracy_all", "raw", "calibrated", "threshold", "coverage",
        "selective_accuracy"}``; ``n`` counts all records, ``n_stated`` those
        with a stated confidence, ``accuracy_all`` is the share correct of all
        graded records (stated confidence or not). The metric blocks (keys
        METRIC_KEYS) use the records with a confidence and a grade, except the
        parse-failure and not-attempted rates, which are shares of all. ``threshold`` is the domain's review
        threshold (the maps', or a fit on all records under cross-validation;
        None overall, where each record meets its own domain's); coverage and
        selective accuracy apply each record's threshold (its fold's under
        cross-validation). Undefined numbers (AUROC of one class, …) are None.
    """
    records = as_records(records)
    domains, p, y = records_to_arrays(records)
    fit_options = dict(fit_options or {})
    for key, value in (("target_risk", target_risk), ("delta", delta)):
        if value is not None:
            fit_options[key] = value
    if maps is not None:
        pairs = {(r.model, r.prompt) for r in records if r.model or r.prompt}
        for model, prompt in pairs:
            if not maps.matches(model, prompt):
                warnings.warn(f"records of model {model!r} / prompt {prompt!r} scored with maps for "
                              f"{maps.model!r} / {maps.prompt!r}", stacklevel=2)
        c = calibrated_confidences(records, maps)
        t = np.array([maps.threshold(d) for d in domains])
        thresholds = maps
    else:
        c, t = cross_validate(records, k=cv_folds, seed=seed, **fit_options)
        thresholds = fit_maps(records, **{"model": "report", "prompt": "report", **fit_options})
    present = [d for d in MAP_DOMAINS if (domains == d).any()]
    signals = signal_matrix([r.signals_or_stated() for r in records])
    return {
        "signals": maps.signals if maps is not None else fit_options.get("signals", "stated"),
        "domains": {d: _section(domains == d, p, y, c, t, thresholds.threshold(d), signals) for d in present},
        "overall": _section(np.ones(len(p), dtype=bool), p, y, c, t, None, signals),
    }


def _fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def format_report(report: dict) -> str:
    """A plain-text table of a `build_report` result, one row per domain and one overall.

    ``n`` counts all records, ``stated`` those with a stated confidence, ``acc.all`` is the
    accuracy of all graded records; ``acc`` and the metrics after it use the stated ones only.
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
    lines += ["", format_signal_table(report)]
    return "\n".join(lines)


_SHORT = {"stated": "stated", "stated_ev": "stat.EV", "probe_ev": "probe", "verbal": "verbal",
          "answer_mean_logp": "ans.mean", "answer_min_logp": "ans.min", "answer_first_logp": "ans.1st",
          "calibrated": "calib."}


def format_signal_table(report: dict) -> str:
    """AUROC of each signal and of the calibrated confidence, per domain, and the no-confidence rate.

    ``calib.`` is the confidence the maps give (the fused score under fused maps), over every graded
    answer it covers; ``no-conf`` is the share of graded answers it does not cover.
    """
    names = [*SIGNAL_COLUMNS, "calibrated"]
    head = f"{'AUROC':<10} " + " ".join(f"{_SHORT[n]:>8}" for n in names) + f" {'ECE cal':>7} {'no-conf':>7}"
    lines = [f"calibrated confidence from: {report.get('signals', 'stated')} signals", head, "-" * len(head)]
    for name, s in [*report["domains"].items(), ("overall", report["overall"])]:
        cells = [_fmt(s["signal_auroc"][n]["auroc"]) for n in names]
        lines.append(f"{name:<10} " + " ".join(f"{c:>8}" for c in cells)
                     + f" {_fmt(s['calibrated']['ece']):>7} {_fmt(s['no_confidence_rate']):>7}")
    return "\n".join(lines)


def format_maps_summary(maps: CalibrationMaps) -> str:
    """A plain-text table of fitted maps: knots, shrinkage, threshold and in-sample fit numbers."""
    head = (f"{maps.model} / {maps.prompt}  {maps.version}  fitted {maps.fitted_at}\n"
            f"{'domain':<10} {'n':>5} {'knots':>5} {'shrink':>6} {'thresh':>6} {'cover':>6} {'risk≤':>6} "
            f"{'ECE raw→cal (in-sample)':>24}")
    lines = [head, "-" * len(head.splitlines()[1])]
    for domain in MAP_DOMAINS:
        if domain not in maps.maps:
            continue
        m = maps.maps[domain]
        g = m.metrics.get
        lines.append(f"{domain:<10} {m.n_samples:>5} {len(m.x):>5} {_fmt(g('shrink_weight'), '.2f'):>6} "
                     f"{m.threshold:>6.2f} {_fmt(g('coverage')):>6} {_fmt(g('risk_ucb')):>6} "
                     f"{_fmt(g('ece_raw')) + '→' + _fmt(g('ece_calibrated')):>24}")
    missing = [d for d in MAP_DOMAINS if d not in maps.maps]
    if missing:
        lines.append(f"(no map for {', '.join(missing)}: they use the general map)")
    return "\n".join(lines)


def _reliability_axes(ax, y, q, title):
    bins = M.reliability_bins(y, q, 10)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for lo, hi, count, _, acc in bins:
        ax.bar((lo + hi) / 2, acc, width=(hi - lo) * 0.9, color="tab:blue", alpha=0.7)
        ax.annotate(str(count), ((lo + hi) / 2, acc), ha="center", va="bottom", fontsize=7)
    ax.plot([b[3] for b in bins], [b[4] for b in bins], "o", color="tab:red", markersize=3)
    ax.set(xlim=(0, 1), ylim=(0, 1.08), xlabel="confidence", ylabel="accuracy",
           title=f"{title}  ECE {M.expected_calibration_error(y, q):.3f}")


def write_plots(records, calibrated, folder) -> list[Path]:
    """Write reliability diagrams and risk–coverage curves, per domain and overall, as PNG files.

    Parameters
    ----------
    records : list of dict
        Graded records.
    calibrated : array-like of float
        Calibrated confidence of each record (NaN or None where it has none),
        e.g. `cross_validated_predictions(records)`.
    folder : path
        Created if missing; files are ``reliability_<domain>.png`` and
        ``risk_coverage_<domain>.png`` (domain or ``overall``).

    Returns
    -------
    list of Path
        The files written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    records = as_records(records)
    domains, p, y = records_to_arrays(records)
    c = np.array([np.nan if v is None else v for v in calibrated], dtype=float)
    if len(c) != len(p):
        raise ValueError(f"calibrated has {len(c)} values for {len(p)} records")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    usable = ~np.isnan(p) & ~np.isnan(y) & ~np.isnan(c)
    signals = signal_matrix([r.signals_or_stated() for r in records])
    groups = [(d, domains == d) for d in MAP_DOMAINS if (domains == d).any()]
    groups.append(("overall", np.ones(len(p), dtype=bool)))
    written = []
    for name, mask in groups:
        m = mask & usable
        scored = mask & ~np.isnan(y) & ~np.isnan(c)
        if not scored.any():
            continue
        fig = Figure(figsize=(9, 4))
        FigureCanvasAgg(fig)
        ax_raw, ax_cal = fig.subplots(1, 2)
        if m.any():
            _reliability_axes(ax_raw, y[m], p[m], f"{name} stated (n={int(m.sum())})")
        else:
            ax_raw.set(title=f"{name}: no stated confidence", xticks=[], yticks=[])
        _reliability_axes(ax_cal, y[scored], c[scored], f"{name} calibrated (n={int(scored.sum())})")
        fig.tight_layout()
        path = folder / f"reliability_{name}.png"
        fig.savefig(path, dpi=100)
        written.append(path)

        fig = Figure(figsize=(6, 4.5))
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        # One curve per signal over the answers that have it, and the calibrated confidence over all
        # graded answers it covers (with fused maps: every one).
        curves = [("calibrated", scored, c)]
        curves += [(_SHORT[name], mask & ~np.isnan(y) & ~np.isnan(signals[:, j]), signals[:, j])
                   for j, name in enumerate(SIGNAL_COLUMNS)]
        for label, has, q in curves:
            if has.sum() < 2:
                continue
            cov, risk, _ = M.risk_coverage_curve(y[has], q[has])
            ax.step(np.concatenate([[0], cov]), np.concatenate([[risk[0]], risk]), where="pre",
                    label=f"{label} n={int(has.sum())} (AURC {M.aurc(y[has], q[has]):.3f})",
                    linewidth=2.2 if label == "calibrated" else 1.0)
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="coverage", ylabel="error rate of kept answers",
               title=f"{name} risk–coverage")
        ax.legend(loc="upper left", fontsize=7)
        fig.tight_layout()
        path = folder / f"risk_coverage_{name}.png"
        fig.savefig(path, dpi=100)
        written.append(path)
    return written
