"""Factual questions read from the fact tables of `facts`.

Every fact (a capital, a currency, an author, ...) comes with several
wordings; `factual_pool(rng)` lists every fact once in a seeded order, then
the re-wordings, so the first questions of a run cover as many distinct facts
as possible.
"""

from __future__ import annotations

import random

from calibration.labelling.datagen.common import _aliases, _item
from calibration.labelling.datagen.facts import (
    BOOKS,
    CONTINENT_ALIASES,
    COUNTRIES,
    ELEMENTS,
    LANDMARKS,
    ORDINALS,
    PAINTINGS,
    PEOPLE,
    PLANETS,
)

__all__ = ["factual_pool"]


def _plural_aliases(names: list[str]) -> list[str]:
    """Add plural spellings ("euros", "US dollars") so a natural plural answer still matches."""
    return names + [n + "s" for n in names if n[-1].isalpha() and n[-1] != "s" and not n.isupper()]


def _factual_facts() -> list[tuple[str, list[str], str, list[str], str]]:
    """Every factual question family: (relation, question templates, answer, aliases, answer_type)."""
    facts = []
    for country, c_alias, capital, cap_alias, currency, cur_alias, continent in COUNTRIES:
        the = (
            "the "
            if country in ("United States", "United Kingdom", "Netherlands", "Philippines", "Czech Republic")
            else ""
        )
        c = the + country
        if capital != "-":
            facts.append(
                (
                    "capital",
                    [
                        f"What is the capital of {c}?",
                        f"What is the capital city of {c}?",
                        f"Which city is the capital of {c}?",
                        f"Name the capital of {c}.",
                        f"What city serves as the capital of {c}?",
                    ],
                    capital,
                    _aliases(cap_alias),
                    "text",
                )
            )
            facts.append(
                (
                    "capital_of",
                    [
                        f"{capital} is the capital of which country?",
                        f"Which country has {capital} as its capital?",
                        f"Of which country is {capital} the capital city?",
                        f"The city of {capital} is the capital of what country?",
                    ],
                    country,
                    _aliases(c_alias),
                    "text",
                )
            )
        if currency != "-":
            facts.append(
                (
                    "currency",
                    [
                        f"What is the currency of {c}?",
                        f"What currency is used in {c}?",
                        f"What is the official currency of {c}?",
                        f"Which currency do people use in {c}?",
                        f"What money is the legal tender of {c}?",
                    ],
                    currency,
                    _plural_aliases(_aliases(cur_alias)) + [currency + "s"],
                    "text",
                )
            )
        if continent != "-":
            facts.append(
                (
                    "continent",
                    [
                        f"On which continent is {c}?",
                        f"Which continent is {c} in?",
                        f"{c[0].upper() + c[1:]} is located on which continent?",
                        f"In which continent is {c} located?",
                    ],
                    continent,
                    CONTINENT_ALIASES.get(continent, []),
                    "text",
                )
            )
    for name, symbol, _number, name_alias in ELEMENTS:
        facts.append(
            (
                "element_symbol",
                [
                    f"What is the chemical symbol for {name}?",
                    f"Which chemical symbol stands for {name}?",
                    f"What is the symbol of the element {name}?",
                ],
                symbol,
                [],
                "text",
            )
        )
        facts.append(
            (
                "element_name",
                [
                    f"Which element has the chemical symbol {symbol}?",
                    f"What element does the symbol {symbol} stand for?",
                    f"Name the chemical element with the symbol {symbol}.",
                ],
                name,
                _aliases(name_alias),
                "text",
            )
        )
    for work, author, alias in BOOKS:
        facts.append(
            (
                "author",
                [
                    f"Who wrote {work}?",
                    f"Who is the author of {work}?",
                    f"{work} was written by whom?",
                    f"Which writer wrote {work}?",
                ],
                author,
                _aliases(alias),
                "text",
            )
        )
    for landmark, city, alias in LANDMARKS:
        cap = landmark[0].upper() + landmark[1:]
        facts.append(
            (
                "landmark",
                [
                    f"In which city is {landmark}?",
                    f"Which city is home to {landmark}?",
                    f"{cap} is located in which city?",
                    f"In what city can you visit {landmark}?",
                ],
                city,
                _aliases(alias),
                "text",
            )
        )
    for deed, person, alias in PEOPLE:
        facts.append(
            (
                "person",
                [f"Who {deed}?", f"Which person {deed}?", f"Name the person who {deed}."],
                person,
                _aliases(alias),
                "text",
            )
        )
    for painting, painter, alias in PAINTINGS:
        facts.append(
            (
                "painter",
                [
                    f"Who painted {painting}?",
                    f"Which artist painted {painting}?",
                    f"{painting[0].upper() + painting[1:]} was painted by which artist?",
                ],
                painter,
                _aliases(alias),
                "text",
            )
        )
    for i, (planet, ordinal) in enumerate(zip(PLANETS, ORDINALS)):
        facts.append(
            (
                "planet_order",
                [
                    f"Which planet is {ordinal} from the Sun?",
                    f"What is the {ordinal} planet from the Sun?",
                    f"Counting outward from the Sun, which planet comes {ordinal}?",
                ],
                planet,
                [],
                "text",
            )
        )
        facts.append(
            (
                "planet_position",
                [
                    f"Counting from the Sun, what is the position of {planet}? Give a number.",
                    f"What number is {planet} in the order of planets from the Sun?",
                ],
                str(i + 1),
                [],
                "number",
            )
        )
    return facts


def factual_pool(rng: random.Random) -> list[dict]:
    """All factual questions in a seeded order: every fact once (random wording), then re-wordings."""
    facts = _factual_facts()
    rng.shuffle(facts)
    orders = [rng.sample(range(len(f[1])), len(f[1])) for f in facts]
    pool, seen = [], set()
    for round_ in range(max(len(f[1]) for f in facts)):
        for (relation, templates, answer, aliases, answer_type), order in zip(facts, orders):
            if round_ < len(templates):
                question = templates[order[round_]]
                if question.casefold() not in seen:
                    seen.add(question.casefold())
                    pool.append(_item(relation, question, answer, answer_type, aliases))
    return pool
