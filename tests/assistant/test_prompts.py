"""Tests for assistant.answering.prompts: strict rendering, loading errors, every shipped prompt."""

from __future__ import annotations

import pytest

from assistant.answering.answer import with_prompt
from assistant.answering.prompts import DEFAULT_PROMPT, Prompt, list_prompts, load_prompt, render
from assistant.core.errors import TemplateError
from assistant.models.backend import GenerationOptions

SHIPPED = ("confidence_prob", "confidence_tags", "direct", "self_reflection")


@pytest.mark.parametrize(
    "template, variables, expected",
    [
        ("Q: {{question}}", {"question": "2+2?"}, "Q: 2+2?"),
        ("{{ question }}|{{answer}}", {"question": "q", "answer": "a"}, "q|a"),
        ("no placeholders", {"question": "unused"}, "no placeholders"),
        ("{{question}}", {"question": "{{answer}}"}, "{{answer}}"),  # values are never re-rendered
        ("{{question}}", {"question": r"\1 \g<0> $&"}, r"\1 \g<0> $&"),  # no regex-replacement escapes
        ("{single} {{question}}", {"question": "x"}, "{single} x"),  # single braces stay
        ("{{q}}{{q}}", {"q": 1}, "11"),
    ],
)
def test_render(template, variables, expected):
    assert render(template, **variables) == expected


def test_render_missing_variable_names_it():
    with pytest.raises(TemplateError, match=r"\{\{answer\}\}.*'answer'"):
        render("Q: {{question}} A: {{answer}}", question="q")


def test_list_prompts_has_the_shipped_ids():
    assert set(SHIPPED) <= set(list_prompts())
    assert DEFAULT_PROMPT in list_prompts()


@pytest.mark.parametrize("prompt_id", SHIPPED)
def test_every_shipped_prompt_loads_and_renders(prompt_id):
    prompt = load_prompt(prompt_id)
    assert isinstance(prompt, Prompt) and prompt.id == prompt_id and prompt.description
    messages = prompt.messages("What is the capital of Peru?")
    assert messages[-1]["role"] == "user" and "What is the capital of Peru?" in messages[-1]["content"]
    roles = [m["role"] for m in messages]
    body = (
        roles[1:] if roles[0] == "system" else roles
    )  # then worked (user, assistant) turns, then the question
    assert body[-1] == "user" and body[:-1] == ["user", "assistant"] * (len(body[:-1]) // 2)
    assert all("{{" not in m["content"] for m in messages)
    if prompt.followup:
        followup = prompt.followup_messages("What is the capital of Peru?", "Lima")
        text = "\n".join(m["content"] for m in followup)
        assert "Lima" in text and "<confidence>" in text and "{{" not in text


@pytest.mark.parametrize(
    "prompt_id, followup, asks_for",
    [
        ("confidence_tags", False, "<confidence>"),
        ("confidence_prob", False, "<confidence>0."),
        ("direct", False, "<confidence>"),
        ("self_reflection", True, "<answer>"),
    ],
)
def test_shipped_prompt_shapes(prompt_id, followup, asks_for):
    prompt = load_prompt(prompt_id)
    assert prompt.followup is followup
    assert asks_for in "\n".join(m["content"] for m in prompt.messages("q"))


@pytest.mark.parametrize("prompt_id, stop", [
    ("confidence_tags", ("</confidence>",)), ("confidence_prob", ("</confidence>",)), ("direct", ("</confidence>",)),
    ("self_reflection", ()),  # its first turn ends at </answer>, its second at </confidence>: no one stop text
])
def test_one_turn_prompts_stop_once_their_confidence_tag_closes(prompt_id, stop):
    prompt = load_prompt(prompt_id)
    assert prompt.stop == stop
    assert with_prompt(prompt, GenerationOptions()).stop == stop


def test_the_direct_prompt_asks_for_no_reasoning_and_shows_none():
    prompt = load_prompt("direct")
    assert "without explaining or reasoning" in prompt.system
    assert all(turn.startswith("<answer>") for _, turn in prompt.examples)


def test_self_reflection_first_turn_does_not_ask_for_confidence():
    first = "\n".join(m["content"] for m in load_prompt("self_reflection").messages("q"))
    assert "<confidence>" not in first


def test_injection_in_question_is_not_expanded():
    prompt = load_prompt("self_reflection")
    evil = "Ignore this {{answer}} and {{question}} {{nope}}"
    assert evil in prompt.messages(evil)[-1]["content"]
    followup = prompt.followup_messages(evil, "ANSWER")
    assert evil in followup[-1]["content"] and followup[-1]["content"].count("ANSWER") == 1


def test_examples_become_worked_turns_before_the_question(tmp_path):
    (tmp_path / "fewshot.toml").write_text(
        'system = "S"\nuser = "Q: {{question}}"\n[[examples]]\nuser = "Q: 1+1?"\nassistant = "<answer>2</answer>"\n',
        encoding="utf-8",
    )
    messages = load_prompt("fewshot", tmp_path).messages("2+2?")
    assert messages == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q: 1+1?"},
        {"role": "assistant", "content": "<answer>2</answer>"},
        {"role": "user", "content": "Q: 2+2?"},
    ]


def test_one_turn_prompt_has_no_followup():
    prompt = load_prompt("confidence_tags")
    with pytest.raises(TemplateError, match="no follow-up"):
        prompt.followup_messages("q", "a")


def test_unknown_prompt_lists_available_ids():
    with pytest.raises(TemplateError, match="unknown prompt 'nope'.*confidence_tags"):
        load_prompt("nope")


@pytest.mark.parametrize("bad_id", ["../etc/passwd", "Confidence_Tags", "a/b", "", "x.toml", "a b"])
def test_prompt_ids_are_never_paths(bad_id):
    with pytest.raises(TemplateError, match="invalid prompt id"):
        load_prompt(bad_id)


@pytest.mark.parametrize(
    "content, message",
    [
        ('user = "unterminated', r"malformed prompt file .*broken\.toml"),
        ('description = "no user"', r"broken\.toml: missing key 'user'"),
        ("user = 3", r"broken\.toml: key 'user' must be a string"),
        ('user = "{{question}}"\nfollowup_system = "x"', r"key 'followup_user' is missing"),
        ('user = "{{question}}"\nsytem = "typo"', r"unknown key\(s\) sytem"),
        ('user = "{{question}}"\nstop = "</confidence>"', r"'stop' must be a list of non-empty strings"),
        ('user = "{{question}}"\nstop = [""]', r"'stop' must be a list of non-empty strings"),
        ('user = "{{question}}"\n[[examples]]\nuser = "x"', r"examples\[1\] needs .*'assistant'"),
        (
            'user = "q"\n[[examples]]\nuser = "x"\nassistant = "y"\nfollowup_user = "z"',
            r"followup_user must come before",
        ),
    ],
)
def test_malformed_prompt_files_name_file_and_key(tmp_path, content, message):
    (tmp_path / "broken.toml").write_text(content, encoding="utf-8")
    with pytest.raises(TemplateError, match=message):
        load_prompt("broken", tmp_path)


def test_missing_variable_in_prompt_file_names_prompt_and_variable(tmp_path):
    (tmp_path / "custom.toml").write_text('user = "{{question}} {{context}}"', encoding="utf-8")
    prompt = load_prompt("custom", tmp_path)
    assert list_prompts(tmp_path) == ["custom"]
    with pytest.raises(TemplateError, match=r"prompt 'custom'.*\{\{context\}\}"):
        prompt.messages("q")
