"""What the web app shows: inert text, the confidence badge, the review marker, dashboard figures.

Pure functions from data to HTML/markdown strings and matplotlib figures, so
the tabs (`chat`, `review`, `dashboard`) stay thin and these can be tested without a server.

Everything a user or the model wrote goes through `inert_markdown` (or
`html.escape`) before it reaches the page: HTML is shown as text, never run,
and markdown images are replaced by a note, so no remote image is fetched.
"""

from __future__ import annotations

import html
import math
import re

from assistant.core.reply import REASON_TEXT
from calibration.metrics import reliability_bins

__all__ = [
    "inert_markdown",
    "how_often",
    "num",
    "pct",
    "confidence_band",
    "badge_html",
    "review_marker_html",
    "answer_markdown",
    "queue_item_markdown",
    "dashboard_rows",
    "reliability_figure",
    "histogram_figure",
    "DASHBOARD_COLUMNS",
]

# Colour bands of calibrated confidence: (lower bound, label, colour).
_BANDS = ((0.8, "high", "#1a7f37"), (0.5, "medium", "#9a6700"), (0.0, "low", "#cf222e"))
_FENCE = re.compile(r"(^|\n)(```|~~~)[^\n]*\n.*?(\n\2[^\n]*(?=\n|$)|$)", re.DOTALL)
_INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\s*(\([^)\n]*\)|\[[^\]\n]*\])")


def _escape_prose(text: str) -> str:
    """HTML-escape, and turn markdown images into a text note (never fetched)."""
    text = _IMAGE.sub(lambda m: f"[image not shown: {m.group(1) or 'no description'}]", text)
    text = text.replace("![", "!\\[")  # any image syntax the pattern missed (reference definitions, …)
    return html.escape(text, quote=False)


def inert_markdown(text: str | None) -> str:
    """Markdown that renders `text` as written: HTML tags show as text, images are not loaded.

    Code blocks and inline code are kept verbatim (markdown already shows them
    literally); everything else is HTML-escaped.
    """
    if not text:
        return ""
    return _escape_outside(_FENCE, text, lambda part: _escape_outside(_INLINE_CODE, part, _escape_prose))


def _escape_outside(pattern: re.Pattern, text: str, escape) -> str:
    """`escape` the stretches of `text` between matches of `pattern`; keep the matches verbatim."""
    out, pos = [], 0
    for m in pattern.finditer(text):
        out.append(escape(text[pos : m.start()]))
        out.append(m.group(0))
        pos = m.end()
    out.append(escape(text[pos:]))
    return "".join(out)


def confidence_band(confidence: float | None) -> tuple[str, str]:
    """(label, colour) of a calibrated confidence; grey "unknown" when there is none."""
    if confidence is None or (isinstance(confidence, float) and math.isnan(confidence)):
        return "unknown", "#6e7781"
    for lower, label, colour in _BANDS:
        if confidence >= lower:
            return label, colour
    return _BANDS[-1][1:]  # pragma: no cover


MIN_TO_JUDGE = 30  # a rate from fewer answers is shown with a warning


