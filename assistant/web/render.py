"""What the web app shows: inert text, the confidence badge with its review marker, a review item.

Pure functions from data to HTML/markdown strings, so the tabs (`chat`, `review`,
`dashboard`) stay thin and these can be tested without a server. The dashboard's
table and plots are `assistant.web.charts`.

Everything a user or the model wrote goes through `assistant.web.inert` or `html.escape` before it
reaches the page (docs/security.md).
"""

from __future__ import annotations

import functools
import html
import math

from assistant.core.reply import REASON_TEXT
from assistant.web.inert import inert_markdown, inert_name

__all__ = [
    "agreement_sentence",
    "how_often",
    "pct",
    "confidence_band",
    "badge_title",
    "badge_text",
    "badge_sentence",
    "badge_message",
    "figure_range",
    "support_sentences",
    "answer_text",
    "queue_item_markdown",
    "MIN_TO_JUDGE",
    "STOPPED",
    "INTERRUPTED",
    "NO_ANSWER",
    "EVERY_ANSWER_CHECKED",
    "every_answer_checked",
]

# Colour bands of calibrated confidence: (lower bound, label, colour).
_BANDS = ((0.8, "high", "#1a7f37"), (0.5, "medium", "#9a6700"), (0.0, "low", "#cf222e"))
# How the guarantee sentence names the populations a threshold was tested on (calibration/fitting/populations.py).
POPULATION_NAMES = {"benchmark": "benchmark questions", "everyday": "everyday questions",
                    "generated": "generated questions", "review": "reviewed live answers"}


def tested_on(metrics: dict) -> str:
    """The populations a map's review threshold was tested on, in words, from its metrics'
    ``threshold_tested_on`` counts ("" for maps fitted before populations were recorded).

    >>> tested_on({"threshold_tested_on": {"benchmark": 140, "everyday": 21}})
    '140 benchmark questions and 21 everyday questions'
    >>> tested_on({})
    ''
    """
    counts = metrics.get("threshold_tested_on") or {}
    parts = [f"{n} {POPULATION_NAMES.get(name, name + ' questions')}" for name, n in counts.items() if n]
    return " and ".join([", ".join(parts[:-1]), parts[-1]] if len(parts) > 2 else parts)


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
    """What the cut-off for a human check promises for `domain`, in plain words ("" without a map)."""
    if maps is None:
        return ""
    dm = maps.map_for(domain)
    m = dm.metrics or {}
    target, delta, checked = m.get("target_risk"), m.get("delta"), m.get("n_checked")
    name = html.escape(domain if dm.domain == domain else f"{domain} (general map)")
    if not isinstance(target, (int, float)) or not isinstance(delta, (int, float)):
        return ""
    if dm.threshold >= 1.0:
        return (f"No cut-off for a human check could be shown safe for {name}"
                + (f" from {checked} checked answers" if checked else "")
                + ": every answer goes to a human check.")
    if not m.get("threshold_guaranteed"):
        return (f"The cut-off for a human check in {name} was not tested on held-out answers, "
                "so it carries no guarantee.")
    where = tested_on(m)
    if where:  # the populations the guarantee was tested on; it covers questions like those only
        return (f"In {name}, answers that are not flagged are wrong at most {target:.0%} of the time "
                f"({1 - delta:.0%} confidence, tested on held-out answers to {where}; questions unlike "
                "those are not covered).")
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


def _field(reply, name: str):
    """One field of a Reply or of its dict (a stored row)."""
    return reply.get(name) if isinstance(reply, dict) else getattr(reply, name)


NO_ANSWER = "No answer: the model gave no final answer, so no chance of being right is shown"
# The review marker when the domain's cut-off is 100%: no cut-off was shown safe, so every answer is checked.
EVERY_ANSWER_CHECKED = "every answer in this domain goes to a human check until reviewers' verdicts show a safe cut-off"


def _headline(reply) -> str:
    """The badge's first words: how often answers like this were right, or why there is no such figure."""
    confidence, raw = _field(reply, "confidence"), _field(reply, "raw_confidence")
    if confidence is not None:
        return (f"Chance it is right: {pct(confidence)}{figure_range(reply)} — answers like this were right "
                f"{how_often(confidence)}")
    if "no_answer" in (_field(reply, "review_reasons") or ()):
        return NO_ANSWER
    if raw is None:
        return "No confidence: the model did not say how sure it is"
    return ("Unchecked: no record of how often this model's answers were right fits it, "
            "so only the model's own figure is shown")


