"""A custom domain through fit, report, the reply and the OpenAI `calibration` object (issue 22.3)."""

from __future__ import annotations

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
