"""Shared test fixtures: a scripted assistant, users of each role, and a running web app."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs are reproducible: the same examples every run (a failure found while developing is
# kept in .hypothesis/ and replayed locally). Locally, exploration stays random.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Every test, and every process a test starts, keeps its data (map versions, review store, runs,
# caches) in a fresh folder, never in the user's data folder.
os.environ["CALIBRATED_CHAT_DATA_DIR"] = tempfile.mkdtemp(prefix="calibrated-chat-tests-")
for _name in ("MAPS_DIR", "CACHE_DIR", "STORE"):
    os.environ.pop("CALIBRATED_CHAT_" + _name, None)

from assistant.answering.prompts import load_prompt  # noqa: E402
from assistant.core.domains import DOMAINS, GENERAL  # noqa: E402
from assistant.core.reply import Reply  # noqa: E402
from assistant.models.backend import GenerationOptions, GenerationStats
from assistant.models.fake import FakeBackend  # noqa: E402
from assistant.routing.router import Route  # noqa: E402
from assistant.web.auth import Users  # noqa: E402
from tests.postgres_server import pg_server, pg_url  # noqa: E402, F401 (fixtures: a real PostgreSQL server)

ROOT = Path(__file__).resolve().parents[1]  # the repository
SHARED = ROOT.parent / "shared"  # the benchmark questions beside the clone (evaluation and fitting data)
ARTIFACTS = ROOT / "tests" / "artifacts"

# name -> (role, password) of the test users
TEST_USERS = {"sam": ("staff", "staff-pw"), "rita": ("reviewer", "reviewer-pw"), "ann": ("admin", "admin-pw")}

# Scripted model outputs, picked by a marker in the question (see ScriptedBackend).
CONFIDENT = "Twelve elevens are 132. <answer>132</answer> <confidence>95%</confidence>"
UNSURE = "I think it is Lyon but I am not sure. <answer>Lyon</answer> <confidence>30%</confidence>"
HOSTILE = (
    "<answer><script>window.__pwned = 1; alert('xss')</script><b>bold?</b> "
    "<img src=x onerror=\"window.__pwned=2\"> ![tracker](http://example.invalid/t.png)</answer> "
    "<confidence>90%</confidence>"
)

LONG = " ".join(["step"] * 80) + " <answer>done</answer> <confidence>80%</confidence>"
# Working written without think or answer tags, as the default model often does on word problems.
WORKING = "Tom has 3 boxes with 4 apples each, so 12 apples. He eats 2, so 10 are left. The answer is 10."
NO_ANSWER = "<think>Let me see what twelve times eleven is.</think> <confidence>65%</confidence>"  # a figure, no answer


class FixedRouter:
    """Routes every question to one domain with a fixed probability (the `Route` contract of
    assistant/routing/router.py); below 0.5 no domain is sure, so the route is general, as the real
    router's threshold makes it."""

    def __init__(self, domain="math", probability=0.97):
        self.domain, self.probability = domain, probability

    def route(self, question):
        probs = {d: (self.probability if d == self.domain else (1 - self.probability) / 3) for d in DOMAINS}
        confident = self.probability >= 0.5
        return Route(domain=self.domain if confident else GENERAL, probability=self.probability,
                     probabilities=probs, confident=confident)


def read_lines(path) -> list[dict]:
    """Every line of a JSONL file as JSON, read plainly (not through the project's own reader)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def prompt():
    """The shipped default prompt, as collect and the chat use it."""
    return load_prompt("confidence_tags")


def drain(stream):
    """All pieces of a `Backend.stream` and its stats."""
    pieces = list(stream)
    return pieces, stream.result


def make_reply(**changes) -> Reply:
    """A finished Reply as the pipeline makes one (flagged low_confidence), with `changes` applied."""
    base = Reply(
        answer="132", reasoning="12 * 11 = 132", raw_confidence=0.9, confidence=0.45, domain="math",
        domain_probability=0.97, needs_review=True, review_reasons=("low_confidence",), model="fake-model",
        prompt="confidence_tags", map_version="v0007", timings_ms={"generation": 1500.0}, question="What is 12*11?",
        raw_output="12 * 11 = 132 <answer>132</answer> <confidence>90%</confidence>", tokens=17,
    )
    return replace(base, **changes)


def stored_reply(store, reply_id: str) -> dict | None:
    """The `replies` row of `reply_id` as the app reads one (`reply_dict`), straight from the store; None when unknown."""
    from assistant.reviews.store import reply_dict

    rows = store.read("SELECT * FROM replies WHERE public_id = ?", (str(reply_id),))
    return reply_dict(rows[0]) if rows else None


@dataclass
class ScriptedBackend(FakeBackend):
    """FakeBackend whose output depends on the question: '[unsure]' -> low confidence, '[html]' -> hostile HTML.

    `delay` seconds pass between words, so streaming is visible (browser) and killable (fault tests).
    """

    delay: float = 0.0
    scripts: dict = field(default_factory=lambda: {"[unsure]": UNSURE, "[html]": HOSTILE, "[long]": LONG,
                                                           "[working]": WORKING, "[no answer]": NO_ANSWER})

    def pieces(self, messages, options=GenerationOptions(), cancel=None):
        question = messages[-1]["content"].lower()
        text = next((out for key, out in self.scripts.items() if key in question), CONFIDENT)
        words = text.split(" ")
        for i, word in enumerate(words):
            if cancel is not None and cancel.is_set():
                return GenerationStats(tokens=i, finish_reason="cancelled")
            if self.delay:
                time.sleep(self.delay)
            yield word if i == 0 else " " + word
        return GenerationStats(tokens=len(words), finish_reason="stop")


def make_maps(model="fake-model", prompt="confidence_tags"):
    """math: raw p -> 0.8 p (the model is overconfident); general: identity; review below 50%."""
    from assistant.calibrated.maps import CalibrationMaps, DomainMap

    metrics = {"ece_raw": 0.2, "ece_calibrated": 0.05, "brier_raw": 0.3, "brier_calibrated": 0.2,
               "auroc_raw": 0.7, "auroc_calibrated": 0.7, "coverage": 0.8}
    maps = {
        "math": DomainMap("math", (0.0, 1.0), (0.0, 0.8), 300, 0.5, metrics),
        "general": DomainMap("general", (0.0, 1.0), (0.0, 1.0), 1200, 0.5, metrics),
    }
    return CalibrationMaps(model=model, prompt=prompt, version="v0001", fitted_at="2020-01-01T00:00:00+00:00",
                           maps=maps)


def make_assistant(delay: float = 0.0, max_question_chars: int = 8000, map_store=None):
    """The scripted assistant with `make_maps()`; with a `map_store`, that store's active maps (and it reloads from there)."""
    from assistant.answering.pipeline import Assistant
    from assistant.answering.prompts import load_prompt

    backend = ScriptedBackend(model_id="fake-model", delay=delay)
    maps = make_maps() if map_store is None else map_store.active("fake-model", "confidence_tags")
    return Assistant(backend, load_prompt("confidence_tags"), FixedRouter(), maps,
                     max_question_chars=max_question_chars, map_store=map_store)