def figure_range(reply) -> str:
    """" (22–49%)": the range on the calibrated figure, as the badge shows it after the figure; "" without one."""
    low, high = _field(reply, "confidence_low"), _field(reply, "confidence_high")
    if low is None or high is None:
        return ""
    return f" ({low * 100:.0f}–{pct(high)})"


def support_sentences(reply) -> list[str]:
    """Plain sentences on how sure the figure itself is: its range, and whether the question is unlike
    the questions the figure was learned from ([] without a figure, or for a stored answer, whose row
    keeps neither)."""
    get = functools.partial(_field, reply)
    if get("confidence") is None or (isinstance(reply, dict) and "confidence_low" not in reply):
        return []
    low, high, level = get("confidence_low"), get("confidence_high"), get("range_level")
    if low is None or high is None:
        said = ["This calibration map was fitted without a range, so how sure the figure itself is is not "
                "shown (a refit with `calibrate fit` adds it)."]
    else:
        times = round((level or 0.9) * 10)
        said = [f"How sure the figure itself is: {times} times in 10, answers like this are right between "
                f"{pct(low)} and {pct(high)} of the time."]
    if get("extrapolating"):
        said.append("This question is unlike the questions the figure was learned from, so the figure may not "
                    "hold for it: the range was widened, and the answer goes to a human check.")
    elif get("ood_score") is None:
        said.append("Whether this question is like the questions the figure was learned from was not measured.")
    return said


def _badge_lines(reply, maps) -> tuple[str, str, str, str]:
    """The badge's headline, what the model said, the domain (plain text), and the guarantee ("" when none)."""
    get = functools.partial(_field, reply)
    confidence, raw, domain = get("confidence"), get("raw_confidence"), get("domain") or "general"
    headline = _headline(reply)
    raw_text = f"Model said: {pct(raw)}" if raw is not None else "Model said: nothing"
    prob = get("domain_probability")
    about = get("domain_description")  # a stored row has none: its domain's name is shown alone
    domain_text = (f"Domain: {domain}" + (f" ({pct(prob)} sure)" if prob is not None else "")
                   + (f": {about}" if about else ""))
    promise = guarantee_sentence(maps, domain) if confidence is not None and not get("needs_review") else ""
    return headline, raw_text, domain_text, promise


def every_answer_checked(maps, domain: str) -> bool:
    """Whether `domain`'s cut-off is 100%: no cut-off was shown safe, so every answer gets a human check."""
    return maps is not None and maps.map_for(domain).threshold >= 1.0


def _reasons(reply, maps=None) -> list[str]:
    """Why the answer needs a human check, in plain words ([] when it needs none). With `maps`, a domain
    where every answer is checked says so first, instead of that this answer's figure is too low."""
    if not _field(reply, "needs_review"):
        return []
    keys = list(_field(reply, "review_reasons") or ())
    if "low_confidence" in keys and every_answer_checked(maps, _field(reply, "domain") or "general"):
        keys.remove("low_confidence")
        return [EVERY_ANSWER_CHECKED] + [REASON_TEXT.get(r, r) for r in keys]
    return [REASON_TEXT.get(r, r) for r in keys]


STOPPED = "Stopped: the answer above is partial, not a final one"
INTERRUPTED = "Interrupted: the app stopped while this answer was being written, so it is partial"


def badge_title(reply, maps=None, *, partial: str = "") -> str:
    """The badge's always-visible lines (HTML): the chance it is right in its band's colour, what the
    model said, the domain, and the "Needs human check" marker with each reason in plain words. With
    `maps`, a domain where every answer is checked says so on the first line."""
    headline, raw_text, domain_text = (html.escape(line, quote=False) for line in _badge_lines(reply, None)[:3])
    label, colour = confidence_band(_field(reply, "confidence"))
    lines = [f'<span class="cc-badge cc-{label}"><strong style="color:{colour}">{headline}</strong>'
             f" · {raw_text} · {domain_text}</span>"]
    if partial:
        lines.append(f'<span class="cc-partial">⏹ {partial}</span>')
    reasons = _reasons(reply, maps)
    if reasons:
        marker = ('<span class="cc-review" style="color:#cf222e"><strong>⚠ Needs human check:</strong> '
                  + html.escape("; ".join(reasons), quote=False) + "</span>")
        lines.insert(0 if reasons[0] == EVERY_ANSWER_CHECKED else len(lines), marker)
    return "<br>".join(lines)


