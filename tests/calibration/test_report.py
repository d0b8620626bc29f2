"""Tests for calibration.report: report shape, held-out improvement, text table, PNG plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from calibration.fitting import cross_validated_predictions, fit_maps
from calibration.report import (
    METRIC_KEYS,
    build_report,
    calibrated_confidences,
    format_maps_summary,
    format_report,
    write_plots,
)
from tests.conftest import ROOT

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
    assert set(report) == {"domains", "overall", "signals"}
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
    assert "m / p" in text and "general" in text and "no map for math, factual, science, reasoning" in text
    c = calibrated_confidences(records, maps)
    assert np.isnan(c[0]) and c[2] == maps.calibrate("math", records[2]["raw_confidence"])
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
