"""Tests for assistant.calibrated.maps: the isotonic calibrator, map files and the versioned store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from assistant.calibrated.fusion import FEATURES
from assistant.calibrated.isotonic import IsotonicCalibrator
from assistant.calibrated.maps import CalibrationMaps, DomainMap, load_maps, save_maps
from assistant.calibrated.mapstore import MapStore
from assistant.core.errors import MapError

# scikit-learn's test_isotonic.py example, scaled into [0, 1]
X7 = np.arange(7) / 10
Y7 = np.array([3, 7, 5, 9, 8, 7, 10]) / 10


def test_plain_isotonic_matches_sklearn_example():
    cal = IsotonicCalibrator(strict=False).fit(X7, Y7)
    assert cal.predict(X7) == pytest.approx(np.array([3, 6, 6, 8, 8, 8, 10]) / 10)
    assert cal.strict is False and cal.x_thresholds_.tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.5, 0.6])


def test_strict_isotonic_interpolates_block_centres():
    # blocks {0}: .3, {.1,.2}: .6 (centre .15), {.3,.4,.5}: .8 (centre .4), {.6}: 1.0
    cal = IsotonicCalibrator().fit(X7, Y7)
    assert cal.x_thresholds_ == pytest.approx([0.0, 0.15, 0.4, 0.6])
    assert cal.y_thresholds_ == pytest.approx([0.3, 0.6, 0.8, 1.0])
    # .1: .3 + .3 * (.1/.15) ; .2: .6 + .2 * (.05/.25) ; .3: .6 + .2 * (.15/.25) ; .5: .8 + .2 * (.1/.2)
    assert cal.predict(X7) == pytest.approx([0.3, 0.5, 0.64, 0.72, 0.8, 0.9, 1.0])
    assert np.all(np.diff(cal.predict(X7)) > 0)  # distinct confidences keep their order


def test_strict_counts_weight_the_centre():
    # blocks {.2, .2, .4} -> 0 (centre (2*.2 + .4)/3) and {.5, .8} -> 1 (centre .65), plus the data ends
    cal = IsotonicCalibrator().fit([0.2, 0.2, 0.4, 0.5, 0.8], [0, 0, 0, 1, 1])
    assert cal.x_thresholds_ == pytest.approx([0.2, (0.2 * 2 + 0.4) / 3, 0.65, 0.8])
    assert cal.y_thresholds_ == pytest.approx([0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("strict", [True, False])
def test_predict_clips_inputs_and_outputs(strict):
    cal = IsotonicCalibrator(strict=strict).fit([0.2, 0.4, 0.6, 0.8], [0, 0, 1, 1])
    out = cal.predict([-3.0, 0.0, 0.5, 1.0, 7.0])
    assert out[0] == out[1] == 0.0 and out[3] == out[4] == 1.0
    assert np.all((out >= 0) & (out <= 1))


def test_constant_input_gives_two_knots():
    cal = IsotonicCalibrator().fit([0.7, 0.7, 0.7], [1, 0, 1])
    assert cal.x_thresholds_.tolist() == [0.0, 1.0]
    assert cal.y_thresholds_ == pytest.approx([2 / 3, 2 / 3])


@pytest.mark.parametrize("p, y, message", [
    ([0.1, 0.2], [1], "equally long"),
    ([], [], "non-empty"),
    ([1.5], [1], r"\[0, 1\]"),
    ([0.5], [2], r"\[0, 1\]"),
    ([float("nan")], [1], "NaN"),
])
def test_fit_validation(p, y, message):
    with pytest.raises(ValueError, match=message):
        IsotonicCalibrator().fit(p, y)


def test_predict_errors():
    with pytest.raises(ValueError, match="not fitted"):
        IsotonicCalibrator().predict([0.5])
    with pytest.raises(ValueError, match="NaN"):
        IsotonicCalibrator().fit([0.1, 0.9], [0, 1]).predict([np.nan])


def _maps(**changes) -> CalibrationMaps:
    general = DomainMap("general", (0.0, 0.5, 1.0), (0.1, 0.4, 0.9), 100, 0.7, {"ece_raw": 0.2})
    math_map = DomainMap("math", (0.2, 1.0), (0.0, 0.5), 60, 0.45, {})
    fields = dict(model="m", prompt="p", version="v0001", fitted_at="2025-01-02T03:04:05+00:00",
                  maps={"general": general, "math": math_map},
                  source=({"path": "records.jsonl", "sha256": "ab" * 32},), notes="test")
    fields.update(changes)
    return CalibrationMaps(**fields)


def test_domain_map_call_and_fallback():
    maps = _maps()
    assert maps.map_for("math")(0.6) == pytest.approx(0.25)
    assert maps.map_for("math")(0.1) == 0.0  # flat below the first knot
    assert maps.map_for("factual")(0.75) == pytest.approx(0.65)  # no factual map: general
    assert maps.map_for("general")(5.0) == pytest.approx(0.9)  # input clipped to 1
    assert (maps.threshold("math"), maps.threshold("science")) == (0.45, 0.7)
    assert maps.matches("m", "p") and not maps.matches("m", "other") and not maps.matches("x", "p")
    assert maps.needs_review("math", 0.44) and not maps.needs_review("math", 0.45)
    flag_all = DomainMap("general", (0.0, 1.0), (0.0, 1.0), 5, 1.0)
    assert flag_all.needs_review(1.0)
    with pytest.raises(ValueError):
        maps.map_for("math")(float("nan"))


def test_dict_and_file_round_trip(tmp_path):
    maps = _maps(source=[{"path": "b.jsonl", "sha256": "cd" * 32}])
    assert maps.source == ({"path": "b.jsonl", "sha256": "cd" * 32},)  # a list is kept as a tuple
    assert CalibrationMaps.from_dict(json.loads(json.dumps(maps.to_dict()))) == maps
    save_maps(maps, tmp_path / "maps.json")
    assert load_maps(tmp_path / "maps.json") == maps
    assert os.listdir(tmp_path) == ["maps.json"]  # no temp file left


def test_nan_metrics_are_written_as_null(tmp_path):
    general = DomainMap("general", (0.0, 1.0), (0.0, 1.0), 3, 0.5, {"auroc_raw": float("nan")})
    save_maps(_maps(maps={"general": general}), tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text())["maps"]["general"]["metrics"] == {"auroc_raw": None}


def test_save_is_atomic_when_replace_fails(tmp_path, monkeypatch):
    path = tmp_path / "maps.json"
    save_maps(_maps(), path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_maps(_maps(notes="new"), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["maps.json"]


def _edit(path_to_field, value):
    """A mutator that sets (or deletes, for value=...) one nested field of the file dict."""
    def mutate(d):
        *parents, last = path_to_field
        for key in parents:
            d = d[key]
        if value is ...:
            del d[last]
        else:
            d[last] = value
    return mutate


BAD_FILES = [
    # (mutation of a valid file dict or raw text, words the error must contain)
    (_edit(["schema_version"], 3), ["schema_version", "is 3", "reads schema_version 1 and 2"]),
    (_edit(["signals"], "vibes"), ["field signals", "stated, fused"]),
    (_edit(["maps", "math", "combiner"], {"features": ["x"]}), ["maps.math.combiner", "features must be"]),
    (_edit(["maps", "math", "combiner"], {"features": list(FEATURES), "mean": [0] * 7, "scale": [0] * 7,
                                          "coef": [0] * 7, "intercept": 0}), ["maps.math.combiner", "positive"]),
    (_edit(["schema_version"], ...), ["schema_version", "missing"]),
    (_edit(["model"], ...), ["field model", "missing"]),
    (_edit(["fitted_at"], "yesterday"), ["fitted_at", "ISO"]),
    (_edit(["maps", "general"], ...), ["maps.general", "missing"]),
    (_edit(["maps", "poetry"], {"x": [0, 1], "y": [0, 1], "n_samples": 1, "threshold": 0.5}),
     ["maps.poetry", "unknown domain", "math, factual, science, reasoning, general"]),
    (_edit(["maps", "math", "x"], [0.2, 0.2]), ["maps.math.x", "strictly increasing"]),
    (_edit(["maps", "math", "x"], [0.5, 0.2]), ["maps.math.x", "strictly increasing"]),
    (_edit(["maps", "math", "y"], [0.5, 0.2]), ["maps.math.y", "non-decreasing"]),
    (_edit(["maps", "math", "y"], [0.5, 1.2]), ["maps.math.y", "[0, 1]"]),
    (_edit(["maps", "math", "x"], [-0.1, 1.0]), ["maps.math.x", "[0, 1]"]),
    (_edit(["maps", "math", "y"], [0.1, 0.2, 0.3]), ["maps.math.y", "3 values", "x has 2"]),
    (_edit(["maps", "math", "x"], [0.5]), ["maps.math"]),
    (_edit(["maps", "math", "threshold"], 1.5), ["maps.math.threshold", "[0, 1]"]),
    (_edit(["maps", "math", "threshold"], ...), ["maps.math.threshold", "missing"]),
    (_edit(["maps", "math", "n_samples"], -3), ["maps.math.n_samples"]),
    (_edit(["maps", "math", "x"], "0,1"), ["maps.math.x", "list of numbers"]),
    (_edit(["maps", "math", "colour"], "red"), ["maps.math.colour", "unknown field"]),
    (_edit(["extra"], 1), ["field extra", "unknown field"]),
    (_edit(["maps"], []), ["field maps"]),
    (lambda text: text[: len(text) // 2], ["not valid JSON", "truncated"]),
    # json.dumps writes NaN as the bare word NaN, which Python's json reads back as float('nan')
    (_edit(["maps", "math", "threshold"], float("nan")), ["maps.math.threshold"]),
    (_edit(["maps", "math", "y"], [float("nan"), 0.5]), ["maps.math.y", "NaN"]),
    (lambda text: "[1, 2]", ["one JSON object"]),
]


@pytest.mark.parametrize("mutate, words", BAD_FILES)
def test_load_maps_names_file_and_field(tmp_path, mutate, words):
    path = tmp_path / "bad.json"
    save_maps(_maps(), path)
    text = path.read_text()
    if mutate.__name__ == "<lambda>":
        text = mutate(text)
    else:
        data = json.loads(text)
        mutate(data)
        text = json.dumps(data)
    path.write_text(text)
    with pytest.raises(MapError) as info:
        load_maps(path)
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_load_missing_file(tmp_path):
    with pytest.raises(MapError, match="cannot read"):
        load_maps(tmp_path / "nope.json")


def test_domain_map_validates_in_code():
    with pytest.raises(MapError, match="maps.math.y"):
        DomainMap("math", (0.0, 1.0), (0.9, 0.1), 10, 0.5)
    with pytest.raises(MapError, match="general"):
        _maps(maps={"math": DomainMap("math", (0.0, 1.0), (0.0, 1.0), 10, 0.5)})


# ---- MapStore ----

def test_store_versions_activate_and_rollback(tmp_path):
    store = MapStore(tmp_path / "maps")
    assert store.active() is None and store.active_version() is None
    assert store.list_versions() == []
    versions = [store.save_new(_maps(notes=str(i), version="unsaved")) for i in range(3)]
    assert versions == ["v0001", "v0002", "v0003"]
    assert store.load("v0002").version == "v0002" and store.load("v0002").notes == "1"
    for v in versions:
        store.activate(v)
    assert store.active_version() == "v0003" and store.active().notes == "2"
    assert load_maps(tmp_path / "maps" / "v0003.json") == store.active()  # one file a version
    assert store.rollback() == "v0002" and store.active_version() == "v0002"
    assert store.rollback() == "v0001" and store.active().version == "v0001"
    with pytest.raises(MapError, match="no earlier"):
        store.rollback()
    lines = (tmp_path / "maps" / "HISTORY").read_text().splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["v0001", "activate"], ["v0002", "activate"], ["v0003", "activate"],
        ["v0002", "rollback"], ["v0001", "rollback"]]
    listing = store.list_versions()
    assert [(r["version"], r["active"], r["n_samples"], r["model"]) for r in listing] == [
        ("v0001", True, 100, "m"), ("v0002", False, 100, "m"), ("v0003", False, 100, "m")]


def test_store_never_overwrites(tmp_path, monkeypatch):
    store = MapStore(tmp_path)
    assert store.save_new(_maps()) == "v0001"
    original = (tmp_path / "v0001.json").read_bytes()
    monkeypatch.setattr(store, "_versions", list)  # a stale listing, as in a race with another process
    assert store.save_new(_maps(notes="second")) == "v0002"
    assert (tmp_path / "v0001.json").read_bytes() == original


def test_store_rejects_unknown_and_invalid(tmp_path):
    store = MapStore(tmp_path)
    store.save_new(_maps())
    store.activate("v0001")
    with pytest.raises(MapError, match=r"no map version v0009 \(available: v0001\)"):
        store.activate("v0009")
    for name in ("../etc/passwd", "v1", "v00001", "V0001", "v0001.json", ""):
        with pytest.raises(MapError, match="invalid map version"):
            store.load(name)
    (tmp_path / "v0002.json").write_text('{"schema_version": 1, "model": ')
    with pytest.raises(MapError, match="v0002.json"):
        store.activate("v0002")
    assert store.active_version() == "v0001"  # a bad file never becomes active
    bad = store.list_versions()[1]
    assert bad["version"] == "v0002" and bad["model"] is None and "not valid JSON" in bad["error"]
    (tmp_path / "ACTIVE").write_text("../../x\n")
    with pytest.raises(MapError, match="ACTIVE"):
        store.active()


def test_activate_same_version_twice_keeps_history_short(tmp_path):
    store = MapStore(tmp_path)
    store.save_new(_maps())
    store.activate("v0001")
    store.activate("v0001")
    assert len((tmp_path / "HISTORY").read_text().splitlines()) == 1


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_store_over_a_read_only_base_writes_only_to_its_own_folder(tmp_path):
    base = MapStore(tmp_path / "shipped")
    base.activate(base.save_new(_maps(notes="shipped", version="unsaved")))
    shipped = _tree(tmp_path / "shipped")
    store = MapStore(tmp_path / "data" / "maps", base=tmp_path / "shipped")
    assert store.active_version() == "v0001" and store.active().notes == "shipped"
    assert store.save_new(_maps(notes="mine", version="unsaved")) == "v0002"  # numbered after the base's
    assert [r["version"] for r in store.list_versions()] == ["v0001", "v0002"]
    store.activate("v0002")
    assert store.active().notes == "mine"
    assert store.rollback() == "v0001"  # the base's HISTORY is the start of the stack
    assert store.active().notes == "shipped"
    with pytest.raises(MapError, match="no earlier"):
        store.rollback()
    assert _tree(tmp_path / "shipped") == shipped
    assert sorted(_tree(tmp_path / "data" / "maps")) == ["HISTORY", "v0002.json"]


def test_default_store_is_the_data_folder_over_the_shipped_maps(tmp_path, monkeypatch):
    from assistant.calibrated.mapstore import map_store, shipped_maps_dir

    monkeypatch.setenv("CALIBRATED_CHAT_DATA_DIR", str(tmp_path / "data"))
    store = map_store()
    assert store.folder == tmp_path / "data" / "maps" and store.base == shipped_maps_dir()
    assert store.active_version() == (shipped_maps_dir() / "ACTIVE").read_text().strip()
    assert (shipped_maps_dir() / f"{store.active_version()}.json").is_file()
    assert map_store(data_dir=tmp_path / "other").folder == tmp_path / "other" / "maps"
    alone = map_store(tmp_path / "mine")  # --maps-dir: that folder alone
    assert alone.folder == tmp_path / "mine" and alone.base is None and alone.active() is None
    monkeypatch.setenv("CALIBRATED_CHAT_MAPS_DIR", str(tmp_path / "env"))
    assert map_store().folder == tmp_path / "env" and map_store().base is None


def test_default_data_folder_is_the_users_data_dir(monkeypatch):
    from platformdirs import user_data_dir

    from assistant.core.config import ModelConfig, default_data_dir

    monkeypatch.delenv("CALIBRATED_CHAT_DATA_DIR")
    assert default_data_dir() == Path(user_data_dir("calibrated-chat", appauthor=False))
    assert ModelConfig().cache_folder == default_data_dir() / "cache"
    assert default_data_dir({"CALIBRATED_CHAT_DATA_DIR": "~/cc"}) == Path.home() / "cc"


@pytest.mark.parametrize("version", ["v0001", "v0002", "v0003", "v0004", "v0005", "v0006", "v0007"])
def test_shipped_maps_name_their_records_by_repository_path_and_hash(version):
    """No absolute path of the machine they were fitted on; each named file is the one fitted on."""
    from assistant.calibrated.mapstore import shipped_maps_dir
    from calibration.fitting.fit import file_sha256
    from tests.conftest import ROOT

    maps = load_maps(shipped_maps_dir() / f"{version}.json")
    assert maps.source
    for source in maps.source:
        assert not Path(source["path"]).is_absolute(), source
        assert file_sha256(ROOT / source["path"]) == source["sha256"], source
