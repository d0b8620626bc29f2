"""Self-consistency (issue 20, item 6): sampled answers, their agreement, and where it goes.

Scripted backends here; the real model samples in `test_real_model_samples_differ_and_agree_in_steps` and in
`bench/consistency.py`, whose measurement is in docs/calibration.md."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from assistant.answering.answer import answer_batch
from assistant.answering.consistency import agreement, answer_key, sample_answers, with_agreement
from assistant.answering.pipeline import Assistant
from assistant.answering.prompts import load_prompt
from assistant.calibrated.fusion import Combiner
from assistant.calibrated.maps import load_maps, save_maps
from assistant.cli import format_reply
from assistant.core.errors import InputError
from assistant.models.backend import Capabilities, GenerationOptions, GenerationStats
from assistant.models.fake import FakeBackend
from assistant.web.render import badge_text
from calibration.fitting.fit import fit_maps
from tests.conftest import FixedRouter


@pytest.mark.parametrize("a, b", [("132", "132 apples"), ("The answer is 132.", "132"), ("1,000", "1000"),
                                  ("B", "(B)"), ("B. Mitochondria", "B"), ("Paris", "paris."),
                                  ("The Eiffel Tower", "Eiffel tower")])
def test_the_same_answer_written_differently_agrees(a, b):
    assert answer_key(a) == answer_key(b)


@pytest.mark.parametrize("a, b", [("132", "131"), ("B", "C"), ("Paris", "Lyon"), ("A dog", "A"),
                                  ("12 or 13", "12")])
def test_different_answers_disagree(a, b):
    assert answer_key(a) != answer_key(b)


def test_agreement_is_the_share_of_samples_that_agree():
    assert agreement("132", ["132", "131", None, "132."]) == 0.5  # a sample with no answer disagrees
    assert agreement("132", ["132", "132"]) == 1.0
    assert agreement(None, ["132"]) is None  # nothing to agree with
    assert agreement("132", []) is None


class SeedEcho(FakeBackend):
    """Answers with the seed it was asked to sample with, so rows that draw alike show."""

    def pieces(self, messages, options, cancel):
        self.history.append((list(messages), options))
        yield f"<answer>{options.seed}</answer>"
        return GenerationStats(tokens=1, finish_reason="stop")

    def generate_batch(self, batch, options=GenerationOptions()):
        self.batches.append(len(batch))
        return [self.stream(messages, options.for_row(i)).drain() for i, messages in enumerate(batch)]


def _echo(**capabilities) -> SeedEcho:
    backend = SeedEcho(capabilities=Capabilities(local=True, **capabilities))
    backend.batches = []
    return backend


@pytest.mark.parametrize("capabilities", [{}, {"batching": True}, {"max_concurrency": 4}],
                         ids=["one by one", "one batch", "concurrent streams"])
def test_every_sample_draws_with_its_own_seed_at_a_temperature(prompt, capabilities):
    backend = _echo(**capabilities)
    conversations = [prompt.messages("q1"), prompt.messages("q2")]
    drawn = sample_answers(backend, prompt, conversations, 3, GenerationOptions(seed=10))
    assert sorted(int(a) for answers in drawn.answers for a in answers) == list(range(10, 16))
    assert {options.temperature for _, options in backend.history} == {0.7}
    assert {options.probe for _, options in backend.history} == {None}  # no confidence probe for a sample
    assert [m[-1]["content"] for m, _ in backend.history].count(conversations[0][-1]["content"]) == 3
    assert backend.batches == ([6] if capabilities.get("batching") else [])
    assert drawn.tokens == 6


def test_zero_samples_is_refused(prompt):
    with pytest.raises(ValueError, match="at least 1 sample"):
        sample_answers(_echo(), prompt, [prompt.messages("q")], 0, GenerationOptions())


def test_an_answer_with_nothing_to_agree_with_is_not_sampled(prompt):
    backend = FakeBackend().enqueue("<answer>I don't know</answer>")
    answer = answer_batch(backend, prompt, ["q"], GenerationOptions())[0]
    assert with_agreement(backend, prompt, answer, prompt.messages("q"), 3, GenerationOptions()) is answer
    assert len(backend.history) == 1


def test_the_chat_samples_only_when_asked_and_records_the_agreement():
    main = "<answer>132</answer><confidence>90%</confidence>"
    backend = FakeBackend().enqueue(main, "<answer>132</answer>", "<answer>131</answer>")
    reply = Assistant(backend, load_prompt("confidence_tags"), FixedRouter(), None, self_consistency=2).ask("12 x 11?")
    assert reply.signals.agreement == 0.5 and len(backend.history) == 3
    assert "self_consistency" in reply.timings_ms
    assert reply.to_dict()["signals"]["agreement"] == 0.5
    assert "Sampled answers that agree: 50%" in format_reply(reply)
    assert "gave this same answer 50% of the time" in badge_text(reply)
    assert "gave this same answer 50%" in badge_text(reply.to_dict())  # a stored row, as the chat reloads it
    plain = FakeBackend().enqueue(main)
    reply = Assistant(plain, load_prompt("confidence_tags"), FixedRouter(), None).ask("12 x 11?")
    assert reply.signals.agreement is None and len(plain.history) == 1
    assert "Sampled answers" not in format_reply(reply) and "same answer" not in badge_text(reply)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_a_bad_sample_count_is_refused_with_what_to_give(bad):
    with pytest.raises(InputError, match="whole number of samples"):
        Assistant(FakeBackend(), load_prompt("confidence_tags"), FixedRouter(), None, self_consistency=bad)


def test_stopping_the_answer_stops_its_samples(prompt):
    cancel = threading.Event()
    cancel.set()
    backend = FakeBackend(capabilities=Capabilities(local=True, max_concurrency=4), default_output="<answer>1</answer>")
    drawn = sample_answers(backend, prompt, [prompt.messages("q")], 2, GenerationOptions(), cancel)
    assert drawn.answers == [[None, None]] and drawn.tokens == 0
    answer = answer_batch(backend, prompt, ["q"], GenerationOptions())[0]
    calls = len(backend.history)
    stopped = with_agreement(backend, prompt, answer, prompt.messages("q"), 2, GenerationOptions(), cancel)
    assert stopped.signals.agreement is None and len(backend.history) == calls  # not read as "nothing agrees"


def _records(n: int, rng, with_agreement: bool) -> list[dict]:
    """Graded records whose agreement says whether they are right and whose other signals say nothing."""
    records = []
    for i in range(n):
        right = bool(rng.random() < 0.4)
        signals = {"stated": 0.9, "answer_mean_logp": float(rng.normal(-1, 0.3))}
        if with_agreement:
            signals["agreement"] = float(rng.choice([0.5, 1.0] if right else [0.0, 0.5]))
        records.append({"id": f"r{i}", "domain": ("math", "factual")[i % 2], "raw_confidence": 0.9,
                        "correct": right, "signals": signals})
    return records


def test_a_fit_reads_agreement_where_its_records_carry_it_and_ranks_by_it(tmp_path):
    rng = np.random.default_rng(0)
    with_it = fit_maps(_records(600, rng, True), model="m", prompt="p", signals="fused", n_boot=0)
    without = fit_maps(_records(600, rng, False), model="m", prompt="p", signals="fused", n_boot=0)
    assert with_it.reads_agreement and not without.reads_agreement
    save_maps(with_it, tmp_path / "v0001.json")
    assert load_maps(tmp_path / "v0001.json").reads_agreement  # it survives the map file
    combiner = Combiner.from_dict(with_it.maps["math"].combiner)
    assert combiner.features[-1] == "agreement" and combiner.coef[-1] > 0.5
    dmap = with_it.map_for("math")
    low, high = (dmap(dmap.score({"stated": 0.9, "answer_mean_logp": -1.0, "agreement": a})) for a in (0.0, 1.0))
    assert high > low + 0.3
    forced = fit_maps(_records(600, rng, True), model="m", prompt="p", signals="fused", n_boot=0, agreement=False)
    assert not forced.reads_agreement


def test_maps_that_read_agreement_warn_when_the_chat_does_not_sample(caplog):
    rng = np.random.default_rng(1)
    maps = fit_maps(_records(300, rng, True), model="fake-model", prompt="confidence_tags", signals="fused", n_boot=0)
    with caplog.at_level("WARNING"):
        Assistant(FakeBackend(), load_prompt("confidence_tags"), FixedRouter(), maps, self_consistency=3)
    assert "self-consistency is off" not in caplog.text
    with caplog.at_level("WARNING"):
        Assistant(FakeBackend(), load_prompt("confidence_tags"), FixedRouter(), maps)
    assert "read the agreement of sampled answers, but self-consistency is off" in caplog.text
