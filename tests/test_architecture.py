"""The code's shape, as docs/architecture.md states it: small modules and functions, project imports
at module level (so the import-linter contract in pyproject.toml sees every one), and each
vocabulary defined once. `make lint` checks the layers themselves with `lint-imports`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

SOURCES = sorted([*ROOT.glob("assistant/**/*.py"), *ROOT.glob("calibration/**/*.py"), *ROOT.glob("bench/**/*.py"),
                  ROOT / "app.py"])
PROJECT = ("assistant", "calibration", "prompts", "bench", "app")

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60  # of code: a docstring does not count
# Declarative tables written as a function (one entry per line), not logic: the only exceptions.
TABLES = {"calibration/labelling/datagen/factual.py:_factual_facts", "calibration/labelling/datagen/science.py:_formula"}
# One class over llama.cpp's C API whose decoding state (KV cache, sequences, prefix) is shared by
# every method; its small helpers already live in llamacpp_c.py. (447: the backend protocol's names, one a line.)
LONG_MODULES = {"assistant/models/llamacpp.py": 447}


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _code_lines(node) -> int:
    """Lines of a function without its docstring."""
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_modules_and_functions_stay_small(path):
    text = path.read_text(encoding="utf-8")
    limit = LONG_MODULES.get(_name(path), MAX_MODULE_LINES)
    assert text.count("\n") <= limit, f"{_name(path)} has {text.count(chr(10))} lines (limit {limit}): split it"
    long = [f"{node.name} ({_code_lines(node)} lines)" for node in _functions(ast.parse(text))
            if _code_lines(node) > MAX_FUNCTION_LINES and f"{_name(path)}:{node.name}" not in TABLES]
    assert not long, f"{_name(path)}: functions over {MAX_FUNCTION_LINES} lines of code: {', '.join(long)}"


@pytest.mark.parametrize("path", SOURCES, ids=_name)
def test_project_imports_are_at_module_level(path):
    """A function-level import hides a dependency from the layers contract; only heavy third-party
    modules (torch, gradio, matplotlib, scikit-learn) are imported late, to keep start-up cheap."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    hidden = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and id(node) not in top:
            names = [node.module or ""]
        elif isinstance(node, ast.Import) and id(node) not in top:
            names = [alias.name for alias in node.names]
        else:
            continue
        hidden += [f"line {node.lineno}: {n}" for n in names if n.split(".")[0] in PROJECT]
    allowed = {"app.py": {"assistant.web.app"}, "assistant/routing/router.py": {"assistant.routing.encoder"}}.get(_name(path), set())
    hidden = [h for h in hidden if h.split(": ")[1] not in allowed]
    assert not hidden, f"{_name(path)} imports project modules inside functions: {hidden}"


@pytest.mark.parametrize("vocabulary, pattern, home", [
    ("the domain list", r'\(\s*"math",\s*"factual",\s*"science",\s*"reasoning"', "assistant/core/domains.py"),
    ("the review reasons", r'"low_confidence":\s*"', "assistant/core/reply.py"),
    ("the record fields", r'"raw_confidence",\s*"correct",\s*"model"', "assistant/core/record.py"),
    ("atomic file writing", r"mkstemp\(", "assistant/core/files.py"),
    ("the not-attempted phrases", r"not enough information", "assistant/core/refusals.py"),
])
def test_each_vocabulary_is_written_once(vocabulary, pattern, home):
    found = sorted(_name(path) for path in SOURCES if re.search(pattern, path.read_text(encoding="utf-8")))
    assert found == [home], f"{vocabulary} is written in {found}, not only in {home}"
