"""Prompt templates as data: one TOML file per prompt id in `prompts/`, rendered strictly.

A prompt file holds `description`, `user` (required) and optionally `system`,
`[[examples]]` tables (`user`, `assistant`: worked turns sent before the
question, which small models imitate far better than instructions; put them
after the top-level keys, as TOML requires), and for two-turn prompts
`followup_user` (and `followup_system`), which ask only for the confidence in an
answer already given. Placeholders are `{{name}}`;
`{{question}}` in the first turn, `{{question}}` and `{{answer}}` in the follow-up.

Rendering is strict: a placeholder with no value raises `TemplateError` naming
it, and values are inserted verbatim in one pass, so a question that contains
`{{answer}}` is never expanded a second time.

    >>> load_prompt("confidence_tags").messages("What is 2 + 2?")[-1]["role"]
    'user'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser ships as `tomli`
    import tomli as tomllib

from assistant.core.config import DEFAULT_PROMPT
from assistant.core.errors import TemplateError
from assistant.models.backend import Message

__all__ = ["Prompt", "load_prompt", "list_prompts", "render", "DEFAULT_PROMPT", "PROMPTS_DIR"]

PROMPTS_DIR = Path(str(resources.files("prompts")))  # the top-level `prompts` package: *.toml package data

_PROMPT_ID = re.compile(r"^[a-z0-9_]+$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_TEXT_KEYS = ("description", "system", "user", "followup_system", "followup_user")


def render(template: str, *, _where: str = "template", **variables) -> str:
    """Replace each `{{name}}` with `variables[name]`; a missing name raises TemplateError.

    >>> render("Q: {{question}}", question="{{answer}}")
    'Q: {{answer}}'
    """

    def substitute(match: re.Match) -> str:
        name = match[1]
        if name not in variables:
            given = ", ".join(sorted(variables)) or "none"
            raise TemplateError(
                f"{_where} uses {{{{{name}}}}} but no value was given for {name!r} (given: {given})"
            )
        return str(variables[name])

    return _PLACEHOLDER.sub(substitute, template)


@dataclass(frozen=True)
class Prompt:
    id: str  # file stem in prompts/, e.g. "confidence_tags"; names the prompt in maps and replies
    description: str  # one line for `--help` and the UI's prompt picker
    system: str  # system message template; "" for none
    user: str  # first-turn user message template with {{question}}
    followup_system: str = ""  # system message of the follow-up turn; "" for none
    followup_user: str = ""  # follow-up template with {{question}} and {{answer}}; "" for one-turn prompts
    path: Path | None = None  # the TOML file it came from
    examples: tuple[tuple[str, str], ...] = ()  # (user, assistant) demonstration turns before the question
    stop: tuple[str, ...] = ()  # the reply ends once it holds one of these (GenerationOptions.stop)

    @property
    def probe(self) -> str | None:
        """The confidence tag opening this prompt asks for ("<confidence>"), read back when an answer
        lacks it (GenerationOptions.probe); None for prompts without one."""
        return "<confidence>" if "<confidence>" in self.system + self.followup_system else None

    @property
    def followup(self) -> bool:
        """True for two-turn prompts, which ask for the confidence in a second turn."""
        return bool(self.followup_user)

    def _messages(self, system: str, user: str, part: str, **variables) -> list[Message]:
        where = f"prompt {self.id!r} ({part})"
        messages = []
        if system:
            messages.append(
                {"role": "system", "content": render(system, _where=where + " system", **variables)}
            )
        messages.append({"role": "user", "content": render(user, _where=where + " user", **variables)})
        return messages

    def _example_turns(self) -> list[Message]:
        turns = []
        for user, assistant in self.examples:
            turns += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        return turns

    def messages(self, question: str) -> list[Message]:
        """The first-turn chat messages (system, example turns, then user) for a question."""
        messages = self._messages(self.system, self.user, "first turn", question=question)
        return messages[:-1] + self._example_turns() + messages[-1:]

    def followup_messages(self, question: str, answer: str) -> list[Message]:
        """The second-turn messages that ask only for the confidence in `answer`."""
        if not self.followup:
            raise TemplateError(
                f"prompt {self.id!r} has no follow-up turn (no `followup_user` in {self.path})"
            )
        return self._messages(
            self.followup_system, self.followup_user, "follow-up", question=question, answer=answer
        )


def _check_id(prompt_id: str, folder: Path) -> None:
    if not isinstance(prompt_id, str) or not _PROMPT_ID.match(prompt_id):
        raise TemplateError(
            f"invalid prompt id {prompt_id!r}: use lower-case letters, digits and _ only "
            f"(available: {', '.join(list_prompts(folder)) or 'none'})"
        )


def list_prompts(prompts_dir: Path | None = None) -> list[str]:
    """The ids of the prompts in the folder (default `prompts/`), sorted."""
    folder = Path(prompts_dir) if prompts_dir is not None else PROMPTS_DIR
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.toml") if _PROMPT_ID.match(p.stem))


def load_prompt(prompt_id: str, prompts_dir: Path | None = None) -> Prompt:
    """Load `prompts/<prompt_id>.toml`; TemplateError names the file and key if unknown or malformed."""
    folder = Path(prompts_dir) if prompts_dir is not None else PROMPTS_DIR
    _check_id(prompt_id, folder)
    path = folder / f"{prompt_id}.toml"
    if not path.is_file():
        raise TemplateError(
            f"unknown prompt {prompt_id!r}; available: {', '.join(list_prompts(folder)) or 'none'} "
            f"(in {folder})"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise TemplateError(f"malformed prompt file {path}: {error}") from error
    for key in _TEXT_KEYS:
        if key in data and not isinstance(data[key], str):
            raise TemplateError(
                f"prompt file {path}: key {key!r} must be a string, not {type(data[key]).__name__}"
            )
    if not data.get("user", "").strip():
        raise TemplateError(f"prompt file {path}: missing key 'user' (the first-turn message template)")
    if data.get("followup_system") and not data.get("followup_user"):
        raise TemplateError(
            f"prompt file {path}: 'followup_system' is set but key 'followup_user' is missing"
        )
    examples = _examples(data.get("examples", []), path)
    stop = data.get("stop", [])
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise TemplateError(f'prompt file {path}: \'stop\' must be a list of non-empty strings, e.g. stop = ["</confidence>"]')
    unknown = sorted(set(data) - set(_TEXT_KEYS) - {"examples", "stop"})
    if unknown:
        raise TemplateError(
            f"prompt file {path}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(_TEXT_KEYS)}, stop, examples"
        )
    return Prompt(
        id=prompt_id,
        description=data.get("description", "").strip(),
        system=data.get("system", ""),
        user=data["user"],
        followup_system=data.get("followup_system", ""),
        followup_user=data.get("followup_user", ""),
        path=path,
        examples=examples,
        stop=tuple(stop),
    )


def _examples(raw, path: Path) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        raise TemplateError(f"prompt file {path}: 'examples' must be an array of tables ([[examples]])")
    examples = []
    for i, example in enumerate(raw, 1):
        if (
            not isinstance(example, dict)
            or set(example) != {"user", "assistant"}
            or not all(isinstance(v, str) and v.strip() for v in example.values())
        ):
            stray = sorted(set(example) & set(_TEXT_KEYS) - {"user"}) if isinstance(example, dict) else []
            hint = f" ({', '.join(stray)} must come before the first [[examples]])" if stray else ""
            raise TemplateError(
                f"prompt file {path}: examples[{i}] needs exactly two non-empty strings, "
                f"'user' and 'assistant'{hint}"
            )
        examples.append((example["user"], example["assistant"]))
    return tuple(examples)
