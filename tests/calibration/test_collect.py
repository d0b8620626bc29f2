"""calibration.labelling.collect: records, grading, resume after a kill, duplicates, batching, locking (scripted backend)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from assistant.answering.prompts import load_prompt
from assistant.core.errors import DataError, InputError
from assistant.core.record import RECORD_FIELDS
from assistant.models.backend import Capabilities, GenerationOptions, GenerationStats
from assistant.models.fake import FakeBackend
from calibration.labelling.collect import collect, existing_ids
from tests.conftest import read_lines

# Types every record field may take (None where the record schema allows null).
FIELD_TYPES = {
    "id": (str,), "domain": (str,), "question": (str,), "gold": (str,), "answer": (str, type(None)),
    "raw_confidence": (float, type(None)), "correct": (bool, type(None)), "parse_ok": (bool,),
    "model": (str,), "prompt": (str,), "tokens": (int,), "seconds": (float, int),
}


def item(i: int, answer: str = "65", answer_type: str = "number", domain: str = "math") -> dict:
    return {"id": f"q{i}", "domain": domain, "question": f"Question number {i}?", "answer": answer,
            "aliases": [], "answer_type": answer_type}


@dataclass
class BatchingFake(FakeBackend):
    """A FakeBackend that claims batching and records the size of every batch it is given."""

    capabilities: Capabilities = Capabilities(local=True, batching=True)
    batch_sizes: list = field(default_factory=list)

    def generate_batch(self, batch, options=None):
        self.batch_sizes.append(len(batch))
        return [self.stream(messages, options or GenerationOptions()).drain() for messages in batch]


@dataclass
class RefusingFake(FakeBackend):
    """Raises InputError (as a real backend does for an over-long prompt) when the question contains 'LONG'."""

    def refuse_too_long(self, messages):
        if "LONG" in messages[-1]["content"]:
            raise InputError("the prompt is 5000 tokens, more than the 4096-token context")

    def stream(self, messages, options=None, cancel=None):
        self.refuse_too_long(messages)
        return super().stream(messages, options or GenerationOptions(), cancel)


@dataclass
class ContinuousFake(BatchingFake, RefusingFake):
    """Adds `generate_many`: every prompt is checked first (as the real one tokenizes them all
    before decoding), then every conversation is answered, yielded last first."""

    capabilities: Capabilities = Capabilities(local=True, batching=True, continuous_batching=True)
    calls: list = field(default_factory=list)  # (conversations, parallel) per generate_many call

    def generate_many(self, batch, options=None, parallel=16):
        self.calls.append((len(batch), parallel))
        for messages in batch:
            self.refuse_too_long(messages)
        results = [self.stream(messages, options or GenerationOptions()).drain() for messages in batch]
        for index in reversed(range(len(batch))):
            yield index, *results[index]


# output of the model -> (answer, raw_confidence, correct, parse_ok, issues) for gold "65" (number)
GRADING = [
    ("<answer>65</answer> <confidence>0.9</confidence>", "65", 0.9, True, True, []),
    ("<answer>$65.00</answer> <confidence>80%</confidence>", "$65.00", 0.8, True, True, []),
    ("<answer>64</answer> <confidence>30%</confidence>", "64", 0.3, False, True, []),
    ("<answer>I don't know</answer> <confidence>0.1</confidence>", "I don't know", 0.1, None, True,
     ["not_attempted"]),
    ("<answer>65</answer>", "65", None, True, False, ["no_confidence"]),
    ("<confidence>80%</confidence>", None, 0.8, None, False, ["no_answer"]),
]


@pytest.mark.parametrize("output, answer, confidence, correct, parse_ok, issues", GRADING)
def test_record_has_every_field_graded(tmp_path, prompt, output, answer, confidence, correct, parse_ok, issues):
    out = tmp_path / "records.jsonl"
    summary = collect([item(1)], out, FakeBackend(model_id="m1").enqueue(output), prompt, progress=False)
    assert (summary.written, summary.skipped, summary.total, summary.failed) == (1, 0, 1, 0)
    [record] = read_lines(out)
    assert tuple(record) == RECORD_FIELDS
    for name, types in FIELD_TYPES.items():
        assert isinstance(record[name], types), (name, record[name])
    assert record["id"] == "q1" and record["domain"] == "math" and record["gold"] == "65"
    assert record["question"] == "Question number 1?"
    assert (record["model"], record["prompt"]) == ("m1", "confidence_tags")
    assert (record["answer"], record["raw_confidence"], record["correct"], record["parse_ok"]) == \
        (answer, confidence, correct, parse_ok)
    assert record["issues"] == issues
    assert record["tokens"] == len(output.split(" "))


@pytest.mark.parametrize("output, answer_type, gold, correct", [
    ("<answer>B</answer> <confidence>0.7</confidence>", "choice", "B", True),
    ("<answer>A</answer> <confidence>0.7</confidence>", "choice", "B", False),
    ("<answer>Yes.</answer> <confidence>0.6</confidence>", "boolean", "yes", True),
    ("<answer>the Paris</answer> <confidence>0.6</confidence>", "text", "Paris", True),
])
def test_grading_uses_answer_type(tmp_path, prompt, output, answer_type, gold, correct):
    data = item(1, answer=gold, answer_type=answer_type)
    if answer_type == "choice":
        data["choices"] = ["red", "blue", "green"]
    out = tmp_path / "records.jsonl"
    collect([data], out, FakeBackend().enqueue(output), prompt, progress=False)
    assert read_lines(out)[0]["correct"] is correct


def test_truncated_output_is_marked(tmp_path, prompt):
    out = tmp_path / "records.jsonl"
    backend = FakeBackend().enqueue("one two three four five six")
    collect([item(1)], out, backend, prompt, options=GenerationOptions(max_new_tokens=3), progress=False)
    record = read_lines(out)[0]
    assert record["tokens"] == 3 and "truncated" in record["issues"]


def test_resume_skips_ids_already_there(tmp_path, prompt):
    out = tmp_path / "records.jsonl"
    backend = FakeBackend(default_output="<answer>65</answer> <confidence>0.9</confidence>")
    first = collect([item(i) for i in range(3)], out, backend, prompt, progress=False)
    assert (first.written, first.skipped, first.total) == (3, 0, 3)
    calls = len(backend.history)
    second = collect([item(i) for i in range(5)], out, backend, prompt, progress=False)
    assert (second.written, second.skipped, second.total) == (2, 3, 5)
    assert len(backend.history) - calls == 2  # only the two new questions were asked
    assert [r["id"] for r in read_lines(out)] == ["q0", "q1", "q2", "q3", "q4"]


def test_torn_last_line_is_cut_and_redone(tmp_path, prompt):
    out = tmp_path / "records.jsonl"
    backend = FakeBackend(default_output="<answer>65</answer> <confidence>0.9</confidence>")
    collect([item(0), item(1)], out, backend, prompt, progress=False)
    whole = out.read_bytes()
    torn = json.dumps({"id": "q2", "domain": "math", "question": "Question number 2?"})[:30]
    out.write_bytes(whole + torn.encode())  # a kill in the middle of writing q2's line
    assert existing_ids(out) == {"q0", "q1"}
    assert out.read_bytes() == whole  # the half line is gone, the whole lines untouched
    out.write_bytes(whole + torn.encode())
    summary = collect([item(i) for i in range(4)], out, backend, prompt, progress=False)
    assert (summary.written, summary.skipped, summary.total) == (2, 2, 4)
    assert [r["id"] for r in read_lines(out)] == ["q0", "q1", "q2", "q3"]


def test_torn_file_of_one_half_line_is_emptied(tmp_path, prompt):
    out = tmp_path / "records.jsonl"
    out.write_text('{"id": "q0", "dom', encoding="utf-8")
    assert existing_ids(out) == set()
    assert out.read_bytes() == b""


def test_duplicate_ids_in_data_are_answered_once(tmp_path, prompt, caplog):
    out = tmp_path / "records.jsonl"
    backend = FakeBackend(default_output="<answer>65</answer> <confidence>0.9</confidence>")
    summary = collect([item(0), item(1), item(0), item(1), item(2)], out, backend, prompt, progress=False)
    assert summary.written == 3 and len(backend.history) == 3
    assert [r["id"] for r in read_lines(out)] == ["q0", "q1", "q2"]
    assert "duplicate id 'q0'" in caplog.text


@pytest.mark.parametrize("n, batch_size, limit, sizes", [
    (7, 3, None, [3, 3]),  # the last batch of one goes through stream(), not generate_batch
    (8, 4, None, [4, 4]),
    (8, 4, 6, [4, 2]),
    (5, 1, None, []),
])
def test_batches_go_to_generate_batch(tmp_path, prompt, n, batch_size, limit, sizes):
    out = tmp_path / "records.jsonl"
    backend = BatchingFake(model_id="m1")
    for i in range(n):
        backend.enqueue(f"<answer>{60 + i}</answer> <confidence>0.{i + 1}</confidence>")
    summary = collect([item(i) for i in range(n)], out, backend, prompt, batch_size=batch_size, limit=limit,
                      progress=False)
    records = read_lines(out)
    assert backend.batch_sizes == sizes
    assert summary.written == len(records) == (limit or n)
    # each record got its own output, in order: q5 was answered "65" with 0.6
    for i, r in enumerate(records):
        assert (r["id"], r["answer"], r["raw_confidence"], r["correct"]) == (f"q{i}", str(60 + i), (i + 1) / 10,
                                                                               i == 5)


def test_two_turn_prompt_takes_confidence_from_followup(tmp_path):
    out = tmp_path / "records.jsonl"
    backend = FakeBackend().enqueue("<answer>65</answer>", "<confidence>70%</confidence>")
    collect([item(0)], out, backend, load_prompt("self_reflection"), progress=False)
    record = read_lines(out)[0]
    assert (record["answer"], record["raw_confidence"], record["correct"], record["prompt"]) == \
        ("65", 0.7, True, "self_reflection")
    assert len(backend.history) == 2 and "65" in backend.history[1][-1]["content"]


@pytest.mark.parametrize("batch_size", [1, 3])
def test_question_refused_by_backend_is_skipped_not_fatal(tmp_path, prompt, batch_size):
    out = tmp_path / "records.jsonl"
    backend = RefusingFake(default_output="<answer>65</answer> <confidence>0.9</confidence>")
    items = [item(0), {**item(1), "question": "LONG " * 10}, item(2)]
    summary = collect(items, out, backend, prompt, batch_size=batch_size, progress=False)
    assert (summary.written, summary.failed) == (2, 1)
    assert [r["id"] for r in read_lines(out)] == ["q0", "q2"]


def test_records_of_another_model_are_refused(tmp_path, prompt):
    out = tmp_path / "records.jsonl"
    collect([item(0)], out, FakeBackend(model_id="model-a", default_output="<answer>1</answer>"), prompt,
            progress=False)
    with pytest.raises(DataError, match="model-a.*pass another --out"):
        collect([item(1)], out, FakeBackend(model_id="model-b", default_output="<answer>1</answer>"), prompt,
                progress=False)
    assert [r["id"] for r in read_lines(out)] == ["q0"]


def test_second_writer_is_refused(tmp_path, prompt):
    fcntl = pytest.importorskip("fcntl")
    out = tmp_path / "records.jsonl"
    with open(out, "a") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DataError, match="another `calibrate collect`"):
            collect([item(0)], out, FakeBackend(default_output="x"), prompt, progress=False)


@pytest.mark.parametrize("batch_size", [0, -2])
def test_bad_batch_size(tmp_path, prompt, batch_size):
    with pytest.raises(DataError, match="batch-size"):
        collect([item(0)], tmp_path / "r.jsonl", FakeBackend(), prompt, batch_size=batch_size, progress=False)


def test_stats_seconds_are_recorded(tmp_path, prompt):
    @dataclass
    class Timed(FakeBackend):
        def pieces(self, messages, options=None, cancel=None):
            yield "<answer>65</answer>"
            return GenerationStats(tokens=4, finish_reason="stop", seconds=1.23456)

    out = tmp_path / "records.jsonl"
    collect([item(0)], out, Timed(), prompt, progress=False)
    assert read_lines(out)[0]["seconds"] == 1.235 and read_lines(out)[0]["tokens"] == 4


def test_continuous_batching_writes_each_answer_as_it_finishes(tmp_path, prompt):
    out = tmp_path / "records.jsonl"
    backend = ContinuousFake(model_id="m1")
    for i in range(5):
        backend.enqueue(f"<answer>{60 + i}</answer> <confidence>0.{i + 1}</confidence>")
    summary = collect([item(i) for i in range(5)], out, backend, prompt, batch_size=3, progress=False)
    assert backend.calls == [(5, 3)]  # one run over every question, three decoding at once
    records = read_lines(out)
    assert summary.written == 5 and [r["id"] for r in records] == ["q4", "q3", "q2", "q1", "q0"]
    assert {r["id"]: (r["answer"], r["raw_confidence"]) for r in records} == {
        f"q{i}": (str(60 + i), (i + 1) / 10) for i in range(5)
    }


def test_continuous_batching_falls_back_to_batches_for_a_refused_question(tmp_path, prompt):
    out = tmp_path / "records.jsonl"
    backend = ContinuousFake(default_output="<answer>65</answer> <confidence>0.9</confidence>")
    items = [item(0), {**item(1), "question": "LONG " * 10}, item(2)]
    summary = collect(items, out, backend, prompt, batch_size=3, progress=False)
    assert (summary.written, summary.failed) == (2, 1) and backend.calls == [(3, 3)]
    assert sorted(r["id"] for r in read_lines(out)) == ["q0", "q2"]


def test_two_turn_prompt_is_not_decoded_continuously(tmp_path):
    backend = ContinuousFake(default_output="<answer>65</answer> <confidence>70%</confidence>")
    summary = collect([item(i) for i in range(4)], tmp_path / "r.jsonl", backend, load_prompt("self_reflection"),
                      batch_size=2, progress=False)
    assert summary.written == 4 and backend.calls == []  # the follow-up turn needs the first answer


@pytest.mark.slow
def test_self_consistency_records_how_often_samples_agree(tmp_path, prompt):
    backend = FakeBackend().enqueue("<answer>65</answer><confidence>80%</confidence>", "<answer>65</answer>",
                                    "<answer>64</answer>", "<answer>I don't know</answer>")
    collect([item(1), item(2)], tmp_path / "r.jsonl", backend, prompt, progress=False, self_consistency=2)
    first, second = read_lines(tmp_path / "r.jsonl")
    assert first["signals"]["agreement"] == 0.5 and first["correct"] is True
    assert second["signals"]["agreement"] is None and len(backend.history) == 4  # "I don't know": no samples
    collect([item(3)], tmp_path / "plain.jsonl", FakeBackend(default_output="<answer>65</answer>"), prompt,
            progress=False)
    assert read_lines(tmp_path / "plain.jsonl")[0]["signals"]["agreement"] is None


def test_real_collect_with_continuous_batching(tmp_path, prompt):
    """The default model through llama.cpp, four questions decoding at once, each with two samples decoded
    together (self-consistency): every question gets a record, every answer its agreement."""
    pytest.importorskip("llama_cpp")
    from assistant.core.config import ModelConfig
    from assistant.models.llamacpp import LlamaCppBackend
    from calibration.labelling.datagen import make_questions

    backend = LlamaCppBackend(ModelConfig(threads=1))
    items = make_questions("math", 6, 3)
    out = tmp_path / "records.jsonl"
    try:
        summary = collect(items, out, backend, prompt, options=GenerationOptions(max_new_tokens=24), batch_size=4,
                          progress=False, self_consistency=2)
    finally:
        backend.close()
    records = read_lines(out)
    assert summary.written == 6 and sorted(r["id"] for r in records) == sorted(i["id"] for i in items)
    assert all(0 < r["tokens"] <= 24 and r["model"] == backend.model_id for r in records)
    assert all(r["signals"]["agreement"] in (0.0, 0.5, 1.0) for r in records if r["correct"] is not None)
