"""Tests for the backend protocol, FakeBackend, model lookup and both real backends.

Fast tests cover the fake, `resolve_model`, `choose_backend` and `load_backend`
errors. Tests marked `slow` run the real default model (SmolLM2-135M GGUF)
through transformers and, when llama-cpp-python is installed, through llama.cpp.
"""

from __future__ import annotations

import copy
import threading
import warnings
from pathlib import Path

import pytest

from assistant.core.config import ModelConfig
from assistant.core.errors import ModelLoadError, ModelNotFoundError
from assistant.models import registry as loading
from assistant.models.backend import Backend, Capabilities, GenerationOptions, StopText
from assistant.models.fake import FakeBackend
from assistant.models.registry import choose_backend, load_backend
from assistant.models.sources import ModelSource, default_model_path, read_chat_template, resolve_model
from tests.conftest import drain

DEFAULT_STEM = "SmolLM2-135M-Instruct.Q4_1"
QUESTION = [{"role": "user", "content": "What is 17 + 25? Answer with a short reasoning."}]




# ---- stop texts ------------------------------------------------------------------------------


@pytest.mark.parametrize("pieces, stops_at", [
    (["<answer>5</answer> <confidence>9", "0%</conf", "idence>", " more"], 2),  # split across three pieces
    (["<answer>5</answer> <confidence>90%</confidence>"], 0),
    (["<think>I will write <confidence>50%</confidence>", " then</th", "ink> <confidence>7", "0%</confidence>"], 3),
    (["<think>a</think><think>b <confidence>1%</confidence>", "</think><confidence>2%</confidence>"], 1),
    (["<think>I am 90% sure. <confidence>90%</confidence></think>", " <answer>Paris</answer>"], None),  # one piece
    (["no tag at all", " here"], None),
])
def test_a_stop_text_is_found_across_pieces_and_never_inside_a_think_block(pieces, stops_at):
    stop = StopText(("</confidence>",))
    assert next((i for i, piece in enumerate(pieces) if stop.completed_by(piece)), None) == stops_at


def test_no_stop_texts_never_stop():
    assert not StopText(()).completed_by("</confidence>")


def test_the_fake_ends_its_output_with_the_piece_that_completes_a_stop_text():
    fake = FakeBackend().enqueue("<answer>5</answer> <confidence>90%</confidence> and then more words")
    pieces, stats = drain(fake.stream(QUESTION, GenerationOptions(stop=("</confidence>",))))
    assert "".join(pieces) == "<answer>5</answer> <confidence>90%</confidence>"
    assert (stats.tokens, stats.finish_reason) == (2, "stop")


# ---- chat templates ---------------------------------------------------------------------------


@pytest.mark.parametrize("text, error", [
    (None, "cannot read the chat template"),
    ("just text", "is not a chat template"),
])
def test_a_chat_template_that_cannot_be_used_is_one_clear_error(tmp_path, text, error):
    path = tmp_path / "template.jinja"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ModelLoadError, match=error):
        read_chat_template(path)
    assert read_chat_template(None) is None


# ---- FakeBackend ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, max_new, pieces, reason",
    [
        ("a b c", 10, ["a", " b", " c"], "stop"),
        ("a b c", 3, ["a", " b", " c"], "stop"),
        ("a b c d", 2, ["a", " b"], "length"),
        ("one", 5, ["one"], "stop"),
    ],
)
def test_fake_streams_words(text, max_new, pieces, reason):
    fake = FakeBackend().enqueue(text)
    got, stats = drain(fake.stream(QUESTION, GenerationOptions(max_new_tokens=max_new)))
    assert got == pieces
    assert (stats.tokens, stats.finish_reason) == (len(pieces), reason)


def test_fake_queue_history_and_default():
    fake = FakeBackend(default_output="fallback").enqueue("first", "second")
    outputs = [fake.stream([{"role": "user", "content": q}]).drain()[0] for q in "xyz"]
    assert outputs == ["first", "second", "fallback"]
    assert [h[0]["content"] for h in fake.history] == ["x", "y", "z"]
    assert isinstance(fake, Backend)


def test_fake_without_output_raises():
    with pytest.raises(AssertionError, match="no output enqueued"):
        FakeBackend().stream(QUESTION).drain()


