"""Tests for the OpenAI-compatible backend against a scripted in-process server (stdlib http.server).

`FakeServer` answers GET /v1/models and pops one scripted reply per POST /v1/chat/completions:
an error status (with its headers), or a stream of server-sent events with optional stalls and
an optional cut-off. The real server (llama.cpp's) is in test_openai_server.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from assistant.answering.evidence import compute_signals
from assistant.answering.parsing import parse_output, split_reasoning
from assistant.core.config import ModelConfig, model_config_from_env
from assistant.core.errors import InputError, ModelLoadError
from assistant.core.flags import add_model_flags, model_config_from_args
from assistant.models.backend import Backend, GenerationOptions
from assistant.models.openai_compat import TOP_LOGPROBS, OpenAICompatBackend
from assistant.models.openai_http import Retry, ServerError, Timeouts
from assistant.models.registry import BACKENDS, choose_backend, load_backend
from tests.conftest import FixedRouter, drain, free_port, make_maps

KEY = "sk-test-5f3a9c0e1d2b"  # what the fake server accepts; must never show up anywhere else
KEY_ENV = "CC_TEST_OPENAI_KEY"
QUESTION = [{"role": "user", "content": "What is 12 times 11?"}]
FAST = Timeouts(connect=2.0, read=5.0, between_tokens=0.5)
QUICK_RETRY = Retry(attempts=3, base=0.01, cap=2.0)


def token(text: str, logprob: float, top: dict[str, float] | None = None) -> dict:
    alternatives = top if top is not None else {text: logprob}
    return {"token": text, "logprob": logprob, "bytes": None,
            "top_logprobs": [{"token": t, "logprob": lp, "bytes": None} for t, lp in alternatives.items()]}


def chunk(content=None, reasoning=None, finish=None, tokens=None) -> dict:
    delta = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    logprobs = {"content": tokens} if tokens is not None else None
    return {"object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]}


def usage(completion_tokens: int) -> dict:
    return {"object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": 30, "completion_tokens": completion_tokens}}


def stream_of(*texts, finish="stop", logprobs=True) -> list:
    """One chunk per text, each one token with log probability -0.1 (when `logprobs`), then the finish."""
    events = [chunk(t, tokens=[token(t, -0.1)] if logprobs else None) for t in texts]
    return [*events, chunk(finish=finish)]


class _Handler(BaseHTTPRequestHandler):
    """Answers for the FakeServer its server holds (`self.server.fake`)."""

    protocol_version = "HTTP/1.0"  # the body ends when the connection closes

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.server.fake.record(self, None)
        if self.path != "/v1/models":
            return self.reply_error(404, "not found")
        if not self.server.fake.authorised(self):
            return self.reply_error(401, "invalid api key")
        self.reply_json(200, {"object": "list", "data": [{"id": m} for m in self.server.fake.models]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.fake.record(self, body)
        if not self.server.fake.authorised(self):
            return self.reply_error(401, "invalid api key")
        step = self.server.fake.script.popleft()
        if "status" in step:
            return self.reply_error(step["status"], step.get("error", ""), step.get("headers", {}))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            self.send_events(step)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client closed the stream (cancelled or timed out)

    def send_events(self, step):
        events = step["events"]
        for i, event in enumerate(events):
            time.sleep(step.get("stall", {}).get(i, 0.0))
            if step.get("cut") == i:
                return
            self.wfile.write(b": ping\n\n" if i == 0 else b"")  # a comment, as sse-starlette sends
            self.wfile.write(b"data: " + json.dumps(event).encode() + b"\n\n")
            self.wfile.flush()
        if step.get("cut") is None:
            self.wfile.write(b"data: [DONE]\n\n")

    def reply_json(self, status, data, headers=None):
        raw = json.dumps(data).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def reply_error(self, status, message, headers=None):
        self.reply_json(status, {"error": {"message": message, "code": status}}, headers)


class FakeServer:
    """An OpenAI-compatible server in a thread; `script` holds the replies to POSTs, in order.

    A reply is a dict: {"status": 429, "headers": {...}, "error": "message"} for an error, or
    {"events": [...], "stall": {index: seconds}, "cut": index} for a stream (`stall` waits before
    sending event `index`; `cut` closes the connection before it, without `[DONE]`).
    """

    def __init__(self, key: str | None = KEY):
        self.key = key
        self.script: deque = deque()
        self.requests: list[dict] = []  # {"method", "path", "headers", "body"} of every request
        self.models = ["fake-model"]
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.fake = self  # what _Handler answers from
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def record(self, handler, body):
        self.requests.append({"method": handler.command, "path": handler.path,
                              "headers": dict(handler.headers), "body": body})

    def authorised(self, handler) -> bool:
        return self.key is None or handler.headers.get("Authorization") == f"Bearer {self.key}"

    def posts(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST"]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def make_backend(server, *, key_env=KEY_ENV, model="fake-model", logprobs=True, **kwargs) -> OpenAICompatBackend:
    config = ModelConfig(model=model, backend="openai", base_url=server.url, api_key_env=key_env, logprobs=logprobs)
    return OpenAICompatBackend(config, timeouts=kwargs.pop("timeouts", FAST),
                               retry=kwargs.pop("retry", QUICK_RETRY), **kwargs)




# ---- streaming, reasoning, usage, evidence ---------------------------------------------------


def test_stream_with_reasoning_usage_and_logprobs(server, keyed):
    eight = token("9", -0.2, {"9": -0.2, "8": -1.9, " ninety": -3.0, "95": -4.0})
    server.script.append({"events": [
        chunk(reasoning="Twelve elevens", tokens=[token("Twelve", -0.5), token(" elevens", -0.3)]),
        chunk(reasoning=" are 132.", tokens=[token(" are", -0.1), token(" 132.", -0.2)]),
        chunk(" <answer>132</answer>", tokens=[token(" <answer>132</answer>", -0.05)]),
        chunk(" <confidence>", tokens=[token(" <confidence>", -0.01)]),
        chunk("9", tokens=[eight]),
        chunk("0", tokens=[token("0", -0.01)]),
        chunk("%</confidence>", tokens=[token("%</confidence>", -0.02)]),
        chunk(finish="stop"),
        usage(8),
    ]})
    backend = make_backend(server)
    assert isinstance(backend, Backend) and backend.capabilities.max_concurrency > 1 and not backend.capabilities.local
    pieces, stats = drain(backend.stream(QUESTION, GenerationOptions(max_new_tokens=50)))
    text = "".join(pieces)
    assert text == "<think>Twelve elevens are 132.</think> <answer>132</answer> <confidence>90%</confidence>"
    assert split_reasoning(text)[0].strip() == "Twelve elevens are 132."
    assert (stats.tokens, stats.finish_reason) == (8, "stop")  # tokens from the usage event
    assert stats.prompt_tokens == 30  # the server's count of what it read
    assert stats.first_token_seconds is not None and stats.first_token_seconds <= stats.seconds
    evidence = stats.evidence
    assert "".join(evidence.pieces) == text and len(evidence.logprobs) == len(evidence.pieces)
    position = evidence.pieces.index("9")
    assert evidence.numbers[position] == pytest.approx({"9": 0.8187, "8": 0.1496, "95": 0.0183}, abs=1e-4)
    assert sorted(evidence.numbers) == [position, position + 1]  # " ninety" is no number token; "0" is
    signals = compute_signals(parse_output(text), evidence)
    assert signals.stated == 0.9 and 0.85 < signals.stated_ev < 0.9  # 90 with some weight on 80
    assert signals.answer_mean_logp == pytest.approx(-0.05)
    body = server.posts()[0]["body"]
    assert body["stream"] and body["max_tokens"] == 50 and body["temperature"] == 0.0
    assert (body["logprobs"], body["top_logprobs"], body["repeat_penalty"]) == (True, TOP_LOGPROBS, 1.0)
    assert body["stream_options"] == {"include_usage": True} and "seed" not in body


def test_no_logprobs_asks_for_none_and_the_reply_has_no_token_evidence(server, keyed):
    """--no-logprobs: a server that spends long on log probabilities (llama_cpp.server on a CPU) is not asked."""
    server.script.append({"events": [chunk("4"), chunk(finish="stop")]})
    backend = make_backend(server, logprobs=False)
    pieces, stats = drain(backend.stream(QUESTION))
    body = server.posts()[0]["body"]
    assert "logprobs" not in body and "top_logprobs" not in body and body["stream_options"] == {"include_usage": True}
    assert "".join(pieces) == "4" and stats.evidence is None
    parser = argparse.ArgumentParser()
    add_model_flags(parser)
    assert model_config_from_args(parser.parse_args(["--no-logprobs"])).logprobs is False
    assert model_config_from_args(parser.parse_args([])).logprobs is True
    assert model_config_from_env({"CALIBRATED_CHAT_LOGPROBS": "0"}).logprobs is False
    assert model_config_from_env({}).logprobs is True


def test_reasoning_field_and_sampling_options(server, keyed):
    """`delta.reasoning` (vLLM's newer name) also becomes the think block; sampling sends the seed."""
    server.script.append({"events": [{"choices": [{"index": 0, "delta": {"reasoning": "hmm"}}]},
                                     chunk("4"), chunk(finish="stop")]})
    pieces, stats = drain(make_backend(server).stream(QUESTION, GenerationOptions(temperature=0.7, seed=3)))
    assert "".join(pieces) == "<think>hmm</think>4"
    assert stats.evidence is None and stats.tokens == 2  # no logprobs, no usage: text deltas counted
    body = server.posts()[0]["body"]
    assert (body["temperature"], body["seed"]) == (0.7, 3) and "repeat_penalty" not in body


def test_a_server_without_logprobs_gives_no_evidence_and_the_signals_say_so(server, keyed):
    server.script.append({"events": stream_of("<answer>132</answer>", " <confidence>80%</confidence>",
                                              logprobs=False)})
    pieces, stats = drain(make_backend(server).stream(QUESTION))
    assert stats.evidence is None
    signals = compute_signals(parse_output("".join(pieces)), stats.evidence)
    assert signals.stated == 0.8
    assert {k for k, v in signals.to_dict().items() if v is None} == {
        "stated_ev", "probe_ev", "answer_mean_logp", "answer_min_logp", "answer_first_logp",
        "agreement"}  # no samples drawn


def test_the_reply_through_the_pipeline_names_the_missing_signals(server, keyed):
    """The whole Assistant over the backend: a Reply whose `signals` show the probability signals as None."""
    from assistant.answering.pipeline import Assistant
    from assistant.answering.prompts import load_prompt

    server.script.append({"events": stream_of("Twelve elevens are 132.", " <answer>132</answer>",
                                              " <confidence>90%</confidence>", logprobs=False)})
    backend = make_backend(server)
    assistant = Assistant(backend, load_prompt("confidence_tags"), FixedRouter(), make_maps(model=backend.model_id))
    reply = assistant.ask("What is 12 times 11?")
    assert (reply.answer, reply.raw_confidence, reply.model) == ("132", 0.9, f"fake-model@127.0.0.1:{server.port}")
    assert reply.confidence == pytest.approx(0.72)  # the math map: 0.8 × 0.9
    assert reply.signals.stated == 0.9 and reply.signals.answer_mean_logp is None


def test_finish_reason_length_means_truncated(server, keyed):
    server.script.append({"events": stream_of("one", " two", finish="length")})
    pieces, stats = drain(make_backend(server).stream(QUESTION, GenerationOptions(max_new_tokens=2)))
    assert (pieces, stats.finish_reason, stats.tokens) == (["one", " two"], "length", 2)


def test_a_stop_text_ends_the_reply_where_it_closes_and_is_kept(server, keyed):
    """Found here, not sent: a server's own `stop` would drop the stop text, and reasoning never stops it."""
    server.script.append({"events": [chunk(reasoning="I write <confidence>5%</confidence>"),
                                     *stream_of("<answer>5</answer> <confidence>9", "0%</confid", "ence>", " and on")]})
    pieces, stats = drain(make_backend(server).stream(QUESTION, GenerationOptions(stop=("</confidence>",))))
    assert "".join(pieces) == ("<think>I write <confidence>5%</confidence></think><answer>5</answer> "
                               "<confidence>90%</confidence>")
    assert stats.finish_reason == "stop" and "stop" not in server.posts()[0]["body"]


def test_a_reply_that_ends_without_a_finish_reason_is_an_error_not_an_answer(server, keyed):
    """llama-cpp-python's server ends an interrupted reply so (another request arrived): it was cut short."""
    server.script.append({"events": stream_of("one", " two")[:-1]})
    with pytest.raises(ServerError, match=r"after 2 text pieces without a finish_reason.*--interrupt_requests False"):
        drain(make_backend(server).stream(QUESTION))


def test_reasoning_cut_off_by_length_stays_open(server, keyed):
    """Truncated inside the reasoning: no closing tag, so parsing reads it as a cut-off think block."""
    server.script.append({"events": [chunk(reasoning="let me see"), chunk(finish="length")]})
    pieces, stats = drain(make_backend(server).stream(QUESTION))
    assert "".join(pieces) == "<think>let me see" and stats.finish_reason == "length"
    assert "truncated" in parse_output("".join(pieces)).issues


# ---- retries before the first byte -----------------------------------------------------------


def test_429_is_retried_after_what_retry_after_asks(server, keyed, caplog):
    server.script.extend([{"status": 429, "headers": {"Retry-After": "1"}, "error": "slow down"},
                          {"events": stream_of("ok")}])
    start = time.perf_counter()
    with caplog.at_level(logging.INFO, logger="assistant.models"):
        pieces, stats = drain(make_backend(server).stream(QUESTION))
    assert pieces == ["ok"] and len(server.posts()) == 2
    assert time.perf_counter() - start >= 0.95  # waited the second asked, not the 10 ms backoff
    assert "status 429; retrying in 1.0 s" in caplog.text


@pytest.mark.parametrize("status", [502, 503])
def test_busy_statuses_are_retried_with_backoff(server, keyed, status):
    server.script.extend([{"status": status, "error": "loading"}, {"status": status}, {"events": stream_of("ok")}])
    pieces, _ = drain(make_backend(server).stream(QUESTION))
    assert pieces == ["ok"] and len(server.posts()) == 3


def test_busy_on_every_try_gives_up_with_one_line(server, keyed):
    server.script.extend([{"status": 503, "error": "overloaded"}] * 3)
    with pytest.raises(ServerError, match=r"is busy \(503 after 3 tries\): overloaded"):
        drain(make_backend(server).stream(QUESTION))


def test_a_stream_that_breaks_after_text_is_not_retried(server, keyed):
    server.script.append({"events": stream_of("one", " two", " three"), "cut": 2})
    gen = make_backend(server).stream(QUESTION)
    assert next(gen) == "one"
    with pytest.raises(ServerError, match=r"broke off the reply after 2 text pieces: the stream ended"):
        drain(gen)
    assert len(server.posts()) == 1


def test_a_rejected_optional_field_is_dropped_and_asked_again(server, keyed):
    server.script.extend([{"status": 400, "error": "logprobs are not supported by this model"},
                          {"events": stream_of("ok")}])
    backend = make_backend(server)
    drain(backend.stream(QUESTION))
    first, second = (p["body"] for p in server.posts())
    assert first["logprobs"] and "logprobs" not in second and "top_logprobs" not in second
    server.script.append({"events": stream_of("again")})
    drain(backend.stream(QUESTION))
    assert "logprobs" not in server.posts()[2]["body"]  # remembered for this server


def test_a_prompt_too_long_for_the_server_is_an_input_error(server, keyed):
    server.script.append({"status": 400, "error": "This model's maximum context length is 2048 tokens"})
    with pytest.raises(InputError, match="too long for the model behind .*maximum context length"):
        drain(make_backend(server).stream(QUESTION))


# ---- timeouts, cancellation, start-up check ---------------------------------------------------


def test_a_stall_between_tokens_hits_the_between_token_timeout(server, keyed):
    server.script.append({"events": stream_of("one", " two"), "stall": {1: 3.0}})
    gen = make_backend(server).stream(QUESTION)
    assert next(gen) == "one"
    start = time.perf_counter()
    with pytest.raises(ServerError, match=r"broke off the reply after 1 text pieces: no token for 0.5 s "
                                          r"\(between-token timeout\)"):
        drain(gen)
    assert time.perf_counter() - start < 2.0


def test_cancel_closes_the_stream_at_once(server, keyed):
    server.script.append({"events": stream_of("one", " two", " three"), "stall": {1: 5.0}})
    cancel = threading.Event()
    gen = make_backend(server).stream(QUESTION, cancel=cancel)
    assert next(gen) == "one"
    threading.Timer(0.2, cancel.set).start()
    start = time.perf_counter()
    pieces, stats = drain(gen)  # blocked waiting for " two" until the cancel shuts the socket
    assert pieces == [] and stats.finish_reason == "cancelled"
    assert time.perf_counter() - start < 1.5


def test_closing_the_generator_closes_the_connection(server, keyed):
    server.script.append({"events": stream_of("one", " two"), "stall": {1: 5.0}})
    gen = make_backend(server).stream(QUESTION)
    assert next(gen) == "one"
    gen.close()
    assert gen._pieces.gi_frame is None and list(gen) == []  # the generator ran to its end (its `finally`)
    with pytest.raises(RuntimeError, match="closed before its end"):
        _ = gen.result


def test_unreachable_server_fails_at_start_naming_the_url_and_the_fix():
    url = f"http://127.0.0.1:{free_port()}/v1"
    config = ModelConfig(model="m", backend="openai", base_url=url)
    with pytest.raises(ModelLoadError, match=rf"health check failed: cannot reach the model server at {url} "
                                             r"\(.*3 tries\): start the server .* --base-url"):
        OpenAICompatBackend(config, timeouts=FAST, retry=QUICK_RETRY)


@pytest.mark.parametrize("env, said", [
    ({KEY_ENV: "sk-wrong"}, rf"the key in \${KEY_ENV} is not one it accepts"),
    ({}, rf"no API key was sent \(\${KEY_ENV} is not set\)"),
])
def test_a_wrong_or_missing_key_names_the_variable_and_the_flag(server, monkeypatch, env, said):
    monkeypatch.delenv(KEY_ENV, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ServerError, match=rf"refused the request \(401\): {said}; .*--api-key-env") as error:
        make_backend(server)
    assert "sk-wrong" not in str(error.value)


def test_a_model_the_server_does_not_list_is_a_warning(server, keyed, caplog):
    with caplog.at_level(logging.WARNING):
        backend = make_backend(server, model="other-model")
    assert "'other-model' is not among those" in caplog.text and "fake-model" in caplog.text
    assert backend.check_health() == ["fake-model"]


# ---- provenance and the key ------------------------------------------------------------------


def test_model_id_is_the_name_at_the_host_and_the_key_is_never_shown(server, keyed, caplog):
    server.script.extend([{"status": 503}, {"events": stream_of("ok")}, {"status": 500, "error": "boom"}])
    url = f"http://user:pw-in-url@127.0.0.1:{server.port}/v1?token=in-query"
    backend = OpenAICompatBackend(ModelConfig(model="fake-model", backend="openai", base_url=url,
                                              api_key_env=KEY_ENV), timeouts=FAST, retry=QUICK_RETRY)
    assert backend.model_id == f"fake-model@127.0.0.1:{server.port}"
    assert backend.url == f"http://127.0.0.1:{server.port}/v1"
    with caplog.at_level(logging.DEBUG):
        drain(backend.stream(QUESTION))
        with pytest.raises(ServerError) as error:
            drain(backend.stream(QUESTION))
    assert server.posts()[0]["headers"]["Authorization"] == f"Bearer {KEY}"  # it was sent…
    shown = " ".join([caplog.text, str(error.value), repr(backend), backend.model_id, repr(vars(backend))])
    for secret in (KEY, "pw-in-url", "in-query"):
        assert secret not in shown  # …and never shown


# ---- configuration and the registry -----------------------------------------------------------


def test_flags_and_environment_reach_the_model_config(monkeypatch):
    import argparse

    parser = argparse.ArgumentParser()
    add_model_flags(parser)
    args = parser.parse_args(["--backend", "openai", "--base-url", "http://h:1/v1", "--model", "m",
                              "--api-key-env", "MY_KEY"])
    config = model_config_from_args(args)
    assert (config.backend, config.base_url, config.model, config.api_key_env) == ("openai", "http://h:1/v1", "m",
                                                                                   "MY_KEY")
    env = {"CALIBRATED_CHAT_BASE_URL": "http://e:2/v1", "CALIBRATED_CHAT_API_KEY_ENV": "E_KEY"}
    assert (model_config_from_env(env).base_url, model_config_from_env(env).api_key_env) == ("http://e:2/v1",
                                                                                             "E_KEY")
    assert model_config_from_env({}).api_key_env == "OPENAI_API_KEY"


def test_the_registry_builds_it_without_looking_for_a_local_model(server, keyed):
    assert "openai" in BACKENDS
    config = ModelConfig(model="fake-model", backend="openai", base_url=server.url, api_key_env=KEY_ENV)
    assert choose_backend(config, None) == "openai"
    backend = load_backend(config)  # "fake-model" is no file and no cached Hugging Face id
    assert isinstance(backend, OpenAICompatBackend) and backend.model_id.startswith("fake-model@")


@pytest.mark.parametrize("changes, message", [
    ({"base_url": None}, "needs the server's address: pass --base-url"),
    ({"model": None}, "needs the server's model name: pass --model NAME"),
    ({"base_url": "ftp://h/v1"}, "is not an http\\(s\\) URL"),
])
def test_missing_settings_are_one_clear_error(changes, message):
    base = ModelConfig(model="m", backend="openai", base_url="http://127.0.0.1:9/v1")
    config = ModelConfig(**{**base.__dict__, **changes})
    with pytest.raises(ModelLoadError, match=message):
        load_backend(config)