def shared_maps(folder: Path):
    """A maps folder as servers share it: v0001 (`make_maps`) active, v0002 saved beside it, not yet active, whose
    math map halves the model's figure (so an answer shows which one was applied)."""
    from assistant.calibrated.maps import DomainMap
    from assistant.calibrated.mapstore import MapStore

    store = MapStore(folder)
    first = make_maps()
    store.activate(store.save_new(first))
    halved = DomainMap("math", (0.0, 1.0), (0.0, 0.5), 300, 0.5, first.maps["math"].metrics)
    store.save_new(replace(first, maps={**first.maps, "math": halved}))
    return store


def make_users() -> Users:
    users = Users()
    for name, (role, password) in TEST_USERS.items():
        users = users.with_user(name, role, password)
    return users


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningApp:
    url: str  # base URL of the running app
    store: object  # its ReviewStore
    assistant: object  # its Assistant
    demo: object  # the gr.Blocks


def launch(data_dir: Path, *, users=None, anonymous_role="admin", delay=0.0, notices=None,
           assistant=None, queue_size=32, throttle=None, trusted_proxies=(), store_url=None, server="",
           maps_poll_seconds=10.0) -> RunningApp:
    """Start the app on a free port in this process (a background thread); `users` may be a `UsersFile`.
    `store_url`: a PostgreSQL store (`server` names this server in it) instead of SQLite in `data_dir`."""
    from assistant.reviews.store import ReviewStore
    from assistant.web.app import ChatApp, serve

    store = ReviewStore(data_dir, url=store_url, server=server)
    store.mark_interrupted()  # as main() does at start-up
    assistant = assistant or make_assistant(delay=delay)
    users = users if users is not None else make_users()
    chat_app = ChatApp(assistant, store, users, anonymous_role=anonymous_role, notices=notices,
                       maps_poll_seconds=maps_poll_seconds)
    demo = chat_app.build()
    demo.queue(max_size=queue_size, default_concurrency_limit=1)
    serve(demo, chat_app.ctx, throttle=throttle, trusted_proxies=trusted_proxies, server_name="127.0.0.1",
          server_port=free_port(), prevent_thread_lock=True, quiet=True, show_error=True)
    return RunningApp(demo.local_url.rstrip("/") + "/", store, assistant, demo)


@pytest.fixture(scope="module")
def running_app(tmp_path_factory):
    """The app with a scripted assistant and the three TEST_USERS, shared by a module's tests."""
    app = launch(tmp_path_factory.mktemp("app-data"), delay=0.02)
    yield app
    app.demo.close()


def app_subprocess(data_dir: Path, delay: float, store_url: str | None = None, server: str = ""):
    """(process, url) of the scripted app served by a child process on `data_dir` (for kill tests)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    code = f"import sys; sys.path.insert(0, {str(root)!r}); from tests.conftest import serve_in_subprocess; " \
           f"serve_in_subprocess({str(data_dir)!r}, {delay}, {store_url!r}, {server!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=root)
    return proc, proc.stdout.readline().strip()


def kill_while_streaming(proc, data_dir: Path) -> None:
    """SIGKILL the app process `proc` as soon as a reply in its store is streaming with no text yet."""
    import signal
    import sqlite3

    from assistant.reviews.store import DB_FILENAME

    try:
        db = sqlite3.connect(Path(data_dir) / DB_FILENAME)
        while not db.execute("SELECT 1 FROM replies WHERE status = 'streaming' AND answer IS NULL").fetchone():
            time.sleep(0.05)
        db.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


def serve_in_subprocess(data_dir: str, delay: float, store_url: str | None = None, server: str = "") -> None:
    """Entry point of a server subprocess (for kill tests): `python -c 'from tests.conftest import ...'`."""
    app = launch(Path(data_dir), delay=delay, store_url=store_url, server=server)
    print(app.url, flush=True)
    app.demo.block_thread()
