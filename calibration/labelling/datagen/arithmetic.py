"""Math questions with gold answers computed by code.

Arithmetic of mixed size (2 + 3 next to 734 × 86), decimals, order of
operations, and word problems: shopping, speed, ages, percentages, unit
conversions, rates and multi-step stories. `MATH_TEMPLATES` lists the
templates with their draw weights. (Named `arithmetic` so as not to shadow
the standard library's `math`.)
"""

from __future__ import annotations

from fractions import Fraction

from calibration.labelling.datagen.common import _NAMES, Template, _fmt, _item, _num

__all__ = ["MATH_TEMPLATES"]


def _add(rng):
    a, b = _num(rng), _num(rng)
    q = rng.choice(
        [
            "What is {a} + {b}?",
            "Calculate {a} plus {b}.",
            "What is the sum of {a} and {b}?",
            "Add {a} and {b}. What do you get?",
        ]
    )
    return _item("add", q.format(a=a, b=b), a + b, "number")


def _sub(rng):
    a, b = _num(rng), _num(rng)
    q = rng.choice(
        [
            "What is {a} - {b}?",
            "Subtract {b} from {a}.",
            "What is {a} minus {b}?",
            "What do you get when you take {b} away from {a}?",
        ]
    )
    return _item("sub", q.format(a=a, b=b), a - b, "number")


def _mul(rng):
    size = rng.choice(["small", "small", "medium", "large"])
    a, b = {
        "small": (rng.randint(2, 12), rng.randint(2, 12)),
        "medium": (rng.randint(11, 99), rng.randint(3, 99)),
        "large": (rng.randint(100, 999), rng.randint(11, 99)),
    }[size]
    q = rng.choice(
        [
            "What is {a} × {b}?",
            "What is {a} times {b}?",
            "Multiply {a} by {b}.",
            "What is the product of {a} and {b}?",
            "Compute {a} * {b}.",
        ]
    )
    return _item("mul", q.format(a=a, b=b), a * b, "number")


def _div(rng):
    b, quotient = rng.choice(
        [(rng.randint(2, 12), rng.randint(2, 12)), (rng.randint(3, 40), rng.randint(10, 250))]
    )
    q = rng.choice(
        [
            "What is {a} ÷ {b}?",
            "Divide {a} by {b}.",
            "What is {a} divided by {b}?",
            "How many times does {b} go into {a}?",
        ]
    )
    return _item("div", q.format(a=b * quotient, b=b), quotient, "number")


_ORDER_OF_OPERATIONS = {
    "{a} + {b} × {c}": lambda a, b, c: a + b * c,
    "({a} + {b}) × {c}": lambda a, b, c: (a + b) * c,
    "{a} - {b} × {c}": lambda a, b, c: a - b * c,
    "{c} × ({a} - {b})": lambda a, b, c: c * (a - b),
    "-{a} + {b} × {c}": lambda a, b, c: -a + b * c,
}


def _order_of_operations(rng):
    a, b, c = rng.randint(1, 30), rng.randint(2, 12), rng.randint(2, 12)
    form = rng.choice(list(_ORDER_OF_OPERATIONS))
    value = _ORDER_OF_OPERATIONS[form](a, b, c)
    return _item("order_of_operations", f"What is {form.format(a=a, b=b, c=c)}?", value, "number")


def _decimals(rng):
    a, b = (
        Fraction(rng.randint(1, 400), rng.choice([2, 4, 10])),
        Fraction(rng.randint(1, 400), rng.choice([2, 4, 10])),
    )
    op = rng.choice(["+", "-"])
    value = a + b if op == "+" else a - b
    return _item("decimals", f"What is {_fmt(a)} {op} {_fmt(b)}?", value, "number")


_GOODS = [
    ("notebook", "notebooks", 2, 6),
    ("pen", "pens", 1, 3),
    ("apple", "apples", 1, 2),
    ("book", "books", 8, 25),
    ("shirt", "shirts", 10, 30),
    ("sandwich", "sandwiches", 4, 9),
    ("ticket", "tickets", 5, 40),
    ("toy car", "toy cars", 3, 12),
    ("cup of coffee", "cups of coffee", 2, 5),
    ("plant", "plants", 6, 20),
]


