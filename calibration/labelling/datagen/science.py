"""Science questions: multiple choice on facts and units, and physics formulas with computed answers.

Chemical elements (from `facts.ELEMENTS`), SI units, states of matter, a
table of school-science facts with distractors, and formula questions
(force, density, Ohm's law, kinetic energy, ...) asked both as multiple
choice and as plain numbers. `SCIENCE_TEMPLATES` lists the templates with
their draw weights.
"""

from __future__ import annotations

from fractions import Fraction

from calibration.labelling.datagen.common import _LETTERS, Template, _aliases, _choice, _fmt, _item, _table
from calibration.labelling.datagen.facts import ELEMENTS

__all__ = ["SCIENCE_TEMPLATES"]

# quantity | SI unit (singular) | unit symbol
_SI_UNITS = _table("""
force | newton | N
energy | joule | J
power | watt | W
pressure | pascal | Pa
electric current | ampere | A
electric potential difference (voltage) | volt | V
electrical resistance | ohm | Ω
electric charge | coulomb | C
frequency | hertz | Hz
mass | kilogram | kg
length | metre | m
time | second | s
thermodynamic temperature | kelvin | K
amount of substance | mole | mol
luminous intensity | candela | cd
capacitance | farad | F
magnetic flux density | tesla | T
inductance | henry | H
""")

# substance | state at room temperature (about 20 °C) and normal pressure
_STATES = _table("""
oxygen | gas
nitrogen | gas
helium | gas
carbon dioxide | gas
neon | gas
hydrogen | gas
chlorine | gas
mercury | liquid
bromine | liquid
water | liquid
ethanol | liquid
iron | solid
gold | solid
copper | solid
table salt | solid
sulfur | solid
diamond | solid
aluminium | solid
""")

# question | correct answer | distractors (';'-separated)
_SCIENCE_FACTS = _table("""
Which planet is the largest in the Solar System? | Jupiter | Saturn; Neptune; Earth; Uranus
Which planet is closest to the Sun? | Mercury | Venus; Mars; Earth; Neptune
Which planet is known as the Red Planet? | Mars | Venus; Jupiter; Mercury; Saturn
Which planet has the hottest surface in the Solar System? | Venus | Mercury; Mars; Jupiter; Earth
Which planet is the farthest from the Sun? | Neptune | Uranus; Saturn; Jupiter; Mars
Which planet rotates on its side, with an axial tilt of about 98 degrees? | Uranus | Neptune; Saturn; Venus; Mars
Which planet is the smallest in the Solar System? | Mercury | Mars; Venus; Earth; Neptune
Which planet has the most prominent ring system? | Saturn | Jupiter; Mars; Mercury; Venus
Which organ pumps blood through the body? | heart | lungs; liver; kidneys; stomach
Which organs exchange oxygen and carbon dioxide between the air and the blood? | lungs | heart; kidneys; liver; stomach
Which organs filter the blood and produce urine? | kidneys | liver; lungs; pancreas; spleen
Which organ produces bile? | liver | pancreas; stomach; kidneys; gallbladder
Which organ produces insulin? | pancreas | liver; kidneys; stomach; thyroid
Which organ is the largest organ of the human body? | skin | liver; brain; heart; lungs
In which organ are most nutrients absorbed into the blood? | small intestine | stomach; large intestine; liver; esophagus
Which part of the digestive system absorbs most of the remaining water from food? | large intestine | small intestine; stomach; esophagus; liver
Which blood cells carry oxygen? | red blood cells | white blood cells; platelets; plasma; nerve cells
Which blood cells fight infection? | white blood cells | red blood cells; platelets; plasma; skin cells
Which part of the blood helps it to clot? | platelets | red blood cells; white blood cells; plasma; hemoglobin
What is the longest bone in the human body? | femur | tibia; humerus; spine; skull
Which organ controls the nervous system? | brain | heart; liver; stomach; lungs
Which blood vessels carry blood away from the heart? | arteries | veins; capillaries; nerves; lymph vessels
What gas do plants take in from the air for photosynthesis? | carbon dioxide | oxygen; nitrogen; hydrogen; helium
What gas do plants release during photosynthesis? | oxygen | carbon dioxide; nitrogen; methane; hydrogen
Which organelle is known as the powerhouse of the cell? | mitochondrion | nucleus; ribosome; chloroplast; cell wall
Which organelle carries out photosynthesis in plant cells? | chloroplast | mitochondrion; nucleus; ribosome; vacuole
Which part of a eukaryotic cell contains most of its DNA? | nucleus | ribosome; cell membrane; cytoplasm; vacuole
Which gas makes up most of Earth's atmosphere? | nitrogen | oxygen; carbon dioxide; argon; hydrogen
Which subatomic particle has a negative charge? | electron | proton; neutron; nucleus; photon
Which subatomic particle has a positive charge? | proton | electron; neutron; photon; neutrino
Which subatomic particle has no electric charge? | neutron | proton; electron; ion; positron
What is the central part of an atom called? | nucleus | electron shell; orbit; cell; core shell
What is the hardest natural substance? | diamond | gold; iron; quartz; granite
What is the chemical formula of water? | H2O | CO2; O2; H2O2; HO
What is the chemical formula of carbon dioxide? | CO2 | CO; O2; C2O; CH4
What is the chemical formula of table salt? | NaCl | KCl; NaOH; HCl; CaCl2
What is the pH of pure water at 25 °C? | 7 | 0; 1; 14; 10
What is the change from a gas to a liquid called? | condensation | evaporation; sublimation; melting; freezing
What is the change from a liquid to a gas called? | evaporation | condensation; melting; freezing; deposition
What is the change from a solid directly to a gas called? | sublimation | evaporation; condensation; melting; deposition
What is the change from a solid to a liquid called? | melting | freezing; condensation; sublimation; evaporation
What kind of rock forms when lava or magma cools? | igneous rock | sedimentary rock; metamorphic rock; limestone; sandstone
What kind of rock forms from layers of compressed sediment? | sedimentary rock | igneous rock; metamorphic rock; basalt; granite
What kind of rock forms when existing rock is changed by heat and pressure? | metamorphic rock | igneous rock; sedimentary rock; basalt; sandstone
Which vitamin does human skin make when exposed to sunlight? | vitamin D | vitamin C; vitamin A; vitamin B12; vitamin K
Which molecule carries genetic information in most living things? | DNA | ATP; glucose; cholesterol; starch
What kind of animal is a whale? | mammal | fish; reptile; amphibian; bird
What kind of animal is a frog? | amphibian | reptile; mammal; fish; insect
How many legs does an insect have? | 6 | 4; 8; 10; 12
How many legs does a spider have? | 8 | 6; 10; 4; 12
What force pulls objects toward the centre of the Earth? | gravity | friction; magnetism; tension; buoyancy
Newton's first law of motion is also called the law of what? | inertia | gravity; acceleration; momentum; energy
Which colour of visible light has the longest wavelength? | red | violet; blue; green; yellow
What is the freezing point of pure water at sea level? | 0 °C | 100 °C; 32 °C; -10 °C; 4 °C
What is the boiling point of pure water at sea level? | 100 °C | 90 °C; 212 °C; 80 °C; 120 °C
What is the approximate speed of light in a vacuum? | 300,000 km/s | 300 km/s; 30,000 km/s; 3,000,000 km/s; 340 m/s
Which star is closest to the Earth? | the Sun | Proxima Centauri; Sirius; Polaris; Alpha Centauri A
About how long does the Earth take to orbit the Sun once? | 365 days | 24 hours; 30 days; 100 days; 1,000 days
What type of energy does a moving object have because of its motion? | kinetic energy | potential energy; chemical energy; nuclear energy; thermal energy
What is the main gas that humans breathe out more of than they breathe in? | carbon dioxide | oxygen; nitrogen; helium; hydrogen
""")


