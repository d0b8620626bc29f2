"""A custom domain through fit, report, the reply and the OpenAI `calibration` object (issue 22.3)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from assistant.calibrated.maps import load_maps, save_maps
from assistant.core.domainfile import Domain, DomainSet, load_domains
from assistant.core.errors import DataError
from assistant.core.record import Record
from assistant.web.openai_api import calibration_of
from calibration.fitting.fit import fit_maps
from calibration.measuring.report import format_maps_summary
from tests.assistant.test_pipeline import make_assistant
from tests.conftest import FixedRouter


def records(n_it: int, n_math: int = 120, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    rows = []
    for domain, n in (("math", n_math), ("it-helpdesk", n_it)):
        for i in range(n):
            p = float(rng.uniform())
            rows.append(Record(id=f"{domain}-{i}", domain=domain, raw_confidence=p, correct=bool(rng.uniform() < p),
                               model="m", prompt="p"))
    return rows


def test_a_custom_domain_with_enough_answers_gets_its_own_map(tmp_path):
    maps = fit_maps(records(120), model="m", prompt="p", signals="stated", min_samples=30)
    assert set(maps.maps) == {"math", "it-helpdesk", "general"}
    save_maps(maps, tmp_path / "maps.json")
    assert load_maps(tmp_path / "maps.json").maps["it-helpdesk"].n_samples == maps.maps["it-helpdesk"].n_samples
    assert "it-helpdesk" in format_maps_summary(maps)


def test_a_custom_domain_with_too_few_borrows_the_pooled_map_and_says_how_many():
    maps = fit_maps(records(12), model="m", prompt="p", signals="stated", min_samples=30)
    assert "it-helpdesk" not in maps.maps and maps.maps["general"].metrics["borrowed_by"] == {"it-helpdesk": 12}
    assert "it-helpdesk: 12 usable graded answers, too few for a map of its own: it borrows the pooled" \
        in format_maps_summary(maps)


@pytest.mark.parametrize("domain", ["poetry", "IT helpdesk", "general-"])
def test_a_record_with_a_name_no_domain_could_have_is_refused(domain):
    with pytest.raises(DataError, match="custom domain's name"):
        Record.from_dict({"id": "x", "domain": domain, "raw_confidence": 0.5, "correct": True, "model": "m",
                          "prompt": "p"})


def test_the_reply_and_the_openai_object_carry_the_domains_description():
    shipped = load_domains(None)
    mine = Domain("it-helpdesk", "Laptops, VPN and passwords.", examples=tuple(f"q{i}" for i in range(20)))
    domains = DomainSet((*shipped.domains[:-1], mine, shipped.domains[-1]), "test")
    assistant = make_assistant("<answer>Windows+L</answer><confidence>80%</confidence>",
                               router=FixedRouter("it-helpdesk"), domains=domains)
    reply = assistant.ask("How do I lock my PC?")
    assert reply.domain == "it-helpdesk" and reply.domain_description == "Laptops, VPN and passwords."
    assert reply.map_version == "v0007"  # no it-helpdesk map in these maps: the general one applies
    shown = calibration_of(reply, "r1", assistant.maps)
    assert shown["domain"] == "it-helpdesk" and shown["domain_description"] == "Laptops, VPN and passwords."
    assert "Laptops, VPN and passwords." in shown["summary"]


def test_reviewers_verdicts_on_a_custom_domain_reach_its_queue_export_and_dashboard_row(tmp_path):
    from assistant.calibrated.maps import CalibrationMaps, DomainMap
    from assistant.reviews.queries import export_records, reviewed, stats_by_domain
    from assistant.reviews.store import ReviewStore
    from assistant.web import charts
    from calibration.cli.commands import load_records
    from tests.conftest import make_reply

    store = ReviewStore(tmp_path / "d")
    for _ in range(3):
        store.record_reply(make_reply(domain="it-helpdesk", question="How do I lock my PC?"), "sam")
    store.record_reply(make_reply(), "sam")  # a math one, which the filter leaves out
    queue = store.queue(domain="it-helpdesk")
    assert len(queue) == 3 and {item.domain for item in queue} == {"it-helpdesk"}
    for item, verdict in zip(queue, ("correct", "incorrect", "correct")):
        store.submit_verdict(item.id, verdict, "rita")
    stats = stats_by_domain(reviewed(store))
    assert stats["it-helpdesk"].count == 3 and stats["it-helpdesk"].accuracy == pytest.approx(2 / 3)
    assert export_records(store, tmp_path / "reviews.jsonl") == 3
    assert {r.domain for r in load_records([tmp_path / "reviews.jsonl"])} == {"it-helpdesk"}
    flat = DomainMap(domain="it-helpdesk", x=(0.0, 1.0), y=(0.0, 1.0), n_samples=40, threshold=0.5, metrics={})
    maps = CalibrationMaps(model="m", prompt="p", version="v0009", fitted_at="2026-12-03T00:00:00+00:00",
                           maps={"it-helpdesk": flat, "general": replace(flat, domain="general")})
    row = charts.dashboard_rows(maps, stats)[0]
    assert row[0] == "it-helpdesk" and row[10] == "3"  # its reviewed answers since the fit
