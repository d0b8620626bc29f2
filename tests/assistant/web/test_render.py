"""Rendering helpers of the web app: inert text, the badge wording, the review marker, the dashboard table
(`charts`)."""

from __future__ import annotations

import pytest

from assistant.core.reply import REVIEW_REASONS
from assistant.core.signals import Signals
from assistant.web import charts, inert
from assistant.web import render as ui

# Issue 25.1: the two texts that got a remote image past the old escaping.
UNCLOSED_FENCE_WITH_BACKTICK_INFO = '``` `x`\n<img src="http://127.0.0.1:9/a.png">'
ESCAPED_BACKTICK_BEFORE_TAG = '\\`<img src="http://127.0.0.1:9/b.png">`'
PHISHING_LINK = "[Reviewer, re-login here](http://127.0.0.1:9/relogin)"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("a & b < c > d, 1 < 2", "a & b < c > d, 1 < 2"),  # only what could be markup: copy gives the text
        ("x<3, 1<<2", "x&lt;3, 1&lt;&lt;2"),
        ("a<b and <!-- c", "a&lt;b and &lt;!-- c"),
        ("&lt; is written &amp;lt;", "&amp;lt; is written &amp;amp;lt;"),
        ("![logo](http://evil.example/x.png) hi", "!\\[logo](http\\://evil.example/x.png) hi"),  # shown as written
        ("see www.example.org or mail a@b.org", "see www\\.example.org or mail a\\@b.org"),  # no autolinks
        ("keep `<b>` inline", "keep `<b>` inline"),
        ("```html\n<b>x</b>\n```\n<i>", "\n```html\n<b>x</b>\n```\n&lt;i&gt;"),  # a block starts on its own line
        ("**bold** and [link](https://example.org)", "**bold** and \\[link](https\\://example.org)"),
        (UNCLOSED_FENCE_WITH_BACKTICK_INFO, '&#96;&#96;&#96; `x`\n&lt;img src="http\\://127.0.0.1:9/a.png"&gt;'),
        (ESCAPED_BACKTICK_BEFORE_TAG, '\\\\`<img src="http://127.0.0.1:9/b.png">`'),  # the tag is code
        ("", ""),
        (None, ""),
    ],
)
def test_inert_markdown(text, expected):
    assert inert.inert_markdown(text) == expected


@pytest.mark.parametrize(
    "confidence, label",
    [(0.95, "high"), (0.8, "high"), (0.79, "medium"), (0.5, "medium"), (0.49, "low"), (0.0, "low"), (None, "unknown")],
)
def test_confidence_band(confidence, label):
    assert ui.confidence_band(confidence)[0] == label


@pytest.mark.parametrize(
    "reply, phrases",
    [
        ({"confidence": 0.62, "raw_confidence": 0.9, "domain": "math", "domain_probability": 0.8},
         ["Chance it is right: 62% — answers like this were right about 6 times in 10", "Model said: 90%",
          "Domain: math (80% sure)"]),
        ({"confidence": None, "raw_confidence": None, "domain": "general", "domain_probability": 0.4},
         ["No confidence", "Model said: nothing"]),
        ({"confidence": None, "raw_confidence": 0.7, "domain": "<b>x</b>", "domain_probability": None},
         ["Unchecked", "Model said: 70%", "Domain: &lt;b&gt;x&lt;/b&gt;"]),
    ],
)
def test_badge_wording(reply, phrases):
    for phrase in phrases:  # the line always on screen, and the full text (the message's accessible label)
        assert phrase in ui.badge_title(reply) and phrase in ui.badge_text(reply)


def test_badge_details_name_map_version_samples_and_ece():
    from tests.conftest import make_maps

    text = ui.badge_text({"confidence": 0.5, "raw_confidence": 0.6, "domain": "math", "domain_probability": 0.9},
                         make_maps())
    assert "v0001" in text and "300 checked answers" in text and "5.0 percentage points" in text


def test_review_marker_lists_plain_reasons():
    reply = {"confidence": 0.3, "raw_confidence": 0.9, "domain": "math", "needs_review": True,
             "review_reasons": ["low_confidence", "thumbs_down"]}
    for shown in (ui.badge_title(reply), ui.badge_text(reply), ui.badge_sentence(reply)):
        assert "Needs human check" in shown and "thumbs down" in shown
        assert REVIEW_REASONS["low_confidence"] in shown  # "this domain's": plain text, no &#x27;
    assert "Needs human check" not in ui.badge_title({**reply, "needs_review": False})


