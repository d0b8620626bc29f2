"""Clean one domain's pooled items and split them into a fitting part and a held-out part.

Cleaning drops every copy of a question that occurs with different gold answers, then keeps the
first of each duplicate (same whitespace-collapsed, lower-cased text; for MMLU the stem, which
MMLU repeats with edited options). The split shuffles with `random.Random(seed)` and fills the
held-out part first, a group at a time, so a BIG-Bench-Hard scenario re-used with other options
(the text before ``Options:``) never sits on both sides: the parts are disjoint by id, by text
and by scenario, and the same seed always gives the same parts.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Split", "clean", "split_items"]


@dataclass(frozen=True)
class Split:
    """One domain's items, split."""

    fitting: tuple[dict, ...]  # to collect answers on and fit maps with
    heldout: tuple[dict, ...]  # never fitted on: to report on and to gate activation with
    dropped: int  # duplicates and conflicting copies removed by cleaning
    unused: int  # clean items beyond the requested sizes


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


def _dedup_key(item: dict) -> str:
    question = item["question"]
    if item["domain"] == "science" and "\nA) " in question:
        question = question.rsplit("\nA) ", 1)[0]
    return _normal(question)


def _group_key(item: dict) -> str:
    return _normal(item["question"].split("Options:", 1)[0])


def clean(items: Iterable[dict]) -> tuple[list[dict], int]:
    """The items without conflicting or repeated questions (first kept), and how many were dropped."""
    items = list(items)
    answers: dict[str, set[str]] = defaultdict(set)
    for item in items:
        answers[_normal(item["question"])].add(item["answer"].lower())
    kept, seen = [], set()
    for item in items:
        key = _dedup_key(item)
        if len(answers[_normal(item["question"])]) > 1 or key in seen:
            continue
        seen.add(key)
        kept.append(item)
    return kept, len(items) - len(kept)


def split_items(items: Iterable[dict], *, seed: int, heldout: int, fitting: int | None = None) -> Split:
    """Clean, shuffle by `seed`, then give whole groups to the held-out part while it has fewer than
    `heldout` items and the rest to the fitting part (at most `fitting` items; None: all of them)."""
    pool, dropped = clean(items)
    random.Random(seed).shuffle(pool)
    side: dict[str, str] = {}
    parts: dict[str, list[dict]] = {"heldout": [], "fitting": []}
    limits = {"heldout": heldout, "fitting": fitting}
    for item in pool:
        group = _group_key(item)
        if group not in side:
            side[group] = "heldout" if len(parts["heldout"]) < heldout else "fitting"
        part, limit = parts[side[group]], limits[side[group]]
        if limit is None or len(part) < limit:
            part.append(item)
    used = len(parts["heldout"]) + len(parts["fitting"])
    return Split(tuple(parts["fitting"]), tuple(parts["heldout"]), dropped, len(pool) - used)
