"""Plots of calibration: reliability diagrams and risk–coverage curves (matplotlib, loaded only here).

`write_plots` draws them per domain and overall as PNG files for `calibrate report --plots`;
`risk_coverage_axes` draws one curve per confidence signal on given axes, for those files and
for the web dashboard's live figure. Figures are `matplotlib.figure.Figure`, never pyplot (no
global figure registry, so they are safe in the web server's threads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from assistant.calibrated import metrics as M
from assistant.calibrated.fusion import signal_matrix
from assistant.calibrated.measures import risk_coverage_axes
from assistant.core.domains import in_order
from assistant.core.files import private_folder
from calibration.fitting.fit import as_records, records_to_arrays

__all__ = ["write_model_plots", "write_plots"]

def _reliability_axes(ax, y, q, title):
    bins = M.reliability_bins(y, q, 10)
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1)
    for lo, hi, count, _, acc in bins:
        ax.bar((lo + hi) / 2, acc, width=(hi - lo) * 0.9, color="tab:blue", alpha=0.7)
        ax.annotate(str(count), ((lo + hi) / 2, acc), ha="center", va="bottom", fontsize=7)
    ax.plot([b[3] for b in bins], [b[4] for b in bins], "o", color="tab:red", markersize=3)
    ax.set(xlim=(0, 1), ylim=(0, 1.08), xlabel="confidence", ylabel="accuracy",
           title=f"{title}  ECE {M.expected_calibration_error(y, q):.3f}")


def _figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


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
        ``risk_coverage_<domain>.png`` (domain or ``overall``), the latter with
        one curve per signal (`risk_coverage_axes`).

    Returns
    -------
    list of Path
        The files written.
    """
    records = as_records(records)
    domains, p, y = records_to_arrays(records)
    c = np.array([np.nan if v is None else v for v in calibrated], dtype=float)
    if len(c) != len(p):
        raise ValueError(f"calibrated has {len(c)} values for {len(p)} records")
    folder = private_folder(Path(folder))
    signals = signal_matrix([r.signals_or_stated() for r in records])
    groups = [(d, domains == d) for d in in_order(domains.tolist())]
    groups.append(("overall", np.ones(len(p), dtype=bool)))
    written = []
    for name, mask in groups:
        stated = mask & ~np.isnan(p) & ~np.isnan(y) & ~np.isnan(c)
        scored = mask & ~np.isnan(y) & ~np.isnan(c)
        if not scored.any():
            continue
        fig = _figure((9, 4))
        ax_raw, ax_cal = fig.subplots(1, 2)
        if stated.any():
            _reliability_axes(ax_raw, y[stated], p[stated], f"{name} stated (n={int(stated.sum())})")
        else:
            ax_raw.set(title=f"{name}: no stated confidence", xticks=[], yticks=[])
        _reliability_axes(ax_cal, y[scored], c[scored], f"{name} calibrated (n={int(scored.sum())})")
        fig.tight_layout()
        written.append(folder / f"reliability_{name}.png")
        fig.savefig(written[-1], dpi=100)

        fig = _figure((6, 4.5))
        risk_coverage_axes(fig.subplots(), y[mask], signals[mask], c[mask], f"{name} risk–coverage")
        fig.tight_layout()
        written.append(folder / f"risk_coverage_{name}.png")
        fig.savefig(written[-1], dpi=100)
    return written


MODEL_PANELS = (("accuracy", "accuracy"), ("raw_ece", "raw ECE (stated)"), ("ece", "calibrated ECE"),
                ("auroc", "calibrated AUROC"))


def write_model_plots(comparison: dict, folder) -> list[Path]:
    """`compare-models.png` in `folder`: accuracy, raw and calibrated ECE and AUROC per domain and overall,
    a bar per pair (`calibration.measuring.models.compare_models`'s result)."""
    folder = private_folder(Path(folder))
    sections = [*comparison["domains"].items(), ("overall", comparison["overall"])]
    names = [p["name"] for p in comparison["pairs"]]
    fig = _figure((13, 8))
    width = 0.8 / len(names)
    for i, (key, title) in enumerate(MODEL_PANELS):
        ax = fig.add_subplot(2, 2, i + 1)
        for k, name in enumerate(names):
            values = [s["pairs"][k][key]["value"] for _, s in sections]
            ax.bar(np.arange(len(sections)) + k * width, [np.nan if v is None else v for v in values], width,
                   label=name)
        ax.set_xticks(np.arange(len(sections)) + width * (len(names) - 1) / 2, [d for d, _ in sections])
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    fig.axes[0].legend(fontsize=8)
    fig.tight_layout()
    path = folder / "compare-models.png"
    fig.savefig(path, dpi=90)
    return [path]
