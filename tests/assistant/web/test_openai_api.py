"""calibrated-chat as an OpenAI-compatible endpoint (issue 13.3), driven with the official `openai` client:
answers with their `calibration`, streaming and not, per-user API keys, refusals, and flagged answers
in the review queue exactly like chat answers."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import replace

import pytest

from assistant.web.auth import Users, load_users, save_users
from assistant.web.openai_api import MODEL_ID, parse_request
from tests.conftest import launch, make_users, stored_reply

openai = pytest.importorskip("openai", reason="the endpoint tests use the official openai client")


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    """The app with the test users; sam and rita have an API key each."""
    users, sam_key = make_users().with_new_key("sam", "2026-12-01T00:00:00+00:00")
    users, rita_key = users.with_new_key("rita", "2026-12-01T00:00:00+00:00")
    app = launch(tmp_path_factory.mktemp("openai-data"), users=users, delay=0.01)
    yield app, sam_key, rita_key
    app.demo.close()


def _client(app, key):
    return openai.OpenAI(base_url=app.url + "v1", api_key=key, max_retries=0, timeout=60)


def _ask(question: str) -> list[dict]:
    return [{"role": "user", "content": question}]


def test_an_answer_with_no_final_answer_has_no_figure_in_its_calibration(keyed):
    """Issue 25.9: the calibration object gave a figure to an output with no final answer."""
    app, sam_key, _ = keyed
    r = _client(app, sam_key).chat.completions.create(model=MODEL_ID, messages=_ask("12 times 11? [no answer]"))
    cal = r.model_extra["calibration"]
    assert cal["confidence"] is None and cal["raw_confidence"] == 0.65 and cal["review_reasons"] == ["no_answer"]
    assert cal["summary"].startswith("No answer:") and "times in" not in cal["summary"]


def test_an_answer_comes_with_its_calibration_and_is_stored_for_its_user(keyed):
    app, sam_key, _ = keyed
    client = _client(app, sam_key)
    assert [m.id for m in client.models.list()] == [MODEL_ID]
    r = client.chat.completions.create(model=MODEL_ID, messages=_ask("What is 12 times 11? [api-1]"))
    assert r.choices[0].message.content == "132" and r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.model_extra["reasoning_content"] == "Twelve elevens are 132."
    assert r.usage is None  # the scripted backend cannot count what it read, so no usage is made up
    cal = r.model_extra["calibration"]
    assert cal["raw_confidence"] == 0.95 and cal["confidence"] == pytest.approx(0.76)
    assert cal["domain"] == "math" and cal["map_version"] == "v0001" and cal["needs_review"] is False
    assert cal["summary"].startswith("Chance it is right: 76% — answers like this were right about 76 times in 100.")
    row = stored_reply(app.store, cal["reply_id"])
    assert row["user"] == "sam" and row["question"] == "What is 12 times 11? [api-1]" and row["status"] == "ok"


def test_a_stream_sends_the_working_then_the_answer_and_calibration_last(keyed):
    app, sam_key, _ = keyed
    chunks = list(_client(app, sam_key).chat.completions.create(
        model=MODEL_ID, messages=_ask("What is 12 times 11? [api-stream]"), stream=True))
    deltas = [c.choices[0].delta for c in chunks]
    working = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert "Twelve elevens are 132." in working and len([d for d in deltas if d.model_extra]) > 3  # streamed
    assert "".join(d.content or "" for d in deltas) == "132"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert "calibration" in chunks[-1].model_extra and not any("calibration" in (c.model_extra or {})
                                                                for c in chunks[:-1])
    assert chunks[-1].model_extra["calibration"]["confidence"] == pytest.approx(0.76)


def test_a_flagged_answer_enters_the_review_queue_like_a_chat_answer(keyed):
    app, _, rita_key = keyed
    r = _client(app, rita_key).chat.completions.create(model=MODEL_ID, messages=_ask("Capital of France? [unsure]"))
    cal = r.model_extra["calibration"]
    assert r.choices[0].message.content == "Lyon" and cal["needs_review"] and "low_confidence" in cal["review_reasons"]
    assert "Needs human check" in cal["summary"]
    (item,) = [i for i in app.store.queue() if i.reply_id == cal["reply_id"]]
    assert item.user == "rita" and "low_confidence" in item.reasons


def test_earlier_messages_are_the_history_and_system_messages_are_ignored():
    question, history, stream, _ = parse_request({"model": MODEL_ID, "stream": True, "messages": [
        {"role": "system", "content": "Always say 100%."}, {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"}, {"role": "user", "content": [{"type": "text", "text": "And 3+3?"}]}]})
    assert (question, stream) == ("And 3+3?", True)
    assert history == [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "4"}]


def test_without_a_key_or_with_a_wrong_one_the_call_is_refused_and_logged(keyed, caplog):
    app, sam_key, _ = keyed
    for key in ("", "cc-not-a-real-key", sam_key[:-1] + ("A" if sam_key[-1] != "A" else "B")):
        with pytest.raises(openai.AuthenticationError) as refused:
            _client(app, key or "x").chat.completions.create(model=MODEL_ID, messages=_ask("hi [refused]"))
        assert "add-key" in str(refused.value)
    with pytest.raises(openai.AuthenticationError):
        _client(app, "x").models.list()
    assert app.store.read("SELECT COUNT(*) FROM replies WHERE question = 'hi [refused]'")[0][0] == 0
    assert "unknown API key" in caplog.text and sam_key[:-1] not in caplog.text  # never the key itself


def test_bad_requests_get_a_clear_error_and_store_nothing(keyed):
    app, sam_key, _ = keyed
    client = _client(app, sam_key)
    cases = [
        (dict(model="gpt-4o", messages=_ask("q [bad]")), "unknown model 'gpt-4o'"),
        (dict(model=MODEL_ID, messages=[]), "non-empty list"),
        (dict(model=MODEL_ID, messages=[{"role": "user", "content": "q [bad]"}, {"role": "assistant",
                                                                               "content": "a"}]), "last message"),
        (dict(model=MODEL_ID, messages=_ask("   ")), "empty"),
        (dict(model=MODEL_ID, messages=_ask("q [bad]"), stream=True, stream_options={"include_usage": "yes"}),
         "include_usage"),
    ]
    for kwargs, words in cases:
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(**kwargs)
        assert words in str(bad.value), (words, str(bad.value))
    request = urllib.request.Request(app.url + "v1/chat/completions", data=b"{not json", method="POST",
                                     headers={"authorization": f"Bearer {sam_key}"})
    with pytest.raises(urllib.error.HTTPError) as broken:
        urllib.request.urlopen(request, timeout=30)
    assert broken.value.code == 400 and "not JSON" in json.loads(broken.value.read())["error"]["message"]
    assert app.store.read("SELECT COUNT(*) FROM replies WHERE question LIKE '%[bad]%'")[0][0] == 0


def test_a_client_that_goes_away_mid_stream_stops_the_model_and_the_row_keeps_what_streamed(keyed):
    app, sam_key, _ = keyed
    stream = _client(app, sam_key).chat.completions.create(model=MODEL_ID, messages=_ask("Count slowly [long]"),
                                                           stream=True)
    for n, _chunk in enumerate(stream):
        if n == 5:
            break
    stream.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = app.store.read("SELECT status, answer, reasoning FROM replies WHERE question = 'Count slowly [long]'")
        if rows and rows[0]["status"] != "streaming":
            break
        time.sleep(0.1)
    assert rows[0]["status"] == "cancelled" and "step" in rows[0]["answer"] + rows[0]["reasoning"]


def test_without_users_the_endpoint_is_open_on_this_computer_only(tmp_path):
    local = launch(tmp_path / "local", users=Users())  # 127.0.0.1, no users file: the local admin
    try:
        r = _client(local, "anything").chat.completions.create(model=MODEL_ID, messages=_ask("What is 12*11?"))
        assert r.choices[0].message.content == "132"
    finally:
        local.demo.close()
    public = launch(tmp_path / "public", users=Users(), anonymous_role="staff")  # reachable from elsewhere
    try:
        with pytest.raises(openai.AuthenticationError) as refused:
            _client(public, "anything").chat.completions.create(model=MODEL_ID, messages=_ask("What is 12*11?"))
        assert "no users" in str(refused.value)
    finally:
        public.demo.close()


def test_keys_are_kept_hashed_and_a_revoked_key_stops_working(tmp_path):
    users, key = make_users().with_new_key("sam", "2026-12-01T00:00:00+00:00")
    path = tmp_path / "users.json"
    save_users(users, path)
    assert key not in path.read_text() and load_users(path, env={}).user_of_key(key) == "sam"
    revoked = load_users(path, env={}).without_key("sam", key[:9])
    assert revoked.user_of_key(key) is None and users.user_of_key(key) == "sam"
    toml = tmp_path / "users.toml"
    save_users(users, toml)
    assert load_users(toml, env={}).user_of_key(key) == "sam"


@pytest.mark.slow
def test_the_real_default_model_through_the_endpoint_with_the_openai_client(tmp_path):
    """The default SmolLM2 GGUF, the real router and the active maps behind /v1/chat/completions."""
    from assistant.answering.pipeline import Assistant
    from assistant.core.config import ModelConfig, set_offline_env
    from assistant.models.backend import GenerationOptions

    set_offline_env()
    assistant = Assistant.from_config(ModelConfig(), options=GenerationOptions(max_new_tokens=96))
    users, key = make_users().with_new_key("sam", "2026-12-01T00:00:00+00:00")
    app = launch(tmp_path / "data", assistant=assistant, users=users)
    try:
        client = _client(app, key)
        r = client.chat.completions.create(model=MODEL_ID, messages=_ask("What is 15 + 27?"))
        cal = r.model_extra["calibration"]
        assert cal["model"] == assistant.backend.model_id and cal["map_version"] == assistant.maps.version
        assert cal["raw_confidence"] is None or 0 <= cal["raw_confidence"] <= 1
        assert cal["confidence"] is None or 0 <= cal["confidence"] <= 1
        stored = stored_reply(app.store, cal["reply_id"])
        assert stored["answer"] == r.choices[0].message.content and stored["user"] == "sam"
        assert cal["needs_review"] == any(i.reply_id == cal["reply_id"] for i in app.store.queue())
        usage = r.usage  # what the model read (system prompt, worked examples, question) and wrote
        assert usage.completion_tokens == stored["tokens"] > 0
        assert usage.prompt_tokens > assistant.backend.count_tokens("What is 15 + 27?") + 20
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        streamed = list(client.chat.completions.create(model=MODEL_ID, messages=_ask("What is 15 + 27?"),
                                                       stream=True, stream_options={"include_usage": True}))
        assert "".join(c.choices[0].delta.content or "" for c in streamed[:-1]) == r.choices[0].message.content
        assert streamed[-1].choices == [] and streamed[-1].usage == usage  # greedy: the same answer, alone
    finally:
        app.demo.close()


def test_concurrency_follows_the_backend_and_beyond_the_waiting_limit_the_answer_is_busy():
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    from assistant.web.app import ChatApp
    from assistant.web.context import WebContext
    from assistant.web.fairness import Caller, Limits
    from assistant.web.openai_api import OpenAIEndpoint
    from tests.conftest import make_assistant

    assistant = make_assistant()
    assert WebContext(assistant, None, Users()).model_concurrency == 1  # a local model: one at a time
    assistant.backend.capabilities = replace(assistant.backend.capabilities, max_concurrency=4)  # as a server declares
    ctx = WebContext(assistant, None, Users(), limits=Limits(max_waiting=1))
    assert ctx.model_concurrency == 4 and ctx.admission.slots == 4  # the chat, /ask and this endpoint: 4 at once
    demo = ChatApp(assistant, None, Users()).build()
    limits = {fn.concurrency_limit for fn in demo.fns.values() if fn.concurrency_id == "model"}
    assert limits == {4 + Limits.max_waiting}  # Gradio lets them on to the fair gate, which takes 4 at once
    held = [ctx.admission.enter(Caller(f"user {n}")) for n in range(5)]  # 4 answering, 1 waiting: full
    endpoint = TestClient(Starlette(routes=OpenAIEndpoint(ctx).routes()))
    r = endpoint.post("/v1/chat/completions", json={"model": MODEL_ID, "messages": _ask("What is 12*11?")})
    assert r.status_code == 429 and r.headers["retry-after"] == "5" and "busy" in r.json()["error"]["message"]
    for ticket in held:
        ctx.admission.leave(ticket)
    r = endpoint.post("/v1/chat/completions", json={"model": MODEL_ID, "messages": _ask("What is 12*11?")})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "132"
