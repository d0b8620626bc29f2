"""Issue 25.1: user and model text renders as text. A property test over adversarial text: rendered as
markdown (with raw HTML allowed and GitHub's bare-URL links, as the browser's markdown reader does),
`inert_markdown`'s result holds no image, link, script, event handler or javascript: URL, and only the
harmless markdown it keeps. The browser itself is checked in test_browser.py."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.web import inert

markdown_it = pytest.importorskip("markdown_it", reason="the property test renders with markdown-it-py")
pytest.importorskip("linkify_it", reason="the property test needs linkify-it-py for bare-URL links")

# What markdown may make of user text: formatting, code, tables; never a link, an image or embedded content.
ALLOWED_TAGS = {"p", "br", "em", "strong", "s", "del", "code", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "ul",
                "ol", "li", "blockquote", "hr", "table", "thead", "tbody", "tr", "th", "td"}
ALLOWED_ATTRIBUTES = {("code", "class"), ("ol", "start"), ("th", "style"), ("td", "style")}
# GitHub-flavoured markdown (as the browser's reader, marked, has it) makes these into links in plain text.
BARE_LINKS = re.compile(r"(?:https?|ftp)://|www\.|[A-Za-z0-9._+-]+@[A-Za-z0-9_-]+\.[A-Za-z0-9]", re.IGNORECASE)
PIECES = ["`", "``", "```", "````", "~~~", "\\", "\\`", "<", ">", "[", "]", "(", ")", "!", "![", "](", '"', "'",
          "javascript:", "JavaScript:", "onerror=", " onload=", "\n", "\n\n", " ", "    ", "\t", "\r", "\u2028",
          "<img src=x>", '<img src="http://127.0.0.1:9/i.png">', "<a href=", "<script>", "</", "<!--", "<?",
          "http://", "https://e.example/", "www.", "@", "a@b.co", "mailto:", "<http://x.y>", "&", "&#60;", "&lt;",
          "&#x3C;", "$$", "```mermaid\n", "```html\n", "*", "**", "_", "|", "---", "# ", "> ", "- ", "1. ",
          "x", "img", ":", "/", "=", "[x]: http://e.example/", "[x]", "~", "~~", "|", "| a | b |\n|---|---|\n", "$",
          "`$$`", "%%%LATEX_BLOCK_0%%%"]
ADVERSARIAL = st.lists(st.sampled_from(PIECES) | st.text(alphabet="`~<>[]()!\"':/=@&\\\n x", max_size=4),
                       max_size=40).map("".join)


def renderer():
    md = markdown_it.MarkdownIt("commonmark", {"html": True, "linkify": True, "breaks": True})
    md.enable(["table", "strikethrough", "linkify"])
    md.linkify.set({"fuzzy_link": False})  # links need a scheme or www., as in GitHub-flavoured markdown
    return md


MD = renderer()
TOKENS = renderer().disable("text_join")  # for reading: each backslash escape stays a token of its own


class Markup(HTMLParser):
    """Every start tag and its attributes in a piece of HTML."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def unescaped_text_runs(markdown: str) -> list[str]:
    """The plain text markdown-it reads in `markdown`, in runs that end at each backslash escape, code
    span and markup: where a bare URL would become a link."""
    runs = []
    for token in TOKENS.parse(markdown):
        run = ""
        for child in token.children or ():
            if child.type == "text":
                run += child.content
            else:
                runs.append(run)
                run = ""
        runs.append(run)
    return runs


def assert_inert(text: str) -> None:
    shown = inert.inert_markdown(text)
    html = MD.render(shown)
    lowered = html.lower()
    assert "<img" not in lowered and "<a " not in lowered and "<script" not in lowered, (text, shown, html)
    for tag, attrs in Markup(html).tags:
        assert tag in ALLOWED_TAGS, (tag, text, shown, html)
        for name, value in attrs:
            assert (tag, name) in ALLOWED_ATTRIBUTES and not name.startswith("on"), (tag, name, text, shown)
            assert "javascript:" not in (value or "").lower(), (tag, name, value, text, shown)
    assert not [run for run in unescaped_text_runs(shown) if BARE_LINKS.search(run)], (text, shown)


@settings(max_examples=1500, deadline=None)
@given(ADVERSARIAL)
def test_no_text_renders_an_image_a_link_a_script_or_a_handler(text):
    assert_inert(text)


KNOWN_TRICKS = [
    '``` `x`\n<img src="http://127.0.0.1:9/a.png">',  # the two ways past the old escaping (issue 25.1)
    '\\`<img src="http://127.0.0.1:9/b.png">`',
    "[Reviewer, re-login here](http://127.0.0.1:9/relogin)",
    "~~~\n```\n~~~\n<img src=x>\n```",  # a fence inside a fence of the other kind
    "```mermaid\n<img src=x>\n```",  # Gradio draws mermaid blocks as HTML
    "`a\n> <img src=x>`",  # inline code whose line break would start a quote
    "- a\n```\n<img src=x>\n```",
    "\\",
    "[x]\n\n[x]: http://e.example/",
    "<http://e.example/>, <a@b.co>, www.e.example, a@b.co, https://e.example",
    # What marked, the browser's reader, does unlike CommonMark (found by the browser test):
    "~~a `x~~ <img src=x>`",  # strikethrough runs into inline code
    "**a ``x`**<img src=x>`` b**",  # so does emphasis, into inline code that holds a backtick
    "| a | b |\n|---|---|\n| `x | <img src=x>` | y |",  # a table cell ends at a "|" inside inline code
    "```\n$$\n```\n`$$`\n```\n<img src=x>\n```",  # Gradio cuts "$$…$$" out first, fences and all
]


@pytest.mark.parametrize("text", KNOWN_TRICKS)
def test_known_tricks_render_inert(text):
    assert_inert(text)


def test_harmless_markdown_still_renders_and_code_shows_verbatim():
    html = MD.render(inert.inert_markdown(
        "**Answer:** 42\n\n- one\n- two\n\nUse `a[0] <b>` here.\n\n```python\nx = '<img src=x>' # `tick`\n```\nend"))
    assert "<strong>Answer:</strong> 42" in html and "<li>one</li>" in html
    assert "<code>a[0] &lt;b&gt;</code>" in html
    assert '<pre><code class="language-python">x = \'&lt;img src=x&gt;\' # `tick`\n</code></pre>' in html
    assert html.rstrip().endswith("<p>end</p>")


def test_text_outside_code_shows_as_written():
    text = "3 < 5 & a > b; see [1] at http://e.example or www.e.example, ask a@b.co: \\o/ ~~~ ![x](y)"
    html = MD.render(inert.inert_markdown(text))
    assert html == "<p>" + text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</p>\n"


def test_a_notice_shows_html_as_text():
    assert inert.inert_html('<img src="x"> <b>bold</b> & more') == (
        "&lt;img src=&quot;x&quot;&gt; &lt;b&gt;bold&lt;/b&gt; &amp; more")
