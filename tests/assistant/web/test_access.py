"""Access and data holes (who may see and change what), each tried the way an attacker or a careless client would:
direct HTTP and `gradio_client` calls against a real Gradio server and a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from assistant.core.errors import InputError
from assistant.reviews import queries
from assistant.reviews.store import DB_FILENAME, MAX_COMMENT_CHARS, ReviewStore
from assistant.reviews.types import Actor
from assistant.web.access import EXPORT_PATH
from assistant.web.auth import Users
from assistant.web.proxies import TrustedProxies, parse_trusted_proxies
from assistant.web.throttle import LoginThrottle, MemoryThrottleStore
from tests.conftest import (
    ROOT,
    TEST_USERS,
    app_subprocess,
    kill_while_streaming,
    launch,
    make_users,
    stored_reply,
)

SUE = ("sue", "staff", "sue-password")  # a second staff user


def _users() -> Users:
    return make_users().with_user(*SUE)


def _password(name: str) -> str:
    return SUE[2] if name == SUE[0] else TEST_USERS[name][1]


def _client(app, name: str | None) -> Client:
    return Client(app.url, auth=(name, _password(name)) if name else None, verbose=False)


def _http(app, name: str | None = None) -> httpx.Client:
    """An HTTP client holding `name`'s sign-in cookie (none for an anonymous visitor)."""
    http = httpx.Client(base_url=app.url, timeout=30)
    if name:
        http.post("login", data={"username": name, "password": _password(name)}).raise_for_status()
    return http


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    running = launch(tmp_path_factory.mktemp("access-data"), users=_users())
    yield running
    running.demo.close()


# -- 1. exports ------------------------------------------------------------------------------------


def test_the_review_export_streams_to_reviewers_only_and_leaves_no_file_behind(app):
    sam, rita = _client(app, "sam"), _client(app, "rita")
    reply = sam.predict("Capital of France? [unsure]", None, api_name="/ask")
    item = next(i for i in rita.predict("open", "all", api_name="/review_queue") if i["reply_id"] == reply["reply_id"])
    rita.predict(item["id"], "incorrect", "Paris", api_name="/submit_verdict")

    assert _http(app).get(EXPORT_PATH.lstrip("/")).status_code == 401  # anonymous
    refused = _http(app, "sam").get(EXPORT_PATH.lstrip("/"))
    assert refused.status_code == 403 and "reviewer" in refused.json()["detail"]
    for name in ("rita", "ann"):
        got = _http(app, name).get(EXPORT_PATH.lstrip("/"))
        assert got.status_code == 200 and got.headers["cache-control"] == "no-store"
        assert "attachment" in got.headers["content-disposition"]
        records = [json.loads(line) for line in got.text.splitlines()]
        assert f"review-{reply['reply_id']}" in {r["id"] for r in records}
    # Nothing was copied where Gradio serves files from, nor into the data folder.
    gradio_tmp = Path(os.environ.get("GRADIO_TEMP_DIR") or "/tmp/gradio")
    assert not list(gradio_tmp.rglob("reviews-*.jsonl")) if gradio_tmp.exists() else True
    assert sorted(p.name for p in app.store.data_dir.iterdir() if not p.name.startswith(DB_FILENAME)) == []


# -- 2. acting on replies ---------------------------------------------------------------------------


def test_staff_act_only_on_their_own_replies_and_reviewers_on_any(app):
    sam, sue, rita = _client(app, "sam"), _client(app, "sue"), _client(app, "rita")
    first = sam.predict("What is 12 times 11?", None, api_name="/ask")["reply_id"]
    second = sam.predict("What is 12 times 11?", None, api_name="/ask")["reply_id"]
    for reply_id in (first, second):
        assert re.fullmatch(r"[0-9a-f]{32}", reply_id)  # 128 random bits, not a counter
    assert first != second
    with pytest.raises(AppError, match="among your answers"):
        sue.predict(first, "down", "not yours", api_name="/feedback")
    with pytest.raises(AppError, match="among your answers"):
        sue.predict(first, api_name="/request_review")
    with pytest.raises(AppError, match="among your answers"):
        sue.predict("1", api_name="/request_review")  # an old-style sequential id finds nothing either
    assert app.store.feedback_for(first) == []
    assert sam.predict(first, "down", "looks wrong", api_name="/feedback") > 0
    assert rita.predict(second, api_name="/request_review") > 0  # reviewers may act on any reply
    item = next(i for i in app.store.queue() if i.reply_id == second)
    assert "user_requested" in item.reasons


