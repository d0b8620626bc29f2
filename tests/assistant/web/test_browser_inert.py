"""Issue 25.1 and 25.2 in Debian's Chromium: text a user or the model wrote fetches nothing and links nowhere,
in the asker's chat, in the reviewer's item view and in the "Sent for a human check" notice, which shows once
for one click. A listener on 127.0.0.1 counts every request the pages make to it.

Uses test_browser.py's browser, app and signed-in Session; skipped as that module is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.assistant.web.test_browser import CHROMIUM, Session, app, browser  # noqa: F401 (fixtures)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="browser tests need Debian's Chromium at /usr/bin/chromium "
                       "(apt-get install chromium)"),
]


@dataclass
class Listener:
    url: str
    paths: list = field(default_factory=list)  # the path of every GET it received


@pytest.fixture
def listener():
    """An HTTP server on 127.0.0.1 (a free port) that records every GET and answers 204."""
    heard = Listener("")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the name http.server calls)
            heard.paths.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    heard.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield heard
    server.shutdown()
    server.server_close()


def payloads(url: str, tag: str) -> list[str]:
    """The two ways past the old escaping (an unclosed fence whose info holds a backtick; an escaped
    backtick before a tag), fetching `url`/<tag>-a.png and <tag>-b.png."""
    return [f'``` `x`\n<img src="{url}/{tag}-a.png">', f'\\`<img src="{url}/{tag}-b.png">`']


def assert_nothing_fetched_or_linked(session: Session, listener: Listener) -> None:
    session.page.wait_for_timeout(1000)  # time for any image the page holds to be requested
    assert listener.paths == []
    assert not [url for url in session.outside if url.startswith(listener.url)]
    assert session.page.locator(f'a[href^="{listener.url}"], img[src^="{listener.url}"]').count() == 0


def test_user_text_fetches_nothing_and_links_nowhere_for_the_asker_or_the_reviewer(browser, app, listener):  # noqa: F811
    """Issue 25.1: both payloads in a question and in a thumbs-down comment, and a markdown link in the
    comment, shown in the asker's chat and in the reviewer's item view."""
    question = "\n\n".join([*payloads(listener.url, "question"), f"[Re-login here]({listener.url}/relogin-q)",
                              "Capital of France? [unsure] [inert]"])  # also in the queue's table and list
    comment = "\n\n".join([f"[Reviewer, re-login here]({listener.url}/relogin)", *payloads(listener.url, "comment")])
    asker = Session(browser, app, "sam")
    asker.ask(question)
    asker.page.wait_for_selector("#cc-chat .cc-badge", timeout=30_000)
    asker.page.fill("#cc-comment textarea", comment)
    asker.page.get_by_role("button", name="Dislike", exact=True).last.click()
    asker.page.locator('[data-testid="toast-body"]', has_text="feedback saved").first.wait_for(timeout=10_000)
    shown = asker.page.locator('#cc-chat [data-testid="user"]').last.inner_text()
    assert f'<img src="{listener.url}/question-a.png">' in shown  # the HTML is shown as text
    assert_nothing_fetched_or_linked(asker, listener)
    asker.page.close()

    item = next(i for i in app.store.queue() if i.question.endswith("[inert]"))
    reviewer = Session(browser, app, "rita")
    reviewer.page.get_by_role("tab", name="Review").click()
    reviewer.page.wait_for_selector(f"#cc-item-detail:has-text('Item {item.id}')", timeout=30_000)
    detail = reviewer.page.locator("#cc-item-detail")
    detail.get_by_text("Reviewer, re-login here").wait_for(timeout=10_000)
    text = detail.inner_text()
    assert f"[Reviewer, re-login here]({listener.url}/relogin)" in text  # a link's markdown, shown as text
    assert f'<img src="{listener.url}/comment-a.png">' in text and f'<img src="{listener.url}/question-a.png">' in text
    assert_nothing_fetched_or_linked(reviewer, listener)
    reviewer.shot("review-inert.png")
    reviewer.page.close()


def ask_for_a_human_check(session: Session, flag) -> None:
    """Pick "Ask for a human check" under `flag` (see test_browser's test of the human check)."""
    from playwright.sync_api import TimeoutError as NotYet

    option = flag.locator(".extra-feedback-option", has_text="Ask for a human check")
    for _ in range(5):  # the options show while the pointer is over the flag; a re-render can end the hover
        session.page.mouse.move(0, 0)
        flag.scroll_into_view_if_needed()
        flag.hover()
        try:
            option.wait_for(state="visible", timeout=5_000)
            break
        except NotYet:
            continue
    else:
        raise AssertionError("the flag's options never showed under the pointer")
    option.dispatch_event("click")


def test_the_human_check_notice_shows_the_question_as_text_once(browser, app, listener):  # noqa: F811
    """Issue 25.2: the notice showed the question's HTML (bold text, a fetched image), twice for one click."""
    question = f'<img src="{listener.url}/notice.png"> <b>bold</b> What is 5+5? [notice]'
    s = Session(browser, app, "sam")
    s.ask(question)
    s.page.wait_for_selector("#cc-chat .cc-badge", timeout=30_000)
    ask_for_a_human_check(s, s.page.locator("#cc-chat .extra-feedback:visible").first)
    notices = s.page.locator('[data-testid="toast-body"]', has_text="Sent for a human check")
    notices.first.wait_for(timeout=10_000)
    # Events from one page are answered in order: once this later one is answered, so is any second notice.
    s.page.get_by_role("button", name="Like", exact=True).last.click()
    s.page.locator('[data-testid="toast-body"]', has_text="feedback saved").first.wait_for(timeout=10_000)
    text = "\n".join(notices.all_inner_texts())
    assert text.count("Sent for a human check") == 1, text
    assert f'“<img src="{listener.url}/notice.png"> <b>bold</b> What is 5+5? [notice]”' in text
    assert notices.locator("b, img").count() == 0
    assert_nothing_fetched_or_linked(s, listener)
    s.page.close()


FOUND_IN_RENDERED = """sel => {
    const bad = [];
    for (const el of document.querySelectorAll(sel)) {
        const tag = el.tagName.toLowerCase();
        if (['img', 'a', 'script', 'iframe', 'object', 'embed', 'video', 'audio', 'source', 'image', 'use']
                .includes(tag)) bad.push(tag + ': ' + el.outerHTML.slice(0, 200));
        for (const attr of el.attributes) {
            if (attr.name.startsWith('on') || (attr.name !== 'title' && /javascript:/i.test(attr.value)) || attr.name === 'href'
                || attr.name === 'src') bad.push(tag + ' ' + attr.name + '=' + attr.value.slice(0, 100));
        }
    }
    return bad;
}"""


def test_generated_text_renders_inert_in_gradios_own_markdown(browser, listener, tmp_path):  # noqa: F811
    """The property test's adversarial text, through the reader the browser really uses: 300 texts made
    from the same pieces (a fixed seed), as chat messages and as one Markdown view, with the app's settings."""
    import random

    import gradio as gr

    from assistant.web import inert
    from tests.assistant.web.test_inert_text import KNOWN_TRICKS, PIECES

    rng = random.Random(25)
    pieces = [piece.replace("http://", f"{listener.url}/") for piece in PIECES]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 30))) for _ in range(300)]
    texts += [text.replace("http://127.0.0.1:9", listener.url) for text in KNOWN_TRICKS]
    messages = [{"role": "user" if n % 2 else "assistant", "content": inert.inert_markdown(t)}
                for n, t in enumerate(texts)]
    with gr.Blocks() as demo:
        gr.Chatbot(messages, elem_id="probe-chat", sanitize_html=True, allow_tags=False,
                   group_consecutive_messages=False, buttons=["copy"])
        gr.Markdown("\n\n".join(inert.inert_markdown(t) for t in texts), elem_id="probe-md")
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    page = browser.new_page()
    try:
        page.goto(demo.local_url)
        page.wait_for_selector("#probe-md .md", timeout=30_000)
        page.wait_for_function("() => document.querySelectorAll('#probe-chat .message-content').length >= 300",
                               timeout=30_000)
        page.wait_for_timeout(1000)
        assert page.evaluate(FOUND_IN_RENDERED, "#probe-chat .message-content *, #probe-md *") == []
        assert listener.paths == []
    finally:
        page.close()
        demo.close()
