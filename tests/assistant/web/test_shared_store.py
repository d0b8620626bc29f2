"""Several app servers over one PostgreSQL store (issue 24.5), against a real PostgreSQL server the tests
start (tests/postgres_server.py) and real Gradio servers: each server is a ChatApp on its own port, in this
process or in a child process that a test kills."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import psycopg
import pytest
from gradio_client import Client

from assistant.reviews.migrations import MIGRATIONS
from assistant.reviews.postgres import PostgresDialect
from assistant.reviews.store import ReviewStore
from assistant.web.chat import ChatTab
from assistant.web.context import WebContext
from assistant.web.conversations import Conversations, owner_key
from assistant.web.throttle import LoginThrottle, SharedThrottleStore
from tests.conftest import TEST_USERS, app_subprocess, launch, make_assistant, shared_maps, stored_reply


def _client(app, name: str) -> Client:
    return Client(app.url, auth=(name, TEST_USERS[name][1]), verbose=False)


@pytest.fixture
def two_servers(tmp_path, pg_url):
    """Servers "a" and "b" on one PostgreSQL store, each with its own (unused) data folder."""
    servers = [launch(tmp_path / name, store_url=pg_url, server=name) for name in ("a", "b")]
    yield servers
    for server in servers:
        server.demo.close()


def test_a_reply_given_on_one_server_is_reviewed_on_the_other_and_counts_on_both_dashboards(two_servers):
    a, b = two_servers
    asked = _client(a, "sam").predict("Capital? [unsure]", None, api_name="/ask")  # low confidence: queued
    (item,) = _client(b, "rita").predict("open", "all", api_name="/review_queue")
    assert item["reply_id"] == asked["reply_id"] and item["question"] == "Capital? [unsure]"
    _client(b, "rita").predict(item["id"], "incorrect", "Paris", api_name="/submit_verdict")

    (closed,) = _client(a, "rita").predict("closed", "all", api_name="/review_queue")
    assert (closed["verdict"], closed["corrected_answer"], closed["reviewer"]) == ("incorrect", "Paris", "rita")
    for server in (a, b):
        stats = _client(server, "ann").predict(api_name="/dashboard_stats")
        assert (stats["domains"]["all"]["count"], stats["domains"]["all"]["correct"]) == (1, 0)
    assert [r["gold"] for r in _client(a, "rita").predict(api_name="/export_reviews")] == ["Paris"]


def test_a_map_activated_in_the_shared_maps_folder_reaches_both_servers_and_both_dashboards_list_it(tmp_path, pg_url):
    """Servers a and b share one store and one maps folder (the default of 10 s between looks, shortened to
    every answer here); `MapStore.activate`, as `calibrate maps activate` does, reaches both without a restart."""
    maps = shared_maps(tmp_path / "maps")
    a, b = (launch(tmp_path / name, store_url=pg_url, server=name, assistant=make_assistant(map_store=maps),
                   maps_poll_seconds=0) for name in ("a", "b"))
    try:
        def versions(server) -> list[tuple[str, str]]:
            return [(s["server"], s["map_version"]) for s in
                    _client(server, "ann").predict(api_name="/dashboard_stats")["servers"]]

        assert versions(a) == versions(b) == [("a", "v0001"), ("b", "v0001")]  # each reported when it started
        maps.activate("v0002")
        for server in (a, b):
            reply = _client(server, "sam").predict("What is 12 times 11?", None, api_name="/ask")
            assert (reply["map_version"], reply["confidence"]) == ("v0002", 0.475)
        assert versions(a) == versions(b) == [("a", "v0002"), ("b", "v0002")]
    finally:
        a.demo.close()
        b.demo.close()


def test_a_conversation_started_on_one_server_reopens_on_the_other(two_servers):
    a, b = two_servers
    tab_a, tab_b = (ChatTab(WebContext(make_assistant(), s.store, users=None)) for s in (a, b))
    page = type("Request", (), {"session_hash": "page-1", "username": "sam"})()
    *_, (_, _, _, _, conversation, token) = tab_a.respond("What is 12 times 11?", [], None, None, page)
    assert conversation is not None
    owner = owner_key("sam", token)
    (listed,) = Conversations(b.store).of(owner)
    assert (listed.id, listed.turns) == (conversation, 1)
    chat = tab_b.reopen(conversation, token, page)[1]  # the other server's "open" handler: the chat shown
    assert [m["content"] for m in chat if m["role"] == "user"] == ["What is 12 times 11?"]
    assert "132" in " ".join(str(m["content"]) for m in chat if m["role"] == "assistant")


def test_wrong_passwords_on_one_server_lock_the_account_on_both(tmp_path, pg_url):
    def throttle() -> LoginThrottle:  # each server's own connection to the shared table, short waits for a test
        return LoginThrottle(max_delay=0.01, store=SharedThrottleStore(ReviewStore(tmp_path / "t", url=pg_url)))

    a, b = (launch(tmp_path / name, store_url=pg_url, server=name, throttle=throttle()) for name in ("a", "b"))
    try:
        wrong = [httpx.Client(base_url=s.url, timeout=30).post("login", data={"username": "sam", "password": "bad"})
                 for s in (a, b) for _ in range(5)]  # 5 + 5: the lock comes at 10, counted across both
        assert [r.status_code for r in wrong] == [400] * 10
        for server in (b, a):
            right = httpx.Client(base_url=server.url, timeout=30).post(
                "login", data={"username": "sam", "password": TEST_USERS["sam"][1]})
            assert right.status_code == 429 and "Too many failed sign-ins" in right.json()["detail"]
        assert _client(a, "rita") and _client(b, "rita")  # another account: fine on both
    finally:
        a.demo.close()
        b.demo.close()


class _Served(Exception):
    """Raised instead of starting the server: carries what main() passed to `serve`."""


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_the_app_takes_its_store_from_the_flag_or_the_variable_and_shares_the_throttle_with_it(
        tmp_path, pg_url, monkeypatch, store):
    import app as entry
    from assistant.answering.pipeline import Assistant
    from assistant.web import app as web_app

    monkeypatch.setattr(Assistant, "from_config", classmethod(lambda cls, *a, **k: make_assistant()))
    monkeypatch.setattr(web_app, "serve", lambda demo, ctx, **kw: (_ for _ in ()).throw(_Served(ctx, kw)))
    if store == "postgresql":
        monkeypatch.setenv("CALIBRATED_CHAT_STORE", pg_url)
    with pytest.raises(_Served) as served:
        entry.main(["--data-dir", str(tmp_path), "--port", "7861"])
    ctx, kw = served.value.args
    if store == "postgresql":
        assert ctx.store.shared and ctx.store.server.endswith(":7861")
        assert isinstance(kw["throttle"].store, SharedThrottleStore)
        assert not (tmp_path / "reviews.sqlite3").exists()
    else:  # the embedded default, unchanged: SQLite in the data folder, the throttle in memory
        assert not ctx.store.shared and kw["throttle"] is None
        assert (tmp_path / "reviews.sqlite3").is_file()


def test_a_postgresql_store_that_cannot_be_reached_stops_the_start(tmp_path, capsys):
    import app as entry

    assert entry.main(["--store", "postgresql://chat:pw@127.0.0.1:1/chat?connect_timeout=2",
                       "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: review store postgresql://chat:***@127.0.0.1:1/chat") and ":pw@" not in err


def _wait_streaming(url: str, server: str) -> str:
    """The public id of `server`'s reply that is streaming, once there is one."""
    with psycopg.connect(url, autocommit=True) as db:
        while True:
            row = db.execute("SELECT public_id FROM replies WHERE status = 'streaming' AND server = %s",
                             (server,)).fetchone()
            if row:
                return row[0]
            time.sleep(0.05)


