"""The map store's HISTORY, replayed into one stack of activated versions per (model, prompt) pair.

A line is ``<version>\\t<activate|rollback>\\t<model>\\t<prompt>\\t<ISO time>``: activate pushes
the version on its pair's stack, rollback pops the pair's stack (the version it names is the one
re-activated). Only whole lines (ending in a newline) count, so a line cut short by a crash is ignored.

Older folders hold one pointer for all models: ``<version>\\t<action>\\t<ISO time>`` lines and an
``ACTIVE`` file. They are read, never rewritten: their lines replay as the one stack they were,
each version then counted for the pair its file names, so their history and their active version
carry over; ``ACTIVE`` counts as one more activation when it names another version than that
stack's top and no per-pair line exists yet (a folder made by hand with ACTIVE alone).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["Pair", "history_line", "replay"]

Pair = tuple[str, str]  # (model, prompt)
_ACTIONS = ("activate", "rollback")


@dataclass(frozen=True)
class _Line:
    version: str
    action: str
    pair: Pair | None  # None: a line of the older, single-pointer format


def history_line(version: str, action: str, pair: Pair, stamp: str) -> str:
    """One HISTORY line, newline included."""
    return "\t".join((version, action, *pair, stamp)) + "\n"


def _parse(text: str, is_version: Callable[[str], bool]) -> list[_Line]:
    lines = []
    for line in text.split("\n")[:-1]:  # the part after the last newline is a cut-short line
        parts = line.split("\t")
        if not parts or not is_version(parts[0]) or len(parts) < 2 or parts[1] not in _ACTIONS:
            continue
        if len(parts) == 5:
            lines.append(_Line(parts[0], parts[1], (parts[2], parts[3])))
        elif len(parts) == 3:
            lines.append(_Line(parts[0], parts[1], None))
    return lines


def _replay_single(lines: list[_Line], pointer: str | None) -> list[str]:
    stack: list[str] = []
    for line in lines:
        if line.action == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(line.version)
    if pointer is not None and (not stack or stack[-1] != pointer):
        stack.append(pointer)
    return stack


def replay(texts: Iterable[str], pointer: str | None, pair_of: Callable[[str], Pair],
           is_version: Callable[[str], bool]) -> dict[Pair, list[str]]:
    """Each pair's stack of activated versions (the last is its active one), from the HISTORY texts
    in order (the read-only base's, then the folder's) and the older ACTIVE `pointer`, if any."""
    lines = [line for text in texts for line in _parse(text, is_version)]
    older = [line for line in lines if line.pair is None]
    per_pair = any(line.pair is not None for line in lines)
    stacks: dict[Pair, list[str]] = {}
    for version in _replay_single(older, None if per_pair else pointer):
        stacks.setdefault(pair_of(version), []).append(version)
    for line in lines:
        if line.pair is None:
            continue
        stack = stacks.setdefault(line.pair, [])
        if line.action == "activate":
            stack.append(line.version)
        elif stack:
            stack.pop()
    return {pair: stack for pair, stack in stacks.items() if stack}