def test_without_a_login_the_session_owns_its_replies(tmp_path):
    running = launch(tmp_path / "data", users=Users(), anonymous_role="staff")
    try:
        mine, other = Client(running.url, verbose=False), Client(running.url, verbose=False)
        reply_id = mine.predict("What is 12 times 11?", None, api_name="/ask")["reply_id"]
        with pytest.raises(AppError, match="among your answers"):
            other.predict(reply_id, "down", "", api_name="/feedback")
        assert mine.predict(reply_id, "up", "", api_name="/feedback") > 0
    finally:
        running.demo.close()


def test_a_long_comment_is_refused_with_its_limit_and_stores_nothing(app):
    sam = _client(app, "sam")
    reply_id = sam.predict("What is 12 times 11?", None, api_name="/ask")["reply_id"]
    with pytest.raises(AppError, match=f"the limit is {MAX_COMMENT_CHARS:,}"):
        sam.predict(reply_id, "down", "x" * 200_000, api_name="/feedback")
    assert app.store.feedback_for(reply_id) == []
    assert sam.predict(reply_id, "down", "y" * MAX_COMMENT_CHARS, api_name="/feedback") > 0


# -- 3. verdict history -----------------------------------------------------------------------------


def test_a_verdict_is_never_overwritten_silently_and_every_one_is_kept(app, tmp_path):
    sam, rita, ann = _client(app, "sam"), _client(app, "rita"), _client(app, "ann")
    reply_id = sam.predict("Capital of Italy? [unsure]", None, api_name="/ask")["reply_id"]
    item = next(i for i in rita.predict("all", "all", api_name="/review_queue") if i["reply_id"] == reply_id)
    assert rita.predict(item["id"], "correct", "", api_name="/submit_verdict")["verdict"] == "correct"
    with pytest.raises(AppError, match="already has the verdict 'correct'.*revise it explicitly"):
        ann.predict(item["id"], "incorrect", "Rome", api_name="/submit_verdict")
    assert app.store.get_item(item["id"]).verdict == "correct"
    revised = ann.predict(item["id"], "incorrect", "Rome", True, api_name="/submit_verdict")
    assert (revised["verdict"], revised["reviewer"], revised["revisions"]) == ("incorrect", "ann", 1)
    history = app.store.verdict_history(item["id"])
    assert [(v["verdict"], v["reviewer"]) for v in history] == [("correct", "rita"), ("incorrect", "ann")]
    (record,) = [r for r in queries.records(app.store) if r.id == f"review-{reply_id}"]
    assert (record.correct, record.gold, record.revisions) == (False, "Rome", 1)

    out = tmp_path / "reviews.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    exported = subprocess.run([sys.executable, "-m", "calibration", "reviews", "export", "--out", str(out),
                               "--data-dir", str(app.store.data_dir)], capture_output=True, text=True, env=env,
                              timeout=120)
    assert exported.returncode == 0 and "with a revised verdict" in exported.stdout, exported.stderr
    revised_count = sum(1 for line in out.read_text().splitlines() if json.loads(line)["revisions"])
    assert f"({revised_count} with a revised verdict" in exported.stdout
    fit = subprocess.run([sys.executable, "-m", "calibration", "fit", "--records", str(out), "--maps-dir",
                          str(tmp_path / "maps"), "--min-samples", "1"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert f"{revised_count} of " in fit.stdout and "revised; the latest verdict is used" in fit.stdout, fit.stderr


def test_a_store_from_before_the_history_keeps_its_verdicts(tmp_path):
    """Migration 0002 on a store written by 0001 only: verdicts become history, ids become random."""
    from assistant.reviews.migrations import MIGRATIONS

    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / DB_FILENAME)
    db.executescript("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);"
                     + MIGRATIONS[0][1]
                     + "INSERT INTO migrations VALUES ('0001_initial', '2026-01-01');"
                     "INSERT INTO replies (created_at, updated_at, user, question, status) "
                     "VALUES ('2026-01-01', '2026-01-01', 'sam', 'q?', 'ok');"
                     "INSERT INTO reviews (reply_id, created_at, status, verdict, reviewer, reviewed_at) "
                     "VALUES (1, '2026-01-01', 'closed', 'correct', 'rita', '2026-01-02');"
                     "INSERT INTO feedback (reply_id, created_at, user, thumbs) VALUES (1, '2026-01-01', 'sam', 'up');")
    db.close()
    store = ReviewStore(data)
    assert store.applied_migrations() == [name for name, _ in MIGRATIONS]
    (item,) = store.queue(status="all")
    assert re.fullmatch(r"[0-9a-f]{32}", item.reply_id) and item.verdict == "correct" and item.revisions == 0
    assert [(v["verdict"], v["reviewer"]) for v in store.verdict_history(item.id)] == [("correct", "rita")]
    assert len(store.feedback_for(item.reply_id)) == 1 and store.integrity_check() == []


# -- 4. sign-in ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _attempts(throttle, clock, user: str, address: str, n: int) -> list[float]:
    """`n` wrong passwords one after another, each after its wait: the waits."""
    waits = []
    for _ in range(n):
        admission = throttle.admit(user, address)
        assert not admission.refused_for
        waits.append(admission.wait)
        clock.now += admission.wait
        throttle.failed(user, address)
    return waits


def test_throttle_spaces_out_checks_then_locks_the_name_only_and_forgets():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    assert _attempts(throttle, clock, "sam", "10.0.0.1", 10) == [0, 0, 0, 1, 2, 4, 8, 8, 8, 8]
    locked = throttle.admit("sam", "10.0.0.2")  # the name is locked from any address, even with the right password
    assert locked.locked and locked.refused_for == throttle.lock_seconds and throttle.locked_for("sam") > 0
    ann = throttle.admit("ann", "10.0.0.1")  # another name behind the same address: slowed, never locked
    assert not ann.refused_for and 0 < ann.wait <= throttle.max_delay
    throttle.succeeded("ann", "10.0.0.1")
    clock.now += ann.wait
    waits = _attempts(throttle, clock, "guess", "10.0.0.1", 1) + [
        w for n in range(40) for w in _attempts(throttle, clock, f"guess{n}", "10.0.0.1", 1)]
    assert max(waits) == throttle.max_delay and throttle.failures("addr:10.0.0.1") == 51
    assert not throttle.admit("ann", "10.0.0.1").refused_for  # 51 failures at the address: still let in
    assert throttle.admit("ann", "10.0.0.2").wait == 0  # and nothing at all from elsewhere
    clock.now += throttle.lock_seconds + 1
    assert throttle.locked_for("sam") == 0 and throttle.admit("sam", "10.0.0.1").wait == 0


def test_many_attempts_at_once_from_one_address_take_turns_and_the_excess_is_told_when_to_come_back():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    _attempts(throttle, clock, "x", "10.0.0.3", 3)
    at_once = [throttle.admit(f"name{n}", "10.0.0.3") for n in range(12)]  # sent together, none answered yet
    admitted = [a.wait for a in at_once if not a.refused_for]
    assert admitted == sorted(admitted) and len(set(admitted)) == len(admitted)  # one check at a time
    assert max(admitted) <= throttle.max_wait
    refused = [a for a in at_once if a.refused_for]
    assert refused and all(not a.locked and a.refused_for <= throttle.max_delay for a in refused)
    assert throttle.failures("addr:10.0.0.3") == 3 + len(admitted)  # a refused attempt is not counted


def test_a_success_clears_the_name_and_takes_only_its_own_attempt_off_the_address():
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for name in ("a", "b", "c", "d"):
        _attempts(throttle, clock, name, "10.0.0.9", 1)
    throttle.admit("d", "10.0.0.9")
    throttle.succeeded("d", "10.0.0.9")
    assert throttle.failures("user:d") == 0 and throttle.failures("addr:10.0.0.9") == 4
    throttle.admit("e", "10.0.0.9")
    throttle.abandoned("e", "10.0.0.9")  # no answer on the password: not counted
    assert throttle.failures("user:e") == 0 and throttle.failures("addr:10.0.0.9") == 4


def test_throttle_memory_is_bounded():
    throttle = LoginThrottle(clock=Clock(), store=MemoryThrottleStore(max_keys=50))
    for n in range(1000):
        throttle.admit(f"user{n}", f"10.0.{n // 250}.{n % 250}")
    assert len(throttle.store) <= 50


@pytest.mark.parametrize("value, message", [
    ("proxy.local", "'proxy.local' is not an IP address or network"),
    ("10.0.0.5/24", "has host bits set"),
    ("10.0.0.1,*", "'*' is not an IP address or network"),
    ("0.0.0.0/0", "would trust every address"),
])
def test_a_bad_trusted_proxy_is_named_with_what_to_give(value, message):
    with pytest.raises(InputError, match="--trusted-proxy") as bad:
        parse_trusted_proxies([value])
    assert message in str(bad.value)


@pytest.mark.parametrize("peer, headers, seen", [
    ("127.0.0.1", {"x-forwarded-for": "10.9.9.9"}, "10.9.9.9"),
    ("127.0.0.1", {"x-forwarded-for": "6.6.6.6, 10.9.9.9"}, "10.9.9.9"),  # the left part is the client's own word
    ("127.0.0.1", {"x-forwarded-for": "10.9.9.9, 10.1.0.7"}, "10.9.9.9"),  # past a second trusted proxy
    ("127.0.0.1", {"x-forwarded-for": "10.9.9.9, not-an-ip"}, "127.0.0.1"),
    ("127.0.0.1", {"forwarded": 'for=6.6.6.6, for="[2001:db8::7]:4711";proto=https'}, "2001:db8::7"),
    ("::ffff:127.0.0.1", {"x-forwarded-for": "10.9.9.9:5555"}, "10.9.9.9"),
    ("10.2.0.1", {"x-forwarded-for": "10.9.9.9"}, "10.2.0.1"),  # not a trusted proxy: the header is ignored
])
def test_forwarded_headers_count_only_from_a_trusted_proxy(peer, headers, seen):
    seen_scopes = []

    async def app(scope, receive, send):
        seen_scopes.append(scope)

    middleware = TrustedProxies(app, parse_trusted_proxies(["127.0.0.1, 10.1.0.0/16"]))
    scope = {"type": "http", "client": (peer, 1234), "scheme": "http",
             "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(middleware(scope, None, None))
    assert seen_scopes[0]["client"][0] == seen
    if "proto=https" in headers.get("forwarded", ""):
        assert seen_scopes[0]["scheme"] == "https"


def test_repeated_wrong_passwords_lock_the_account_and_are_logged_without_secrets(tmp_path, caplog):
    fast = LoginThrottle(max_delay=0.01)  # the policy's shape, with waits short enough for a test
    running = launch(tmp_path / "data", users=_users(), throttle=fast)
    try:
        http = httpx.Client(base_url=running.url, timeout=30)
        with caplog.at_level(logging.WARNING, logger="calibrated_chat"):
            codes = [http.post("login", data={"username": "sam", "password": f"wrong-{n}"}).status_code
                     for n in range(12)]
            right = http.post("login", data={"username": "sam", "password": _password("sam")})
        assert codes[:10] == [400] * 10 and codes[10:] == [429, 429]
        assert right.status_code == 429 and "Too many failed sign-ins" in right.json()["detail"]
        assert int(right.headers["retry-after"]) > 60
        with pytest.raises(ValueError, match="Could not login"):
            Client(running.url, auth=("sam", _password("sam")), verbose=False)
        assert Client(running.url, auth=("sue", _password("sue")), verbose=False)  # another account: fine
        text = caplog.text
        assert text.count("sign-in failed for user 'sam'") == 10 and "sign-in refused for user 'sam'" in text
        assert "wrong-" not in text and _password("sam") not in text
    finally:
        running.demo.close()


def _wrong(http: httpx.Client, name: str, forwarded_for: str | None = None) -> int:
    headers = {"x-forwarded-for": forwarded_for} if forwarded_for else {}
    return http.post("login", data={"username": name, "password": "not-the-password"}, headers=headers).status_code


def test_wrong_passwords_under_made_up_names_never_lock_a_correct_password_out_of_the_address(tmp_path):
    """Issue 25.4: ~30 wrong passwords from one address (one office behind one proxy) made the admin's
    right password get 429 for 15 minutes."""
    fast = LoginThrottle(max_delay=0.01)  # the policy's shape, with waits short enough for a test
    running = launch(tmp_path / "data", users=_users(), throttle=fast)
    try:
        http = httpx.Client(base_url=running.url, timeout=30)
        assert [_wrong(http, f"made-up-{n}") for n in range(30)] == [400] * 30
        assert http.post("login", data={"username": "ann", "password": _password("ann")}).status_code == 200
        assert fast.failures("addr:127.0.0.1") == 30  # the address stays slowed down: ann's success is hers
        assert Client(running.url, auth=("rita", _password("rita")), verbose=False)
    finally:
        running.demo.close()


def test_a_forged_x_forwarded_for_from_a_peer_that_is_no_trusted_proxy_is_ignored(tmp_path, caplog):
    fast = LoginThrottle(max_delay=0.01)
    running = launch(tmp_path / "data", users=_users(), throttle=fast)  # no --trusted-proxy
    try:
        http = httpx.Client(base_url=running.url, timeout=30)
        with caplog.at_level(logging.WARNING, logger="calibrated_chat"):
            codes = [_wrong(http, f"guess-{n}", forwarded_for=f"10.9.9.{n}") for n in range(6)]
            http.get("v1/models", headers={"x-forwarded-for": "10.9.9.9"})
        assert codes == [400] * 6
        assert fast.failures("addr:127.0.0.1") == 6 and fast.failures("addr:10.9.9.0") == 0
        assert fast.spacing(fast.failures("addr:127.0.0.1") + 1) > 0  # the real peer is the one slowed down
        assert "from 127.0.0.1" in caplog.text and "10.9.9." not in caplog.text
    finally:
        running.demo.close()


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_callers(tmp_path, caplog):
    fast = LoginThrottle(max_delay=0.01)
    running = launch(tmp_path / "data", users=_users(), throttle=fast,
                     trusted_proxies=parse_trusted_proxies(["127.0.0.1"]))
    try:
        http = httpx.Client(base_url=running.url, timeout=30)
        with caplog.at_level(logging.WARNING, logger="calibrated_chat"):
            assert _wrong(http, "rita", forwarded_for="6.6.6.6, 10.9.9.9") == 400  # the proxy appended 10.9.9.9
            assert http.get("v1/models", headers={"x-forwarded-for": "10.9.9.8"}).status_code == 401
        assert fast.failures("addr:10.9.9.9") == 1
        assert fast.failures("addr:127.0.0.1") == 0 and fast.failures("addr:6.6.6.6") == 0
        assert "sign-in failed for user 'rita' from 10.9.9.9" in caplog.text
        assert "refused /v1/models from 10.9.9.8" in caplog.text  # the OpenAI endpoint sees the same address
        assert http.post("login", data={"username": "rita", "password": _password("rita")},
                         headers={"x-forwarded-for": "10.9.9.9"}).status_code == 200
    finally:
        running.demo.close()


def test_refused_calls_are_logged(app, caplog):
    with caplog.at_level(logging.WARNING, logger="calibrated_chat"):
        with pytest.raises(AppError, match="Refused"):
            _client(app, "sam").predict("open", "all", api_name="/review_queue")
        _http(app, "sam").get(EXPORT_PATH.lstrip("/"))
    assert "refused a reviewer-only call for user 'sam' (role staff)" in caplog.text
    assert f"refused {EXPORT_PATH} for user 'sam' (role staff)" in caplog.text


def test_sign_out_ends_the_session(app):
    http = _http(app, "rita")
    assert http.get(EXPORT_PATH.lstrip("/")).status_code == 200
    http.get("logout")
    assert http.get(EXPORT_PATH.lstrip("/")).status_code == 401


def test_data_files_are_private(tmp_path):
    from assistant.web.auth import save_users

    store = ReviewStore(tmp_path / "data")
    store.record_reply(_reply(), "sam")
    queries.export_records(store, tmp_path / "data" / "export.jsonl")
    save_users(make_users(), tmp_path / "users.json")
    files = [tmp_path / "data" / DB_FILENAME, tmp_path / "data" / f"{DB_FILENAME}-wal",
             tmp_path / "data" / f"{DB_FILENAME}-shm", tmp_path / "data" / "export.jsonl", tmp_path / "users.json"]
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == {p.name: 0o600 for p in files}
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


def test_an_old_world_readable_store_becomes_private(tmp_path):
    ReviewStore(tmp_path).close()
    os.chmod(tmp_path / DB_FILENAME, 0o644)
    ReviewStore(tmp_path)
    assert stat.S_IMODE((tmp_path / DB_FILENAME).stat().st_mode) == 0o600


# -- 5. interrupted answers ---------------------------------------------------------------------------


def _reply():
    from tests.conftest import make_reply

    return make_reply()


def test_answers_streaming_when_the_app_died_are_marked_interrupted_at_start_up(tmp_path):
    """SIGKILL the app mid-stream, start it again: the reply is 'interrupted' and in the reviewers' queue."""
    data = tmp_path / "data"
    proc, url = app_subprocess(data, 0.3)
    Client(url, auth=("sam", _password("sam")), verbose=False).submit("What is 12 times 11?", None,
                                                                      api_name="/ask_stream")
    kill_while_streaming(proc, data)
    assert ReviewStore(data).queue(status="all") == []  # opening the store alone changes nothing
    running = launch(data)  # the start-up
    try:
        queue = _client(running, "rita").predict("open", "all", api_name="/review_queue")
        (item,) = queue
        assert item["question"] == "What is 12 times 11?" and "interrupted" in item["reasons"]
        assert item["status_of_reply"] == "interrupted"
        assert stored_reply(running.store, item["reply_id"])["status"] == "interrupted"
    finally:
        running.demo.close()


def test_a_reviewer_sees_an_interrupted_answer_as_such():
    from assistant.reviews.types import QueueItem
    from assistant.web.render import queue_item_markdown

    item = QueueItem(id=3, reply_id="ab" * 16, created_at="2026-01-01T00:00:00", status="open",
                     reasons=("interrupted",), question="q", answer=None, reasoning="", raw_confidence=None,
                     confidence=None, domain="math", user="sam", verdict=None, corrected_answer=None, reviewer=None,
                     reviewed_at=None, status_of_reply="interrupted")
    text = queue_item_markdown(item)
    assert "the app stopped while this answer was being written" in text and "Interrupted" in text
    assert Actor("sam").any_reply is False


def test_reviewers_see_the_comment_the_raw_output_and_the_signals(app):
    """Issue 14.12: the reviewer's item shows who thumbed it down and why, the whole output and every signal."""
    from assistant.web import render as ui

    sam = _client(app, "sam")
    reply = sam.predict("What is 12 times 11?", None, api_name="/ask")
    sam.predict(reply["reply_id"], "down", "12 × 11 is 132, but the working is <b>wrong</b>", api_name="/feedback")
    item = next(i for i in app.store.queue() if i.reply_id == reply["reply_id"])
    full = app.store.get_item(item.id)
    assert [(f["user"], f["thumbs"]) for f in full.feedback] == [("sam", "down")]
    assert full.raw_output == reply["raw_output"] and full.signals == reply["signals"] and full.signals
    text = ui.queue_item_markdown(full)
    assert "thumbs down** by sam" in text and "the working is &lt;b&gt;wrong&lt;/b&gt;" in text
    assert "The model's whole output" in text and "Signals behind the confidence" in text and "stated" in text
    (record,) = [r for r in queries.records(app.store) if r.id == f"review-{reply['reply_id']}"] or [None]
    assert record is None  # no verdict yet: not a record


def test_trusted_proxies_come_from_the_flag_else_the_variable_and_a_bad_one_stops_the_app(capsys):
    import app as entry

    env = {"CALIBRATED_CHAT_TRUSTED_PROXIES": "10.1.0.0/24, 10.0.0.5"}
    assert [str(n) for n in entry.trusted_proxies(None, env)] == ["10.1.0.0/24", "10.0.0.5/32"]
    assert [str(n) for n in entry.trusted_proxies(["127.0.0.1", "::1,fd00::/8"], env)] == [
        "127.0.0.1/32", "::1/128", "fd00::/8"]  # the flag wins over the variable
    assert entry.trusted_proxies(None, {}) == ()  # neither: nobody's forwarded headers count
    with pytest.raises(InputError, match="CALIBRATED_CHAT_TRUSTED_PROXIES: 'proxy.local'"):
        entry.trusted_proxies(None, {"CALIBRATED_CHAT_TRUSTED_PROXIES": "proxy.local"})
    assert entry.main(["--trusted-proxy", "10.0.0.5/24"]) == 2  # before any model is loaded
    err = capsys.readouterr().err
    assert err.startswith("error: --trusted-proxy: '10.0.0.5/24'") and "has host bits set" in err
