"""Issue 21.4: one active map version per (model, prompt) pair, and older single-pointer folders
read with their history and active version kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from assistant.answering.pipeline import Assistant
from assistant.calibrated.mapstore import MapStore
from assistant.core.errors import MapError
from assistant.models.fake import FakeBackend
from tests.calibration.test_maps import _maps
from tests.conftest import ROOT, prompt  # noqa: F401  (prompt: the fixture)

A, B = ("model-a", "p"), ("model-b", "p")


def _store(tmp_path, *pairs) -> MapStore:
    """A store holding one version per pair given, numbered in that order, nothing active."""
    store = MapStore(tmp_path / "maps")
    for model, prompt_id in pairs:
        store.save_new(_maps(model=model, prompt=prompt_id, notes=model))
    return store


def test_each_pair_has_its_own_active_version_and_rollback(tmp_path):
    store = _store(tmp_path, A, B, A)
    for version in ("v0001", "v0002", "v0003"):
        store.activate(version)
    assert store.active_version(*A) == "v0003" and store.active_version(*B) == "v0002"
    assert store.active_pairs() == {A: "v0003", B: "v0002"}
    assert store.active_version("model-c", "p") is None
    with pytest.raises(MapError, match="several .model, prompt. pairs.*model=model-a prompt=p"):
        store.active()
    assert store.active_version(model="model-b") == "v0002"  # one pair fits: no need to name the prompt
    assert [r["active"] for r in store.list_versions()] == [False, True, True]
    assert store.rollback(*A) == "v0001"
    assert store.active_pairs() == {A: "v0001", B: "v0002"}  # the other pair is untouched
    with pytest.raises(MapError, match="no earlier active version for model model-b / prompt p"):
        store.rollback(*B)
    lines = (tmp_path / "maps" / "HISTORY").read_text().splitlines()
    assert [line.split("\t")[:4] for line in lines] == [
        ["v0001", "activate", *A], ["v0002", "activate", *B], ["v0003", "activate", *A], ["v0001", "rollback", *A]]


def test_an_older_single_pointer_folder_keeps_its_history(tmp_path):
    store = _store(tmp_path, A, B, A)
    older = "v0001\tactivate\t2026-01-01T00:00:00+00:00\nv0002\tactivate\t2026-01-02T00:00:00+00:00\n" \
            "v0003\tactivate\t2026-01-03T00:00:00+00:00\nv0002\trollback\t2026-01-04T00:00:00+00:00\n"
    (tmp_path / "maps" / "HISTORY").write_text(older)
    (tmp_path / "maps" / "ACTIVE").write_text("v0002\n")
    # the one stack was v0001, v0002 (v0003 rolled back): per pair, A has v0001 and B has v0002
    assert store.active_pairs() == {A: "v0001", B: "v0002"}
    store.activate("v0003")
    assert store.active_pairs() == {A: "v0003", B: "v0002"}
    assert store.rollback(*A) == "v0001"
    assert (tmp_path / "maps" / "HISTORY").read_text().startswith(older)  # never rewritten


def test_an_active_pointer_without_history_still_counts(tmp_path):
    store = _store(tmp_path, A, B)
    (tmp_path / "maps" / "ACTIVE").write_text("v0002\n")
    assert store.active_pairs() == {B: "v0002"}


def test_a_history_line_cut_short_is_ignored_and_the_next_one_starts_on_its_own_line(tmp_path):
    store = _store(tmp_path, A, A)
    store.activate("v0001")
    with (tmp_path / "maps" / "HISTORY").open("a") as f:
        f.write("v0002\tactivate\tmodel-a\tp")  # a crash in the middle of writing a line
    assert store.active_version(*A) == "v0001"
    store.activate("v0002")
    assert store.active_version(*A) == "v0002" and store.rollback(*A) == "v0001"


def test_the_assistant_reloads_the_maps_of_its_own_model(tmp_path, prompt):  # noqa: F811
    store = _store(tmp_path, ("model-a", prompt.id), ("model-b", prompt.id))
    store.activate("v0001")
    assistant = Assistant(FakeBackend(model_id="model-a"), prompt, router=None, map_store=store)
    store.activate("v0002")  # activated last, but for the other model
    assert assistant.reload_maps() == "v0001" and assistant.maps.model == "model-a"


def test_cli_activate_list_and_rollback_per_pair(tmp_path):
    store = _store(tmp_path, A, B, A)

    def calibrate(*args):
        return subprocess.run([sys.executable, "-m", "calibration", "--maps-dir", str(store.folder), "maps", *args],
                              capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=60)

    for version in ("v0001", "v0002", "v0003"):
        assert calibrate("activate", version).returncode == 0
    listing = calibrate("list").stdout.splitlines()
    assert [line[0] for line in listing] == [" ", "*", "*"]
    refused = calibrate("rollback")
    assert refused.returncode == 2 and "name the model and prompt" in refused.stderr
    done = calibrate("rollback", "--model", "model-a", "--prompt", "p")
    assert done.returncode == 0 and "model model-a / prompt p is now v0001" in done.stdout
    assert store.active_pairs() == {A: "v0001", B: "v0002"}


def test_report_with_the_active_maps_picks_the_pair_of_its_records(tmp_path):
    from tests.calibration.test_calibrate_cli import calibrate, synth_records

    maps = tmp_path / "maps"
    for model in ("model-a", "model-b"):
        records = synth_records(tmp_path / f"{model}.jsonl", model=model)
        fit = calibrate(tmp_path, "fit", "--records", records, "--maps-dir", maps, "--holdout", "0", "--activate",
                        "--signals", "stated")
        assert fit.returncode == 0, fit.stderr
    held = synth_records(tmp_path / "held.jsonl", model="model-a", prefix="h", seed=5)
    report = calibrate(tmp_path, "report", "--records", held, "--maps", "active", "--maps-dir", maps, "--json")
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["source"] == "maps v0001"  # model-a's, though v0002 was activated last
