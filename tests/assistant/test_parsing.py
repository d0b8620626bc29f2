"""Tests for assistant.answering.parsing: a table of real-looking outputs, adversarial text, property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.answering.parsing import (
    LINGUISTIC_CONFIDENCE,
    ParsedOutput,
    extract_answer,
    extract_confidence,
    parse_output,
    split_reasoning,
)
from assistant.core.reply import REVIEW_REASONS

# (id, model output, answer, raw_confidence, issues)
CASES = [
    # DeepSeek-R1 style: <think> trace, then the tagged answer.
    (
        "r1_tags",
        "<think>\nOkay, 17 + 25. 17 + 20 = 37, plus 5 = 42.\n</think>\n\n<answer>42</answer>\n<confidence>95%</confidence>",
        "42",
        0.95,
        (),
    ),
    (
        "r1_prob",
        "<think>Paris is the capital of France.</think><answer>Paris</answer><confidence>0.9</confidence>",
        "Paris",
        0.9,
        (),
    ),
    (
        "r1_conf_only_in_think",
        "<think>I'd say 90% confident, <confidence>90%</confidence>.</think>\n<answer>Tokyo</answer>",
        "Tokyo",
        None,
        ("no_confidence",),
    ),
    (
        "r1_answer_only_in_think",
        "<think>So <answer>8</answer> I think.</think>\nConfidence: 70%",
        None,
        0.7,
        ("no_answer",),
    ),
    (
        "r1_truncated",
        "<think>\nLet me compute 12 * 4. 12 * 4 = 48. But wait, <answer>48</answer><confidence>80%",
        None,
        None,
        ("no_confidence", "no_answer", "truncated"),
    ),
    (
        "r1_markdown_after_think",
        "<think>hmm</think>\n**Final Answer:** 3 km\n\n**Confidence:** 85 %",
        "3 km",
        0.85,
        (),
    ),
    (
        "r1_two_think_blocks",
        "<think>a</think><answer>1</answer><think>no wait</think><answer>2</answer><confidence>60%</confidence>",
        "2",
        0.6,
        (),
    ),
    (
        "r1_reopened_think_truncated",
        "<think>a</think>\n<answer>Mars</answer>\n<think>let me double check",
        "Mars",
        None,
        ("no_confidence", "truncated"),
    ),
    # Qwen3 style: the chat template already opened <think>, so the output starts inside it.
    (
        "qwen_starts_inside_think",
        "The Sun's closest planet is Mercury.\n</think>\n\n<answer>Mercury</answer>\n<confidence>92%</confidence>",
        "Mercury",
        0.92,
        (),
    ),
    (
        "qwen_empty_think",
        "<think>\n\n</think>\n\n<answer>Au</answer>\n<confidence>99%</confidence>",
        "Au",
        0.99,
        (),
    ),
    (
        "qwen_answer_line",
        "reasoning done\n</think>\nAnswer: carbon dioxide\nConfidence: 0.8",
        "carbon dioxide",
        0.8,
        (),
    ),
    # No think tags: reasoning first, then tags (the confidence_tags prompt on a non-reasoning model).
    (
        "plain_tags",
        "17 plus 25 is 42.\n<answer>42</answer>\n<confidence>90%</confidence>",
        "42",
        0.9,
        (),
    ),
    (
        "plain_tags_conf_first",
        "Spiders have eight legs.\n<confidence>95%</confidence>\n<answer>8</answer>",
        "8",
        0.95,
        (),
    ),
    ("plain_prob_one", "<answer>yes</answer><confidence>1</confidence>", "yes", 1.0, ()),
    ("plain_prob_zero", "<answer>no</answer><confidence>0</confidence>", "no", 0.0, ()),
    ("plain_percent_one", "<answer>no</answer><confidence>1%</confidence>", "no", 0.01, ()),
    (
        "plain_fraction_tag",
        "<answer>Shakespeare</answer><confidence>85/100</confidence>",
        "Shakespeare",
        0.85,
        (),
    ),
    (
        "plain_fraction_ten",
        "<answer>Shakespeare</answer><confidence>8/10</confidence>",
        "Shakespeare",
        0.8,
        (),
    ),
    (
        "plain_words_tag",
        "<answer>Paris</answer><confidence>very likely</confidence>",
        "Paris",
        0.85,
        (),
    ),
    ("plain_level_tag", "<answer>Paris</answer><confidence>high</confidence>", "Paris", 0.8, ()),
    ("plain_percent_spaced", "<answer> 48 </answer>\n<confidence> 75 % </confidence>", "48", 0.75, ()),
    (
        "plain_not_attempted",
        "<answer>I don't know</answer>\n<confidence>5%</confidence>",
        "I don't know",
        0.05,
        ("not_attempted",),
    ),
    (
        "plain_not_attempted_curly",
        "<answer>I don’t know.</answer><confidence>10%</confidence>",
        "I don’t know",
        0.1,
        ("not_attempted",),
    ),
    (
        "plain_unknown_no_conf",
        "<answer>Unknown</answer>",
        "Unknown",
        None,
        ("no_confidence", "not_attempted"),
    ),
    (
        "plain_unclosed_answer",
        "The answer is below.\n<answer>Jupiter\n<confidence>70%</confidence>",
        "Jupiter",
        0.7,
        (),
    ),
    (
        "plain_unclosed_answer_at_end",
        "I think it is\n<answer>Jupiter",
        "Jupiter",
        None,
        ("no_confidence",),
    ),
    (
        "plain_case_and_spaces",
        "< ANSWER >Oslo</ Answer >\n<Confidence>80%</CONFIDENCE>",
        "Oslo",
        0.8,
        (),
    ),
    # Several confidences: the last tagged one wins, with ambiguous_confidence when they differ.
    (
        "two_tags_differ",
        "<answer>5</answer><confidence>90%</confidence>\nActually <confidence>60%</confidence>",
        "5",
        0.6,
        ("ambiguous_confidence",),
    ),
    (
        "two_tags_same_value",
        "<answer>5</answer><confidence>90%</confidence> i.e. <confidence>0.9</confidence>",
        "5",
        0.9,
        (),
    ),
    (
        "tag_and_label_differ",
        "<answer>5</answer><confidence>90%</confidence>\nConfidence: 0.6",
        "5",
        0.9,
        ("ambiguous_confidence",),
    ),
    (
        "hedge_word_not_ambiguous",
        "It is likely Paris.\n<answer>Paris</answer><confidence>80%</confidence>",
        "Paris",
        0.8,
        (),
    ),
    (
        "out_of_range_high",
        "<answer>5</answer><confidence>250%</confidence>",
        "5",
        1.0,
        ("confidence_out_of_range",),
    ),
    (
        "out_of_range_negative",
        "<answer>5</answer><confidence>-5</confidence>",
        "5",
        0.0,
        ("confidence_out_of_range",),
    ),
    # SmolLM-style sloppy outputs.
    (
        "smol_sentence_percent",
        "The capital of France is Paris. I am 90% confident.",
        "The capital of France is Paris",
        0.9,
        (),
    ),
    ("smol_label_lowercase", "answer: 48\nconfidence: 0.85", "48", 0.85, ()),
    ("smol_bold_answer", "**Answer:** Mercury\n**Confidence:** 95%", "Mercury", 0.95, ()),
    ("smol_confidence_level_word", "Answer: yes\nConfidence level: high", "yes", 0.8, ()),
    ("smol_fraction_free", "Answer: 42\nI would rate this 85/100.", "42", 0.85, ()),
    (
        "smol_linguistic",
        "Tom is an animal, so the answer is yes. This is almost certain.",
        "yes",
        0.95,
        (),
    ),
    (
        "smol_very_unlikely_not_likely",
        "Answer: no\nIt is very unlikely that 15 is prime.",
        "no",
        0.1,
        (),
    ),
    (
        "smol_answer_is",
        "We multiply 60 by 3. The answer is 180 km.\nMy confidence is 80%.",
        "180 km",
        0.8,
        (),
    ),
    ("smol_paren_percent", "Answer: Paris (confidence 90%)", "Paris", 0.9, ()),
    (
        "smol_answer_is_correct",
        "17 + 25 = 42\nThe answer is correct.",
        "17 + 25 = 42",
        None,
        ("no_confidence",),
    ),
    (
        "smol_answer_only",
        "The capital of Japan is Tokyo.\n<answer>Tokyo</answer>",
        "Tokyo",
        None,
        ("no_confidence",),
    ),
    ("smol_not_sure_loop", "I'm not sure.\n\n" * 40, None, 0.5, ("no_answer",)),
    ("smol_negated_percent", "Answer: no\nI'm not 100% certain.", "no", None, ("no_confidence",)),
    (
        "smol_answer_is_twice",
        "The answer is 80%. I'm 99.9% sure that the answer is 80.",
        "80",
        0.999,
        (),
    ),
    (
        "smol_nines_until_cut_off",
        "Au is gold. <answer>Au</answer> <confidence>99." + "9" * 300,
        "Au",
        1.0,
        (),
    ),
    (
        "smol_tag_answer_no_conf",
        "A spider has 8 legs. <answer>12 legs</answer>",
        "12 legs",
        None,
        ("no_confidence",),
    ),
    (
        "smol_template_echo",
        "<answer>your answer</answer>\n<confidence>NN%</confidence>",
        None,
        None,
        ("no_confidence", "no_answer"),
    ),
    (
        "smol_rambling",
        "Photosynthesis is the process by which plants make food. " * 10,
        None,
        None,
        ("no_confidence", "no_answer"),
    ),
    ("smol_short_no_conf", "Carbon dioxide", "Carbon dioxide", None, ("no_confidence",)),
    ("empty", "", None, None, ("no_confidence", "no_answer")),
    # Adversarial text.
    (
        "html_inside_answer",
        "<answer><b>Paris</b></answer><confidence>80%</confidence>",
        "Paris",
        0.8,
        (),
    ),
    ("nul_bytes", "<answer>4\x002</answer>\x00<confidence>9\x000%</confidence>", "42", 0.9, ()),
    ("nested_answer_conf", "<answer>5<confidence>70%</confidence></answer>", "5", 0.7, ()),
    (
        "script_tag",
        "<script>alert(1)</script><answer>x</answer><confidence>50%</confidence>",
        "x",
        0.5,
        (),
    ),
    (
        "closing_think_only_garbage",
        "</think></think></think>",
        None,
        None,
        ("no_confidence", "no_answer"),
    ),
]


@pytest.mark.parametrize("text, answer, confidence, issues", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_table(text, answer, confidence, issues):
    parsed = parse_output(text)
    assert parsed.answer == answer
    assert parsed.raw_confidence == (None if confidence is None else pytest.approx(confidence))
    assert parsed.issues == issues
    assert parsed.not_attempted == ("not_attempted" in issues)


@pytest.mark.parametrize(
    "text, reasoning, final",
    [
        ("<think>a</think>b", "a", "b"),
        ("a</think>b", "a", "b"),  # output starts inside a think block
        ("<think>a", "a", ""),  # truncated
        ("reason\n<answer>x</answer>", "reason", "<answer>x</answer>"),
        ("just text", "", "just text"),
        ("<THINK> a </Think>  b ", "a", "b"),
    ],
)
def test_split_reasoning(text, reasoning, final):
    assert split_reasoning(text) == (reasoning, final)


@pytest.mark.parametrize(
    "final, value, issues",
    [
        ("<confidence>85%</confidence>", 0.85, ()),
        ("confidence: 0.85", 0.85, ()),
        ("I am 90 percent sure", 0.9, ()),
        ("<confidence>NN%</confidence>", None, ("no_confidence",)),
        ("Confidence: 1000000000000000000000000%", 1.0, ("confidence_out_of_range",)),
    ],
)
def test_extract_confidence(final, value, issues):
    assert extract_confidence(final) == (value, issues)


@pytest.mark.parametrize("phrase, value", sorted(LINGUISTIC_CONFIDENCE.items()))
def test_every_linguistic_phrase_maps_to_its_value(phrase, value):
    # Longest match first: "probably not" must not read as "probably", "very unlikely" not as "likely".
    assert extract_confidence(f"Answer: x. This is {phrase}.")[0] == value
    assert 0.0 <= value <= 1.0


def test_extract_answer_ignores_placeholders_and_prefers_last_tag():
    assert extract_answer("<answer>...</answer> then <answer>7</answer>") == "7"
    assert extract_answer("<answer>7</answer> then <answer>your answer</answer>") == "7"


@pytest.mark.parametrize(
    "text",
    [
        "<answer>" * 25_000,
        "<think>" * 25_000,
        "</think>" * 25_000,
        "<confidence>" * 15_000 + "</answer>" * 10_000,
        "confidence: " * 20_000,
        "1" * 200_000,
        "1." * 100_000,
        "9%" * 100_000,
        "Answer: " * 25_000,
        "<a" * 100_000,
        "answer is " * 20_000,
        "very " * 40_000 + "likely",
        "<answer>x" + " ." * 100_000,
        "<answer>x" + "* " * 100_000 + "</answer>",
        "confidence" + " " * 200_000 + "1",
    ],
    ids=lambda t: repr(t[:16]),
)
def test_huge_adversarial_inputs_parse(text):
    # Quadratic regexes would hang here; the parser must stay linear on 200k characters.
    parsed = parse_output(text)
    assert parsed.raw_confidence is None or 0.0 <= parsed.raw_confidence <= 1.0


def test_huge_reasoning_with_tagged_final():
    text = "<think>" + "step " * 40_000 + "</think><answer>12</answer><confidence>70%</confidence>"
    parsed = parse_output(text)
    assert (parsed.answer, parsed.raw_confidence, parsed.issues) == ("12", 0.7, ())


_tag_soup = st.lists(
    st.sampled_from(
        [
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            "<confidence>",
            "</confidence>",
            "Answer:",
            "Confidence:",
            "%",
            "0.",
            "85",
            "/100",
            "likely",
            "\n",
            " ",
            "\x00",
            "I don't know",
            "-",
        ]
    ),
    max_size=30,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), _tag_soup))
def test_parse_output_never_raises_and_confidence_is_a_probability(text):
    parsed = parse_output(text)
    assert isinstance(parsed, ParsedOutput)
    assert parsed.raw_confidence is None or 0.0 <= parsed.raw_confidence <= 1.0
    assert set(parsed.issues) <= set(REVIEW_REASONS)
    assert ("no_confidence" in parsed.issues) == (parsed.raw_confidence is None)
    assert ("no_answer" in parsed.issues) == (parsed.answer is None)
    assert parsed.answer is None or (parsed.answer and parsed.answer == parsed.answer.strip())


# Questions where the default model's greedy output states an answer and a confidence (measured).
REAL_QUESTIONS = ["What is 12 times 4?", "What is the capital of Japan?"]


@pytest.mark.slow
def test_real_default_model_output_parses():
    from assistant.answering.prompts import load_prompt
    from assistant.core.config import ModelConfig
    from assistant.models.backend import GenerationOptions
    from assistant.models.registry import load_backend

    backend = load_backend(ModelConfig())
    prompt = load_prompt("confidence_tags")
    parsed_all = []
    for question in REAL_QUESTIONS:
        text, _ = backend.stream(prompt.messages(question), GenerationOptions(max_new_tokens=80)).drain()
        parsed = parse_output(text)
        assert parsed.answer, f"no answer parsed from {text!r}"
        assert parsed.raw_confidence is None or 0.0 <= parsed.raw_confidence <= 1.0
        parsed_all.append(parsed)
    # Greedy SmolLM2 states a tagged confidence for both (~30 tokens each, both backends); allow one miss.
    assert any(p.ok for p in parsed_all), parsed_all


@pytest.mark.parametrize("answer, declined", [
    ("I don't know the answer", True), ("I cannot answer that", True), ("Not enough information", True),
    ("N/A", True), ("I am not certain", True), ("I don't know", True), ("idk", True), ("no idea", True),
    ("I don't know, maybe Paris", False), ("Paris", False), ("Na", False),
])
def test_the_live_reply_and_grading_agree_on_what_declining_is(answer, declined):
    """One detector: an answer grading leaves out of every fit is one the app does not calibrate either."""
    from calibration.labelling.grading import is_not_attempted

    assert parse_output(f"<answer>{answer}</answer> <confidence>50%</confidence>").not_attempted is declined
    assert is_not_attempted(answer) is declined