def human_date(iso: str | None) -> str:
    """"1 Dec 2026, 09:31 UTC" for an ISO-8601 time; the text itself when it is not one."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def few_answers(n: int | None) -> str:
    """A warning to put after a figure that rests on `n` answers; "" when there are enough."""
    if n is None or n >= MIN_TO_JUDGE:
        return ""
    return f" (from only {n} answer{'s' if n != 1 else ''}: too few to judge)"


def pct(value: float | None) -> str:
    """A confidence as a whole percentage; — when there is none."""
    return "—" if value is None else f"{value * 100:.0f}%"


_SIGNAL_WORDS = {
    "stated": "the confidence the model stated",
    "fused": "the confidence the model stated (read from its digit probabilities), a confidence read by asking "
             "for one when it stated none, and how probable the model found its own answer's words",
}


def guarantee_sentence(maps, domain: str) -> str:
    """What the review threshold promises for `domain`, in plain words ("" without a map)."""
    if maps is None:
        return ""
    dm = maps.map_for(domain)
    m = dm.metrics or {}
    target, delta, checked = m.get("target_risk"), m.get("delta"), m.get("n_checked")
    name = html.escape(domain if dm.domain == domain else f"{domain} (general map)")
    if not isinstance(target, (int, float)) or not isinstance(delta, (int, float)):
        return ""
    if dm.threshold >= 1.0:
        return (f"No review threshold could be guaranteed for {name}"
                + (f" from {checked} checked answers" if checked else "") + ": every answer is flagged.")
    if not m.get("threshold_guaranteed"):
        return f"The review threshold for {name} was not tested on held-out answers, so it carries no guarantee."
    return (f"In {name}, answers that are not flagged are wrong at most {target:.0%} of the time "
            f"({1 - delta:.0%} confidence, from {checked} checked answers).")


def _map_details(maps, domain: str) -> str:
    if maps is None:
        return "No calibration map is loaded, so the model's own figure cannot be checked."
    dm = maps.map_for(domain)
    m = dm.metrics or {}
    held_out = isinstance(m.get("ece_calibrated_holdout"), (int, float))
    ece = m.get("ece_calibrated_holdout") if held_out else m.get("ece_calibrated")
    checked = m.get("n_holdout") if held_out else dm.n_samples
    ece_text = (f"{ece * 100:.1f} percentage points"
                + (f" on {checked} answers it was not fitted on" if held_out else " on the answers it was fitted on")
                + few_answers(checked)
                if isinstance(ece, (int, float)) else "not measured")
    signals = _SIGNAL_WORDS.get(getattr(maps, "signals", "stated"), _SIGNAL_WORDS["stated"])
    return (
        f"Calibration map {html.escape(str(maps.version))} (fitted {html.escape(human_date(maps.fitted_at))}), "
        f"{html.escape(dm.domain)} map from {dm.n_samples} checked answers; "
        f"it reads {signals}; "
        f"on average its figures were off from how often such answers were right by {ece_text} "
        f"(the expected calibration error); "
        f"answers below {pct(dm.threshold)} are sent for a human check. {guarantee_sentence(maps, domain)}"
    )


def how_often(confidence: float) -> str:
    """A probability as a frequency in words that agrees with the percentage shown: "about 6 times in
    10" when the nearest tenth is within 2 points of it, else "about 15 times in 100" (never "2 in
    10" for 15%)."""
    percent = int(f"{confidence * 100:.0f}")  # the same rounding as `pct`
    tenths = (percent + 5) // 10  # half up, on the number the user sees
    extreme = tenths in (0, 10) and percent not in (0, 100)  # 98% is not "10 times in 10"
    if abs(percent - 10 * tenths) <= 2 and not extreme:
        return f"about {tenths} times in 10"
    return f"about {percent} times in 100"


def badge_html(reply, maps=None) -> str:
    """The confidence badge shown under an answer (reply: a Reply or its dict)."""
    get = reply.get if isinstance(reply, dict) else lambda k: getattr(reply, k)
    confidence, raw, domain = get("confidence"), get("raw_confidence"), get("domain") or "general"
    label, colour = confidence_band(confidence)
    if confidence is not None:
        headline = f"Calibrated: {pct(confidence)} — answers like this were right {how_often(confidence)}"
    elif raw is None:
        headline = "No confidence: the model did not say how sure it is"
    else:
        headline = "Not calibrated: no map fits this model, so only the model's own figure is shown"
    raw_text = f"Model said: {pct(raw)}" if raw is not None else "Model said: nothing"
    prob = get("domain_probability")
    domain_text = f"Domain: {html.escape(domain)}" + (f" ({pct(prob)} sure)" if prob is not None else "")
    promise = guarantee_sentence(maps, domain) if confidence is not None and not get("needs_review") else ""
    return (
        f'<div class="cc-badge cc-{label}" style="border-left:6px solid {colour};padding:4px 8px;'
        f'margin-top:6px;font-size:0.9em">'
        f'<strong style="color:{colour}">{html.escape(headline)}</strong><br>'
        f"<span>{raw_text}</span> · <span>{domain_text}</span>"
        + (f'<br><span class="cc-guarantee">{promise}</span>' if promise else "") +
        f"<details><summary>About this figure</summary>{_map_details(maps, domain)}</details></div>"
    )


def review_marker_html(reasons) -> str:
    """The "Needs human check" marker with each reason in plain words; "" when there are none."""
    reasons = list(reasons or ())
    if not reasons:
        return ""
    items = "".join(
        f"<li>{html.escape(REASON_TEXT.get(r, r))}</li>" for r in reasons
    )
    return (
        '<div class="cc-review" style="border:2px solid #cf222e;border-radius:6px;padding:4px 8px;'
        'margin-top:6px"><strong style="color:#cf222e">⚠ Needs human check</strong>'
        f"<ul style='margin:2px 0'>{items}</ul></div>"
    )


