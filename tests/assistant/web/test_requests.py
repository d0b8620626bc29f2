"""Requests, fairness and uploads (issue 25 items 5-7, issue 24 item 3), by direct HTTP calls against a
real Gradio server: malformed and over-long requests get a 4xx with a message and log no traceback;
one user's flood cannot hold another's question; visitors without a sign-in are limited per address;
uploads are refused."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant.core.errors import InputError
from assistant.models.backend import GenerationOptions
from assistant.web.context import LOCAL_ADMIN
from assistant.web.fairness import Admission, Busy, Caller, Limits
from assistant.web.openai_api import MODEL_ID, parse_request
from tests.conftest import (
    TEST_USERS,
    FixedRouter,
    RunningApp,
    ScriptedBackend,
    free_port,
    make_maps,
    make_users,
)

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

DEEP = b'{"messages":' + b"[" * 100_000


@dataclass
class HeldBackend(ScriptedBackend):
    """Notes each question as the model starts on it, and holds every answer until `release` is set."""

    started: list = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def pieces(self, messages, options=GenerationOptions(), cancel=None):
        self.started.append(messages[-1]["content"])
        self.release.wait(120)
        return (yield from super().pieces(messages, options, cancel))


def serve_app(tmp_path, *, backend=None, users=None, anonymous_role="admin", limits=Limits()) -> RunningApp:
    """The app on a free port, as `tests.conftest.launch` starts it, with `limits` and `backend`."""
    from assistant.answering.pipeline import Assistant
    from assistant.answering.prompts import load_prompt
    from assistant.reviews.store import ReviewStore
    from assistant.web.app import ChatApp, serve

    store = ReviewStore(tmp_path)
    assistant = Assistant(backend or ScriptedBackend(), load_prompt("confidence_tags"), FixedRouter(), make_maps())
    chat_app = ChatApp(assistant, store, make_users() if users is None else users, anonymous_role=anonymous_role,
                       limits=limits)
    demo = chat_app.build()
    demo.queue(max_size=32, default_concurrency_limit=1)
    serve(demo, chat_app.ctx, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
          quiet=True, show_error=True)
    return RunningApp(demo.local_url.rstrip("/") + "/", store, assistant, demo)


def signed_in(app, name: str) -> httpx.Client:
    http = httpx.Client(base_url=app.url, timeout=60)
    http.post("login", data={"username": name, "password": TEST_USERS[name][1]}).raise_for_status()
    return http


def until(condition, what) -> None:
    """Wait for a state of the server (never for a time): fail only if it never comes, saying `what`
    (a text, or a function giving one from the state then)."""
    done = threading.Event()
    for _ in range(3600):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError(f"never happened: {what() if callable(what) else what}")


def no_traceback(caplog, capfd) -> None:
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "Traceback" not in capfd.readouterr().err


# -- the gate itself -------------------------------------------------------------------------------


def test_the_gate_takes_turns_across_callers_and_refuses_a_callers_excess_in_plain_words():
    gate = Admission(slots=1, limits=Limits(per_user=3))
    sam, rita = Caller("sam"), Caller("rita")
    mine = [gate.enter(sam) for _ in range(3)]
    with pytest.raises(Busy, match="You already have 3 questions waiting or being answered") as refused:
        gate.enter(sam)
    assert refused.value.retry_after > 0
    theirs = gate.enter(rita)
    assert [t.admitted.is_set() for t in mine] == [True, False, False] and not theirs.admitted.is_set()
    gate.leave(mine[0])
    assert theirs.admitted.is_set() and not mine[1].admitted.is_set()  # rita's turn before sam's backlog
    gate.leave(theirs)
    assert mine[1].admitted.is_set()
    cancel = threading.Event()
    cancel.set()
    assert gate.wait(mine[2], cancel) is False and gate.held(sam) == 1  # stopped while waiting: place left
    gate.leave(mine[1])
    assert gate.held(sam) == 0 and gate.waiting() == 0
    local = [gate.enter(LOCAL_ADMIN) for _ in range(5)]  # one person, nobody else to hold up: the busy limit only
    for ticket in local:
        gate.leave(ticket)


def test_visitors_are_limited_per_minute_and_waiting_and_everyone_by_a_busy_model():
    now = [0.0]
    gate = Admission(slots=1, limits=Limits(visitor_per_minute=3, visitor_waiting=2, max_waiting=2),
                     clock=lambda: now[0])
    visitor = Caller("10.0.0.7", visitor=True)
    for _ in range(3):
        gate.leave(gate.enter(visitor))
    with pytest.raises(Busy, match="You have asked 3 questions in the last minute") as refused:
        gate.enter(visitor)
    assert refused.value.retry_after == 61
    now[0] = 60.0
    held = [gate.enter(visitor), gate.enter(visitor)]
    with pytest.raises(Busy, match="the most one visitor may have at once"):
        gate.enter(visitor)
    gate.enter(Caller("sam"))
    with pytest.raises(Busy, match="The model is busy"):
        gate.enter(Caller("ann"))
    for ticket in held:
        gate.leave(ticket)
    assert gate.held(visitor) == 0


def test_an_async_waiter_that_goes_away_leaves_its_place():
    gate = Admission(slots=1)

    async def scenario():
        first, second = gate.enter(Caller("a")), gate.enter(Caller("b"))
        task = asyncio.ensure_future(gate.wait_async(second))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert gate.waiting() == 0 and gate.held(Caller("b")) == 0
        third = gate.enter(Caller("c"))
        waiter = asyncio.ensure_future(gate.wait_async(third))
        gate.leave(first)
        await waiter  # woken from the leaving thread's call
        gate.leave(third)

    asyncio.run(scenario())


# -- item 6: fairness over HTTP --------------------------------------------------------------------


def test_one_users_flood_does_not_hold_up_another_on_ask_and_the_openai_endpoint(tmp_path):
    """sam floods /ask: his excess is refused in plain words (by /ask, and by the OpenAI endpoint with a 429),
    and the questions rita (/ask) and ann (OpenAI endpoint) send after his are the next the model starts on."""
    users, ann_key = make_users().with_new_key("ann", "2026-12-01T00:00:00+00:00")
    users, sam_key = users.with_new_key("sam", "2026-12-01T00:00:00+00:00")
    backend = HeldBackend(model_id="fake-model")
    app = serve_app(tmp_path, backend=backend, users=users, limits=Limits(per_user=4))
    try:
        sam = Client(app.url, auth=("sam", TEST_USERS["sam"][1]), verbose=False)
        floods = [sam.submit(f"sam question {n}?", None, api_name="/ask") for n in range(8)]
        ctx = _context(app)
        until(lambda: sum(job.done() for job in floods) >= 4 and ctx.admission.held(Caller("sam")) == 4,
              lambda: f"sam: 4 questions in the gate, the rest refused: {[job.done() and str(job.exception()) for job in floods]}")
        refusals = [str(job.exception()) for job in floods if job.done()]
        assert len(refusals) == 4 and all("You already have 4 questions waiting or being answered" in e
                                          for e in refusals), refusals
        api = httpx.post(app.url + "v1/chat/completions", headers={"authorization": f"Bearer {sam_key}"},
                         json={"model": MODEL_ID, "messages": [{"role": "user", "content": "sam via api?"}]})
        assert api.status_code == 429 and int(api.headers["retry-after"]) > 0
        assert "You already have 4 questions" in api.json()["error"]["message"]
        rita = Client(app.url, auth=("rita", TEST_USERS["rita"][1]), verbose=False)
        rita_job = rita.submit("rita: what is 2+2?", None, api_name="/ask")
        answered = {}

        def ann_asks():
            answered["ann"] = httpx.post(
                app.url + "v1/chat/completions", headers={"authorization": f"Bearer {ann_key}"}, timeout=120,
                json={"model": MODEL_ID, "messages": [{"role": "user", "content": "ann: what is 3+3?"}]})

        ann = threading.Thread(target=ann_asks)
        ann.start()
        until(lambda: len(backend.started) == 1 and _waiting(app) == 5, "rita and ann waiting with sam's three")
        backend.release.set()
        ann.join(120)
        assert answered["ann"].status_code == 200 and rita_job.result(timeout=120)["answer"] == "132"
        assert [job.result(timeout=120)["answer"] for job in floods if job.exception() is None] == ["132"] * 4
        who = [q.split()[1].rstrip(":") for q in backend.started]  # "Question: rita: …"
        assert who[0] == "sam" and sorted(who[1:3]) == ["ann", "rita"] and who[3:] == ["sam"] * 3
    finally:
        backend.release.set()
        app.demo.close()


def _waiting(app) -> int:
    return _context(app).admission.waiting()


def _context(app):
    """The WebContext the running app answers through (the Api object holds it)."""
    for fn in app.demo.fns.values():
        owner = getattr(fn.fn, "__self__", None)
        if owner is not None and hasattr(owner, "ctx"):
            return owner.ctx
    raise AssertionError("no WebContext found")


def test_visitors_without_a_sign_in_are_limited_per_minute_in_plain_words(tmp_path, caplog, capfd):
    from assistant.web.auth import Users

    app = serve_app(tmp_path, users=Users(), anonymous_role="staff", limits=Limits(visitor_per_minute=2))
    try:
        visitor = Client(app.url, verbose=False)
        assert [visitor.predict(f"q{n}: 12 times 11?", None, api_name="/ask")["answer"] for n in range(2)] \
            == ["132", "132"]
        forged = Client(app.url, headers={"X-Forwarded-For": "10.9.9.9"}, verbose=False)  # no trusted proxy
        with caplog.at_level(logging.INFO, logger="calibrated_chat"):
            for client in (visitor, forged):
                with pytest.raises(AppError, match="You have asked 2 questions in the last minute, the most a visitor"):
                    client.predict("q3: 12 times 11?", None, api_name="/ask")
        assert _context(app).caller_of(_Request("127.0.0.1")) == Caller("127.0.0.1", visitor=True)
        assert len([r for r in caplog.records if "X-Forwarded-For was not believed" in r.getMessage()]) == 1
        no_traceback(caplog, capfd)
    finally:
        app.demo.close()


@dataclass
class _Request:
    host: str
    username: str | None = None
    headers: dict = field(default_factory=dict)

    @property
    def client(self):
        return type("Client", (), {"host": self.host})()


def test_the_chat_tells_a_user_over_their_share_and_stores_nothing(tmp_path):
    from assistant.web.app import ChatApp
    from tests.conftest import make_assistant

    chat_app = ChatApp(make_assistant(), None, make_users(), anonymous_role=None, limits=Limits(per_user=1))
    ctx = chat_app.ctx
    held = ctx.admission.enter(Caller("sam"))
    first = next(chat_app.chat.respond("What is 12 times 11?", [], None, None, _Request("127.0.0.1", "sam")))
    turns, box, status = first[0], first[2], first[3]
    assert turns == [] and box == "What is 12 times 11?" and "You already have 1 question waiting" in status
    ctx.admission.leave(held)


# -- item 5: malformed and over-long requests ------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    users, key = make_users().with_new_key("sam", "2026-12-01T00:00:00+00:00")
    backend = ScriptedBackend(model_id="fake-model", context_tokens=400)  # tokens are words
    app = serve_app(tmp_path_factory.mktemp("requests"), backend=backend, users=users)
    yield app, key
    app.demo.close()


def _long_history(words: int) -> list[dict]:
    text = " ".join(["word"] * words)
    return [m for _ in range(3) for m in ({"role": "user", "content": text}, {"role": "assistant", "content": text})]


def test_a_deeply_nested_body_gets_400_and_no_traceback(keyed, caplog, capfd):
    app, key = keyed
    with caplog.at_level(logging.INFO):
        r = httpx.post(app.url + "v1/chat/completions", content=DEEP, timeout=60,
                       headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
        assert r.status_code == 400 and "nested too deeply" in r.json()["error"]["message"]
        http = signed_in(app, "sam")
        for path in ("gradio_api/call/ask", "gradio_api/queue/join", "gradio_api/run/ask"):
            r = http.post(path, content=DEEP, headers={"content-type": "application/json"})
            assert r.status_code == 400, path  # FastAPI's own answer
        bad = http.post("gradio_api/call/ask", content=b"\xff\xfe{", headers={"content-type": "application/json"})
        assert 400 <= bad.status_code < 500
    no_traceback(caplog, capfd)


def test_an_over_long_conversation_gets_400_from_the_api_and_is_trimmed_for_ask(keyed, caplog, capfd):
    app, key = keyed
    messages = [*_long_history(100), {"role": "user", "content": "What is 12 times 11?"}]
    with caplog.at_level(logging.INFO):
        r = httpx.post(app.url + "v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=60,
                       json={"model": MODEL_ID, "messages": messages})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "context_length_exceeded" and "the conversation is too long" in error["message"]
    assert "start a new conversation" in error["message"]
    no_traceback(caplog, capfd)
    app.assistant.backend.history.clear()
    sam = Client(app.url, auth=("sam", TEST_USERS["sam"][1]), verbose=False)
    reply = sam.predict("What is 12 times 11?", messages[:-1], api_name="/ask")
    assert reply["answer"] == "132"  # the oldest exchanges left out until it fits


@pytest.mark.parametrize("history", ["not a list", [1, 2], [{"role": "user"}], [{"role": "x", "content": "hi"}]])
def test_a_malformed_history_on_ask_is_refused_with_its_shape_and_no_traceback(keyed, history, caplog, capfd):
    app, _ = keyed
    sam = Client(app.url, auth=("sam", TEST_USERS["sam"][1]), verbose=False)
    with caplog.at_level(logging.INFO):
        with pytest.raises(AppError, match="`history` must be a list of messages"):
            sam.predict("What is 12 times 11?", history, api_name="/ask")
    no_traceback(caplog, capfd)


def test_fit_history_leaves_out_the_oldest_exchanges_until_the_prompt_fits():
    from assistant.answering.pipeline import Assistant, Question
    from assistant.answering.prompts import load_prompt

    backend = ScriptedBackend(model_id="fake-model", context_tokens=700)
    assistant = Assistant(backend, load_prompt("confidence_tags"), FixedRouter(), make_maps(),
                          options=GenerationOptions(max_new_tokens=256))
    history, question = _long_history(100), assistant.check_question("What is 2+2?")
    kept = assistant.fit_history(question, history)
    assert kept == history[-len(kept):] and 0 < len(kept) < len(history) and kept[0]["role"] == "user"
    assert assistant.fit_history(question, history[-2:], trim=False) == history[-2:]
    with pytest.raises(InputError, match="the conversation is too long"):
        assistant.fit_history(question, history, trim=False)
    with pytest.raises(InputError, match="the question is too long for this model"):
        assistant.fit_history(Question(" ".join(["long"] * 600), 600), None)  # within a higher question limit


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                         st.sampled_from(["model", "messages", "role", "content", "type", "text", "stream",
                                          "stream_options", "include_usage"]), inner, max_size=4), max_leaves=20)


@given(_json)
def test_any_json_body_is_either_a_request_or_an_input_error(body):
    try:
        parse_request(body)
    except InputError:
        pass


@given(st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", 5]),
                                       "content": _json}), min_size=1, max_size=4))
def test_any_messages_are_either_a_request_or_an_input_error(messages):
    try:
        parse_request({"model": MODEL_ID, "messages": messages})
    except InputError:
        pass


# -- item 7: uploads ------------------------------------------------------------------------------


def test_uploads_are_refused_and_nothing_can_be_fetched_back(keyed, caplog, capfd):
    app, _ = keyed
    sam = signed_in(app, "sam")
    page = b"<html><script>alert(1)</script></html>"
    for path in ("gradio_api/upload", "gradio_api/upload/", "upload", "gradio_api/process_recording"):
        r = sam.post(path, files={"files": ("x.html", page, "text/html")})
        assert r.status_code == 403 and "no file uploads" in r.json()["detail"], path
    big = sam.post("gradio_api/upload", files={"files": ("big.bin", b"\0" * (3 * 1024 * 1024))})
    assert big.status_code == 403
    component = sam.post("gradio_api/component_server", files={"data": ("x.html", page, "text/html")})
    assert component.status_code == 403
    assert app.demo.max_file_size == 0 and not app.demo.upload_file_set
    no_traceback(caplog, capfd)


# -- issue 24: refused role calls ------------------------------------------------------------------


def test_a_refused_role_call_is_logged_in_one_line_without_a_traceback(keyed, caplog, capfd):
    app, _ = keyed
    capfd.readouterr()
    with caplog.at_level(logging.WARNING, logger="calibrated_chat"):
        with pytest.raises(AppError, match="Refused"):
            Client(app.url, auth=("sam", TEST_USERS["sam"][1]), verbose=False).predict(api_name="/dashboard_stats")
    lines = [r for r in caplog.records if "admin-only call for user 'sam'" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0].getMessage()
    no_traceback(caplog, capfd)


@pytest.mark.slow
def test_the_real_model_refuses_an_over_long_conversation_by_the_api_and_trims_it_for_ask(tmp_path, caplog, capfd):
    """The default SmolLM2 GGUF (a 4,096-token context) behind the app: three long turns (over 15,000
    tokens) get 400 `context_length_exceeded` from the OpenAI endpoint (was 502 `model_error`); /ask
    with the same history answers from the latest turns that fit."""
    from assistant.answering.pipeline import Assistant
    from assistant.core.config import ModelConfig, set_offline_env
    from assistant.web.app import ChatApp, serve

    set_offline_env()
    assistant = Assistant.from_config(ModelConfig(), options=GenerationOptions(max_new_tokens=64))
    turn = "The quick brown fox jumps over the lazy dog near the river bank. " * 400
    history = [m for _ in range(3) for m in ({"role": "user", "content": turn}, {"role": "assistant", "content": turn})]
    assert 3 * assistant.backend.count_tokens(turn) > 15_000
    users, key = make_users().with_new_key("sam", "2026-12-01T00:00:00+00:00")
    chat_app = ChatApp(assistant, None, users, anonymous_role=None)
    demo = chat_app.build()
    demo.queue(max_size=32, default_concurrency_limit=1)
    serve(demo, chat_app.ctx, server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        with caplog.at_level(logging.INFO):
            r = httpx.post(demo.local_url + "v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                           timeout=120, json={"model": MODEL_ID, "messages": [
                               *history[:5], {"role": "user", "content": "What is 15 + 27?"}]})
        assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded", r.text
        assert "the conversation is too long for this model" in r.json()["error"]["message"]
        no_traceback(caplog, capfd)
        sam = Client(demo.local_url, auth=("sam", TEST_USERS["sam"][1]), verbose=False)
        reply = sam.predict("What is 15 + 27?", history, api_name="/ask")
        assert reply["prompt_tokens"] < assistant.backend.context_tokens  # older turns left out until it fit
    finally:
        demo.close()


@pytest.mark.browser
def test_in_the_chat_a_flood_does_not_hold_up_another_user_and_its_excess_is_told(tmp_path):
    """Chromium, the chat tab: while sam has 4 /ask calls in hand, his own chat question is refused in plain
    words (kept in the box), and rita's chat question is the next the model starts on."""
    from pathlib import Path

    if not Path("/usr/bin/chromium").exists():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package")
    backend = HeldBackend(model_id="fake-model")
    app = serve_app(tmp_path, backend=backend, limits=Limits(per_user=4))
    try:
        sam = Client(app.url, auth=("sam", TEST_USERS["sam"][1]), verbose=False)
        floods = [sam.submit(f"sam question {n}?", None, api_name="/ask") for n in range(4)]
        until(lambda: _context(app).admission.held(Caller("sam")) == 4, "sam's four questions in hand")
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu"])
            pages = {name: _signed_in_page(browser, app, name) for name in ("sam", "rita")}
            _ask_in_chat(pages["sam"], "sam: and one more?")
            pages["sam"].wait_for_selector("#cc-status :text('You already have 4 questions')", timeout=60_000)
            assert pages["sam"].input_value("#cc-question textarea") == "sam: and one more?"
            _ask_in_chat(pages["rita"], "rita: what is 2+2?")
            until(lambda: _waiting(app) == 4, "rita's chat question waiting with sam's three")
            backend.release.set()
            pages["rita"].wait_for_selector("#cc-chat [data-testid='bot'] :text('132')", timeout=120_000)
            browser.close()
        assert all(job.result(timeout=120)["answer"] == "132" for job in floods)
        who = [q.split()[1].rstrip(":") for q in backend.started]
        assert who == ["sam", "rita", "sam", "sam", "sam"]
    finally:
        backend.release.set()
        app.demo.close()


def _signed_in_page(browser, app, name: str):
    page = browser.new_page()
    page.goto(app.url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(TEST_USERS[name][1])
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#cc-question textarea", timeout=60_000)
    return page


def _ask_in_chat(page, question: str) -> None:
    page.fill("#cc-question textarea", question)
    page.click("#cc-send")


def test_the_limits_come_from_flags_else_the_environment(monkeypatch):
    from app import _parser

    monkeypatch.setenv("CALIBRATED_CHAT_VISITOR_QUESTIONS_PER_MINUTE", "3")
    args = _parser().parse_args(["--max-waiting-per-user", "2"])
    assert (args.max_waiting_per_user, args.visitor_max_waiting, args.visitor_questions_per_minute) == (2, 2, 3)
    monkeypatch.setenv("CALIBRATED_CHAT_MAX_WAITING_PER_USER", "none")
    with pytest.raises(SystemExit):
        _parser().parse_args([])
    with pytest.raises(InputError, match="per_user must be a whole number of at least 1"):
        Limits(per_user=0)