def test_fake_cancel_stops():
    cancel = threading.Event()
    gen = FakeBackend().enqueue("a b c d").stream(QUESTION, cancel=cancel)
    assert next(gen) == "a"
    cancel.set()
    pieces, stats = drain(gen)
    assert pieces == []
    assert (stats.tokens, stats.finish_reason) == (1, "cancelled")


# ---- Stream and Capabilities ----------------------------------------------------------------


def test_a_stream_gives_its_pieces_then_keeps_its_stats():
    stream = FakeBackend().enqueue("a b c d").stream(QUESTION, GenerationOptions(max_new_tokens=3))
    assert next(stream) == "a" and not stream.done
    with pytest.raises(RuntimeError, match="not been read to its end"):
        _ = stream.result
    assert list(stream) == [" b", " c"] and stream.done
    assert (stream.result.tokens, stream.result.finish_reason) == (3, "length")
    assert list(stream) == [] and stream.drain() == ("a b c", stream.result)  # read once, kept


def test_drain_reads_the_rest_and_nothing_runs_before_the_first_piece():
    fake = FakeBackend().enqueue("one two")
    stream = fake.stream(QUESTION)
    assert fake.history == []  # the model is not asked until the stream is read
    text, stats = stream.drain()
    assert (text, stats.tokens, stats.finish_reason) == ("one two", 2, "stop") and len(fake.history) == 1


def test_a_closed_stream_has_no_result():
    stream = FakeBackend().enqueue("a b c").stream(QUESTION)
    next(stream)
    stream.close()
    assert list(stream) == [] and not stream.done
    with pytest.raises(RuntimeError, match="closed before its end"):
        _ = stream.result


@pytest.mark.parametrize("fields, error", [
    ({"local": True, "continuous_batching": True}, "also batches"),
    ({"local": False, "max_concurrency": 0}, "at least 1, not 0"),
    ({"local": False, "max_concurrency": True}, "not True"),
])
def test_capabilities_that_contradict_themselves_are_refused(fields, error):
    with pytest.raises(ValueError, match=error):
        Capabilities(**fields)


def test_every_backend_class_declares_its_capabilities():
    from assistant.models.huggingface import TransformersBackend

    assert TransformersBackend.capabilities == Capabilities(local=True, batching=True, counts_tokens=True,
                                                            logprobs=True)
    assert FakeBackend().capabilities == Capabilities(local=True, counts_tokens=True)


# ---- resolving the model --------------------------------------------------------------------


def test_resolve_default_model():
    source = resolve_model(None)
    assert (source.kind, source.model_id) == ("gguf", DEFAULT_STEM)
    assert source.path == default_model_path()


def test_resolve_folder_with_one_gguf(tmp_path):
    (tmp_path / "m.gguf").symlink_to(default_model_path())
    source = resolve_model(str(tmp_path))
    assert (source.kind, source.model_id) == ("gguf", "m")


def test_resolve_saved_folder(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    source = resolve_model(str(folder))
    assert (source.kind, source.model_id, source.location) == ("folder", "my-model", str(folder))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("{tmp}/missing.gguf", "no model file or folder at"),
        ("./no/such/folder", "no model file or folder at"),
        ("{tmp}/notes.txt", "is a file but not a .gguf model"),
        ("{tmp}", "holds no config.json and 0 .gguf files"),
        ("nobody/no-such-model-xyz", "hf download nobody/no-such-model-xyz"),
        ("not a valid id", "neither a local file or folder nor in the local Hugging Face cache"),
    ],
)
def test_resolve_missing_model(tmp_path, spec, message):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelNotFoundError, match=message):
        resolve_model(spec.format(tmp=tmp_path))


# ---- choosing and loading a backend ---------------------------------------------------------


