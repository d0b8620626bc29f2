"""A real OpenAI-compatible server for slow tests: llama-cpp-python's `llama_cpp.server` on 127.0.0.1,
serving the default GGUF under `ALIAS` with the key `KEY` (used by test_openai_server.py and
tests/calibration/test_collect_server.py)."""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest

from assistant.models.sources import default_model_path
from tests.conftest import free_port

__all__ = ["ALIAS", "KEY", "KEY_ENV", "THREADS", "serving", "server_missing", "start_server", "stop_server"]

KEY = "sk-real-server-3b8e1f"
KEY_ENV = "CC_TEST_SERVER_KEY"
ALIAS = "SmolLM2-135M-Instruct"  # the name the server serves the GGUF under (its /v1/models id)
THREADS = 1  # as the local backend's tests: 2 spinning threads on a shared 2-core machine run slower


def server_missing() -> str | None:
    for module in ("llama_cpp", "sse_starlette", "starlette_context", "pydantic_settings", "fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (`pip install -e '.[test]'` and `make install`)"
    return None


def start_server(port: int, *extra: str) -> subprocess.Popen:
    """`python -m llama_cpp.server` on the default GGUF (and `extra` server flags); returns once /v1/models answers."""
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()),
               "--model_alias", ALIAS, "--host", "127.0.0.1", "--port", str(port), "--api_key", KEY,
               "--n_ctx", "4096", "--n_threads", str(THREADS), "--n_threads_batch", str(THREADS), *extra]
    log = tempfile.TemporaryFile("w+")  # not a pipe: llama.cpp's load log would fill one and stall the server
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, text=True)
    proc.log = log
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}: {log.read()[-2000:]}")
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                if answer.status == 200:
                    return proc
        except (urllib.error.URLError, OSError):
            time.sleep(0.25)
    stop_server(proc)
    raise RuntimeError("llama_cpp.server did not answer /v1/models within 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.log.close()


@contextlib.contextmanager
def serving(*extra: str):
    """The base URL of a server started for the `with` block (the test is skipped when the server cannot run)."""
    missing = server_missing()
    if missing:
        pytest.skip(missing)
    port = free_port()
    proc = start_server(port, *extra)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_server(proc)