def test_an_answer_with_no_final_answer_is_shown_as_no_answer_with_no_figure():
    """Issue 25.9: "(the model gave no final answer)" was shown at 52%, "about 5 times in 10"."""
    reply = {"answer": None, "confidence": None, "raw_confidence": 0.65, "domain": "math",
             "domain_probability": 0.9, "needs_review": True, "review_reasons": ["no_answer"]}
    for shown in (ui.badge_title(reply), ui.badge_text(reply), ui.badge_sentence(reply)):
        figures = shown.split("About this figure")[0]
        assert ui.NO_ANSWER in figures and "times in" not in figures and "Chance it is right" not in figures
        assert "Needs human check" in figures and REVIEW_REASONS["no_answer"] in figures
    assert 'class="cc-badge cc-unknown"' in ui.badge_title(reply)  # grey: no figure, so no colour band


def test_the_badge_is_a_message_of_its_own_whose_label_has_no_markup():
    """Copy and screen readers get text: the badge's content (what Gradio puts in the message's
    aria-label) is plain sentences; its markup is in the title alone; the answer stays its own text."""
    from tests.conftest import make_maps

    reply = {"answer": "Tom & Jerry", "confidence": 0.3, "raw_confidence": 0.9, "domain": "math",
             "domain_probability": 0.9, "needs_review": True, "review_reasons": ["low_confidence"]}
    message = ui.badge_message(reply, make_maps(), partial=ui.STOPPED)
    assert "<" not in message["content"] and "Chance it is right: 30%" in message["content"]
    assert ui.STOPPED in message["content"] and ui.STOPPED in message["metadata"]["title"]
    assert 'class="cc-badge cc-low"' in message["metadata"]["title"]
    assert ui.answer_text(reply) == "Tom & Jerry"
    assert ui.answer_text(reply, stopped="Tom &") == "Tom &"
    assert ui.answer_text({"answer": None}) == "*(the model gave no final answer)*"


def test_dashboard_rows_and_figures():
    from assistant.reviews.types import ReviewStats
    from tests.conftest import make_maps

    maps = make_maps()
    rows = charts.dashboard_rows(maps, {"math": ReviewStats(count=4, correct=3, accuracy=0.75, ece=0.1)})
    assert rows[0] == ["math", "300", "50%", "80%", "0.200", "0.050", "0.300", "0.200", "0.700", "0.700", "4", "75%",
                       "0.100 (n=4: too few)", "stated", "—", "—", "—", "none: fitted without one",
                       "not measured: no fitting questions stored", "—"]  # hand-made maps: no held-out figures or risk target
    assert rows[1][10:13] == ["0", "—", "—"]
    assert len(rows[0]) == len(charts.DASHBOARD_COLUMNS)
    reviewed = [{"domain": "math", "raw_confidence": 0.9, "confidence": 0.72, "correct": True}]
    assert len(charts.reliability_figure(maps, reviewed).axes) == 2
    assert len(charts.histogram_figure(None, reviewed).axes) == 1


def reviewed_store(path, verdicts):
    """A review store holding one reviewed math answer per (signals, confidence, verdict) in `verdicts`."""
    from assistant.reviews.store import ReviewStore
    from tests.conftest import make_reply

    store = ReviewStore(path)
    verdict_of = {}
    for signals, confidence, verdict in verdicts:
        reply = make_reply(signals=Signals(**signals), confidence=confidence, raw_confidence=signals.get("stated"))
        verdict_of[store.record_reply(reply, "sam")] = verdict
    for item in store.queue():
        store.submit_verdict(item.id, verdict_of[item.reply_id], "rita")
    return store


# Four reviewed math answers: the first answer token's probability ranks them perfectly, the
# calibrated confidence backwards; the stated confidence is on the two right ones only (one class).
LIVE = [({"stated": 0.9, "answer_first_logp": -0.1}, 0.2, "correct"),
        ({"stated": 0.6, "answer_first_logp": -0.3}, 0.3, "correct"),
        ({"answer_first_logp": -2.0}, 0.8, "incorrect"),
        ({"answer_first_logp": -3.0}, 0.9, "incorrect")]


