"""The dashboard's table and figures: per-domain map figures beside what reviewers found since the fit.

Pure functions from maps and reviewed answers to table rows and matplotlib figures, so the
Dashboard tab (`assistant.web.dashboard`) stays thin and these can be tested without a server.
"""

from __future__ import annotations

import math

from assistant.calibrated.fusion import SIGNAL_COLUMNS
from assistant.calibrated.measures import SHORT_NAMES, risk_coverage_axes
from assistant.calibrated.metrics import reliability_bins
from assistant.core.domains import MAP_DOMAINS
from assistant.core.validate import is_number
from assistant.reviews.queries import verdict_arrays
from assistant.web.render import MIN_TO_JUDGE, human_date

__all__ = ["DASHBOARD_COLUMNS", "LIVE_SIGNAL_COLUMNS", "SERVER_COLUMNS", "dashboard_rows", "server_rows", "histogram_figure", "live_signal_rows",
           "num", "reliability_figure", "risk_coverage_figure"]

DASHBOARD_COLUMNS = [
    "domain", "samples", "threshold", "coverage", "ECE raw", "ECE calibrated", "Brier raw",
    "Brier calibrated", "AUROC raw", "AUROC calibrated", "reviewed since fit", "accuracy since fit",
    "ECE since fit", "signals", "ECE held-out", "AUROC held-out", "AUROC per signal (held-out)",
    "range on the figure", "unlike the fitting questions beyond", "guarantee",
]

SERVER_COLUMNS = ["server", "map version", "model", "prompt", "last seen"]


def num(value, percent: bool = False) -> str:
    """A metric for a table: 0.123, or 12% with `percent`; — when there is none."""
    if not is_number(value) or math.isnan(value):
        return "—"
    return f"{value * 100:.0f}%" if percent else f"{value:.3f}"


def dashboard_rows(maps, stats: dict) -> list[list[str]]:
    """One table row per domain map: stored fit metrics raw vs calibrated, plus live review figures."""
    rows = []
    for domain, dm in (maps.maps.items() if maps else ()):
        m = dm.metrics or {}
        live = stats.get(domain)
        rows.append([
            domain, str(dm.n_samples), num(dm.threshold, percent=True), num(m.get("coverage"), percent=True),
            num(m.get("ece_raw")), num(m.get("ece_calibrated")), num(m.get("brier_raw")),
            num(m.get("brier_calibrated")), num(m.get("auroc_raw")), num(m.get("auroc_calibrated")),
            str(live.count) if live else "0", num(live.accuracy, percent=True) if live else "—",
            (num(live.ece) + ("" if live.count >= MIN_TO_JUDGE else f" (n={live.count}: too few)")) if live else "—",
            "fused" if dm.combiner else "stated", num(m.get("ece_calibrated_holdout")),
            num(m.get("auroc_holdout")), _signal_aurocs(dm.metrics.get("signal_auroc_holdout")),
            _range_cell(dm), _unlike_cell(maps, domain), _guarantee_cell(dm, m),
        ])
    return rows


def server_rows(statuses) -> list[list[str]]:
    """One row per app server that reported to the store (`assistant.reviews.servers.ServerStatus`)."""
    return [[s.server or "(unnamed)", s.map_version or "none (uncalibrated)", s.model, s.prompt, human_date(s.seen_at)]
            for s in statuses]


