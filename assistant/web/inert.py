"""Inert text: what a user or the model wrote, made safe to show in markdown or HTML components.

Everything a user or the model wrote goes through `inert_markdown` (markdown components), `inert_html`
(notices, which show HTML) or `inert_name` (a user's name inside a line) before it reaches the page: it
shows as text, HTML is never run, no image or anything else is fetched, and nothing in it is a link
(docs/security.md; tested by tests/assistant/web/test_inert_text.py and test_browser_inert.py).
"""

from __future__ import annotations

import html
import re

__all__ = ["inert_html", "inert_markdown", "inert_name"]

_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_LANGUAGE = re.compile(r"[A-Za-z0-9_+#.-]{1,30}")  # a code block's language name; anything else is dropped
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
# Outside code, every character that could start markup, a link, an image or code:
_MARKUP = re.compile(
    r"\\(?=[!-/:-@\[-`{-~]|\Z)"  # a backslash that would escape what follows (or the code after the text)
    r"|`"  # code (as an entity: marked pairs an escaped backtick with inline code's own, ending that early)
    r"|[\[@]"  # links, images and reference definitions; e-mail autolinks
    r"|~"  # a ~~~ fence; strikethrough, which marked lets run into inline code
    r"|:(?=//)|(?<=www)\."  # bare URLs (http://…, www.…), which GitHub-flavoured markdown makes links
    r"|<(?=[A-Za-z/!?])(?P<tag>[^<>]*)(?P<end>>?)"  # HTML tags, comments and <scheme:…> autolinks
    r"|<(?! )"  # any other "<…>", which marked also lets run into inline code
    r"|&(?=#?\w+;)",  # entities
    re.IGNORECASE,
)


def _escape_text(text: str) -> str:
    """Text outside code, escaped so that markdown shows it as written and makes nothing of it but emphasis,
    headings, lists, quotes and tables: no HTML, link, image, autolink, code or fence. Ordinary text
    ("3 < 5", "Tom & Jerry") stays as written, so the copy button gives the text itself."""
    return _MARKUP.sub(_escape_markup, text)


def _escape_markup(m: re.Match) -> str:
    if m.group("tag") is not None:  # a tag-like "<b>" shows its brackets, and what is inside is text too
        return "&lt;" + _escape_text(m.group("tag")) + ("&gt;" if m.group("end") else "")
    return {"<": "&lt;", "&": "&amp;", "`": "&#96;"}.get(m.group(0), "\\" + m.group(0))


def _longest_backtick_run(code: str) -> int:
    return max((len(run) for run in re.findall("`+", code)), default=0)


def _no_maths(code: str) -> str:
    """`code` with an invisible word joiner inside each "$$". Gradio cuts out "$$…$$" (for KaTeX) before it reads
    the markdown; a cut from inside code to elsewhere could take a fence with it, and code would be read as
    markdown. Outside code a cut starts and ends outside code, so it takes whole code blocks or none."""
    return code.replace("$$", "$\u2060$").replace("$$", "$\u2060$")  # twice: "$$$" has two


def _code_span(code: str) -> str:
    """Inline code that stays code: one backtick each side of `code`, which has no backtick, "|" or line
    break (the browser's reader, marked, lets emphasis run into inline code that holds a backtick, splits
    table cells at "|" inside it, and a line break could start a block that ends it early)."""
    return f"`{_no_maths(code)}`"


def _code_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, backticks) of each code span in `text`: a run of backticks up to the next run of the
    same length in the same paragraph. A run with none is a literal backtick."""
    runs = [m.span() for m in re.finditer("`+", text)]
    spans, i = [], 0
    while i < len(runs):
        start, end = runs[i]
        close = next((j for j in range(i + 1, len(runs)) if runs[j][1] - runs[j][0] == end - start), None)
        if close is None or _BLANK_LINE.search(text, end, runs[close][0]):
            i += 1
            continue
        spans.append((start, runs[close][1], end - start))
        i = close + 1
    return spans


def _escape_prose(text: str) -> str:
    """Text outside code blocks: its inline code re-written as inert code spans, the rest escaped."""
    out, pos = [], 0
    for start, end, ticks in _code_spans(text):
        code = text[start + ticks : end - ticks].replace("\n", " ")
        inert = _escape_text(text[start:end]) if "`" in code or "|" in code else _code_span(code)
        out += [_escape_text(text[pos:start]), inert]
        pos = end
    out.append(_escape_text(text[pos:]))
    return "".join(out)


def _code_blocks(lines: list[str]) -> list[tuple[list[str], list[str] | None, str]]:
    """`lines` as (text lines, code lines or None, language) pieces: a fence (a backtick fence's info has no
    backtick) opens a code block that runs to its closing fence, or to the end when there is none."""
    pieces, text, i = [], [], 0
    while i < len(lines):
        m = _FENCE_OPEN.fullmatch(lines[i])
        if m is None or (m.group(1)[0] == "`" and "`" in m.group(2)):
            text.append(lines[i])
            i += 1
            continue
        close = re.compile(rf" {{0,3}}{m.group(1)[0]}{{{len(m.group(1))},}}[ \t]*")
        end = next((j for j in range(i + 1, len(lines)) if close.fullmatch(lines[j])), len(lines))
        pieces.append((text, lines[i + 1 : end], (m.group(2).split() or [""])[0]))
        text, i = [], end + 1
    return [*pieces, (text, None, "")]


def _code_block(code: list[str], language: str) -> str:
    """A fenced code block no markdown reader ends early: a fence longer than any backtick run inside, at
    the start of a line, closed on a line of its own; a safe language name only (never Gradio's "mermaid",
    whose blocks are drawn as HTML)."""
    fence = "`" * max(3, 1 + _longest_backtick_run("\n".join(code)))
    language = language if _LANGUAGE.fullmatch(language) and language.lower() != "mermaid" else ""
    return "\n".join(["", fence + language, *map(_no_maths, code), fence, ""])


def inert_markdown(text: str | None) -> str:
    """Markdown that shows `text` as written: HTML shows as text, nothing is fetched, nothing is a link.

    Markdown in `text` is kept only where it is harmless: emphasis, headings, lists, quotes, tables, inline
    code and code blocks. Code is re-written in a form no markdown reader takes for anything else, so it
    shows verbatim; all other text is escaped (`_escape_text`). Put the result where a block may start
    (after a blank line, or in a message of its own)."""
    if not text:
        return ""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "".join(_escape_prose("\n".join(prose)) + ("" if code is None else _code_block(code, language))
                   for prose, code, language in _code_blocks(lines))


def inert_name(name: str | None, nobody: str) -> str:
    """A user's name inside a line of markdown, as text."""
    return _escape_text((name or nobody).replace("\n", " "))


def inert_html(text: str | None) -> str:
    """`text` as HTML that shows every character as written (for notices, which show HTML, not markdown)."""
    return html.escape(text or "")