def test_the_live_per_signal_aurocs_come_from_the_stored_signals_and_verdicts(tmp_path):
    from assistant.calibrated.fusion import SIGNAL_COLUMNS
    from assistant.reviews import queries

    store = reviewed_store(tmp_path, LIVE)
    reviewed = queries.reviewed(store)
    assert [r["signals"].get("answer_first_logp") for r in reviewed] == [-0.1, -0.3, -2.0, -3.0]
    aurocs = queries.signal_aurocs_by_domain(reviewed)
    assert set(aurocs) == {"math", "all"} and aurocs["math"]["count"] == 4
    math = aurocs["math"]["auroc"]
    assert math["answer_first_logp"] == {"auroc": 1.0, "n": 4}
    assert math["calibrated"] == {"auroc": 0.0, "n": 4}
    assert math["stated"] == {"auroc": None, "n": 2}  # both right: no wrong answer to rank against
    rows = charts.live_signal_rows(aurocs)
    assert [row[0] for row in rows] == ["math", "all"] and rows[1][1:] == rows[0][1:]  # all answers are math
    assert len(rows[0]) == len(charts.LIVE_SIGNAL_COLUMNS) == 2 + len(SIGNAL_COLUMNS) + 1
    cells = dict(zip(charts.LIVE_SIGNAL_COLUMNS, rows[0]))
    assert cells["reviewed since fit"] == "4 (n=4: too few)"
    assert cells["AUROC ans.1st"] == "1.00 (n=4: too few)" and cells["AUROC calib."] == "0.00 (n=4: too few)"
    assert cells["AUROC stated"] == "—" and cells["AUROC probe"] == "—"
    fig = charts.risk_coverage_figure(None, reviewed)
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels[0].startswith("calibrated n=4") and any(lb.startswith("ans.1st n=4") for lb in labels)
    assert fig.axes[0].get_title() == "math (n=4: too few)" and fig.subplotpars.top <= 0.86
    store.close()


def test_enough_reviewed_answers_show_no_warning_and_old_replies_count_their_stated_confidence(tmp_path):
    from assistant.reviews import queries

    many = [({"stated": 0.9 if i % 2 else 0.3}, 0.5, "correct" if i % 2 else "incorrect") for i in range(30)]
    store = reviewed_store(tmp_path, many)
    with store.write() as db:
        db.execute("UPDATE replies SET signals = '{}'")  # as a migration leaves replies stored before signals
    rows = charts.live_signal_rows(queries.signal_aurocs_by_domain(queries.reviewed(store)))
    cells = dict(zip(charts.LIVE_SIGNAL_COLUMNS, rows[0]))
    assert cells["reviewed since fit"] == "30" and cells["AUROC stated"] == "1.00"
    assert cells["AUROC calib."] == "0.50" and cells["AUROC ans.1st"] == "—"
    assert charts.live_signal_rows({}) == []
    store.close()


def test_the_guarantee_is_said_in_plain_words_and_a_missing_one_is_not_hidden():
    from assistant.calibrated.maps import CalibrationMaps, DomainMap

    def maps_with(threshold, guaranteed=True):
        metrics = {"target_risk": 0.1, "delta": 0.05, "n_checked": 120, "threshold_guaranteed": guaranteed}
        general = DomainMap("general", (0.0, 1.0), (0.0, 1.0), 200, threshold, metrics)
        return CalibrationMaps("m", "p", "v0002", "2026-01-01T00:00:00+00:00", {"general": general})

    ok = ui.guarantee_sentence(maps_with(0.7), "general")
    assert ok == ("In general, answers that are not flagged are wrong at most 10% of the time "
                  "(95% confidence, from 120 checked answers).")
    assert ui.guarantee_sentence(maps_with(1.0), "math") == (
        "No cut-off for a human check could be shown safe for math (general map) from 120 checked answers: "
        "every answer goes to a human check.")
    assert "no guarantee" in ui.guarantee_sentence(maps_with(0.7, guaranteed=False), "general")
    reply = {"confidence": 0.8, "raw_confidence": 0.9, "domain": "general", "needs_review": False}
    assert "wrong at most 10%" in ui.badge_text(reply, maps_with(0.7))
    flagged = ui.badge_text({**reply, "needs_review": True}, maps_with(0.7))
    assert "wrong at most 10%" not in flagged.split("About this figure")[0]
    row = charts.dashboard_rows(maps_with(1.0), {})[0]
    assert row[-1] == "none (120 checked): all flagged"


