"""`calibrate collect --concurrency 4` against a real server (llama_cpp.server on 127.0.0.1, the default
GGUF): it completes, and killed mid-run (SIGKILL) then re-run it ends with every question recorded once.

Slow: the module starts the server once and answers a few dozen short generated questions.
The server runs with `--interrupt_requests False`: by default llama_cpp.server ends a streaming
reply early when another request arrives, which concurrent requests always do (docs/scaling-out.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from calibration.labelling.datagen import make_questions
from tests.assistant.models.llama_server import ALIAS, KEY, KEY_ENV, serving

pytestmark = pytest.mark.slow

MAX_NEW_TOKENS = 32  # short answers: the test is about the pool and the records file, not the answers


@pytest.fixture(scope="module")
def server_url():
    with serving() as url:  # LlamaServer turns interrupt_requests off
        yield url


def questions(tmp_path, n: int):
    path = tmp_path / "questions.jsonl"
    items = make_questions("math", n, seed=13)
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path, [i["id"] for i in items]


def command(url: str, data, out, concurrency: int) -> list[str]:
    return [sys.executable, "-m", "calibration", "collect", "--backend", "openai", "--base-url", url,
            "--model", ALIAS, "--api-key-env", KEY_ENV, "--data", str(data), "--out", str(out),
            "--concurrency", str(concurrency), "--max-new-tokens", str(MAX_NEW_TOKENS), "--quiet"]


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, env={**os.environ, KEY_ENV: KEY}, capture_output=True, text=True, timeout=600)


def lines(path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []


def test_collect_with_concurrency_4_completes(server_url, tmp_path):
    data, ids = questions(tmp_path, 8)
    out = tmp_path / "four.jsonl"
    done = run(command(server_url, data, out, 4))
    assert done.returncode == 0, done.stderr
    assert "8 new records" in done.stderr and "4 at once" in done.stderr
    records = [json.loads(line) for line in lines(out)]
    assert sorted(r["id"] for r in records) == sorted(ids)  # every question once
    host = server_url.split("/")[2]
    assert {r["model"] for r in records} == {f"{ALIAS}@{host}"}
    assert all(r["tokens"] > 0 and r["signals"]["answer_mean_logp"] is not None for r in records)


def test_collect_killed_mid_run_resumes_with_no_duplicate_and_no_loss(server_url, tmp_path):
    data, ids = questions(tmp_path, 10)
    out = tmp_path / "killed.jsonl"
    proc = subprocess.Popen(command(server_url, data, out, 4), env={**os.environ, KEY_ENV: KEY},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while len(lines(out)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "collect finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)  # no handler runs: the records file is left as the kill finds it
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = lines(out)
    whole = [json.loads(line)["id"] for line in before if line.endswith("\n")]
    assert 3 <= len(whole) < 10 and len(whole) == len(set(whole))
    assert len(before) - len(whole) <= 1  # at most the one line being written is torn

    again = run(command(server_url, data, out, 4))
    assert again.returncode == 0, again.stderr
    assert f"{len(whole)} already there, 10 in all" in again.stderr
    final = [json.loads(line)["id"] for line in lines(out)]
    assert sorted(final) == sorted(ids)  # every question exactly once: none duplicated, none lost
    assert final[: len(whole)] == whole  # what was written before the kill is kept as it was
