"""The hosted-demo path, checked the way a Hugging Face Space runs it (run by .ci/run).

    python -m bench.space_check [--requirements requirements.txt] [--work DIR]

1. A fresh venv, and `pip install -r requirements.txt` into it: no Makefile, no `pip install -e .`.
2. `python app.py` in the checkout with a Space's environment (GRADIO_SERVER_NAME=0.0.0.0,
   GRADIO_SERVER_PORT, SPACE_ID, a fresh HOME), so its data folder and llama.cpp self-test start empty.
3. One question through gradio_client's /ask; the check passes when an answer comes back.

llama-cpp-python compiles llama.cpp from source (about 8 minutes on 2 cores). The wheel built with the
flags of requirements.txt's llama-cpp-python line is kept under the project's wheel cache
(`assistant.models.native.wheel_cache_root`), in a folder keyed by that line's version and
--config-settings, Python and machine, and installed before `-r requirements.txt` (which then finds
it satisfied): CI compiles once per flag set. pip's own wheel cache is not used, because its key
ignores --config-settings. Prints one JSON line: seconds per step, the backend that answered, the answer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.core.config import SPACE_STORAGE
from assistant.core.errors import CalibratedChatError, InputError, run_cli
from assistant.models.native import AMX_INSTRUCTIONS, build_key, wheel_cache_root

__all__ = ["LlamaLine", "llama_line", "wheel_folder", "main"]

ROOT = Path(__file__).resolve().parents[1]
FALLBACK = "answers through transformers instead"  # the auto backend's warning (assistant/models/registry.py)
QUESTION = "What is 12 times 11?"


@dataclass(frozen=True)
class LlamaLine:
    version: str  # the pinned llama-cpp-python version
    settings: tuple[str, ...]  # its --config-settings, as written (e.g. "cmake.define.GGML_AVX2=ON")

    @property
    def pip_args(self) -> list[str]:
        """What `pip wheel` needs to build it exactly as requirements.txt asks."""
        return [f"llama-cpp-python=={self.version}", "--no-binary", "llama-cpp-python",
                *(f"--config-settings={s}" for s in self.settings)]


def llama_line(requirements: str) -> LlamaLine:
    """The llama-cpp-python line of a requirements file (backslash continuations joined).

    >>> llama_line("numpy\\nllama-cpp-python==0.3.36 \\\\\\n  --config-settings=cmake.define.GGML_NATIVE=OFF\\n")
    LlamaLine(version='0.3.36', settings=('cmake.define.GGML_NATIVE=OFF',))
    """
    joined = re.sub(r"\\\n", " ", requirements)
    for line in joined.splitlines():
        words = line.split("#")[0].split()
        if words and re.match(r"llama[-_]cpp[-_]python\b", words[0], flags=re.IGNORECASE):
            pinned = re.fullmatch(r"llama[-_]cpp[-_]python==([\w.]+)", words[0], flags=re.IGNORECASE)
            if pinned is None:
                raise InputError(f"requirements.txt must pin llama-cpp-python with ==, not {words[0]!r}: the "
                                 "cached wheel is keyed by its version")
            settings = tuple(w.removeprefix("--config-settings=") for w in words[1:]
                             if w.startswith("--config-settings="))
            return LlamaLine(pinned.group(1), settings)
    raise InputError("requirements.txt has no llama-cpp-python line: nothing to build or check")


def wheel_folder(line: LlamaLine) -> Path:
    """Where the wheel built for `line` is kept: one folder per version, flag set, Python and machine."""
    return wheel_cache_root() / f"requirements-{build_key(line.version, list(line.settings))}"


def _run(command: list[str], *, log, timeout: float, **kwargs) -> float:
    """Run `command` to the end (failing loudly) and return its seconds."""
    log("$ " + " ".join(command))
    start = time.monotonic()
    done = subprocess.run(command, timeout=timeout, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise CalibratedChatError(f"{' '.join(command[:6])} … failed (exit {done.returncode}): {done.stderr[-3000:]}")
    return time.monotonic() - start


def _cached_wheel(python: Path, line: LlamaLine, *, log) -> tuple[Path, float | None]:
    """(the wheel for `line`, seconds spent compiling it, or None when it came from the cache)."""
    folder = wheel_folder(line)
    found = sorted(folder.glob("llama_cpp_python-*.whl"))
    if found:
        log(f"reusing {found[0]}")
        return found[0], None
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as out:
        env = {**os.environ, "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1)}
        seconds = _run([str(python), "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir", "-w", out,
                        *line.pip_args], log=log, timeout=3600, env=env)
        (built,) = Path(out).glob("llama_cpp_python-*.whl")
        os.replace(built, folder / built.name)  # whole wheels only: a killed build leaves none
    return folder / built.name, seconds


def _forbidden_instructions(venv: Path) -> dict[str, int] | None:
    """How many AVX-512 (zmm) and AMX instructions the installed CPU library holds; None without objdump."""
    libraries = sorted(venv.glob("lib/python*/site-packages/llama_cpp/lib/libggml-cpu*.so"))
    if shutil.which("objdump") is None or not libraries:
        return None
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(libraries[0])], capture_output=True,
                             text=True, check=True).stdout
    mnemonics = re.findall(r"^\s*[0-9a-f]+:\s+([a-z][a-z0-9.]*)", listing, flags=re.MULTILINE)
    return {"avx512_zmm": listing.count("%zmm"), "amx": sum(m in AMX_INSTRUCTIONS for m in mnemonics)}


def _space_env(work: Path, port: int) -> dict[str, str]:
    """A Space's environment: nothing of this machine's CALIBRATED_CHAT_* settings, a home of its own."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work / "home"), "PYTHONUNBUFFERED": "1",
           "GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": str(port), "SPACE_ID": "ci/calibrated-chat",
           "GRADIO_ANALYTICS_ENABLED": "False", "LANG": "C.UTF-8"}
    if SPACE_STORAGE.exists():  # never write into this machine's own /data
        env["CALIBRATED_CHAT_DATA_DIR"] = str(work / "data")
    return env