def test_a_server_killed_mid_answer_and_restarted_marks_only_its_own_reply_interrupted(tmp_path, pg_url):
    """Server b streams a reply; server a is killed mid-answer and starts again. a's reply is kept, as
    'interrupted' and in the queue; b's reply is untouched by a's start-up and finishes on b. (b is paused
    with SIGSTOP from when its reply streams until a has restarted, so that reply is surely still streaming.)"""
    b_proc, b_url = app_subprocess(tmp_path / "b", 0.1, pg_url, "b")
    a_proc, a_url = app_subprocess(tmp_path / "a", 0.3, pg_url, "a")
    restarted = None
    try:
        b_job = Client(b_url, auth=("sam", TEST_USERS["sam"][1]), verbose=False).submit(
            "Tell me more [long]", None, api_name="/ask_stream")
        on_b = _wait_streaming(pg_url, "b")
        os.kill(b_proc.pid, signal.SIGSTOP)
        Client(a_url, auth=("sam", TEST_USERS["sam"][1]), verbose=False).submit(
            "Capital of France?", None, api_name="/ask_stream")
        on_a = _wait_streaming(pg_url, "a")
        os.kill(a_proc.pid, signal.SIGKILL)
        a_proc.wait(timeout=30)
        restarted = launch(tmp_path / "a", store_url=pg_url, server="a")  # a's start-up marks its cut-off replies
        assert stored_reply(restarted.store, on_a)["status"] == "interrupted"
        assert stored_reply(restarted.store, on_b)["status"] == "streaming"
        os.kill(b_proc.pid, signal.SIGCONT)
        assert b_job.result(timeout=120)["reply"]["question"] == "Tell me more [long]"
        assert stored_reply(restarted.store, on_b)["status"] == "ok"
        queue = _client(restarted, "rita").predict("open", "all", api_name="/review_queue")
        assert [(i["reply_id"], i["status_of_reply"]) for i in queue] == [(on_a, "interrupted")]
    finally:
        for proc in (a_proc, b_proc):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
        if restarted is not None:
            restarted.demo.close()


def test_servers_that_start_at_once_apply_the_migrations_once(pg_url):
    """Four servers' start-ups, released together on one fresh database: one applies every migration, the
    others wait for it and find them recorded."""
    dialect = PostgresDialect(pg_url)
    connections = [dialect.connect() for _ in range(4)]
    start, applied, errors = threading.Barrier(4), [], []

    def migrate(conn) -> None:
        start.wait()
        try:
            applied.append(dialect.migrate(conn))
        except Exception as err:  # noqa: BLE001 (reported below)
            errors.append(err)

    threads = [threading.Thread(target=migrate, args=(conn,)) for conn in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(applied, key=len) == [[], [], [], [name for name, _ in MIGRATIONS]]
    with psycopg.connect(pg_url) as db:
        assert db.execute("SELECT count(*) FROM migrations").fetchone()[0] == len(MIGRATIONS)