def test_a_domain_where_every_answer_is_checked_says_so_first_in_plain_words():
    """Issue 25.10: with every threshold at 100%, every badge said "calibrated confidence is below this
    domain's review threshold" and never that every answer in the domain goes to a human check."""
    from dataclasses import replace

    from tests.conftest import make_maps

    maps = make_maps()
    every = replace(maps, maps={d: replace(m, threshold=1.0) for d, m in maps.maps.items()})
    reply = {"answer": "132", "confidence": 0.76, "raw_confidence": 0.95, "domain": "math",
             "domain_probability": 0.9, "needs_review": True, "review_reasons": ["low_confidence", "truncated"]}
    title = ui.badge_title(reply, every)
    first = title.split("<br>")[0]
    assert "Needs human check" in first and ui.EVERY_ANSWER_CHECKED in first and REVIEW_REASONS["truncated"] in first
    assert REVIEW_REASONS["low_confidence"] not in title and "Chance it is right: 76%" in title
    for shown in (title, ui.badge_text(reply, every), ui.badge_sentence(reply, every)):
        assert ui.EVERY_ANSWER_CHECKED in shown
        assert "calibrated" not in shown.split("About this figure")[0].lower() and "review threshold" not in shown
    assert ui.badge_sentence(reply, every).startswith("Needs human check: " + ui.EVERY_ANSWER_CHECKED)
    # where a cut-off below 100% was found, the answer's own figure is what fell short, said after the figures
    usual = ui.badge_title(reply, maps)
    assert usual.startswith('<span class="cc-badge') and REVIEW_REASONS["low_confidence"] in usual
    assert ui.EVERY_ANSWER_CHECKED not in usual


def test_figures_in_plain_words_with_a_warning_when_they_rest_on_few_answers():
    from assistant.reviews.types import ReviewStats
    from tests.conftest import make_maps

    assert ui.human_date("2026-12-01T09:31:36+00:00") == "1 Dec 2026, 09:31 UTC"
    assert ui.human_date("yesterday") == "yesterday"
    assert ui.few_answers(1) == " (from only 1 answer: too few to judge)" and ui.few_answers(30) == ""
    about = ui.badge_text({"confidence": 0.8, "raw_confidence": 0.9, "domain": "math"}, make_maps())
    assert "fitted 1 Jan 2020, 00:00 UTC" in about and "percentage points" in about
    assert "expected calibration error" in about and "2020-01-01T" not in about
    row = charts.dashboard_rows(make_maps(), {"math": ReviewStats(count=1, correct=0, accuracy=0.0, ece=0.616)})[0]
    assert row[12] == "0.616 (n=1: too few)"


@pytest.mark.parametrize("confidence, words", [
    (0.62, "about 6 times in 10"), (0.15, "about 15 times in 100"), (0.76, "about 76 times in 100"),
    (0.98, "about 98 times in 100"), (1.0, "about 10 times in 10"), (0.02, "about 2 times in 100"), (0.349, "about 35 times in 100"),
    (0.3, "about 3 times in 10"),
])
def test_the_frequency_in_words_agrees_with_the_percentage_shown(confidence, words):
    assert ui.how_often(confidence) == words
    assert words in ui.badge_title({"confidence": confidence, "raw_confidence": 0.9, "domain": "math"})


def test_a_review_threshold_of_100_percent_is_drawn_where_it_can_be_seen_and_named():
    from dataclasses import replace

    from tests.conftest import make_maps

    maps = make_maps()
    maps = replace(maps, maps={**maps.maps, "math": replace(maps.maps["math"], threshold=1.0)})
    fig = charts.reliability_figure(maps, [])
    math_axes = fig.axes[list(maps.maps).index("math")]
    line = next(ln for ln in math_axes.get_lines() if "review threshold" in ln.get_label())
    assert line.get_ydata()[0] == 1.0 and math_axes.get_ylim()[1] > 1.0  # inside the plot, not on its edge
    assert line.get_linewidth() > 1 and "every answer flagged" in line.get_label()


@pytest.mark.parametrize("figure", [charts.reliability_figure, charts.histogram_figure,
                                    charts.risk_coverage_figure])
def test_plot_titles_leave_room_for_the_label_gradio_draws_over_the_top_corner(figure):
    from tests.conftest import make_maps

    fig = figure(make_maps(), [])
    assert fig.subplotpars.top <= 0.86  # Gradio's label sits in the top 14 %
