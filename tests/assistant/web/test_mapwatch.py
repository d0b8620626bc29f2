"""Issue 24.5: map activation reaches every server. A server follows its maps folder (`MapWatch`): a version
activated there is answered with after the poll interval, a broken one keeps the old maps (one log line),
and the dashboard lists the map version each server of the store runs."""

from __future__ import annotations

import logging

from gradio_client import Client

from assistant.reviews.servers import server_statuses
from assistant.reviews.store import ReviewStore
from assistant.web.context import WebContext
from assistant.web.dashboard import DashboardTab
from assistant.web.mapwatch import MapWatch
from tests.conftest import TEST_USERS, launch, make_assistant, shared_maps


def _ask(app) -> dict:
    return Client(app.url, auth=("sam", TEST_USERS["sam"][1]), verbose=False).predict(
        "What is 12 times 11?", None, api_name="/ask")


def test_a_version_activated_in_the_maps_folder_is_answered_with_after_the_poll_interval(tmp_path):
    maps = shared_maps(tmp_path / "maps")
    app = launch(tmp_path / "data", assistant=make_assistant(map_store=maps), maps_poll_seconds=0)
    try:
        first = _ask(app)
        assert (first["map_version"], first["confidence"]) == ("v0001", 0.76)  # 95% stated, 0.8 × p
        maps.activate("v0002")
        second = _ask(app)  # no restart, no reload click: the answer path looked first
        assert (second["map_version"], second["confidence"]) == ("v0002", 0.475)  # 0.5 × p
        assert [(s.map_version, s.model) for s in server_statuses(app.store)] == [("v0002", "fake-model")]
    finally:
        app.demo.close()


def test_within_the_poll_interval_the_maps_folder_is_not_read_again(tmp_path):
    maps = shared_maps(tmp_path / "maps")
    watch = MapWatch(make_assistant(map_store=maps), None, poll_seconds=3600)
    assert watch.check() == "v0001"
    maps.activate("v0002")
    assert watch.check() == "v0001"  # the last look is recent: the answer path does no file work
    assert watch.check(force=True) == "v0002"  # the background thread's look


def test_a_broken_newly_activated_map_keeps_the_old_one_and_logs_one_line(tmp_path, caplog):
    maps = shared_maps(tmp_path / "maps")
    assistant = make_assistant(map_store=maps)
    watch = MapWatch(assistant, None, poll_seconds=0)
    maps.activate("v0002")
    good = (maps.folder / "v0002.json").read_text()
    (maps.folder / "v0002.json").write_text(good[: len(good) // 2])  # cut short after its activation
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert watch.check() == "v0001"
    assert assistant.maps.version == "v0001"
    (line,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "not reloaded, v0001 stays in use" in line.getMessage() and "v0002" in line.getMessage()
    assert line.exc_info is None and "\n" not in line.getMessage()
    (maps.folder / "v0002.json").write_text(good)  # mended: the next look loads it
    assert watch.check() == "v0002" and assistant.maps.version == "v0002"


def test_the_dashboard_lists_the_map_version_each_server_runs(tmp_path):
    maps = shared_maps(tmp_path / "maps")
    contexts = [WebContext(make_assistant(map_store=maps), ReviewStore(tmp_path / "data", server=name), None)
                for name in ("web-1", "web-2")]
    contexts[0].watch.check()
    maps.activate("v0002")
    contexts[1].watch.check()
    for ctx in contexts:
        rows = DashboardTab(ctx).show(None)[-1]
        assert [row[:3] for row in rows] == [["web-1", "v0001", "fake-model"], ["web-2", "v0002", "fake-model"]]
        assert rows[0][4].endswith(" UTC")  # last seen
    servers = DashboardTab(contexts[0]).stats()["servers"]
    assert [(s["server"], s["map_version"], s["prompt"]) for s in servers] == [
        ("web-1", "v0001", "confidence_tags"), ("web-2", "v0002", "confidence_tags")]
