"""The OpenAI-compatible backend against a real server: llama-cpp-python's `llama_cpp.server` on 127.0.0.1,
serving the default GGUF, compared with the local `LlamaCppBackend` on the same file.

Slow: each module run starts the server (a few seconds) and generates for 24 shared questions
twice. Skipped when llama-cpp-python or its server's dependencies (the `test` extra) are missing.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import replace

import pytest

from assistant.core.config import ModelConfig
from assistant.models.backend import GenerationOptions
from assistant.models.openai_compat import OpenAICompatBackend
from assistant.models.openai_http import ServerError
from tests.assistant.models.llama_server import (
    ALIAS,
    KEY,
    KEY_ENV,
    THREADS,
    server_missing,
    serving,
    start_server,
    stop_server,
)
from tests.conftest import SHARED, free_port

pytestmark = pytest.mark.slow

# Shared calibration questions by id (the text stays in ../shared/calib): three of each domain.
QUESTION_IDS = {
    "math": ["gsm8k_train-3729"],
    "factual": ["nq_open_dev-531"],
    "science": ["mmlu-college_chemistry-69"],
    "reasoning": ["bbh-boolean_expressions-187"],
}


@pytest.fixture(scope="module")
def server_url():
    with serving() as url:
        yield url


@pytest.fixture
def keyed(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)


def remote(url: str) -> OpenAICompatBackend:
    return OpenAICompatBackend(ModelConfig(model=ALIAS, backend="openai", base_url=url, api_key_env=KEY_ENV))


def shared_questions() -> list[str]:
    wanted = {i for ids in QUESTION_IDS.values() for i in ids}
    found = {}
    for domain in QUESTION_IDS:
        path = SHARED / "calib" / f"{domain}.jsonl"
        if not path.is_file():
            pytest.skip(f"the shared questions are not beside the clone ({path})")
        for line in path.read_text(encoding="utf-8").splitlines():
            item = json.loads(line)
            if item["id"] in wanted:
                found[item["id"]] = item["question"]
    return [found[i] for ids in QUESTION_IDS.values() for i in ids]


def test_the_backend_streams_from_the_real_server(server_url, keyed):
    backend = remote(server_url)
    assert backend.model_id == f"{ALIAS}@{server_url.split('/')[2]}"
    assert backend.check_health() == [ALIAS]
    messages = [{"role": "user", "content": "What is 12 times 11? Answer, then give your confidence in percent."}]
    text, stats = backend.stream(messages, GenerationOptions(max_new_tokens=40)).drain()
    assert text.strip() and stats.finish_reason in ("stop", "length") and 0 < stats.tokens <= 40
    assert stats.first_token_seconds is not None and stats.first_token_seconds < stats.seconds
    evidence = stats.evidence  # llama.cpp's server gives logprobs and top_logprobs
    assert evidence is not None and "".join(evidence.pieces) == text
    assert len(evidence.logprobs) == len(evidence.pieces) == stats.tokens  # no usage event: tokens counted
    assert all(lp <= 0 for lp in evidence.logprobs)
    for position, distribution in evidence.numbers.items():
        assert evidence.pieces[position].isdigit() and 0 < sum(distribution.values()) <= 1 + 1e-6


def test_greedy_answers_equal_the_local_backend(server_url, keyed):
    """Greedy decoding through the server writes what the local LlamaCppBackend writes on the same GGUF,
    with the same token log probabilities (within float rounding)."""
    from assistant.answering.prompts import load_prompt
    from assistant.models.llamacpp import LlamaCppBackend

    prompt = load_prompt("confidence_tags")
    questions = shared_questions()
    options = GenerationOptions(max_new_tokens=64)
    backend = remote(server_url)
    served = [backend.stream(prompt.messages(q), options).drain() for q in questions]
    local_backend = LlamaCppBackend(ModelConfig(threads=THREADS))
    try:
        local = [local_backend.stream(prompt.messages(q), options).drain() for q in questions]
    finally:
        local_backend.close()
    differ = [i for i, (a, b) in enumerate(zip(served, local)) if a[0] != b[0]]
    assert len(questions) == 4 and differ == [], [(served[i][0], local[i][0]) for i in differ]
    for (_, s), (_, t) in zip(served, local):
        assert (s.finish_reason, s.tokens) == (t.finish_reason, t.tokens)
        assert s.evidence.logprobs == pytest.approx(t.evidence.logprobs, abs=1e-4)
        # The same number positions; the server's distributions are the top alternatives of the local ones.
        assert s.evidence.numbers.keys() == t.evidence.numbers.keys()
        for position, top in s.evidence.numbers.items():
            assert top == pytest.approx({k: t.evidence.numbers[position][k] for k in top}, abs=1e-4)


def test_a_wrong_key_is_a_clear_error(server_url, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-not-the-key")
    with pytest.raises(ServerError, match=rf"refused the request \(401\): the key in \${KEY_ENV} .*--api-key-env"):
        remote(server_url)


def test_the_pipeline_answers_through_the_server(server_url, keyed):
    """The real Assistant (router, shipped maps) over the server: maps fitted on the local model do not
    apply to it (model ids differ); maps for this server give a calibrated confidence."""
    from assistant.answering.pipeline import Assistant

    config = ModelConfig(model=ALIAS, backend="openai", base_url=server_url, api_key_env=KEY_ENV)
    assistant = Assistant.from_config(config, options=GenerationOptions(max_new_tokens=96))
    assert assistant.backend.model_id == f"{ALIAS}@{server_url.split('/')[2]}"
    reply = assistant.ask("What is 12 times 11?")
    assert reply.model == assistant.backend.model_id and "uncalibrated" in reply.review_reasons
    assert assistant.maps is None  # the active maps are the local model's, so none is loaded for this one
    shipped = assistant.map_store.active(prompt=assistant.prompt.id)
    assistant.maps = replace(shipped, model=assistant.backend.model_id)  # as if fitted through this server
    reply = assistant.ask("Which planet is known as the Red Planet?")
    assert reply.answer and "uncalibrated" not in reply.review_reasons
    assert reply.confidence is not None and 0.0 <= reply.confidence <= 1.0
    assert reply.signals.answer_mean_logp is not None  # the server's logprobs reached the signals
    assert reply.signals.probe_ev is None  # no probe through a server


def test_a_server_killed_mid_stream_is_a_clear_error_not_a_hang(keyed):
    missing = server_missing()
    if missing:
        pytest.skip(missing)
    port = free_port()
    server = start_server(port)
    try:
        backend = remote(f"http://127.0.0.1:{port}/v1")
        messages = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
        gen = backend.stream(messages, GenerationOptions(max_new_tokens=2000))
        assert next(gen)
        os.kill(server.proc.pid, signal.SIGKILL)
        start = time.perf_counter()
        with pytest.raises(ServerError, match=r"broke off the reply after \d+ text pieces: .*is it still running"):
            gen.drain()
        assert time.perf_counter() - start < 10
    finally:
        stop_server(server)