@pytest.mark.parametrize(
    "backend, device, kind, llama, cuda, expected",
    [
        ("auto", "auto", "gguf", True, False, "llamacpp"),
        ("auto", "cpu", "gguf", True, True, "llamacpp"),
        ("auto", "auto", "gguf", True, True, "transformers"),
        ("auto", "cuda", "gguf", True, True, "transformers"),
        ("auto", "auto", "gguf", False, False, "transformers"),
        ("auto", "auto", "folder", True, False, "transformers"),
        ("transformers", "cpu", "gguf", True, False, "transformers"),
        ("llamacpp", "auto", "gguf", True, True, "llamacpp"),
        ("LlamaCpp", "auto", "gguf", True, False, "llamacpp"),
        ("llamacpp", "cpu", "folder", True, False, ModelLoadError("runs .gguf files only")),
        ("llamacpp", "cpu", "gguf", False, False, ModelLoadError(r"pip install llama-cpp-python")),
        ("vllm", "cpu", "gguf", True, False, ModelLoadError("unknown backend 'vllm': use one of auto, trans")),
    ],
)
def test_choose_backend(monkeypatch, backend, device, kind, llama, cuda, expected):
    monkeypatch.setattr(loading, "llama_cpp_installed", lambda: llama)
    monkeypatch.setattr(loading, "_cuda_available", lambda: cuda)
    config = ModelConfig(backend=backend, device=device)
    source = ModelSource(kind, "/models/x", "x")
    if isinstance(expected, Exception):
        with pytest.raises(type(expected), match=str(expected)):
            choose_backend(config, source)
    else:
        assert choose_backend(config, source) == expected


@pytest.mark.parametrize(
    "config, error, message",
    [
        (ModelConfig(backend="onnx"), ModelLoadError, "unknown backend 'onnx': use one of auto, transformers, llamacpp"),
        (ModelConfig(backend="onnx", model="/nope.gguf"), ModelLoadError, "unknown backend 'onnx'"),
        (ModelConfig(model="/no/such/model.gguf"), ModelNotFoundError, "no model file or folder at /no/such/model.gguf"),
        (ModelConfig(model="nobody/absent"), ModelNotFoundError, "nor in the local Hugging Face cache"),
        (ModelConfig(backend="transformers", device="cpu", dtype="int3"), ModelLoadError, "unknown dtype 'int3'"),
    ],
)
def test_load_backend_errors(config, error, message):
    with pytest.raises(error, match=message):
        load_backend(config)


@pytest.mark.parametrize("backend", ["transformers", "llamacpp"])
def test_corrupt_gguf_is_a_load_error(tmp_path, backend):
    if backend == "llamacpp" and not loading.llama_cpp_installed():
        pytest.skip("llama-cpp-python is not installed")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"garbage" * 100)
    with pytest.raises(ModelLoadError, match=f"load .*{bad}"):
        load_backend(ModelConfig(model=str(bad), backend=backend, cache_dir=tmp_path / "cache"))


def test_load_backend_llamacpp_for_folder(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="runs .gguf files only.*use --backend transformers"):
        load_backend(ModelConfig(model=str(tmp_path), backend="llamacpp"))


# ---- the converted-model cache --------------------------------------------------------------


def test_cache_folder_name_tracks_file(tmp_path):
    from assistant.models.huggingface import gguf_cache_folder

    gguf = tmp_path / "tiny.Q8_0.gguf"
    gguf.write_bytes(b"12345")
    first = gguf_cache_folder(tmp_path / "cache", gguf)
    assert first.parent == tmp_path / "cache" and first.name.startswith("tiny.Q8_0-")
    assert gguf_cache_folder(tmp_path / "cache", gguf) == first
    assert gguf_cache_folder(tmp_path / "cache", gguf, "bfloat16") != first
    gguf.write_bytes(b"123456")
    assert gguf_cache_folder(tmp_path / "cache", gguf) != first


class _HalfSavingModel:
    """save_pretrained writes one file, then fails (a full disk)."""

    def save_pretrained(self, folder):
        (Path(folder) / "model.safetensors").write_bytes(b"partial")
        raise OSError("No space left on device")


def test_failed_cache_save_leaves_nothing(tmp_path):
    from assistant.models.huggingface import save_model_atomically

    target = tmp_path / "cache" / "m-abc"
    with pytest.warns(UserWarning, match="No space left on device"):
        save_model_atomically(_HalfSavingModel(), None, target)
    assert list((tmp_path / "cache").iterdir()) == []


# ---- real default model ---------------------------------------------------------------------


# One thread: on a 2-core machine shared with other jobs, 2 spinning threads run several times slower.
THREADS = 1