def _shopping(rng):
    name = rng.choice(_NAMES)
    (_, g1s, lo1, hi1), (g2, g2s, lo2, hi2) = rng.sample(_GOODS, 2)
    q1, q2, p1, p2 = rng.randint(2, 9), rng.randint(1, 6), rng.randint(lo1, hi1), rng.randint(lo2, hi2)
    total = q1 * p1 + q2 * p2
    second = f"{q2} {g2s if q2 > 1 else g2}"
    text = f"{name} buys {q1} {g1s} at ${p1} each and {second} at ${p2} each."
    if rng.random() < 0.5:
        return _item("shopping", f"{text} How much does {name} spend in total, in dollars?", total, "number")
    bill = next(b for b in (10, 20, 50, 100, 200, 500, 1000) if b > total)
    return _item(
        "shopping_change",
        f"{text} {name} pays with a ${bill} bill. How much change, in dollars, does {name} get back?",
        bill - total,
        "number",
    )


def _speed(rng):
    v, t = rng.choice([rng.randint(3, 20), rng.randint(30, 120)]), rng.randint(2, 9)
    who = rng.choice(["A car", "A train", "A cyclist", "A runner", "A bus", "A boat"])
    kind = rng.randrange(4)
    if kind == 0:
        return _item(
            "distance",
            f"{who} travels at {v} km/h for {t} hours. How many kilometres does it cover?",
            v * t,
            "number",
        )
    if kind == 1:
        return _item(
            "speed",
            f"{who} covers {v * t} km in {t} hours at a constant speed. What is its speed in km/h?",
            v,
            "number",
        )
    if kind == 2:
        return _item(
            "travel_time",
            f"{who} goes {v * t} km at a steady {v} km/h. How many hours does the trip take?",
            t,
            "number",
        )
    minutes = rng.choice([15, 30, 45, 90, 120])
    return _item(
        "distance_minutes",
        f"{who} moves at {v * 4} km/h for {minutes} minutes. How many kilometres does it travel?",
        Fraction(v * 4 * minutes, 60),
        "number",
    )


def _ages(rng):
    a, b = rng.sample(_NAMES, 2)
    kind = rng.randrange(3)
    if kind == 0:
        k, age, years = rng.randint(2, 5), rng.randint(2, 15), rng.randint(1, 20)
        return _item(
            "ages_times",
            f"{a} is {k} times as old as {b}. {b} is {age} years old. How old will {a} be in {years} years?",
            k * age + years,
            "number",
        )
    if kind == 1:
        future, years, ago = rng.randint(20, 70), rng.randint(2, 10), rng.randint(1, 15)
        return _item(
            "ages_shift",
            f"In {years} years, {a} will be {future} years old. How old was {a} {ago} years ago?",
            future - years - ago,
            "number",
        )
    younger, gap = rng.randint(3, 40), rng.randint(1, 30)
    return _item(
        "ages_sum",
        f"{a} is {gap} years older than {b}. The sum of their ages is {2 * younger + gap}. How old is {b}?",
        younger,
        "number",
    )


def _percent(rng):
    p = rng.choice([5, 10, 12, 15, 20, 25, 30, 40, 50, 60, 75, 80, 90, 120, 150])
    base = rng.randint(1, 60) * 20
    kind = rng.randrange(4)
    if kind == 0:
        return _item("percent_of", f"What is {p}% of {base}?", Fraction(p * base, 100), "number")
    if kind == 1:
        p = min(p, 90)
        return _item(
            "discount",
            f"A jacket costs ${base}. It is on sale for {p}% off. What is the sale price in dollars?",
            base - Fraction(p * base, 100),
            "number",
        )
    if kind == 2:
        return _item(
            "growth",
            f"A town has {base * 10} residents. Its population grows by {p}%. How many residents "
            f"does it have now?",
            base * 10 + Fraction(p * base * 10, 100),
            "number",
        )
    total = rng.choice([20, 25, 40, 50, 200])
    share = rng.randint(1, total - 1)
    return _item(
        "percent_share",
        f"{share} of {total} students passed a test. What percentage of the students passed?",
        Fraction(100 * share, total),
        "number",
    )