# Symbols that are also option letters (B, C) would make "C" ambiguous among A-D options.
_MC_ELEMENTS = [e for e in ELEMENTS if e[1] not in _LETTERS[:4]]


def _element_mc(rng):
    name, symbol, number, _ = rng.choice(_MC_ELEMENTS)
    others = [e for e in _MC_ELEMENTS if e[0] != name]
    kind = rng.randrange(3)
    if kind == 0:
        fakes = [name[:2].title(), (name[0] + name[2]).title() if len(name) > 2 else name.upper()]
        fakes = [f for f in fakes if f not in {e[1] for e in ELEMENTS}]
        return _choice(
            "element_symbol_mc",
            f"What is the chemical symbol for {name}?",
            symbol,
            fakes[:1] + [e[1] for e in rng.sample(others, 5)],
            rng,
        )
    if kind == 1:
        return _choice(
            "element_name_mc",
            f"Which element has the chemical symbol {symbol}?",
            name,
            [e[0] for e in rng.sample(others, 3)],
            rng,
        )
    return _choice(
        "atomic_number_mc",
        f"Which element has the atomic number {number}?",
        name,
        [e[0] for e in rng.sample(others, 3)],
        rng,
    )


def _units_mc(rng):
    quantity, unit, symbol = rng.choice(_SI_UNITS)
    others = [u for u in _SI_UNITS if u[1] != unit]
    if rng.random() < 0.6:
        stem = rng.choice(
            [
                f"What is the SI unit of {quantity}?",
                f"In the SI system, {quantity} is measured in which unit?",
            ]
        )
        return _choice("si_unit_mc", stem, unit, [u[1] for u in rng.sample(others, 3)], rng)
    return _choice(
        "si_quantity_mc",
        f"Which physical quantity has the SI unit {unit} ({symbol})?",
        quantity,
        [u[0] for u in rng.sample(others, 3)],
        rng,
    )


def _state_mc(rng):
    substance, state = rng.choice(_STATES)
    stem = rng.choice(
        [
            f"In which state of matter is {substance} at room temperature and normal pressure?",
            f"At about 20 °C and normal air pressure, {substance} is a what?",
        ]
    )
    return _choice(
        "state_of_matter",
        stem,
        state,
        rng.sample([s for s in ("solid", "liquid", "gas", "plasma") if s != state], 3),
        rng,
    )