def answer_markdown(reply, maps=None, *, stopped: str | None = None) -> str:
    """A finished answer for the chat: the inert answer text, the badge, and the review marker.

    `stopped`: the text that had streamed in when the user pressed Stop; without a final answer
    it stays on screen, marked as partial, rather than vanishing."""
    get = reply.get if isinstance(reply, dict) else lambda k: getattr(reply, k)
    answer = get("answer")
    if stopped is not None and (stopped.strip() or answer):
        body = inert_markdown(stopped.strip() or answer) + "\n\n*(stopped: this is a partial answer, not a final one)*"
    elif answer:
        body = inert_markdown(answer)
    else:
        body = "*(the model gave no final answer)*"
    reasons = get("review_reasons") if get("needs_review") else ()
    return f"{body}\n\n{badge_html(reply, maps)}{review_marker_html(reasons)}"


def queue_item_markdown(item, history=()) -> str:
    """One review item in full for the reviewer (item: a store QueueItem; history: its verdicts, oldest first)."""
    reasons = "; ".join(REASON_TEXT.get(r, r) for r in item.reasons)
    parts = [
        f"**Item {item.id}** · asked {html.escape(item.created_at)} by {html.escape(item.user or 'anonymous')}"
        f" · domain **{html.escape(item.domain or '?')}** · status {item.status}",
        f"**Calibrated confidence:** {pct(item.confidence)} · **model said:** {pct(item.raw_confidence)}",
        f"**Why it is here:** {html.escape(reasons) or 'no reason recorded'}",
        "**Question**",
        inert_markdown(item.question),
        "**Answer**",
        inert_markdown(item.answer) if item.answer else "*(no final answer)*",
    ]
    if item.reasoning:
        parts += ["<details><summary>Reasoning</summary>\n\n" + inert_markdown(item.reasoning) + "\n\n</details>"]
    for f in item.feedback:
        thumb = "👎 thumbs down" if f["thumbs"] == "down" else "👍 thumbs up"
        comment = f" — “{inert_markdown(f['comment'])}”" if f["comment"] else " (no comment)"
        parts.append(f"**{thumb}** by {html.escape(f['user'] or 'anonymous')}{comment}")
    if item.signals:
        shown = ", ".join(f"{html.escape(k)} {v:.3f}" for k, v in item.signals.items() if isinstance(v, (int, float)))
        parts.append(f"**Signals behind the confidence:** {shown or 'none'}")
    if item.raw_output:
        parts.append("<details><summary>The model's whole output</summary>\n\n"
                     + inert_markdown(item.raw_output) + "\n\n</details>")
    if item.status_of_reply == "interrupted":
        parts.append("⚠ **Interrupted:** the app stopped while this answer was being written; "
                     "the text above is what had been written by then.")
    if item.verdict:
        parts.append(
            f"**Verdict:** {item.verdict} by {html.escape(item.reviewer or '?')}"
            + (f" · correct answer: {inert_markdown(item.corrected_answer)}" if item.corrected_answer else "")
            + " · *closed: to change it, tick “Revise the existing verdict”*"
        )
    if len(history) > 1:
        parts.append("**Verdict history** (oldest first): " + "; ".join(
            f"{html.escape(v['verdict'])} by {html.escape(v['reviewer'] or '?')} at {html.escape(v['created_at'][:16])}"
            for v in history))
    return "\n\n".join(parts)


# -- dashboard ------------------------------------------------------------------------------

DASHBOARD_COLUMNS = [
    "domain", "samples", "threshold", "coverage", "ECE raw", "ECE calibrated", "Brier raw",
    "Brier calibrated", "AUROC raw", "AUROC calibrated", "reviewed since fit", "accuracy since fit",
    "ECE since fit", "signals", "ECE held-out", "AUROC held-out", "AUROC per signal (held-out)", "guarantee",
]


def num(value, percent: bool = False) -> str:
    """A metric for a table: 0.123, or 12% with `percent`; — when there is none."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
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
            _guarantee_cell(dm, m),
        ])
    return rows


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