_UNITS = [
    ("kilometres", "metres", 1000),
    ("metres", "centimetres", 100),
    ("hours", "minutes", 60),
    ("minutes", "seconds", 60),
    ("kilograms", "grams", 1000),
    ("dollars", "cents", 100),
    ("feet", "inches", 12),
    ("yards", "feet", 3),
    ("days", "hours", 24),
    ("weeks", "days", 7),
    ("litres", "millilitres", 1000),
    ("dozen eggs", "eggs", 12),
]


def _convert(rng):
    big, small, factor = rng.choice(_UNITS)
    if rng.random() < 0.6:
        amount = rng.choice([Fraction(rng.randint(1, 30)), Fraction(rng.randint(1, 19), 2)])
        return _item(
            "convert_down", f"How many {small} are in {_fmt(amount)} {big}?", amount * factor, "number"
        )
    count = rng.randint(1, 20)
    return _item("convert_up", f"How many {big} are {count * factor} {small}?", count, "number")


def _rates(rng):
    kind = rng.randrange(4)
    if kind == 0:
        r, h = rng.randint(5, 120), rng.randint(2, 12)
        return _item(
            "rate_total",
            f"A machine makes {r} widgets per hour. How many widgets does it make in {h} hours?",
            r * h,
            "number",
        )
    if kind == 1:
        r, m = rng.randint(2, 25), rng.randint(3, 40)
        return _item(
            "rate_time",
            f"A tap fills a tank at {r} litres per minute. How many minutes does it take to "
            f"fill a {r * m}-litre tank?",
            m,
            "number",
        )
    if kind == 2:
        values = [rng.randint(1, 60) for _ in range(rng.randint(2, 6))]
        values[-1] += -sum(values) % len(values)  # makes the mean a whole number
        mean = Fraction(sum(values), len(values))
        listed = ", ".join(map(str, values[:-1])) + f" and {values[-1]}"
        return _item("average", f"What is the average of {listed}?", mean, "number")
    name, k, each = rng.choice(_NAMES), rng.randint(2, 9), rng.randint(2, 30)
    left = rng.randint(0, k - 1)
    if left:
        return _item(
            "share_left",
            f"{name} shares {k * each + left} marbles equally among {k} friends, giving each "
            f"as many as possible. How many marbles are left over?",
            left,
            "number",
        )
    return _item(
        "share_each",
        f"{name} shares {k * each} stickers equally among {k} friends. How many stickers does "
        f"each friend get?",
        each,
        "number",
    )


def _multi_step(rng):
    trays, per = rng.randint(2, 9), rng.randint(6, 24)
    sold = rng.randint(1, trays * per - 1)
    name = rng.choice(_NAMES)
    if rng.random() < 0.5:
        return _item(
            "bakery",
            f"A baker bakes {trays} trays of {per} cookies and sells {sold} of them. How many "
            f"cookies are left?",
            trays * per - sold,
            "number",
        )
    pages, days, read = rng.randint(100, 600), rng.randint(2, 6), rng.randint(10, 40)
    read = min(read, pages // days)
    return _item(
        "reading",
        f"{name}'s book has {pages} pages. {name} reads {read} pages a day for {days} days. How "
        f"many pages are still unread?",
        pages - read * days,
        "number",
    )


MATH_TEMPLATES: list[tuple[int, Template]] = [
    (3, _add),
    (3, _sub),
    (3, _mul),
    (3, _div),
    (2, _order_of_operations),
    (1, _decimals),
    (3, _shopping),
    (3, _speed),
    (2, _ages),
    (3, _percent),
    (2, _convert),
    (3, _rates),
    (2, _multi_step),
]