def _range_cell(dm) -> str:
    """The typical width of the range on the domain's figure: half the median of (high - low) over the
    scores the map was fitted on, in percentage points."""
    bands = dm.interval
    if not bands:
        return "none: fitted without one"
    widths = sorted(hi - lo for lo, hi in zip(bands["lower"], bands["upper"]))
    half = widths[len(widths) // 2] / 2
    return f"±{half * 100:.0f} points typical ({bands['level']:.0%}, from {bands.get('n', 0)} answers)"


def _unlike_cell(maps, domain: str) -> str:
    """The distance beyond which a question counts as unlike the fitting questions, and how many of them
    it is compared with."""
    ood = maps.ood
    if not ood:
        return "not measured: no fitting questions stored"
    group = domain if domain in ood["thresholds"] and domain in ood["domains"] else "general"
    n = len(ood["domains"]) if group == "general" else ood["domains"].count(group)
    return f"{ood['thresholds'][group]:.2f} ({ood['k']} nearest of {n} fitting questions)"


# The live table: per domain, how well each signal, and the calibrated confidence, rank reviewers' verdicts.
LIVE_SIGNAL_COLUMNS = ["domain", "reviewed since fit",
                       *(f"AUROC {SHORT_NAMES[n]}" for n in (*SIGNAL_COLUMNS, "calibrated"))]


def _too_few(n: int) -> str:
    return "" if n >= MIN_TO_JUDGE else f" (n={n}: too few)"


def live_signal_rows(aurocs: dict[str, dict]) -> list[list[str]]:
    """One row per domain (and "all", last) of `queries.signal_aurocs_by_domain`: the reviewed count, then
    each signal's AUROC and the calibrated confidence's, — where a verdict class or the signal is missing,
    and "(n=…: too few)" after a figure from fewer than MIN_TO_JUDGE answers."""
    order = [d for d in MAP_DOMAINS if d in aurocs] + sorted(set(aurocs) - {*MAP_DOMAINS, "all"})
    rows = []
    for domain in [*order, *(["all"] if "all" in aurocs else [])]:
        entry = aurocs[domain]
        cells = []
        for name in (*SIGNAL_COLUMNS, "calibrated"):
            a = entry["auroc"][name]
            cells.append("—" if a["auroc"] is None else f"{a['auroc']:.2f}{_too_few(a['n'])}")
        rows.append([domain, f"{entry['count']}{_too_few(entry['count'])}", *cells])
    return rows


def risk_coverage_figure(maps, reviewed: list[dict]):
    """Per-domain risk–coverage curves of answers reviewed since the fit: one per signal, the calibrated
    confidence in bold (`assistant.calibrated.measures.risk_coverage_axes`)."""
    from matplotlib.figure import Figure  # not pyplot: no global figure registry, safe in server threads

    domains = _domains(maps, reviewed)
    fig = Figure(figsize=(3.6 * len(domains), 3.8))
    axes = fig.subplots(1, len(domains), squeeze=False)
    for ax, domain in zip(axes[0], domains):
        mine = [r for r in reviewed if r["domain"] == domain]
        title = f"{domain} (n={len(mine)}{': too few' if len(mine) < MIN_TO_JUDGE else ''})"
        if not risk_coverage_axes(ax, *verdict_arrays(mine), title):
            ax.text(0.5, 0.5, "fewer than 2 reviewed answers", ha="center", va="center", fontsize=8)
    return _leave_room_for_the_label(fig)


def _signal_aurocs(aurocs) -> str:
    if not isinstance(aurocs, dict):
        return "—"
    shown = [f"{name} {value:.2f}" for name, value in aurocs.items() if isinstance(value, (int, float))]
    return ", ".join(shown) or "—"


def _guarantee_cell(dm, m: dict) -> str:
    target, delta, checked = m.get("target_risk"), m.get("delta"), m.get("n_checked")
    if not isinstance(target, (int, float)) or not isinstance(delta, (int, float)):
        return "—"
    if dm.threshold >= 1.0:
        return f"none ({checked} checked): all flagged"
    if not m.get("threshold_guaranteed"):
        return "not tested on held-out answers"
    return f"unflagged wrong ≤ {target:.0%} ({1 - delta:.0%}, {checked} checked)"


def _bins(pairs: list[tuple[float, bool]], n_bins: int = 10) -> list[tuple[float, float, int]]:
    if not pairs:
        return []
    rows = reliability_bins([int(ok) for _, ok in pairs], [p for p, _ in pairs], n_bins)
    return [(conf, acc, count) for _, _, count, conf, acc in rows]


def reliability_figure(maps, reviewed: list[dict]):
    """Per-domain reliability diagram: the fitted map, the diagonal, and reviewed answers since the fit."""
    from matplotlib.figure import Figure  # not pyplot: no global figure registry, safe in server threads

    domains = _domains(maps, reviewed)
    fig = Figure(figsize=(3.2 * len(domains), 3.6))
    axes = fig.subplots(1, len(domains), squeeze=False)
    for ax, domain in zip(axes[0], domains):
        ax.plot([0, 1], [0, 1], ls="--", color="#999", lw=1, label="perfectly calibrated")
        if maps:
            dm = maps.maps[domain]
            ax.plot(dm.x, dm.y, color="#0969da", lw=2, label=f"map (n={dm.n_samples})")
            flag_all = dm.threshold >= 1.0  # drawn on the top edge, so thicker and named
            ax.axhline(min(dm.threshold, 1.0), color="#cf222e", lw=2.5 if flag_all else 1, ls=":",
                       label="review threshold: 100%, every answer flagged" if flag_all else "review threshold")
        mine = [r for r in reviewed if r["domain"] == domain]
        for key, colour, name in (("raw_confidence", "#9a6700", "reviewed: raw"),
                                  ("confidence", "#1a7f37", "reviewed: calibrated")):
            pts = _bins([(r[key], r["correct"]) for r in mine if r[key] is not None])
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=[20 + 6 * p[2] for p in pts],
                           color=colour, alpha=0.8, label=name)
        ax.set(title=domain, xlim=(0, 1), ylim=(0, 1.05), xlabel="confidence", ylabel="share correct")
    axes[0][0].legend(fontsize=7, loc="upper left")
    return _leave_room_for_the_label(fig)


def _leave_room_for_the_label(fig):
    """Gradio draws the plot's label over the figure's top-left corner: keep the titles below it."""
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    return fig


def _domains(maps, rows: list[dict]) -> list[str]:
    if maps:
        return list(maps.maps)
    return sorted({r["domain"] for r in rows}) or ["general"]


def histogram_figure(maps, answered: list[dict]):
    """Per-domain histogram of the raw and calibrated confidences of answers given since the fit."""
    from matplotlib.figure import Figure  # not pyplot: no global figure registry, safe in server threads

    domains = _domains(maps, answered)
    fig = Figure(figsize=(3.2 * len(domains), 3.0))
    axes = fig.subplots(1, len(domains), squeeze=False)
    edges = [i / 10 for i in range(11)]
    for ax, domain in zip(axes[0], domains):
        mine = [r for r in answered if r["domain"] == domain]
        for key, colour, name in (("raw_confidence", "#9a6700", "model said"),
                                  ("confidence", "#1a7f37", "calibrated")):
            values = [r[key] for r in mine if r[key] is not None]
            if values:
                ax.hist(values, bins=edges, color=colour, alpha=0.5, label=name)
        ax.set(title=domain, xlim=(0, 1), xlabel="confidence", ylabel="answers")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _leave_room_for_the_label(fig)