@pytest.fixture(scope="module")
def torch_threads_restored():
    """Give back torch's process-wide thread count after the module (the backend sets it)."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def transformers_backend(torch_threads_restored):
    # The default cache folder: the dense copy of the GGUF made here serves the later tests that load it too.
    from assistant.models.huggingface import TransformersBackend

    return TransformersBackend(ModelConfig(threads=THREADS))


@pytest.fixture(scope="module")
def llamacpp_backend():
    if not loading.llama_cpp_installed():
        pytest.skip("llama-cpp-python is not installed (`pip install llama-cpp-python` or `make install`)")
    from assistant.models.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(ModelConfig(threads=THREADS))
    yield backend
    backend.close()


@pytest.fixture(params=["transformers_backend", "llamacpp_backend"])
def real(request):
    return request.getfixturevalue(request.param)


OPTS = GenerationOptions(max_new_tokens=40)


@pytest.mark.slow
def test_real_stream_greedy_and_deterministic(real):
    pieces, stats = drain(real.stream(QUESTION, OPTS))
    again, _ = real.stream(QUESTION, OPTS).drain()
    assert real.model_id == DEFAULT_STEM
    assert len(pieces) > 3 and "".join(pieces) == again
    assert 0 < stats.tokens <= 40 and stats.finish_reason in ("stop", "length")
    assert stats.first_token_seconds is not None and stats.seconds >= stats.first_token_seconds


@pytest.mark.slow
def test_real_backends_return_token_evidence_and_probe(real):
    """Both backends: log probabilities of every generated token, digit distributions, and the probe."""
    text, stats = real.stream(QUESTION, GenerationOptions(max_new_tokens=40, probe="<confidence>")).drain()
    ev = stats.evidence
    assert "".join(ev.pieces) == text and len(ev.logprobs) == len(ev.pieces) == stats.tokens
    assert all(lp <= 1e-4 for lp in ev.logprobs) and sum(ev.logprobs) < 0
    for position, dist in ev.numbers.items():
        assert ev.pieces[position].strip().isdigit() and 0 < sum(dist.values()) <= 1 + 1e-4
    if "<confidence>" not in text:
        digits, first = ev.probe
        assert 0 < sum(first.values()) <= 1 + 1e-4 and (digits == "" or digits.isdigit())


@pytest.mark.slow
def test_real_sampling_is_seeded(real):
    outputs = [
        real.stream(QUESTION, GenerationOptions(max_new_tokens=12, temperature=1.0, seed=seed)).drain()
        for seed in (7, 7)
    ]
    assert outputs[0][0] == outputs[1][0] and outputs[0][1].tokens > 0


@pytest.mark.slow
def test_real_length_limit(real):
    text, stats = real.stream(QUESTION, GenerationOptions(max_new_tokens=5)).drain()
    assert (stats.tokens, stats.finish_reason) == (5, "length")
    assert text


@pytest.mark.slow
def test_real_backends_end_with_the_token_that_completes_a_stop_text(real):
    full, _ = real.stream(QUESTION, OPTS).drain()
    stop = full.split()[2]  # the third word of the greedy answer
    text, stats = real.stream(QUESTION, GenerationOptions(max_new_tokens=40, stop=(stop,))).drain()
    assert full.startswith(text) and len(text) < len(full) and stats.finish_reason == "stop"
    before_last_token = "".join(stats.evidence.pieces[:-1])
    assert stop in text and stop not in before_last_token
    # A batch ends a row with the token that completes the stop text too (a token is a few characters).
    [(row, row_stats)] = real.generate_batch([QUESTION], GenerationOptions(max_new_tokens=40, stop=(stop,)))
    assert stop in row and row_stats.finish_reason == "stop" and len(row) - row.index(stop) - len(stop) < 12


@pytest.mark.slow
def test_a_base_model_is_given_a_chat_template_from_a_file(llamacpp_backend, tmp_path):
    """The same GGUF through a template file: what the model reads is that file's layout."""
    from assistant.models.llamacpp import LlamaCppBackend

    template = tmp_path / "plain.jinja"
    template.write_text("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:")
    plain = LlamaCppBackend(ModelConfig(threads=THREADS, chat_template=template))
    try:
        read = plain.count_prompt(QUESTION)
        assert read == plain.count_tokens("user: " + QUESTION[0]["content"] + "\nassistant:")
        assert read != llamacpp_backend.count_prompt(QUESTION)
        assert plain.stream(QUESTION, GenerationOptions(max_new_tokens=8)).drain()[1].tokens > 0
    finally:
        plain.close()


@pytest.mark.slow
def test_real_cancel(real):
    cancel = threading.Event()
    gen = real.stream(QUESTION, GenerationOptions(max_new_tokens=40), cancel)
    next(gen)
    cancel.set()
    _, stats = drain(gen)
    assert stats.finish_reason == "cancelled" and stats.tokens < 40
    already = threading.Event()
    already.set()
    _, stats = real.stream(QUESTION, OPTS, already).drain()
    assert stats.finish_reason == "cancelled" and stats.tokens <= 1