def _wait_for(app: subprocess.Popen, url: str, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and app.poll() is None:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(1)
    raise CalibratedChatError(f"app.py did not start within {timeout:.0f} s (exit {app.poll()})")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ask_the_app(venv: Path, work: Path, *, log) -> dict:
    """Start app.py as a Space does, ask one question through gradio_client, stop it; what happened."""
    from gradio_client import Client

    port, logfile = _free_port(), work / "app.log"
    start = time.monotonic()
    with open(logfile, "w") as out:
        app = subprocess.Popen([str(venv / "bin" / "python"), "app.py"], cwd=ROOT, env=_space_env(work, port),
                               stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_for(app, url, timeout=900)
            started = time.monotonic() - start
            log(f"app.py answers HTTP after {started:.0f} s; asking {QUESTION!r}")
            asked = time.monotonic()
            reply = Client(url, verbose=False).predict(QUESTION, None, api_name="/ask")
            answered = time.monotonic() - asked
        finally:
            app.terminate()
            app.wait(timeout=60)
    output = logfile.read_text(errors="replace")
    return {"start_s": round(started, 1), "answer_s": round(answered, 1), "answer": reply.get("answer"),
            "model": reply.get("model"), "backend": "transformers" if FALLBACK in output else "llamacpp"}


def check(requirements: Path, work: Path, *, log=print) -> dict:
    """Build the venv, start the app, ask; the summary (raises CalibratedChatError on any failure)."""
    line = llama_line(requirements.read_text(encoding="utf-8"))
    venv = work / "venv"
    summary: dict = {"llama_cpp_python": line.version, "wheel_folder": str(wheel_folder(line))}
    summary["venv_s"] = round(_run([sys.executable, "-m", "venv", str(venv)], log=log, timeout=600), 1)
    python = venv / "bin" / "python"
    wheel, compiled = _cached_wheel(python, line, log=log)
    summary["compile_s"] = round(compiled, 1) if compiled is not None else "reused"
    # --retries 1: where an index of requirements.txt cannot be reached (download.pytorch.org from a machine
    # without it), pip's default 5 retries cost about 9 s for every package; one retry still rides out a blip.
    pip = [str(python), "-m", "pip", "install", "-q", "--retries", "1"]
    summary["install_s"] = round(_run([*pip, "--no-deps", str(wheel)], log=log, timeout=600)
                                 + _run([*pip, "-r", str(requirements)], log=log, timeout=3600, cwd=ROOT), 1)
    summary["forbidden_instructions"] = _forbidden_instructions(venv)
    if summary["forbidden_instructions"] and any(summary["forbidden_instructions"].values()):
        raise CalibratedChatError(f"the portable build holds {summary['forbidden_instructions']}: not portable")
    summary.update(_ask_the_app(venv, work, log=log))
    if not summary["answer"]:
        raise CalibratedChatError(f"the app gave no answer: {summary}; its log: {work / 'app.log'}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.space_check", description=__doc__.split("\n")[0])
    parser.add_argument("--requirements", type=Path, default=ROOT / "requirements.txt")
    parser.add_argument("--work", type=Path, help="keep the venv and the app's log here (default: a temp folder)")
    args = parser.parse_args(argv)

    def run() -> int:
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="space-check-") as temp:
            summary = check(args.requirements.resolve(), args.work or Path(temp), log=lambda s: print(s, flush=True))
        print(json.dumps({**summary, "total_s": round(time.monotonic() - start, 1)}))
        return 0

    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
