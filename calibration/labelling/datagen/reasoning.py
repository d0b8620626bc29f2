"""Reasoning puzzles in the style of BIG-Bench Hard, with answers computed by code.

Syllogisms on nonsense words, orderings, calendar arithmetic, boolean
expressions, object counting, navigation, web of lies and object-swap
tracking. Choice questions put an ``Options:`` line before the lettered
options, as BBH does. `REASONING_TEMPLATES` lists the templates with their
draw weights.
"""

from __future__ import annotations

import itertools

from calibration.labelling.datagen.common import _NAMES, Template, _a, _choice, _item

__all__ = ["REASONING_TEMPLATES"]


_NONSENSE = (  # noqa: SIM905
    "wugs blickets daxes feps zorbs glims tovs snerks plinks quaxes marbs yoffs drels kreeps "
    "vorns flurbs trelks wimps gorps nibs"
).split()
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _syllogism(rng):
    a, b, c = rng.sample(_NONSENSE, 3)
    x = rng.choice(_NAMES)
    forms = [
        (f"All {a} are {b}. All {b} are {c}. Does it follow that all {a} are {c}?", "Yes"),
        (f"All {a} are {b}. Does it follow that all {b} are {a}?", "No"),
        (f"All {a} are {b}. No {b} are {c}. Does it follow that no {a} are {c}?", "Yes"),
        (f"All {a} are {b}. No {b} are {c}. Can some {a} be {c}?", "No"),
        (f"Some {a} are {b}. All {b} are {c}. Does it follow that some {a} are {c}?", "Yes"),
        (f"Some {a} are {b}. Some {b} are {c}. Does it follow that some {a} are {c}?", "No"),
        (f"All {a} are {b}. {x} is one of the {a}. Is {x} one of the {b}?", "Yes"),
        (f"All {a} are {b}. {x} is one of the {b}. Must {x} be one of the {a}?", "No"),
        (f"All {a} are {b}. {x} is not one of the {b}. Could {x} be one of the {a}?", "No"),
        (f"No {a} are {b}. {x} is one of the {a}. Is {x} one of the {b}?", "No"),
    ]
    question, answer = rng.choice(forms)
    return _item("syllogism", f"{question} Answer yes or no.", answer, "boolean")


_COMPARISONS = [
    ("taller", "shorter", "tallest", "shortest"),
    ("older", "younger", "oldest", "youngest"),
    ("faster", "slower", "fastest", "slowest"),
    ("heavier", "lighter", "heaviest", "lightest"),
]


def _ordering(rng):
    k = rng.choice([3, 3, 4, 5])
    people = rng.sample(_NAMES, k)  # people[0] has the most of the quality
    more, less, most, least = rng.choice(_COMPARISONS)
    facts = [
        f"{people[i]} is {more} than {people[i + 1]}."
        if rng.random() < 0.5
        else f"{people[i + 1]} is {less} than {people[i]}."
        for i in range(k - 1)
    ]
    rng.shuffle(facts)
    ask = rng.randrange(3)
    word, answer = [(most, people[0]), (least, people[-1]), (f"second {most}", people[1])][ask]
    stem = f"{' '.join(facts)} Who is the {word}?"
    if rng.random() < 0.5:
        return _item("ordering", stem, answer, "text")
    return _choice(
        "ordering_mc",
        stem,
        answer,
        rng.sample([p for p in people if p != answer], min(3, k - 1)),
        rng,
        header=True,
        k=k,
    )


def _calendar(rng):
    kind = rng.randrange(4)
    day = rng.randrange(7)
    if kind == 0:
        n = rng.choice([rng.randint(1, 13), rng.randint(14, 100)])
        return _item(
            "weekday_after",
            f"What day of the week is {n} day{'s' if n > 1 else ''} after a {_DAYS[day]}?",
            _DAYS[(day + n) % 7],
            "text",
        )
    if kind == 1:
        n = rng.randint(1, 30)
        return _item(
            "weekday_before",
            f"If today is {_DAYS[day]}, what day of the week was it {n} day{'s' if n > 1 else ''} ago?",
            _DAYS[(day - n) % 7],
            "text",
        )
    if kind == 2:
        w, d = rng.randint(1, 5), rng.randint(1, 6)
        return _item(
            "weekday_weeks",
            f"If today is {_DAYS[day]}, what day of the week will it be {w} "
            f"week{'s' if w > 1 else ''} and {d} day{'s' if d > 1 else ''} from now?",
            _DAYS[(day + d) % 7],
            "text",
        )
    month, n = rng.randrange(12), rng.randint(1, 30)
    direction = rng.choice(["after", "before"])
    answer = _MONTHS[(month + n) % 12 if direction == "after" else (month - n) % 12]
    return _item(
        "month_shift",
        f"What month is {n} month{'s' if n > 1 else ''} {direction} {_MONTHS[month]}?",
        answer,
        "text",
    )


def _bool_expr(rng, depth: int) -> tuple[str, bool, str]:
    """A random boolean expression in BBH's spaced style: (text, value, kind of the top node)."""
    if depth == 0 or rng.random() < 0.3:
        value = rng.random() < 0.5
        text, kind = str(value), "literal"
    else:
        op = rng.choice(["and", "or"])
        left, right = _bool_expr(rng, depth - 1), _bool_expr(rng, depth - 1)
        parts = []
        for sub_text, _, sub_kind in (left, right):
            # "and" binds tighter than "or": an "or" inside an "and" needs brackets; others get them at random.
            needs = sub_kind == "or" and op == "and"
            parts.append(
                f"( {sub_text} )" if sub_kind in ("and", "or") and (needs or rng.random() < 0.5) else sub_text
            )
        value = (left[1] and right[1]) if op == "and" else (left[1] or right[1])
        text, kind = f"{parts[0]} {op} {parts[1]}", op
    if rng.random() < 0.3:
        text = f"not {text}" if kind in ("literal", "not") else f"not ( {text} )"
        return text, not value, "not"
    return text, value, kind


