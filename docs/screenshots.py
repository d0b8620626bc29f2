"""Remake the screenshots in docs/ from the real app: `python docs/screenshots.py [--out docs]`.

It starts the web app in this process with the real default model, the real router and the active
calibration maps (uncalibrated answers allowed), signs in three throw-away users, asks a few questions,
has the reviewer judge them, then drives Debian's Chromium (Playwright, headless) as the admin and writes
chat.png (one question and its answer), conversations.png (the conversation list, and a reasoning
section opened after streaming) and dashboard.png. It fails, naming the step, when a page does not show
what it should: an answer's badge, the dashboard's map summary. Needs the `test` extra (playwright,
gradio_client) and /usr/bin/chromium; takes a few minutes on a CPU.
"""

from __future__ import annotations

import argparse
import secrets
import socket
import sys
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ROLES = {"sam": "staff", "rita": "reviewer", "ann": "admin"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(data_dir: Path, passwords: dict):
    """(url, demo) of the app with the real assistant, served on a free local port."""
    from assistant.answering.pipeline import Assistant
    from assistant.core.config import ModelConfig, set_offline_env
    from assistant.models.backend import GenerationOptions
    from assistant.reviews.store import ReviewStore
    from assistant.web.app import ChatApp, serve
    from assistant.web.auth import Users

    set_offline_env()
    assistant = Assistant.from_config(ModelConfig(), allow_uncalibrated=True,
                                      options=GenerationOptions(max_new_tokens=160))
    users = Users()
    for name, role in ROLES.items():
        users = users.with_user(name, role, passwords[name])
    app = ChatApp(assistant, ReviewStore(data_dir), users, anonymous_role="admin")
    demo = app.build()
    demo.queue(default_concurrency_limit=1)
    serve(demo, app.ctx, server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True)
    return demo.local_url.rstrip("/") + "/", demo


def seed_reviews(url: str, passwords: dict) -> None:
    """Three answers from the staff user, each judged by the reviewer, so the dashboard has figures."""
    from gradio_client import Client

    staff = Client(url, auth=("sam", passwords["sam"]), verbose=False)
    reviewer = Client(url, auth=("rita", passwords["rita"]), verbose=False)
    for question in ("What is 15 + 27?", "What is the capital of Australia?", "What gas do plants absorb?"):
        staff.predict(question, None, api_name="/ask")
    for item in reviewer.predict("all", "all", api_name="/review_queue"):
        verdict = "correct" if item["confidence"] and item["confidence"] > 0.5 else "incorrect"
        reviewer.predict(item["id"], verdict, "", api_name="/submit_verdict")


def _ask(page, question: str, n: int) -> None:
    """Ask `question` and wait for the n-th badge (0-based) of this conversation."""
    page.fill("#cc-question textarea", question)
    page.click("#cc-send")
    page.wait_for_selector(f"#cc-chat .cc-badge >> nth={n}", timeout=180_000)
    page.wait_for_timeout(500)


def shoot(url: str, password: str, out: Path) -> list[Path]:
    """Sign in as the admin in Chromium and write the three screenshots into `out`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 1300})
        page.goto(url)
        page.get_by_label("username").fill("ann")
        page.get_by_label("password").fill(password)
        page.get_by_role("button", name="Login").click()
        page.wait_for_selector("#cc-question textarea", timeout=30_000)
        _ask(page, "Which planet is known as the Red Planet?", 0)  # an earlier conversation, for the list
        page.click("#cc-new-chat")
        _ask(page, "What is 12 times 11?", 0)
        page.locator("#cc-chat").screenshot(path=str(out / "chat.png"))  # one whole question and answer
        _ask(page, "A farmer has 3 pens with 4 sheep each. How many sheep?", 1)
        reasoning = page.locator("#cc-chat .thought-group", has_text="Reasoning")
        if reasoning.count():  # the working the model streamed, opened after the answer finished
            reasoning.last.locator(".title").click()
            page.wait_for_timeout(500)
        page.screenshot(path=str(out / "conversations.png"), full_page=True)
        page.get_by_role("tab", name="Dashboard").click()
        page.wait_for_selector("#cc-dash-summary:has-text('map')", timeout=30_000)
        page.wait_for_timeout(2000)
        page.screenshot(path=str(out / "dashboard.png"), full_page=True)
        browser.close()
    return [out / name for name in ("chat.png", "conversations.png", "dashboard.png")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder the PNG files are written to (default: docs/)")
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        print(f"error: {CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium)", file=sys.stderr)
        return 2
    if not args.out.is_dir():
        print(f"error: --out {args.out} is not a folder: create it first", file=sys.stderr)
        return 2
    passwords = {name: secrets.token_urlsafe(12) for name in ROLES}
    with tempfile.TemporaryDirectory(prefix="screenshots-") as data:
        url, demo = start_app(Path(data), passwords)
        try:
            seed_reviews(url, passwords)
            written = shoot(url, passwords["ann"], args.out)
        finally:
            demo.close()
    for path in written:
        print(f"{path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
