"""A real OpenAI-compatible server for slow tests: llama-cpp-python's `llama_cpp.server` on 127.0.0.1,
serving the default GGUF under `ALIAS` with the key `KEY` (used by test_openai_server.py and
tests/calibration/test_collect_server.py)."""

from __future__ import annotations

import contextlib
import importlib.util

import pytest

from bench.system import LlamaServer
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


def start_server(port: int, *extra: str) -> LlamaServer:
    """`python -m llama_cpp.server` on the default GGUF (and `extra` server flags); returns once /v1/models answers."""
    return LlamaServer(alias=ALIAS, key=KEY, threads=THREADS, port=port, extra=extra).start()


def stop_server(server: LlamaServer) -> None:
    server.stop()


@contextlib.contextmanager
def serving(*extra: str):
    """The base URL of a server started for the `with` block (the test is skipped when the server cannot run)."""
    missing = server_missing()
    if missing:
        pytest.skip(missing)
    port = free_port()
    server = start_server(port, *extra)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_server(server)
