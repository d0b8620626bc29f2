"""assistant/answering/answer.py: the one answering path. The live chat (stream_answer) and `calibrate collect`
(answer_batch, answer_many) must give the same answer, confidence and issues for the same output."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from assistant.answering.answer import FOLLOWUP_MARK, answer_batch, answer_many, stream_answer
from assistant.answering.prompts import load_prompt
from assistant.models.backend import Capabilities, GenerationOptions
from assistant.models.fake import FakeBackend

ONE_TURN = "12 times 11 is 132. <answer>132</answer> <confidence>85%</confidence>"
FIRST, SECOND = "12 times 11 is 132. <answer>132</answer>", "<confidence>70%</confidence>"
OPTIONS = GenerationOptions(max_new_tokens=64)


def _streamed(backend, prompt, question, **kw):
    stream = stream_answer(backend, prompt, question, OPTIONS, **kw)
    pieces = list(stream)
    return "".join(pieces), stream.result


@pytest.mark.parametrize("prompt_id, outputs, confidence", [
    ("confidence_tags", [ONE_TURN], 0.85),
    ("self_reflection", [FIRST, SECOND], 0.70),
])
def test_the_chat_and_collect_read_the_same_answer(prompt_id, outputs, confidence):
    prompt = load_prompt(prompt_id)
    streamed_text, live = _streamed(FakeBackend().enqueue(*outputs), prompt, "What is 12 times 11?")
    (batch,) = answer_batch(FakeBackend().enqueue(*outputs), prompt, ["What is 12 times 11?"], OPTIONS)
    for answer in (live, batch):
        assert (answer.parsed.answer, answer.parsed.raw_confidence, answer.issues) == ("132", confidence, ())
    assert live.raw_output == batch.raw_output == FOLLOWUP_MARK.join(outputs)
    assert streamed_text == outputs[0]  # only the first turn streams; the confidence turn is asked after it


def test_a_declined_answer_gets_no_confidence_turn():
    backend = FakeBackend().enqueue("<answer>I don't know</answer>")
    _, answer = _streamed(backend, load_prompt("self_reflection"), "Who won in 2150?")
    assert answer.parsed.not_attempted and len(backend.history) == 1


def test_truncation_is_an_issue_once_whatever_the_path():
    long = " ".join(["word"] * 100)
    _, live = _streamed(FakeBackend().enqueue(long), load_prompt("confidence_tags"), "q")
    (batch,) = answer_batch(FakeBackend().enqueue(long), load_prompt("confidence_tags"), ["q"], OPTIONS)
    assert live.issues.count("truncated") == 1 and live.issues == batch.issues


def test_history_goes_between_the_system_message_and_the_question():
    backend = FakeBackend().enqueue(ONE_TURN)
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "reply"},
               {"role": "system", "content": "ignored: not a turn"}]
    _streamed(backend, load_prompt("confidence_tags"), "now?", history=history)
    sent = backend.history[0]
    assert [m["content"] for m in sent[-3:]] == ["earlier", "reply", sent[-1]["content"]]
    assert "now?" in sent[-1]["content"] and all("ignored" not in m["content"] for m in sent)


def test_answer_many_is_for_one_turn_prompts_only():
    @dataclass
    class Many(FakeBackend):
        capabilities: Capabilities = Capabilities(local=True, batching=True, continuous_batching=True)

        def generate_many(self, conversations, options, parallel):
            for i, messages in enumerate(conversations):
                yield (i, *self.stream(messages, options).drain())

    got = dict(answer_many(Many().enqueue(ONE_TURN, ONE_TURN), load_prompt("confidence_tags"), ["a", "b"], OPTIONS,
                           parallel=2))
    assert sorted(got) == [0, 1] and got[1].parsed.raw_confidence == 0.85
    with pytest.raises(ValueError, match="follow-up turn"):
        next(answer_many(Many(), load_prompt("self_reflection"), ["a"], OPTIONS, parallel=2))


@dataclass
class ProbeRecorder(FakeBackend):
    """Notes the probe each generation was asked for."""

    probes: list = field(default_factory=list)

    def pieces(self, messages, options, cancel):
        self.probes.append(options.probe)
        return (yield from super().pieces(messages, options, cancel))


def test_the_prompts_probe_is_set_on_the_one_answering_path():
    prompt = load_prompt("confidence_tags")
    live, batch = ProbeRecorder(default_output=ONE_TURN), ProbeRecorder(default_output=ONE_TURN)
    _streamed(live, prompt, "q")
    answer_batch(batch, prompt, ["q", "r"], OPTIONS)
    assert prompt.probe and live.probes == [prompt.probe] and batch.probes == [prompt.probe] * 2
    named = ProbeRecorder(default_output=ONE_TURN)
    answer_batch(named, prompt, ["q"], GenerationOptions(probe="<c>"))  # a probe named by the caller is kept
    assert named.probes == ["<c>"]