def _boolean_expression(rng):
    text, value, _ = _bool_expr(rng, rng.choice([1, 2, 2, 3]))
    return _item("boolean_expression", f"{text} is", str(value), "boolean")


# category | items (singular/plural)
_OBJECTS = {
    "fruits": [
        "apple/apples",
        "banana/bananas",
        "orange/oranges",
        "peach/peaches",
        "plum/plums",
        "grape/grapes",
        "strawberry/strawberries",
        "nectarine/nectarines",
    ],
    "vegetables": [
        "carrot/carrots",
        "potato/potatoes",
        "onion/onions",
        "cabbage/cabbages",
        "yam/yams",
        "stalk of celery/stalks of celery",
        "head of broccoli/heads of broccoli",
    ],
    "animals": [
        "cat/cats",
        "dog/dogs",
        "rabbit/rabbits",
        "goat/goats",
        "cow/cows",
        "pig/pigs",
        "snake/snakes",
        "frog/frogs",
        "duck/ducks",
        "fish/fish",
    ],
    "musical instruments": [
        "piano/pianos",
        "flute/flutes",
        "violin/violins",
        "drum/drums",
        "trumpet/trumpets",
        "clarinet/clarinets",
        "trombone/trombones",
        "accordion/accordions",
    ],
}
_COUNT_WORDS = ["", "one", "two", "three", "four", "five"]


def _object_counting(rng):
    target = rng.choice(list(_OBJECTS))
    picks = [(target, o) for o in rng.sample(_OBJECTS[target], rng.randint(2, 5))]
    for other in rng.sample([c for c in _OBJECTS if c != target], rng.randint(0, 2)):
        picks += [(other, o) for o in rng.sample(_OBJECTS[other], rng.randint(1, 2))]
    rng.shuffle(picks)
    total, parts = 0, []
    for category, obj in picks:
        count = rng.choice([1, 1, 1, 2, 3, 4, 5])
        singular, plural = obj.split("/")
        parts.append(_a(singular) if count == 1 else f"{_COUNT_WORDS[count]} {plural}")
        total += count if category == target else 0
    listed = ", ".join(parts[:-1]) + f", and {parts[-1]}"
    return _item("object_counting", f"I have {listed}. How many {target} do I have?", total, "number")


def _navigate(rng):
    two_d = rng.random() < 0.5
    moves = {"forward": (0, 1), "backward": (0, -1), "left": (-1, 0), "right": (1, 0)}
    names = list(moves) if two_d else ["forward", "backward"]
    steps = [(rng.choice(names), rng.randint(1, 10)) for _ in range(rng.randint(2, 5))]
    x = sum(moves[m][0] * s for m, s in steps)
    y = sum(moves[m][1] * s for m, s in steps)
    if rng.random() < 0.5:  # close the loop half of the time
        if x:
            steps.append(("left" if x > 0 else "right", abs(x)))
        if y:
            steps.append(("backward" if y > 0 else "forward", abs(y)))
        rng.shuffle(steps)
        x = y = 0
    text = " ".join(f"Take {s} step{'s' if s > 1 else ''} {m}." for m, s in steps)
    question = (
        f"If you follow these instructions, do you return to the starting point? Always face forward. {text}"
    )
    return _item("navigate", question, "Yes" if x == y == 0 else "No", "boolean")


def _web_of_lies(rng):
    people = rng.sample(_NAMES, rng.randint(3, 6))
    truthful = rng.random() < 0.5
    lines = [f"{people[0]} {'tells the truth' if truthful else 'lies'}."]
    for prev, person in itertools.pairwise(people):
        says_truth = rng.random() < 0.5
        lines.append(f"{person} says {prev} {'tells the truth' if says_truth else 'lies'}.")
        truthful = says_truth == truthful
    question = f"Question: {' '.join(lines)} Does {people[-1]} tell the truth?"
    return _item("web_of_lies", question, "Yes" if truthful else "No", "boolean")


_HOLDINGS = [
    ("ball", ["red ball", "blue ball", "green ball", "yellow ball", "white ball"]),
    ("book", ["Ulysses", "Frankenstein", "Moby Dick", "The Odyssey", "Catch-22"]),
    ("present", ["red present", "black present", "purple present", "orange present", "pink present"]),
]


def _tracking(rng):
    k = rng.choice([3, 3, 4])
    people = rng.sample(_NAMES, k)
    noun, things = rng.choice(_HOLDINGS)
    held = rng.sample(things, k)
    start = " ".join(f"{p} has {_a(h) if noun != 'book' else h}." for p, h in zip(people, held))
    swaps = []
    for _ in range(rng.randint(2, 5)):
        i, j = rng.sample(range(k), 2)
        held[i], held[j] = held[j], held[i]
        swaps.append(f"{people[i]} and {people[j]} swap {noun}s")
    who = rng.randrange(k)
    stem = (
        f"{', '.join(people[:-1])} and {people[-1]} each hold one {noun}. At the start: {start} "
        f"Then, in order: {'; '.join(swaps)}. At the end, which {noun} does {people[who]} have?"
    )
    return _choice(
        "tracking_swaps", stem, held[who], [h for h in held if h != held[who]], rng, header=True, k=k
    )


REASONING_TEMPLATES: list[tuple[int, Template]] = [
    (2, _syllogism),
    (2, _ordering),
    (2, _calendar),
    (2, _boolean_expression),
    (2, _object_counting),
    (2, _navigate),
    (2, _web_of_lies),
    (2, _tracking),
]
