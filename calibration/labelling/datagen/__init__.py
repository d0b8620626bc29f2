"""Generated labelled questions (`calibrate make-data`).

`make_questions(domain, n, seed)` builds n questions of one domain whose gold
answers are computed by code (arithmetic, word problems, physics formulas,
logic puzzles) or taken from the fact tables of `facts` (capitals,
currencies, authors, element symbols, ...; well-known, stable facts only).
The output is deterministic for (domain, n, seed), and a shorter run is a
prefix of a longer one with the same seed. Difficulty is mixed on purpose
(2 + 3 next to 734 × 86, France next to Mongolia) so that a small model gets
some right and many wrong: that spread is what calibration needs.

Items have the data-record format of docs/architecture.md,
``{"id", "domain", "question", "answer", "aliases", "answer_type", ["choices"], "source"}``,
with ids ``gen-<domain>-<seed>-<i>``; ``source`` names the template
(``datagen:<template>``), like the ``source`` field of the shared data.
Choice questions are written like the shared data: the stem, then lines
``A) ...``; reasoning ones put an ``Options:`` line before them, as BBH does.

One module per domain: `arithmetic` (math), `factual` (with its tables in
`facts`), `science` and `reasoning`, on the building blocks of `common`.
Items are checked with `calibration.labelling.items.validate_item`.
"""

from __future__ import annotations

import functools
import random

from assistant.core.domains import DOMAINS
from assistant.core.errors import DataError
from assistant.core.validate import is_whole
from calibration.labelling.datagen.arithmetic import MATH_TEMPLATES
from calibration.labelling.datagen.factual import factual_pool
from calibration.labelling.datagen.reasoning import REASONING_TEMPLATES
from calibration.labelling.datagen.science import SCIENCE_TEMPLATES

__all__ = [
    "GENERATED_MAX",
    "make_questions",
    "max_questions",
]

GENERATED_MAX = 5000  # cap per call for the open-ended domains (math, science, reasoning)

_TEMPLATES = {"math": MATH_TEMPLATES, "science": SCIENCE_TEMPLATES, "reasoning": REASONING_TEMPLATES}


def _dedupe_key(question: str) -> str:
    """The text that must be unique: the stem of a choice question (options removed), case- and space-folded."""
    stem = question.split("\nA) ")[0].removesuffix("\nOptions:")
    return " ".join(stem.casefold().split())


def max_questions(domain: str) -> int:
    """The largest n `make_questions` accepts for a domain (the factual pool is finite)."""
    _check_domain(domain)
    return _factual_pool_size() if domain == "factual" else GENERATED_MAX


@functools.cache
def _factual_pool_size() -> int:
    """How many distinct factual questions the tables give (the same for every seed)."""
    return len(factual_pool(random.Random(0)))


def _check_domain(domain: str) -> None:
    """Raise DataError for an unknown domain, listing the four."""
    if domain not in DOMAINS:
        raise DataError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}")


def make_questions(domain: str, n: int, seed: int = 0) -> list[dict]:
    """Generate n distinct labelled questions of one domain.

    Parameters
    ----------
    domain : str
        One of ``math``, ``factual``, ``science``, ``reasoning``.
    n : int
        How many questions (1 .. `max_questions(domain)`).
    seed : int
        Seeds the generator; the same (domain, n, seed) always gives the same
        items, and a smaller n gives a prefix of a larger one.

    Returns
    -------
    list of dict
        Data items with ids ``gen-<domain>-<seed>-<i>`` (i from 0), unique
        question texts (choice questions: unique stems), gold answers computed
        by code or read from the module's fact tables.

    Raises
    ------
    DataError
        Unknown domain, n < 1, or n above the domain's maximum (named).
    """
    _check_domain(domain)
    if not is_whole(n) or n < 1:
        raise DataError(f"n must be a positive integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"seed must be an integer, got {seed!r}")
    limit = max_questions(domain)
    if n > limit:
        raise DataError(f"at most {limit} distinct {domain} questions can be generated, {n} were asked for")
    rng = random.Random(f"calibrated-chat/{domain}/{seed}")
    if domain == "factual":
        drawn = factual_pool(rng)[:n]
    else:
        weights, templates = zip(*_TEMPLATES[domain])
        drawn, seen = [], set()
        for _ in range(200 * n):
            item = rng.choices(templates, weights)[0](rng)
            key = _dedupe_key(item["question"])
            if key not in seen:
                seen.add(key)
                drawn.append(item)
                if len(drawn) == n:
                    break
        else:
            raise DataError(f"could not draw {n} distinct {domain} questions; ask for fewer")
    return [{"id": f"gen-{domain}-{seed}-{i}", "domain": domain, **item} for i, item in enumerate(drawn)]
