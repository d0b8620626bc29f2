"""The domains file (issue 22): the shipped default, a custom domain, and one clear error per bad file."""

from __future__ import annotations

import json

import pytest

from assistant.core.domainfile import (
    MIN_EXAMPLES,
    SHIPPED_DOMAINS_PATH,
    Domain,
    DomainSet,
    domains_path,
    load_domains,
    save_domains,
)
from assistant.core.domains import MAP_DOMAINS
from assistant.core.errors import DataError

EXAMPLES = [f"how do I reset my password number {i}" for i in range(MIN_EXAMPLES)]


def shipped_entries() -> list[dict]:
    return json.loads(SHIPPED_DOMAINS_PATH.read_text())["domains"]


def custom(**changes) -> dict:
    return {"name": "it-helpdesk", "description": "Laptops, VPN and passwords.", "examples": EXAMPLES, **changes}


def with_custom(*entries) -> dict:
    builtins = shipped_entries()
    return {"schema_version": 1, "domains": [*builtins[:-1], *entries, builtins[-1]]}


def test_the_shipped_default_holds_the_built_in_domains_and_general():
    domains = load_domains(None)
    assert domains.names == MAP_DOMAINS and domains.routed == MAP_DOMAINS[:-1] and not domains.custom
    assert all(d.builtin and d.description for d in domains.domains)


def test_an_empty_data_folder_reads_the_shipped_default(tmp_path):
    assert load_domains(tmp_path).source == str(SHIPPED_DOMAINS_PATH)


def test_a_custom_domain_round_trips_and_its_examples_set_the_hash(tmp_path):
    (tmp_path / "qa.jsonl").write_text('{"question": "q"}\n')
    domains = load_domains(None)
    mine = Domain("it-helpdesk", "Laptops.", examples=tuple(EXAMPLES), labelled_files=("qa.jsonl",), target_risk=0.2)
    wanted = DomainSet((*domains.domains[:-1], mine, domains.domains[-1]), "x")
    save_domains(wanted, tmp_path)
    read = load_domains(tmp_path)
    assert read.domains == wanted.domains and read.get("it-helpdesk").target_risk == 0.2
    assert read.sha256() == wanted.sha256() != domains.sha256()
    fewer = DomainSet((*domains.domains[:-1], Domain("it-helpdesk", "Laptops.", examples=tuple(EXAMPLES[1:]) + ("x",)),
                       domains.domains[-1]), "x")
    assert fewer.sha256() != wanted.sha256()
    assert read.description("it-helpdesk") == "Laptops." and read.description("nope") == ""


BAD = [
    ("not json", "{", "not valid JSON"),
    ("no domains list", {"schema_version": 1}, "must be an object with a 'domains' list"),
    ("newer schema", {"schema_version": 2, "domains": []}, "reads version 1"),
    ("duplicate name", with_custom(custom(), custom()), "name 'it-helpdesk' more than once"),
    ("too few examples", with_custom(custom(examples=EXAMPLES[:5])), "has 5 different questions"),
    ("repeated examples", with_custom(custom(examples=EXAMPLES[:2] * 10)), "has 2 different questions"),
    ("unknown labelled file", with_custom(custom(labelled_files=["nowhere.jsonl"])), "'nowhere.jsonl', which is not a file"),
    ("unknown held-out file", with_custom(custom(heldout_files=["gone.jsonl"])), "'gone.jsonl', which is not a file"),
    ("bad name", with_custom(custom(name="IT Help")), "lowercase words joined by '-'"),
    ("built-in name", with_custom(custom(name="math")), "taken by a built-in domain"),
    ("one word", with_custom(custom(name="helpdesk")), "lowercase words joined by '-'"),
    ("too long", with_custom(custom(name="a-" + "b" * 40)), "at most 32"),
    ("no description", with_custom(custom(description=" ")), "field 'description'"),
    ("unknown field", with_custom(custom(example=[])), "unknown field 'example'"),
    ("bad target risk", with_custom(custom(target_risk=1.5)), "field 'target_risk'"),
    ("examples not a list", with_custom(custom(examples="q")), "must be a list of example questions"),
    ("a built-in dropped", {"schema_version": 1, "domains": shipped_entries()[1:]}, "must start with the built-in"),
    ("custom after general", {"schema_version": 1, "domains": [*shipped_entries(), custom()]}, "'general' last"),
    ("fake built-in", with_custom({"name": "hr-policy", "description": "x", "builtin": True}), "marked builtin"),
]


@pytest.mark.parametrize("data, message", [pytest.param(d, m, id=i) for i, d, m in BAD])
def test_a_bad_domains_file_gets_one_clear_error(tmp_path, data, message):
    path = domains_path(tmp_path)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    with pytest.raises(DataError) as err:
        load_domains(tmp_path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_save_refuses_a_bad_set_and_leaves_the_file_alone(tmp_path):
    domains = load_domains(None)
    bad = DomainSet((*domains.domains[:-1], Domain("it-helpdesk", "x", examples=("one",)), domains.domains[-1]), "x")
    with pytest.raises(DataError, match="has 1 different questions"):
        save_domains(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []
