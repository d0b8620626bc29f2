"""llama.cpp's native library: build flags, the self-test before loading, and the built library itself."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.core.errors import ModelLoadError
from assistant.models import native
from tests.conftest import ROOT

needs_llama = pytest.mark.skipif(native.llama_cpp_library_dir() is None, reason="llama-cpp-python not installed")

# /proc/cpuinfo flags of the machines this project has met (trimmed to the instruction sets).
SAPPHIRE_RAPIDS = ("sse4_2 avx avx2 fma f16c bmi2 avx_vnni avx512f avx512cd avx512vl avx512dq avx512bw "
                   "avx512vbmi avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16")
EPYC_ZEN4 = "sse4_2 avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi avx512_vnni avx512_bf16"
EPYC_ZEN3 = "sse4_2 avx avx2 fma f16c bmi2"
OLD_X86_64 = "sse4_2"


def _on(args: list[str]) -> set[str]:
    return {a[2:-3] for a in args if a.endswith("=ON")}


@pytest.mark.parametrize("flags, expected_on", [
    (SAPPHIRE_RAPIDS, {"GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2", "GGML_AVX_VNNI",
                       "GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI", "GGML_AVX512_BF16"}),
    (EPYC_ZEN4, {"GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2",
                 "GGML_AVX512", "GGML_AVX512_VBMI", "GGML_AVX512_VNNI", "GGML_AVX512_BF16"}),
    (EPYC_ZEN3, {"GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2"}),
    (OLD_X86_64, {"GGML_SSE42"}),
    ("avx512f avx512cd", set()),  # part of ggml's AVX512 set is not enough to turn it on
    ("", set()),
])
def test_build_turns_on_only_what_the_cpu_lists_and_never_amx_or_native(flags, expected_on):
    args = native.ggml_cmake_args(set(flags.split()))
    assert _on(args) == expected_on
    for never in ("GGML_NATIVE", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16"):
        assert f"-D{never}=OFF" in args


def test_cpu_features_reads_the_flags_line():
    cpuinfo = "processor\t: 0\nmodel name\t: Intel Xeon\nflags\t\t: fpu avx2 amx_tile\nbugs\t: spectre\n"
    assert native.cpu_features(cpuinfo) == {"fpu", "avx2", "amx_tile"}
    assert native.cpu_features("processor : 0\n") == set()


def test_a_different_flag_set_or_version_gets_its_own_wheel_folder():
    zen3 = native.ggml_cmake_args(set(EPYC_ZEN3.split()))
    zen4 = native.ggml_cmake_args(set(EPYC_ZEN4.split()))
    assert native.build_key("0.3.36", zen3) == native.build_key("0.3.36", list(reversed(zen3)))
    assert len({native.build_key("0.3.36", zen3), native.build_key("0.3.36", zen4),
                native.build_key("0.3.37", zen3)}) == 3


def test_probe_result_names_the_signal():
    assert native.ProbeResult(-4, "").signal_name == "SIGILL (Illegal instruction)"
    assert native.ProbeResult(-11, "").signal_name.startswith("SIGSEGV")
    assert native.ProbeResult(1, "boom").signal_name is None
    assert native.ProbeResult(0, "").ok


# -- the self-test before loading ---------------------------------------------------------------

DIES_BY_SIGILL = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGILL)"]


@needs_llama
def test_a_library_that_dies_refuses_to_start_with_one_line_and_the_verdict_is_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(native, "_probe_command", lambda model: DIES_BY_SIGILL)
    with pytest.raises(ModelLoadError) as err:
        native.ensure_llama_cpp_runs(Path("model.gguf"), tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert "libggml-cpu" in message and "SIGILL (Illegal instruction)" in message
    # What a hosted Space's owner can do (a Space runs no `make install`): a variable to set, a requirement line.
    assert "CALIBRATED_CHAT_BACKEND=transformers" in message and "requirements.txt" in message
    assert "make install" not in message
    # Cached by the library's hash: the next start refuses without probing again.
    monkeypatch.setattr(native, "probe", lambda *a, **k: pytest.fail("probed again despite a cached verdict"))
    with pytest.raises(ModelLoadError, match="SIGILL"):
        native.ensure_llama_cpp_runs(Path("model.gguf"), tmp_path)
    cached = json.loads((tmp_path / "llama-cpp-selftest.json").read_text())
    assert list(cached) == [native.library_hash(native.llama_cpp_library_dir())]


@needs_llama
def test_a_passing_verdict_is_cached_and_other_failures_are_not(tmp_path, monkeypatch):
    monkeypatch.setattr(native, "_probe_command", lambda model: [sys.executable, "-c", "raise SystemExit(3)"])
    native.ensure_llama_cpp_runs(Path("model.gguf"), tmp_path)  # not a signal: the real load will say why
    assert not (tmp_path / "llama-cpp-selftest.json").exists()
    monkeypatch.setattr(native, "_probe_command", lambda model: [sys.executable, "-c", "print('{}')"])
    native.ensure_llama_cpp_runs(Path("model.gguf"), tmp_path)
    monkeypatch.setattr(native, "probe", lambda *a, **k: pytest.fail("probed again despite a cached verdict"))
    native.ensure_llama_cpp_runs(Path("model.gguf"), tmp_path)


@needs_llama
@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '{"%s": {"returncode": "x"}}'])
def test_a_damaged_verdict_file_is_probed_again(tmp_path, monkeypatch, damage):
    key = native.library_hash(native.llama_cpp_library_dir())
    (tmp_path / "llama-cpp-selftest.json").write_text(damage.replace("%s", key))
    monkeypatch.setattr(native, "_probe_command", lambda model: DIES_BY_SIGILL)
    with pytest.raises(ModelLoadError, match="SIGILL"):
        native.ensure_llama_cpp_runs(Path("model.gguf"), tmp_path)


def _crash_verdict(data_dir: Path) -> None:
    """Record 'this build dies with SIGILL' for the installed library, as a probe on an AMX machine would."""
    key = native.library_hash(native.llama_cpp_library_dir())
    cache = data_dir / "cache"
    cache.mkdir(parents=True)
    (cache / "llama-cpp-selftest.json").write_text(json.dumps({key: {"returncode": -4, "detail": ""}}))


def _questions_and_outputs(command: list[str], tmp_path: Path) -> list[str]:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "q1", "domain": "math", "question": "2+2?", "answer": "4",
                                     "answer_type": "number"}) + "\n")
    return [str(questions) if c == "QUESTIONS" else str(tmp_path / "out.jsonl") if c == "OUT" else c
            for c in command]


@needs_llama
@pytest.mark.slow
@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "assistant", "ask", "What is 12 times 11?", "--json"],
    [sys.executable, "-m", "calibration", "collect", "--data", "QUESTIONS", "--out", "OUT"],
    [sys.executable, "app.py", "--port", "0"],
], ids=["ask", "collect", "app"])
def test_the_clis_and_the_app_refuse_to_start_the_llamacpp_backend_on_a_library_that_would_crash(tmp_path, command):
    data_dir = tmp_path / "data"
    _crash_verdict(data_dir)
    env = {**os.environ, "CALIBRATED_CHAT_DATA_DIR": str(data_dir), "CALIBRATED_CHAT_BACKEND": "llamacpp"}
    done = subprocess.run(_questions_and_outputs(command, tmp_path), capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "SIGILL (Illegal instruction)" in errors[0] and "libggml-cpu" in errors[0]
    assert "CALIBRATED_CHAT_BACKEND=transformers" in errors[0] and "make install" not in errors[0]
    assert done.stdout.strip() == ""
    assert not (tmp_path / "out.jsonl").exists() or (tmp_path / "out.jsonl").read_text() == ""


def _fallback_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "answers through transformers instead" in line]


@needs_llama
@pytest.mark.slow
def test_the_auto_backend_answers_through_transformers_when_the_self_test_refuses_llama_cpp(tmp_path):
    """A hosted Space whose llama.cpp build would crash still answers: `ask` and the app (started as a Space
    starts it, asked through gradio_client) fall back to the real transformers backend, with one warning line."""
    from gradio_client import Client

    from tests.conftest import free_port

    data_dir = tmp_path / "data"
    _crash_verdict(data_dir)
    env = {**os.environ, "CALIBRATED_CHAT_DATA_DIR": str(data_dir)}
    env.pop("CALIBRATED_CHAT_BACKEND", None)
    done = subprocess.run([sys.executable, "-m", "assistant", "ask", "What is 12 times 11?", "--json",
                           "--max-new-tokens", "24"], capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["model"] == "SmolLM2-135M-Instruct.Q4_1"
    (warning,) = _fallback_lines(done.stderr)
    assert "SIGILL (Illegal instruction)" in warning and "make install" not in warning
    assert any(p.name.startswith("SmolLM2") for p in (data_dir / "cache").iterdir())  # transformers' dense copy

    port = free_port()
    space = {**env, "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": str(port), "SPACE_ID": "test/space"}
    app = subprocess.Popen([sys.executable, "app.py", "--max-new-tokens", "24"], env=space, cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = _wait_for_app(app, port)
        reply = Client(url, verbose=False).predict("What is 12 times 11?", None, api_name="/ask")
        assert reply["model"] == "SmolLM2-135M-Instruct.Q4_1" and reply["tokens"] > 0
    finally:
        app.terminate()
        output = app.communicate(timeout=60)[0]
    assert len(_fallback_lines(output)) == 1, output


def _wait_for_app(app: subprocess.Popen, port: int, timeout: float = 300) -> str:
    """The app's URL once it answers HTTP (it loads everything before listening)."""
    import time

    import httpx

    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and app.poll() is None:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"app.py did not start (exit {app.poll()})")


# -- the real library ----------------------------------------------------------------------------


@needs_llama
@pytest.mark.slow
def test_real_backend_survives_a_long_batched_prefill_and_two_sequences_in_a_child_process():
    """What would have caught the AMX crash on the machine that has it: a > 200-token prompt, then
    `generate_many` with two sequences, through the real llama.cpp backend, in a child process."""
    from assistant.models.sources import default_model_path

    result = native.probe(default_model_path())
    assert result.ok, f"the child ended with {result.signal_name or result.returncode}: {result.detail}"
    summary = json.loads(result.detail)
    assert summary["prompt_tokens"] > native.PROBE_PROMPT_TOKENS
    assert summary["generated"] == native.PROBE_NEW_TOKENS
    assert summary["generate_many"] == [0, 1]


@needs_llama
@pytest.mark.skipif(shutil.which("objdump") is None, reason="objdump (binutils) not installed")
def test_the_installed_cpu_library_holds_no_amx_instruction():
    """Machine-independent: an AMD machine never shows the crash, but the instructions show in the binary.
    (The natively built wheel pip cached on a Sapphire Rapids machine held 278 of them.)"""
    library = native.cpu_library(native.llama_cpp_library_dir())
    assert library.name.startswith("libggml-cpu")
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(library)], capture_output=True,
                             text=True, check=True).stdout
    mnemonics = re.findall(r"^\s*[0-9a-f]+:\s+([a-z][a-z0-9.]*)", listing, flags=re.MULTILINE)
    assert len(mnemonics) > 10_000  # the disassembly really listed the library's code
    found = {m for m in mnemonics if m in native.AMX_INSTRUCTIONS}
    assert found == set(), f"{library} holds AMX instructions {sorted(found)}: rebuild with `make install`"


@needs_llama
def test_make_install_uses_the_build_for_this_cpus_flags():
    """The installed llama-cpp-python came from the wheel `install-llama-cpp` keys by this CPU's flags."""
    args = native.ggml_cmake_args(native.cpu_features())
    folder = native.wheel_cache_root() / native.build_key(native.LLAMA_CPP_VERSION, args)
    assert native._installed_from(folder), f"llama-cpp-python was not installed from {folder}: run `make install`"
