"""Tests for calibration.measuring.report and calibration.measuring.plots: report shape, held-out improvement, the
stated-only baseline beside the fused pipeline, text tables, PNG plots."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pytest

import calibration.measuring.report as R
from assistant.calibrated import measures
from assistant.calibrated import metrics as M
from assistant.calibrated.fusion import SIGNAL_COLUMNS
from assistant.calibrated.measures import risk_coverage_axes, signal_aurocs
from calibration.fitting.fit import cross_validated_predictions, fit_maps, fold_numbers
from calibration.measuring.plots import write_plots
from calibration.measuring.report import (
    METRIC_KEYS,
    build_report,
    calibrated_confidences,
    format_baseline_table,
    format_maps_summary,
    format_report,
)
from tests.conftest import ROOT

REPORT_KEYS = {"domains", "overall", "signals", "source", "target_risk", "baseline"}

SECTION_KEYS = {"n", "n_stated", "accuracy_all", "raw", "calibrated", "threshold", "coverage",
                "n_calibrated", "no_confidence_rate", "signal_auroc",
                "selective_accuracy"}


def overconfident_records(n_per_domain=300, seed=0, model="m", prompt="p"):
    """Synthetic records: stated confidence on a 5% grid, skewed high as verbalized confidence is;
    accuracy 1 - slope * (1 - confidence), so answers below 100% are overconfident (math the most)."""
    rng = np.random.default_rng(seed)
    slope = {"math": 4.0, "factual": 2.5, "science": 3.0, "reasoning": 3.5}
    grid = np.arange(10, 21) / 20
    weights = grid**6 / np.sum(grid**6)
    records = []
    for domain, s in slope.items():
        for i in range(n_per_domain):
            p = float(rng.choice(grid, p=weights))
            correct = bool(rng.random() < max(1 - s * (1 - p), 0.02))
            r = {"id": f"{domain}-{i}", "domain": domain, "raw_confidence": p, "correct": correct,
                 "model": model, "prompt": prompt}
            if i % 25 == 0:
                r["raw_confidence"] = None  # a parse failure
            elif i % 40 == 1:
                r["correct"] = None  # not attempted
            records.append(r)
    return records


def _check_section(section, n):
    assert set(section) == SECTION_KEYS and section["n"] == n
    for block in ("raw", "calibrated"):
        assert set(section[block]) == set(METRIC_KEYS)
        assert all(v is None or isinstance(v, float) for v in section[block].values())


def test_cross_validated_report_shape_and_improvement():
    records = overconfident_records()
    report = build_report(records, cv_folds=5)
    assert set(report) == REPORT_KEYS and report["baseline"] is None  # the pipeline is the stated-only one
    assert list(report["domains"]) == ["math", "factual", "science", "reasoning"]
    for section in report["domains"].values():
        _check_section(section, 300)
        assert section["calibrated"]["ece"] < section["raw"]["ece"]
        assert section["raw"]["overconfidence"] > 0.15
        assert abs(section["calibrated"]["overconfidence"]) < 0.1
        assert section["raw"]["parse_failure_rate"] == pytest.approx(12 / 300)
        assert section["raw"]["not_attempted_rate"] == pytest.approx(8 / 300)
        assert section["calibrated"]["parse_failure_rate"] == section["raw"]["parse_failure_rate"]
        assert 0 <= section["threshold"] <= 1
    _check_section(report["overall"], 1200)
    assert report["overall"]["threshold"] is None
    assert report["overall"]["calibrated"]["ece"] < report["overall"]["raw"]["ece"] / 2
    assert report["overall"]["raw"]["accuracy"] == report["overall"]["calibrated"]["accuracy"]
    json.dumps(report, allow_nan=False)  # JSON-ready: no NaN anywhere


def test_report_with_held_out_maps():
    maps = fit_maps(overconfident_records(seed=1), model="m", prompt="p")
    held_out = overconfident_records(seed=2)
    report = build_report(held_out, maps)
    for domain, section in report["domains"].items():
        assert section["threshold"] == maps.threshold(domain)
        assert section["calibrated"]["ece"] < section["raw"]["ece"]
        if section["coverage"]:  # kept answers are more often right than answers overall
            assert section["selective_accuracy"] > section["raw"]["accuracy"]
    with pytest.warns(UserWarning, match="other-model"):
        build_report(overconfident_records(model="other-model"), maps)


def test_undefined_numbers_are_none():
    # one domain where every usable answer is right (AUROC undefined), one with no usable answer
    records = ([{"domain": "math", "raw_confidence": 0.9, "correct": True}] * 40
               + [{"domain": "math", "raw_confidence": 0.6, "correct": True}] * 40
               + [{"domain": "science", "raw_confidence": None, "correct": False}] * 3)
    maps = fit_maps(records, model="m", prompt="p")
    report = build_report(records, maps)
    assert report["domains"]["math"]["raw"]["auroc"] is None
    science = report["domains"]["science"]
    assert science["n"] == 3 and science["raw"]["ece"] is None and science["coverage"] is None
    assert science["raw"]["parse_failure_rate"] == 1.0
    json.dumps(report, allow_nan=False)


# math as on GSM8K: no answer states a confidence (3 right, 6 wrong, 1 not attempted);
# factual: 4 stated (2 right) and 2 unstated (both right).
UNSTATED = ([{"domain": "math", "raw_confidence": None, "correct": c}
             for c in [True] * 3 + [False] * 6 + [None]]
            + [{"domain": "factual", "raw_confidence": 0.8, "correct": c} for c in (True, True, False, False)]
            + [{"domain": "factual", "raw_confidence": None, "correct": True}] * 2)


@pytest.mark.parametrize(
    "name, n, n_stated, accuracy_all, accuracy, row",
    [
        ("math", 10, 0, 3 / 9, None, ["math", "10", "0", "0.333", "-"]),
        ("factual", 6, 4, 4 / 6, 0.5, ["factual", "6", "4", "0.667", "0.500"]),
        ("overall", 16, 4, 7 / 15, 0.5, ["overall", "16", "4", "0.467", "0.500"]),
    ],
)
def test_accuracy_of_all_graded_records_shows_without_stated_confidence(name, n, n_stated, accuracy_all,
                                                                         accuracy, row):
    from tests.conftest import make_maps

    report = build_report(UNSTATED, make_maps())
    section = report["overall"] if name == "overall" else report["domains"][name]
    assert (section["n"], section["n_stated"], section["raw"]["accuracy"]) == (n, n_stated, accuracy)
    assert section["accuracy_all"] == pytest.approx(accuracy_all)
    lines = format_report(report).splitlines()
    assert lines[0].split()[:5] == ["domain", "n", "stated", "acc.all", "acc"]
    assert next(line.split()[:5] for line in lines[2:] if line.startswith(name + " ")) == row


def test_format_report_table():
    report = build_report(overconfident_records(n_per_domain=100), fit_options={"min_samples": 20})
    text = format_report(report)
    lines = text.splitlines()
    assert "ECE raw→cal" in lines[0] and "AUROC raw→cal" in lines[0]
    assert [line.split()[0] for line in lines[2:7]] == ["math", "factual", "science", "reasoning", "overall"]
    assert "calibrated confidence from: stated signals" in text and "no-conf" in text
    ece = report["domains"]["math"]
    assert f"{ece['raw']['ece']:.3f}→{ece['calibrated']['ece']:.3f}" in lines[2]


def test_maps_summary_and_calibrated_confidences():
    records = overconfident_records(n_per_domain=100)
    maps = fit_maps(records, model="m", prompt="p", min_samples=150)  # too few per domain: general only
    text = format_maps_summary(maps)
    assert "m / p" in text and "general" in text
    for domain in ("math", "factual", "science", "reasoning"):  # each says how many answers it has (issue 22)
        n = maps.maps["general"].metrics["borrowed_by"][domain]
        assert 0 < n < 150 and f"{domain}: {n} usable graded answers, too few for a map of its own" in text
    c = calibrated_confidences(records, maps)
    assert np.isnan(c[0]) and c[2] == maps.map_for("math")(records[2]["raw_confidence"])
    cv = calibrated_confidences(records, fit_options={"min_samples": 20})
    assert np.array_equal(cv, cross_validated_predictions(records, min_samples=20), equal_nan=True)
    # target_risk is passed to the cross-validated fits: a looser target keeps more answers
    strict, loose = (build_report(records, target_risk=t, fit_options={"min_samples": 20, "holdout": 0.0})
                     for t in (0.05, 0.3))
    assert loose["overall"]["coverage"] > strict["overall"]["coverage"]


def test_write_plots_writes_pngs(tmp_path):
    records = overconfident_records(n_per_domain=80)
    calibrated = cross_validated_predictions(records, k=4, min_samples=20)
    written = write_plots(records, calibrated, tmp_path / "plots")
    names = sorted(p.name for p in written)
    expected = sorted(f"{kind}_{d}.png" for kind in ("reliability", "risk_coverage")
                      for d in ("math", "factual", "science", "reasoning", "overall"))
    assert names == expected
    for path in written:
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    with pytest.raises(ValueError, match="records"):
        write_plots(records, calibrated[:5], tmp_path)


def test_importing_the_package_is_light():
    import subprocess
    import sys

    heavy = "('matplotlib', 'sklearn', 'scipy')"
    code = f"import sys, calibration; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(ROOT))
    assert out.stdout.strip() == "[]"


def test_large_cross_validated_report_is_well_calibrated():
    """Cross-validated fitting at the scale of a full `calibrate collect` run (4 x 2000 records)."""
    records = overconfident_records(n_per_domain=2000, seed=3)
    report = build_report(records, cv_folds=5)
    for section in report["domains"].values():
        assert section["calibrated"]["ece"] < 0.05 < section["raw"]["ece"]
        assert section["calibrated"]["auroc"] > section["raw"]["auroc"] - 0.02


@pytest.mark.parametrize("module", [measures], ids=["measures"])
def test_doctests(module):
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


def signal_records(n_per_domain=120, seed=0, domains=("science", "reasoning")):
    """Records with every signal: right with probability q; answer_first_logp = log q ranks them best,
    the stated confidence (on 40% of answers, the others state none) is q plus noise, overconfident."""
    rng = np.random.default_rng(seed)
    records = []
    for domain in domains:
        for i in range(n_per_domain):
            q = float(rng.uniform(0.05, 0.95))
            stated = round(min(1.0, 0.3 + q + rng.normal(0, 0.15)), 2) if i % 5 < 2 else None
            records.append({"id": f"{domain}-{i}", "domain": domain, "raw_confidence": stated,
                            "correct": bool(rng.random() < q), "model": "m", "prompt": "p",
                            "signals": {"stated": stated, "stated_ev": stated, "probe_ev": None if stated else
                                        round(q, 2), "answer_mean_logp": float(np.log(q)) / 2,
                                        "answer_min_logp": float(np.log(q)), "answer_first_logp": float(np.log(q))}})
    return records


def test_a_signal_that_ranks_perfectly_has_auroc_one_and_a_missing_one_none():
    wrong = [{"domain": "math", "raw_confidence": None, "correct": False,
              "signals": {"answer_first_logp": -3.0 - i / 10, "answer_min_logp": -0.1}} for i in range(10)]
    right = [{"domain": "math", "raw_confidence": None, "correct": True,
              "signals": {"answer_first_logp": -0.5 + i / 100, "answer_min_logp": -2.0}} for i in range(10)]
    y = np.array([0.0] * 10 + [1.0] * 10)
    aurocs = signal_aurocs(y, R.signal_matrix([r["signals"] for r in wrong + right]), np.full(20, np.nan))
    assert aurocs["answer_first_logp"] == {"auroc": 1.0, "n": 20}
    assert aurocs["answer_min_logp"] == {"auroc": 0.0, "n": 20}  # ranks exactly backwards
    assert aurocs["stated"] == {"auroc": None, "n": 0} and aurocs["calibrated"] == {"auroc": None, "n": 0}
    one_class = signal_aurocs(np.ones(10), R.signal_matrix([r["signals"] for r in right]), np.full(10, 0.5))
    assert one_class["answer_first_logp"] == {"auroc": None, "n": 10}


def test_folds_are_the_same_whatever_the_signals():
    records = signal_records(n_per_domain=40)
    folds = fold_numbers(records, k=5, seed=3)
    unstated = [{**r, "raw_confidence": None, "signals": {}} for r in records]
    assert np.array_equal(fold_numbers(unstated, k=5, seed=3), folds)
    ungraded = [dict(r) for r in records]
    ungraded[0]["correct"] = None
    assert fold_numbers(ungraded, k=5, seed=3)[0] == -1


def test_the_cross_validated_baseline_is_measured_on_held_out_folds():
    records = signal_records()
    options = {"min_samples": 20, "holdout": 0.0, "signals": "fused"}
    report = build_report(records, fit_options=options)
    base = report["baseline"]
    assert report["signals"] == "fused" and base["signals"] == "stated"
    assert report["source"] == "5-fold cross-validated on these records"
    assert base["source"] == "stated-only, 5-fold cross-validated on these records"
    assert "baseline" not in base  # no baseline of the baseline
    # The baseline's figures are those of its out-of-fold confidences, not of a fit on every record.
    oof = cross_validated_predictions(records, signals="stated", min_samples=20, holdout=0.0)
    y = np.array([float(r["correct"]) for r in records])
    in_sample = fit_maps(records, model="m", prompt="p", signals="stated", min_samples=20, holdout=0.0)
    for domain in ("science", "reasoning"):
        mine = np.array([r["domain"] == domain for r in records]) & ~np.isnan(oof)
        section = base["domains"][domain]
        assert section["n_calibrated"] == int(mine.sum()) == 48  # the 40% that state a confidence
        assert section["calibrated"]["ece"] == pytest.approx(M.expected_calibration_error(y[mine], oof[mine]))
        assert section["calibrated"]["ece"] > in_sample.maps[domain].metrics["ece_calibrated"] + 0.01
        assert section["no_confidence_rate"] == pytest.approx(0.6)
        fused = report["domains"][domain]
        assert fused["no_confidence_rate"] == 0.0 and fused["n_calibrated"] == 120
        assert fused["signal_auroc"]["answer_first_logp"]["auroc"] > fused["signal_auroc"]["stated"]["auroc"]
    json.dumps(report, allow_nan=False)


def test_fixed_baseline_maps_give_the_baseline_the_numbers_of_their_own_report():
    train, held = signal_records(seed=1), signal_records(seed=2)
    fused = fit_maps(train, model="m", prompt="p", signals="fused", min_samples=20)
    stated = fit_maps(train, model="m", prompt="p", signals="stated", min_samples=20, version="v0002")
    report = build_report(held, fused, baseline_maps=stated)
    alone = build_report(held, stated)
    assert report["baseline"]["source"] == "maps v0002" and alone["baseline"] is None
    assert report["baseline"]["domains"] == alone["domains"] and report["baseline"]["overall"] == alone["overall"]
    assert report["baseline"]["target_risk"] == 0.1
    text = format_baseline_table(report)
    lines = text.splitlines()
    assert lines[0] == "baseline: maps v0002; fused: maps unsaved"
    assert "target risk 0.10" in lines[1] and lines[2].split()[:3] == ["domain", "n", "cal"]
    b, f = report["baseline"]["domains"]["science"], report["domains"]["science"]
    row = next(line for line in lines if line.startswith("science "))
    assert row.split()[1:4] == [f"{b['n_calibrated']}→{f['n_calibrated']}",
                                f"{b['calibrated']['ece']:.3f}→{f['calibrated']['ece']:.3f}",
                                f"{b['calibrated']['brier']:.3f}→{f['calibrated']['brier']:.3f}"]
    assert text in format_report(report)
    assert "baseline: none apart" in format_report(alone)
    assert build_report(held, fused, baseline=False)["baseline"] is None


def test_risk_coverage_axes_draw_one_curve_per_signal_and_the_calibrated_one_in_bold():
    from matplotlib.figure import Figure

    records = signal_records(n_per_domain=30, domains=("science",))
    y = np.array([float(r["correct"]) for r in records])
    signals = R.signal_matrix([r["signals"] for r in records])
    ax = Figure().subplots()
    drawn = risk_coverage_axes(ax, y, signals, np.full(len(y), np.nan), "t")
    labels = [line.get_label() for line in ax.get_lines()]
    # every signal the answers carry (not agreement: they were not sampled), no calibrated confidence to draw
    assert drawn == len(SIGNAL_COLUMNS) - 1 == len(labels)
    assert labels[0].startswith("stated n=12 ") and labels[2].startswith("probe n=18 ")
    ax = Figure().subplots()
    assert risk_coverage_axes(ax, y, signals, y * 0.5 + 0.2, "t") == len(SIGNAL_COLUMNS)
    assert ax.get_lines()[0].get_label().startswith("calibrated n=30") and ax.get_lines()[0].get_linewidth() > 2


def test_a_baseline_with_too_few_stated_confidences_is_said_not_measured_and_the_report_goes_on():
    """`calibrate eval` of one answer: the stated-only baseline cannot be fitted in folds, the report still comes."""
    from dataclasses import replace

    from assistant.core.record import Record
    from calibration.measuring.report import build_report, format_baseline_table
    from tests.conftest import make_maps

    records = [Record(id="q1", domain="math", question="", gold="1", answer="1", correct=True,
                      raw_confidence=None, model="fake-model", prompt="confidence_tags")]
    maps = replace(make_maps(), signals="fused")  # a fused pipeline measured: the baseline is fitted apart
    report = build_report(records, maps)
    assert report["baseline"]["unavailable"].startswith("only 0 records have both raw_confidence and correct")
    assert format_baseline_table(report).startswith("baseline: stated-only, not measured: only 0 records")
