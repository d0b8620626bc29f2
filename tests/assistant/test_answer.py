"""assistant/answering/answer.py: the one answering path. The live chat (stream_answer) and `calibrate collect`
(answer_batch, answer_many) must give the same answer, confidence and issues for the same output."""

from __future__ import annotations

import pytest

from assistant.answering.answer import FOLLOWUP_MARK, answer_batch, answer_many, stream_answer
from assistant.answering.prompts import load_prompt
from assistant.models.backend import GenerationOptions, run_to_end
from assistant.models.fake import FakeBackend

ONE_TURN = "12 times 11 is 132. <answer>132</answer> <confidence>85%</confidence>"
FIRST, SECOND = "12 times 11 is 132. <answer>132</answer>", "<confidence>70%</confidence>"
OPTIONS = GenerationOptions(max_new_tokens=64)


def _streamed(backend, prompt, question, **kw):
    gen = stream_answer(backend, prompt, question, OPTIONS, **kw)
    pieces, answer = [], None
    while answer is None:
        try:
            pieces.append(next(gen))
        except StopIteration as stop:
            answer = stop.value
    return "".join(pieces), answer


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
    class Many(FakeBackend):
        def generate_many(self, conversations, options, parallel):
            for i, messages in enumerate(conversations):
                yield (i, *run_to_end(self.stream(messages, options)))

    got = dict(answer_many(Many().enqueue(ONE_TURN, ONE_TURN), load_prompt("confidence_tags"), ["a", "b"], OPTIONS,
                           parallel=2))
    assert sorted(got) == [0, 1] and got[1].parsed.raw_confidence == 0.85
    with pytest.raises(ValueError, match="follow-up turn"):
        next(answer_many(Many(), load_prompt("self_reflection"), ["a"], OPTIONS, parallel=2))