def _fact_mc(rng):
    stem, correct, distractors = rng.choice(_SCIENCE_FACTS)
    return _choice("science_fact", stem, correct, rng.sample(_aliases(distractors), 3), rng)


def _formula(rng) -> tuple[str, str, Fraction, str, list[Fraction]]:
    """A physics formula question: (source, stem, answer, unit, wrong-answer candidates)."""
    kind = rng.randrange(9)
    a, b = rng.randint(2, 20), rng.randint(2, 15)
    if kind == 0:
        return (
            "force",
            f"An object of mass {a} kg accelerates at {b} m/s². What net force acts on it?",
            Fraction(a * b),
            "N",
            [Fraction(a + b), Fraction(a, b), Fraction(a * b * 2), Fraction(b, a)],
        )
    if kind == 1:
        return (
            "speed",
            f"An object travels {a * b} m in {b} s at constant speed. What is its speed?",
            Fraction(a),
            "m/s",
            [Fraction(a * b * b), Fraction(a * b + b), Fraction(a * 2), Fraction(b)],
        )
    if kind == 2:
        return (
            "density",
            f"A block has a mass of {a * b} g and a volume of {b} cm³. What is its density?",
            Fraction(a),
            "g/cm³",
            [Fraction(a * b * b), Fraction(b, a * b), Fraction(a + b), Fraction(a * 10)],
        )
    if kind == 3:
        return (
            "ohm_voltage",
            f"A current of {b} A flows through a resistor of {a} Ω. What is the voltage across it?",
            Fraction(a * b),
            "V",
            [Fraction(a, b), Fraction(a + b), Fraction(b, a), Fraction(a * b * 10)],
        )
    if kind == 4:
        return (
            "ohm_current",
            f"A battery of {a * b} V is connected to a resistor of {a} Ω. What current flows?",
            Fraction(b),
            "A",
            [Fraction(a * a * b), Fraction(a), Fraction(a * b + a), Fraction(b * 2)],
        )
    if kind == 5:
        return (
            "kinetic_energy",
            f"A ball of mass {2 * a} kg moves at {b} m/s. What is its kinetic energy?",
            Fraction(a * b * b),
            "J",
            [Fraction(2 * a * b), Fraction(2 * a * b * b), Fraction(a * b), Fraction(4 * a * b * b)],
        )
    if kind == 6:
        return (
            "weight",
            f"What is the weight of an object of mass {a} kg, taking g = 10 m/s²?",
            Fraction(10 * a),
            "N",
            [Fraction(a), Fraction(a, 10), Fraction(a + 10), Fraction(100 * a)],
        )
    if kind == 7:
        return (
            "work",
            (
                f"A force of {a} N pushes a box {b} m along the floor in the direction of the force. "
                f"How much work does the force do?"
            ),
            Fraction(a * b),
            "J",
            [Fraction(a + b), Fraction(a, b), Fraction(2 * a * b), Fraction(b, a)],
        )
    return (
        "pressure",
        f"A force of {a * b * 10} N acts evenly on an area of {b} m². What pressure does it exert?",
        Fraction(a * 10),
        "Pa",
        [Fraction(a * b * b * 10), Fraction(a), Fraction(a * b * 10 + b), Fraction(a * 100)],
    )


def _formula_mc(rng):
    source, stem, answer, unit, wrong = _formula(rng)
    wrong = list(dict.fromkeys(w for w in wrong if w != answer and w > 0 and (w * 10**4).denominator == 1))
    while len(wrong) < 3:
        extra = answer + rng.choice([-3, -2, -1, 1, 2, 3, 5]) if answer > 5 else answer * rng.randint(3, 9)
        if extra != answer and extra not in wrong:
            wrong.append(extra)
    return _choice(f"{source}_mc", stem, f"{_fmt(answer)} {unit}", [f"{_fmt(w)} {unit}" for w in wrong], rng)


def _formula_number(rng):
    source, stem, answer, unit, _ = _formula(rng)
    return _item(f"{source}_number", f"{stem} Give the answer in {unit}.", answer, "number")


def _science_number(rng):
    kind = rng.randrange(3)
    if kind == 0:
        name, _, number, _ = rng.choice(ELEMENTS)
        stem = rng.choice(
            [
                f"What is the atomic number of {name}?",
                f"How many protons are in the nucleus of a {name} atom?",
            ]
        )
        return _item("atomic_number", stem, int(number), "number")
    if kind == 1:
        celsius = rng.randrange(-40, 201, 5)
        return _item(
            "celsius_to_fahrenheit",
            f"Convert {celsius} °C to degrees Fahrenheit.",
            Fraction(celsius * 9, 5) + 32,
            "number",
        )
    celsius = rng.randint(-50, 300)
    return _item(
        "celsius_to_kelvin", f"Convert {celsius} °C to kelvin, using K = °C + 273.", celsius + 273, "number"
    )


SCIENCE_TEMPLATES: list[tuple[int, Template]] = [
    (3, _element_mc),
    (2, _units_mc),
    (1, _state_mc),
    (4, _fact_mc),
    (4, _formula_mc),
    (2, _formula_number),
    (2, _science_number),
]
