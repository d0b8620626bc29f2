"""How well each confidence signal and the calibrated confidence rank answers: per-signal AUROCs and
risk–coverage curves, shown by the web dashboard and by `calibrate report` alike."""

from __future__ import annotations

import math

import numpy as np

from assistant.calibrated import metrics as M
from assistant.calibrated.fusion import SIGNAL_COLUMNS, signal_matrix  # noqa: F401  (signal_matrix: the doctest)

__all__ = ["SHORT_NAMES", "risk_coverage_axes", "signal_aurocs"]

# Short names of the signals (and of the calibrated confidence) for table heads and legends.
SHORT_NAMES = {"stated": "stated", "stated_ev": "stat.EV", "probe_ev": "probe", "verbal": "verbal",
               "answer_mean_logp": "ans.mean", "answer_min_logp": "ans.min", "answer_first_logp": "ans.1st",
               "agreement": "agree", "calibrated": "calib."}


def risk_coverage_axes(ax, y, signals, calibrated, title: str) -> int:
    """One risk–coverage curve per signal on `ax`, over the graded answers that have it, and the
    calibrated confidence in bold; return how many curves were drawn (a curve needs 2 answers).

    Parameters
    ----------
    ax : matplotlib Axes
    y : array of float
        1 right, 0 wrong (NaN: not graded, left out).
    signals : array, shape (len(y), len(SIGNAL_COLUMNS))
        `assistant.calibrated.fusion.signal_matrix` of the answers (NaN where a signal is missing).
    calibrated : array of float
        The calibrated confidence of each answer (NaN where it has none).
    title : str
    """
    y, c = np.asarray(y, dtype=float), np.asarray(calibrated, dtype=float)
    graded = ~np.isnan(y)
    curves = [("calibrated", c)] + [(SHORT_NAMES[name], signals[:, j]) for j, name in enumerate(SIGNAL_COLUMNS)]
    drawn = 0
    for label, q in curves:
        has = graded & ~np.isnan(q)
        if has.sum() < 2:
            continue
        cov, risk, _ = M.risk_coverage_curve(y[has], q[has])
        ax.step(np.concatenate([[0], cov]), np.concatenate([[risk[0]], risk]), where="pre",
                label=f"{label} n={int(has.sum())} (AURC {M.aurc(y[has], q[has]):.3f})",
                linewidth=2.2 if label == "calibrated" else 1.0)
        drawn += 1
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="coverage", ylabel="error rate of kept answers", title=title)
    if drawn:
        ax.legend(loc="upper left", fontsize=7)
    return drawn


def signal_aurocs(y, signals, calibrated) -> dict:
    """AUROC of each signal alone and of the calibrated confidence, over the graded answers that have it.

    Parameters
    ----------
    y : array-like of float
        1 right, 0 wrong, NaN not graded (left out).
    signals : array, shape (len(y), len(SIGNAL_COLUMNS))
        `assistant.calibrated.fusion.signal_matrix` of the answers, NaN where a signal is missing.
    calibrated : array-like of float
        The calibrated confidence of each answer, NaN where it has none.

    Returns
    -------
    dict
        ``{name: {"auroc": float or None, "n": int}}`` for SIGNAL_COLUMNS and
        ``"calibrated"``; ``n`` counts the graded answers with that signal, and the
        AUROC is None when they hold one class only (or none).

    Examples
    --------
    >>> s = signal_matrix([{"stated": 0.9}, {"stated": 0.2}, {"stated": 0.6}])
    >>> a = signal_aurocs([1, 0, float("nan")], s, [0.5, 0.5, 0.5])
    >>> a["stated"], a["calibrated"]["auroc"], a["probe_ev"]
    ({'auroc': 1.0, 'n': 2}, 0.5, {'auroc': None, 'n': 0})
    """
    y = np.asarray(y, dtype=float)
    columns = [(name, signals[:, j]) for j, name in enumerate(SIGNAL_COLUMNS)]
    columns.append(("calibrated", np.asarray(calibrated, dtype=float)))
    out = {}
    for name, q in columns:
        has = ~np.isnan(y) & ~np.isnan(q)
        out[name] = {"auroc": _finite(M.auroc(y[has], q[has])) if has.any() else None, "n": int(has.sum())}
    return out


def _finite(value) -> float | None:
    """Float, or None for NaN (reports are JSON, which has no NaN)."""
    return None if value is None or not math.isfinite(value) else float(value)
