"""`calibrate domains` (issue 22): add refits the router, bad input changes nothing, remove is refused when used."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from assistant.core.domainfile import domains_path, load_domains
from assistant.core.domains import MAP_DOMAINS
from assistant.core.errors import DataError
from assistant.reviews.store import ReviewStore
from assistant.routing import learn
from assistant.routing.learn import REFIT, load_router, router_path
from calibration.cli import domains as domains_cmd
from calibration.cli import main
from tests.conftest import make_reply

IT = [f"my laptop vpn password printer wifi is broken again case {i}" for i in range(30)]


class WordsEmbedder:
    """Bag-of-words vectors (each word hashed to one of 64 dimensions): keyword domains are learnable."""

    def encode(self, texts, **kwargs):
        out = np.zeros((len(texts), 64))
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
        return out


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setattr(domains_cmd, "load_embedder", WordsEmbedder)
    base = tmp_path / "base.jsonl"  # 40 examples per built-in class (the real ones take minutes to fit)
    base.write_text("".join(json.dumps({"question": f"{c} {c}-word question {i}", "domain": c}) + "\n"
                            for c in MAP_DOMAINS for i in range(40)))
    monkeypatch.setattr(learn, "base_example_files", lambda: [base])
    examples = tmp_path / "it.jsonl"
    examples.write_text("".join(json.dumps({"question": q}) + "\n" for q in IT))
    heldout = tmp_path / "it-heldout.jsonl"
    heldout.write_text(json.dumps({"question": "the vpn on my laptop drops"}) + "\n")
    return tmp_path


def add(data, *extra, name="it-helpdesk", examples="it.jsonl"):
    return main(["domains", "add", name, "--description", "Laptops, VPN, passwords.", "--examples",
                 str(data / examples), "--data-dir", str(data / "d"), *extra])


def files(folder):
    """The domains file and the router, as bytes (SQLite may add its -shm file when read)."""
    return {p.name: p.read_bytes() for p in folder.glob("*.json")} if folder.exists() else {}


def test_add_refits_the_router_and_reports_held_out_recall_per_domain(data, capsys):
    assert add(data, "--heldout", str(data / "it-heldout.jsonl")) == 0
    out = capsys.readouterr().out
    assert "it-helpdesk" in out and "out-of-fold" in out and "% of 30" in out and "100.0% of 1" in out
    domains = load_domains(data / "d")
    assert domains.names[-2:] == ("it-helpdesk", "general")
    router = load_router(data / "d", domains, embedder=WordsEmbedder())
    assert router.route("printer wifi password broken").domain == "it-helpdesk"
    stored = json.loads(router_path(data / "d").read_text())
    assert stored["domains_sha256"] == domains.sha256() and stored["classes"] == list(domains.names)
    assert stored["cv_recall"]["it-helpdesk"]["n"] == 30
    assert main(["domains", "list", "--data-dir", str(data / "d")]) == 0
    assert "it-helpdesk" in capsys.readouterr().out


@pytest.mark.parametrize("extra, kwargs, message", [
    ((), {"name": "math"}, "already in"),
    ((), {"name": "IT"}, "lowercase words joined by '-'"),
    ((), {"examples": "missing.jsonl"}, "no such file"),
    (("--labelled", "nowhere.jsonl"), {}, "which is not a file"),
    (("--target-risk", "2"), {}, "target_risk"),
])
def test_a_bad_add_gets_one_clear_error_and_writes_nothing(data, capsys, extra, kwargs, message):
    (data / "few.jsonl").write_text("".join(json.dumps({"question": q}) + "\n" for q in IT[:3]))
    assert add(data, *extra, **kwargs) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and files(data / "d") == {}


def test_too_few_examples_and_a_duplicate_name_change_nothing(data, capsys):
    assert add(data) == 0
    before = files(data / "d")
    (data / "few.jsonl").write_text("".join(json.dumps({"question": q}) + "\n" for q in IT[:3]))
    assert add(data, name="hr-policy", examples="few.jsonl") == 2
    assert "has 3 different questions" in capsys.readouterr().err
    assert add(data) == 2
    assert "already in" in capsys.readouterr().err
    assert files(data / "d") == before


def test_a_router_fitted_on_other_domains_is_refused_with_what_to_run(data):
    assert add(data) == 0
    path = domains_path(data / "d")
    edited = json.loads(path.read_text())
    edited["domains"][-2]["examples"].append("a new example")
    path.write_text(json.dumps(edited))
    with pytest.raises(DataError, match=REFIT) as err:
        load_router(data / "d", load_domains(data / "d"))
    assert "\n" not in str(err.value)
    router_path(data / "d").unlink()  # the shipped router knows no custom domain
    with pytest.raises(DataError, match="fitted on other domains"):
        load_router(data / "d", load_domains(data / "d"))
    assert main(["domains", "refit", "--data-dir", str(data / "d")]) == 0
    load_router(data / "d", load_domains(data / "d"))


def test_remove_refuses_built_ins_and_domains_with_stored_replies(data, capsys):
    assert add(data) == 0
    assert main(["domains", "remove", "math", "--data-dir", str(data / "d")]) == 2
    assert "built-in" in capsys.readouterr().err
    store = ReviewStore(data / "d")
    store.record_reply(make_reply(domain="it-helpdesk"), "sam")
    store.close()
    before = files(data / "d")
    assert main(["domains", "remove", "it-helpdesk", "--data-dir", str(data / "d")]) == 2
    assert "1 stored replies were routed to 'it-helpdesk'" in capsys.readouterr().err
    assert files(data / "d") == before


def test_remove_of_an_unused_domain_refits_without_it(data):
    assert add(data) == 0
    assert main(["domains", "remove", "it-helpdesk", "--data-dir", str(data / "d")]) == 0
    domains = load_domains(data / "d")
    assert "it-helpdesk" not in domains.names
    assert load_router(data / "d", domains).classes == domains.names


def test_show_prints_the_entry_and_its_routing_recall(data, capsys):
    assert add(data) == 0
    capsys.readouterr()
    assert main(["domains", "show", "it-helpdesk", "--data-dir", str(data / "d")]) == 0
    out = capsys.readouterr().out
    assert '"description": "Laptops, VPN, passwords."' in out and "'n': 30" in out
    assert "router: fitted on these domains" in out
    assert main(["domains", "show", "hr-policy", "--data-dir", str(data / "d")]) == 2
    assert "no domain 'hr-policy'" in capsys.readouterr().err