@pytest.mark.slow
def test_real_abandoned_stream_releases_lock(real):
    gen = real.stream(QUESTION, OPTS)
    next(gen)
    gen.close()
    assert real._lock.acquire(timeout=30), "an abandoned stream kept the model"  # llama.cpp: at its next step
    real._lock.release()
    assert real.stream(QUESTION, GenerationOptions(max_new_tokens=3)).drain()[1].tokens == 3


@pytest.mark.slow
def test_transformers_concurrent_streams_are_serialised(transformers_backend):
    """One at a time, so each gets exactly its answer alone (llama.cpp batches them: test_llamacpp_batch)."""
    questions = [QUESTION, [{"role": "user", "content": "Name a planet."}]]
    opts = GenerationOptions(max_new_tokens=20)
    sequential = [transformers_backend.stream(q, opts).drain()[0] for q in questions]
    results = [None, None]

    def ask(i):
        results[i] = transformers_backend.stream(questions[i], opts).drain()[0]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == sequential


@pytest.mark.slow
def test_real_batch_matches_stream(real):
    assert real.capabilities.batching
    streamed, stats = real.stream(QUESTION, OPTS).drain()
    [(batched, batch_stats)] = real.generate_batch([QUESTION], OPTS)
    assert (batched, batch_stats.tokens, batch_stats.finish_reason) == (streamed, stats.tokens, stats.finish_reason)
    # Rows of a batch may differ in the last float bits from unbatched runs, so only the shape is checked.
    batch = [QUESTION, [{"role": "user", "content": "Hi"}], [{"role": "user", "content": "Name a planet."}]]
    results = real.generate_batch(batch, GenerationOptions(max_new_tokens=10))
    assert len(results) == 3
    assert all(text and 0 < s.tokens <= 10 and s.finish_reason in ("stop", "length") for text, s in results)
    assert real.generate_batch([], OPTS) == []


@pytest.mark.slow
def test_llamacpp_reused_prefix_keeps_greedy_output(llamacpp_backend):
    """The cached prompt prefix is shared by the next request without changing what it generates."""
    first = [QUESTION, [{"role": "user", "content": "Name a planet."}]]
    opts = GenerationOptions(max_new_tokens=24)
    fresh = []
    for messages in first:
        llamacpp_backend._drop_prefix()  # the next prompt is prefilled whole
        fresh.append(llamacpp_backend.stream(messages, opts).drain()[0])
    reused = [llamacpp_backend.stream(m, opts).drain()[0] for m in [*first, *first]]
    assert reused == fresh + fresh


@pytest.mark.slow
def test_llamacpp_greedy_answers_equal_raw_llama_cpp(llamacpp_backend):
    """The same text as llama-cpp-python's own `Llama.generate` on the shipped prompt (prefix reused or not)."""
    from assistant.answering.prompts import load_prompt
    from assistant.models.llamacpp import N_CTX
    from bench.decode import RawLlamaCpp

    prompt = load_prompt("confidence_tags")
    # The first two came out differently when the last prompt token was evaluated on its own.
    questions = [
        "Tom has 3 boxes with 12 pencils each. He gives away 7 pencils. How many are left?",
        "What year did the Berlin Wall fall?",
        "Who wrote the play Hamlet?",
    ]
    raw = RawLlamaCpp(default_model_path(), THREADS, N_CTX)
    try:
        expected = [raw.run(64, prompt.messages(q))["text"] for q in questions]
    finally:
        raw.close()
    opts = GenerationOptions(max_new_tokens=64)
    llamacpp_backend._drop_prefix()
    assert [llamacpp_backend.stream(prompt.messages(q), opts).drain()[0] for q in questions] == expected


