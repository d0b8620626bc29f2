"""Issue 20 item 4: is a question like the questions the map was fitted on (assistant.calibrated.ood), and the
map file fields that carry the range and the reference questions (old files still load)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.calibrated.intervals import bootstrap_bands
from assistant.calibrated.isotonic import IsotonicCalibrator
from assistant.calibrated.maps import CalibrationMaps, load_maps
from assistant.calibrated.ood import QUANTILE, Reference, fit_reference
from assistant.calibrated.support import support_of
from assistant.core.errors import MapError

DIM = 48


def _cluster(rng, centre: int, n: int, spread: float = 0.12) -> np.ndarray:
    """n unit vectors around basis direction `centre` (MiniLM-like: every question shares direction 0)."""
    base = np.zeros(DIM)
    base[0], base[centre] = 1.0, 1.0
    rows = base + rng.normal(scale=spread, size=(n, DIM))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(0)
    e = np.vstack([_cluster(rng, 1, 300), _cluster(rng, 2, 300)])
    return fit_reference(e, ["math"] * 300 + ["factual"] * 300, dim=16, seed=0)


def test_about_one_in_twenty_like_questions_is_called_unlike(reference):
    """The threshold is the 95% quantile of held-out fitting questions: new questions from the same
    population lie beyond it about 5% of the time."""
    rng = np.random.default_rng(1)
    fresh = _cluster(rng, 1, 400)
    beyond = np.mean([reference.score(e, "math").extrapolating for e in fresh])
    assert abs(beyond - (1 - QUANTILE)) < 0.05, beyond


def test_questions_from_elsewhere_are_extrapolating(reference):
    """Another topic (direction 7), and a question unlike anything (direction 0 reversed)."""
    rng = np.random.default_rng(2)
    other = _cluster(rng, 7, 100)
    assert np.mean([reference.score(e, "math").extrapolating for e in other]) > 0.95
    assert np.mean([reference.score(e, "general").extrapolating for e in other]) > 0.95
    score = reference.score(-np.eye(DIM)[0], "general")
    assert score.extrapolating and score.ratio > 1.5 and score.stretch > 3
    assert score.compared_with == "general"


def test_a_question_of_one_domain_is_unlike_another_domains_questions(reference):
    rng = np.random.default_rng(3)
    factual = _cluster(rng, 2, 50)
    assert np.mean([reference.score(e, "math").extrapolating for e in factual]) > 0.9
    assert np.mean([reference.score(e, "factual").extrapolating for e in factual]) < 0.2
    assert reference.compared_with("science") == "general"  # no science references: all of them


def test_reference_round_trips_as_numbers_only(reference):
    data = json.loads(json.dumps(reference.to_dict()))
    again = Reference.from_dict(data)
    e = np.eye(DIM)[1]
    assert again.score(e, "math") == reference.score(e, "math")
    assert all(isinstance(v, float) for row in data["vectors"] for v in row)
    with pytest.raises(ValueError, match="question embeddings have 3 dimensions"):
        reference.score([1.0, 0.0, 0.0], "math")


def _maps_dict(**extra) -> dict:
    return {"schema_version": 2, "model": "m", "prompt": "p", "version": "v0001",
            "fitted_at": "2026-12-02T19:00:00+00:00", "signals": "stated",
            "maps": {"general": {"x": [0.0, 1.0], "y": [0.1, 0.9], "n_samples": 100, "threshold": 1.0,
                                 **extra.pop("general", {})}}, **extra}


def test_old_map_files_load_without_range_or_reference(tmp_path):
    """A map file from before issue 20 (no `interval`, no `ood`): it loads, and both are None."""
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_maps_dict()))
    maps = load_maps(path)
    assert maps.map_for("math").range(0.5, 0.5) is None and maps.map_for("math").range_level is None
    assert maps.unlike_fitting("math", np.eye(DIM)[1]) is None
    fields = support_of(maps, "math", 0.5, 0.5, np.eye(DIM)[1]).reply_fields()
    assert set(fields.values()) == {None}
    assert "interval" not in maps.to_dict()["maps"]["general"] and "ood" not in maps.to_dict()


def test_map_file_with_range_and_reference_round_trips(tmp_path, reference):
    rng = np.random.default_rng(4)
    p = rng.uniform(size=200)
    y = (rng.uniform(size=200) < p).astype(float)

    def fit(p, y, w):
        cal = IsotonicCalibrator().fit(p, y)
        return cal.x_thresholds_, cal.y_thresholds_

    bands = bootstrap_bands(p, y, fit, n_boot=20).to_dict()
    maps = CalibrationMaps.from_dict(_maps_dict(general={"interval": bands}, ood=reference.to_dict()))
    path = tmp_path / "new.json"
    path.write_text(json.dumps(maps.to_dict()))
    again = load_maps(path)
    assert again.map_for("math").range(0.5, 0.5) == maps.map_for("math").range(0.5, 0.5)
    far = support_of(again, "math", 0.5, 0.5, -np.eye(DIM)[0])
    near = support_of(again, "math", 0.5, 0.5, _cluster(np.random.default_rng(5), 1, 1)[0])
    assert far.extrapolating and not near.extrapolating
    assert far.high - far.low > near.high - near.low  # stretched for a question unlike the fitting ones
    assert near.low <= 0.5 <= near.high and near.level == 0.9


@pytest.mark.parametrize("where, bad, words", [
    ("general", {"interval": {"level": 0.9, "x": [0.0], "lower": [0.5], "upper": [0.1]}}, "maps.general.interval"),
    ("top", {"ood": {"components": [[1.0]], "vectors": [[1.0]], "domains": ["math"], "thresholds": {}}}, "field ood"),
])
def test_bad_range_or_reference_names_the_field(tmp_path, where, bad, words):
    data = _maps_dict(general=bad) if where == "general" else _maps_dict(**bad)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MapError, match=words):
        load_maps(path)