def badge_sentence(reply, maps=None) -> str:
    """The badge in one or two plain sentences, not escaped (also the OpenAI endpoint's
    `calibration.summary`)."""
    headline, raw_text, domain_text, _ = _badge_lines(reply, None)
    reasons = _reasons(reply, maps)
    figures = f"{headline}. {raw_text}. {domain_text}."
    if not reasons:
        return figures
    marker = "Needs human check: " + "; ".join(reasons) + "."
    return f"{marker} {figures}" if reasons[0] == EVERY_ANSWER_CHECKED else f"{figures} {marker}"


def agreement_sentence(reply) -> str:
    """How often the model's sampled answers agree with this one (self-consistency), or "" when it was not asked."""
    signals = _field(reply, "signals")
    value = signals.get("agreement") if isinstance(signals, dict) else getattr(signals, "agreement", None)
    if not isinstance(value, (int, float)):
        return ""
    return f"Asked again with some randomness, the model gave this same answer {pct(value)} of the time."


def badge_text(reply, maps=None, *, partial: str = "") -> str:
    """What the badge says in full, as plain sentences (no markup: it is also the message's
    accessible label): the figures, why it needs a check, the guarantee, and about the map."""
    promise = _badge_lines(reply, maps)[3]
    parts = [inert_markdown(badge_sentence(reply, maps))]
    if partial:
        parts.insert(1, f"{partial}.")
    parts += [inert_markdown(" ".join(support_sentences(reply)))] if support_sentences(reply) else []
    parts += [agreement] if (agreement := agreement_sentence(reply)) else []
    if promise:
        parts.append(promise)
    parts.append("About this figure: " + _map_details(maps, _field(reply, "domain") or "general"))
    return "\n\n".join(parts)


def badge_message(reply, maps=None, *, partial: str = "") -> dict:
    """The badge as its own chat message under the answer: the title stays visible, the rest folds
    away. Kept out of the answer's message, so copying the answer copies the answer's text only.
    `partial`: why the answer is partial (STOPPED, INTERRUPTED), shown with the badge."""
    return {"role": "assistant", "content": badge_text(reply, maps, partial=partial),
            "metadata": {"title": badge_title(reply, maps, partial=partial), "status": "done"}}


def answer_text(reply, *, stopped: str | None = None) -> str:
    """A finished answer's message: its inert text, or what had streamed in when the user pressed
    Stop (marked partial in the badge) rather than nothing."""
    answer = _field(reply, "answer")
    if stopped is not None and stopped.strip():
        return inert_markdown(stopped.strip())
    return inert_markdown(answer) if answer else "*(the model gave no final answer)*"


def queue_item_markdown(item, history=()) -> str:
    """One review item in full for the reviewer (item: a store QueueItem; history: its verdicts, oldest first)."""
    reasons = "; ".join(REASON_TEXT.get(r, r) for r in item.reasons)
    parts = [
        f"**Item {item.id}** · asked {html.escape(item.created_at)} by {inert_name(item.user, 'anonymous')}"
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
    for f in item.feedback:  # a comment is a block of its own: inert_markdown's result starts one
        thumb = "👎 thumbs down" if f["thumbs"] == "down" else "👍 thumbs up"
        parts.append(f"**{thumb}** by {inert_name(f['user'], 'anonymous')}"
                     + (", who commented:" if f["comment"] else " (no comment)"))
        parts += [inert_markdown(f["comment"])] if f["comment"] else []
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
        parts.append(f"**Verdict:** {item.verdict} by {inert_name(item.reviewer, '?')}"
                     + (" · correct answer below" if item.corrected_answer else "")
                     + " · *closed: to change it, tick “Revise the existing verdict”*")
        parts += [inert_markdown(item.corrected_answer)] if item.corrected_answer else []
    if len(history) > 1:
        parts.append("**Verdict history** (oldest first): " + "; ".join(
            f"{html.escape(v['verdict'])} by {inert_name(v['reviewer'], '?')} at {html.escape(v['created_at'][:16])}"
            for v in history))
    return "\n\n".join(parts)