@pytest.mark.slow
def test_llamacpp_batch_larger_than_the_cache_runs_in_turns(llamacpp_backend, monkeypatch):
    """More conversations than sequences, then too few cache cells for all: they queue and all finish."""
    from assistant.models import llamacpp as module

    widths = []  # sequences evaluated per decode step
    step = llamacpp_backend._step
    monkeypatch.setattr(llamacpp_backend, "_step", lambda running: widths.append(len(running)) or step(running))
    questions = [[{"role": "user", "content": f"What is {n} plus {n}?"}] for n in range(module.MAX_SEQUENCES + 3)]
    opts = GenerationOptions(max_new_tokens=6)
    results = llamacpp_backend.generate_batch(questions, opts)
    assert len(results) == len(questions) and all(s.tokens > 0 for _, s in results)
    assert max(widths) == module.MAX_SEQUENCES
    widths.clear()
    prompt = len(llamacpp_backend._prompt_tokens(questions[0]))
    monkeypatch.setattr(module, "_KV_CELLS", prompt + 3 * 6 + 2)  # the shared prefix and about three replies
    tight = llamacpp_backend.generate_batch(questions[:6], opts)
    assert len(tight) == 6 and all(s.tokens > 0 for _, s in tight)
    assert 1 <= max(widths) <= 3


@pytest.mark.slow
def test_real_think_markers_survive_decoding(transformers_backend):
    from assistant.models.huggingface import hidden_token_ids

    tok = copy.deepcopy(transformers_backend.tokenizer)
    tok.add_special_tokens({"additional_special_tokens": ["<think>", "</think>"]})
    ids = tok.encode("<think>17+25</think>42", add_special_tokens=False) + [tok.eos_token_id]
    hidden = hidden_token_ids(tok)
    assert tok.convert_tokens_to_ids("<think>") not in hidden and tok.eos_token_id in hidden
    text = tok.decode([i for i in ids if i not in hidden], skip_special_tokens=False)
    assert text == "<think>17+25</think>42"


@pytest.mark.slow
def test_gguf_cache_created_then_used(tmp_path, torch_threads_restored):
    from assistant.models.huggingface import TransformersBackend

    config = ModelConfig(cache_dir=tmp_path, threads=THREADS)
    first = TransformersBackend(config)
    [folder] = [p for p in tmp_path.iterdir()]
    assert folder.name.startswith(DEFAULT_STEM + "-") and (folder / "config.json").is_file()
    assert first.loaded_from == str(default_model_path())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        second = TransformersBackend(config)
    assert not [w for w in caught if "cache" in str(w.message)]  # a readable cache is used as is
    assert second.loaded_from == str(folder) and second.model_id == first.model_id == DEFAULT_STEM
    opts = GenerationOptions(max_new_tokens=8)
    assert second.stream(QUESTION, opts).drain()[0] == first.stream(QUESTION, opts).drain()[0]


@pytest.mark.slow
def test_llamacpp_samples_of_one_question_differ_row_by_row_and_repeat(llamacpp_backend):
    """Self-consistency's samples: one batch of the same conversation draws a different answer per row (seed
    + row) and the same call draws the same again. Then the chat's path: k
    concurrent streams through the batcher, and their agreement."""
    from assistant.answering.answer import answer_batch, generate
    from assistant.answering.consistency import sample_answers, with_agreement
    from assistant.answering.prompts import load_prompt

    prompt = load_prompt("confidence_tags")
    messages = prompt.messages("Name a colour of the rainbow.")
    sampled = GenerationOptions(max_new_tokens=24, temperature=0.9, seed=5)
    texts = [text for text, _ in generate(llamacpp_backend, [messages] * 4, sampled)]
    assert len(set(texts)) > 1
    assert [text for text, _ in generate(llamacpp_backend, [messages] * 4, sampled)] == texts
    drawn = sample_answers(llamacpp_backend, prompt, [messages], 3, GenerationOptions(max_new_tokens=48))
    assert len(drawn.answers[0]) == 3 and drawn.tokens > 0
    short = GenerationOptions(max_new_tokens=48)
    [answer] = answer_batch(llamacpp_backend, prompt, ["What is 2 plus 2?"], short)
    agreed = with_agreement(llamacpp_backend, prompt, answer, prompt.messages("What is 2 plus 2?"), 2, short)
    assert agreed.signals.agreement in (0.0, 0.5, 1.0)


@pytest.mark.slow
def test_model_id_same_for_both_backends(transformers_backend, llamacpp_backend):
    assert transformers_backend.model_id == llamacpp_backend.model_id == DEFAULT_STEM


@pytest.mark.slow
def test_both_real_backends_count_a_questions_tokens_alike(real):
    """The chat's question limit is in the model's tokens: the two backends of one GGUF agree."""
    short, long = real.count_tokens("What is 2 + 2?"), real.count_tokens("What is 2 + 2? " * 200)
    assert 3 <= short <= 12 and 150 * short <= long <= 210 * short
