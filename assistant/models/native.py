"""llama.cpp's native library: build it for the CPU it runs on, and check that it runs before use.

Why this exists. llama-cpp-python compiles llama.cpp on install, by default with
`-march=native`. On an Intel Xeon of the Sapphire Rapids class in a VM, /proc/cpuinfo lists
AMX and the native build includes llama.cpp's AMX kernels, which die with SIGILL on their
first `tileloadd` (any prompt longer than a few tokens, so a one-token smoke test passes).
A library that kills the process mid-chat loses the user's answer, so:

- `install-llama-cpp` builds llama-cpp-python with `GGML_NATIVE=OFF` and only the `GGML_*`
  instruction sets that /proc/cpuinfo lists, AMX never. The wheel is kept in a folder keyed
  by version, Python and flag set (pip's own wheel cache is keyed by the sdist alone, so a
  wheel built with other flags could come back from it; the build bypasses it).
- `smoke-check` (the end of `make install`) and `ensure_llama_cpp_runs` (before every
  llama.cpp backend is built) run the real backend in a child process on a prompt of over
  200 tokens, a batched prefill, and a two-sequence `generate_many`. A child killed by a
  signal means the library would crash here: the llamacpp backend refuses to start with one
  line naming the library, the signal and the fix, and the auto backend answers through
  transformers instead (assistant/models/registry.py). The verdict is cached per library
  hash, so later starts cost one hash of the library files.

    python -m assistant.models.native flags               # the CMAKE_ARGS this machine gets
    python -m assistant.models.native install-llama-cpp   # build (or reuse) and install the wheel
    python -m assistant.models.native smoke-check         # run the real backend in a child process
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.core.config import ModelConfig, model_config_from_env
from assistant.core.errors import CalibratedChatError, ModelLoadError, run_cli
from assistant.core.files import atomic_write
from assistant.models.backend import GenerationOptions
from assistant.models.llamacpp import LlamaCppBackend
from assistant.models.sources import default_model_path, resolve_model

__all__ = [
    "LLAMA_CPP_VERSION",
    "AMX_INSTRUCTIONS",
    "ProbeResult",
    "cpu_features",
    "ggml_cmake_args",
    "build_key",
    "wheel_cache_root",
    "llama_cpp_library_dir",
    "library_hash",
    "probe",
    "ensure_llama_cpp_runs",
    "install_llama_cpp",
]

LLAMA_CPP_VERSION = "0.3.36"  # the llama-cpp-python release `install-llama-cpp` builds
AMX_INSTRUCTIONS = ("tileloadd", "tdpbssd", "tdpbf16ps", "tilezero")  # what a safe build never holds
PROBE_PROMPT_TOKENS = 200  # the probe's prompt is longer than this: a batched prefill
PROBE_NEW_TOKENS = 20
PROBE_TIMEOUT_S = 300
_VERDICTS_FILE = "llama-cpp-selftest.json"

# GGML option -> the /proc/cpuinfo flags that must all be present to turn it on.
# The AMX options (GGML_AMX_TILE/INT8/BF16) are never turned on; see the module docstring.
_GGML_FEATURES: dict[str, tuple[str, ...]] = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_AVX2": ("avx2",),
    "GGML_FMA": ("fma",),
    "GGML_F16C": ("f16c",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    "GGML_AVX512": ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),  # ggml's -mavx512* set
    "GGML_AVX512_VBMI": ("avx512vbmi",),
    "GGML_AVX512_VNNI": ("avx512_vnni",),
    "GGML_AVX512_BF16": ("avx512_bf16",),
}
_ALWAYS_OFF = ("GGML_NATIVE", "GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")

# What anyone can do, a hosted Space included (it runs no commands, but takes variables and requirements.txt).
_FIX = ("set CALIBRATED_CHAT_BACKEND=transformers (or --backend transformers) to answer without llama.cpp, or "
        "rebuild it with GGML_NATIVE=OFF and no AMX: `python -m assistant.models.native install-llama-cpp --force` "
        "here, or the portable llama-cpp-python line of requirements.txt on a hosted Space")


def cpu_features(cpuinfo: str | None = None) -> set[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (empty when there is none)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def ggml_cmake_args(features: set[str]) -> list[str]:
    """`-DGGML_*=ON/OFF` for a CPU with `features`: its own instruction sets, no -march=native, no AMX.

    >>> ggml_cmake_args({"avx", "avx2", "amx_tile", "amx_int8"})[:3]
    ['-DGGML_NATIVE=OFF', '-DGGML_AMX_TILE=OFF', '-DGGML_AMX_INT8=OFF']
    >>> [a for a in ggml_cmake_args({"avx", "avx2", "amx_tile"}) if a.endswith("=ON")]
    ['-DGGML_AVX=ON', '-DGGML_AVX2=ON']
    """
    args = [f"-D{name}=OFF" for name in _ALWAYS_OFF]
    for name, needs in _GGML_FEATURES.items():
        args.append(f"-D{name}={'ON' if all(flag in features for flag in needs) else 'OFF'}")
    return args


def build_key(version: str, cmake_args: list[str]) -> str:
    """Names one build: llama-cpp-python version, Python, machine and flag set (a new set forces a rebuild)."""
    ident = "\n".join([version, sys.implementation.cache_tag, platform.machine(), *sorted(cmake_args)])
    return f"{version}-{sys.implementation.cache_tag}-{hashlib.sha256(ident.encode()).hexdigest()[:16]}"


def wheel_cache_root() -> Path:
    """Where built llama-cpp-python wheels are kept, one folder per build key (CALIBRATED_CHAT_WHEEL_CACHE)."""
    from platformdirs import user_cache_dir

    return Path(os.environ.get("CALIBRATED_CHAT_WHEEL_CACHE") or user_cache_dir("calibrated-chat")) / "wheels"


def _installed_from(folder: Path) -> bool:
    """True when the installed llama-cpp-python came from a wheel in `folder`."""
    try:
        direct_url = importlib.metadata.distribution("llama-cpp-python").read_text("direct_url.json")
    except importlib.metadata.PackageNotFoundError:
        return False
    return bool(direct_url) and json.loads(direct_url).get("url", "").startswith(folder.resolve().as_uri())


def install_llama_cpp(*, version: str = LLAMA_CPP_VERSION, force: bool = False, log=None) -> Path:
    """Build (or reuse) llama-cpp-python for this CPU and install it into this Python; return the wheel.
    `log(line)` reports progress (default: the module's logger; the CLI prints)."""
    log = log or logging.getLogger(__name__).info
    args = ggml_cmake_args(cpu_features())
    folder = wheel_cache_root() / build_key(version, args)
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if force or not wheels:
        log(f"building llama-cpp-python {version} with {' '.join(a for a in args if a.endswith('=ON'))} "
            f"(GGML_NATIVE and AMX off); this compiles llama.cpp, about 5 minutes on 2 cores")
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as out:
            env = {**os.environ, "CMAKE_ARGS": " ".join(args),
                   "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1)}
            # --no-cache-dir: never take a wheel pip cached from a build with other flags.
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-cache-dir",
                            "--no-binary", "llama-cpp-python", "-w", out, f"llama-cpp-python=={version}"],
                           env=env, check=True)
            built = sorted(Path(out).glob("llama_cpp_python-*.whl"))
            if len(built) != 1:
                raise CalibratedChatError(f"pip wheel left {len(built)} llama-cpp-python wheels in {out}")
            for old in wheels:
                old.unlink()
            os.replace(built[0], folder / built[0].name)  # whole wheels only: a killed build leaves none
        wheels = [folder / built[0].name]
    else:
        log(f"llama-cpp-python {version} for this CPU's flags is already built: {wheels[0]}")
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    if force or not _installed_from(folder):  # replaces a build with other flags, e.g. pip's native one
        subprocess.run([*pip, "--no-deps", "--force-reinstall", str(wheels[0])], check=True)
    subprocess.run([*pip, str(wheels[0])], check=True)  # its dependencies (diskcache, jinja2, …)
    return wheels[0]


def llama_cpp_library_dir() -> Path | None:
    """The folder of llama-cpp-python's shared libraries, without importing it (None when not installed)."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "lib"


def _library_files(lib_dir: Path) -> list[Path]:
    # lib*.so only: the wheel also holds lib*.so.0 and lib*.so.0.25.3, byte-identical copies.
    return sorted(p for p in lib_dir.glob("lib*.so") if p.is_file())


def library_hash(lib_dir: Path) -> str:
    """sha256 over llama.cpp's shared libraries in `lib_dir` (one build, one hash)."""
    digest = hashlib.sha256()
    for path in _library_files(lib_dir):
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def cpu_library(lib_dir: Path) -> Path:
    """The file holding the CPU kernels (libggml-cpu.so), named in error messages."""
    found = sorted(lib_dir.glob("libggml-cpu*.so*"))
    return found[0] if found else lib_dir


@dataclass(frozen=True)
class ProbeResult:
    returncode: int  # the child's exit status; negative: killed by that signal
    detail: str  # the child's last stderr line, or its JSON summary when it passed

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def signal_name(self) -> str | None:
        """e.g. "SIGILL (Illegal instruction)" when the child died by a signal, else None."""
        if self.returncode >= 0:
            return None
        number = -self.returncode
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"{name} ({signal.strsignal(number) or 'unknown'})"


def _probe_command(model: Path) -> list[str]:
    return [sys.executable, "-m", "assistant.models.native", "_child", "--model", str(model)]


def probe(model: Path, *, timeout: float = PROBE_TIMEOUT_S) -> ProbeResult:
    """Run the real llama.cpp backend on `model` in a child process (see `_child`) and report how it ended."""
    env = {**os.environ, "PYTHONFAULTHANDLER": "0"}
    try:
        done = subprocess.run(_probe_command(model), capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return ProbeResult(124, f"no result within {timeout:.0f} s")
    if done.returncode == 0:
        return ProbeResult(0, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "")
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return ProbeResult(done.returncode, lines[-1] if lines else "")


def _probe_model(model: Path) -> Path:
    """The GGUF the probe runs: the embedded default when installed (small, and its Q4_1 weights take
    llama.cpp's AMX path), else the model about to be loaded."""

    try:
        return default_model_path()
    except CalibratedChatError:
        return model


def _read_verdicts(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # missing or damaged: probe again, and rewrite it
    return data if isinstance(data, dict) else {}


def refusal(lib: Path, result: ProbeResult) -> str:
    """The one line that refuses to start on a library that dies here."""
    return (f"llama.cpp's native library {lib} dies with {result.signal_name} on this CPU "
            f"(checked in a child process before loading the model): {_FIX}")


def _verdict(model: Path, cache_dir: Path, *, fresh: bool = False) -> tuple[Path, ProbeResult] | None:
    """(library folder, how the probe ended) for the installed build; None when llama-cpp-python is absent.

    The verdict is cached in `cache_dir`, keyed by the libraries' sha256; `fresh` probes anyway.
    Only a pass or a death by signal is cached: other failures say nothing about the build.
    """
    lib_dir = llama_cpp_library_dir()
    if lib_dir is None or not lib_dir.is_dir():
        return None
    key = library_hash(lib_dir)
    path = Path(cache_dir) / _VERDICTS_FILE
    verdicts = _read_verdicts(path)
    cached = verdicts.get(key)
    if not fresh and isinstance(cached, dict) and isinstance(cached.get("returncode"), int):
        return lib_dir, ProbeResult(cached["returncode"], str(cached.get("detail", "")))
    result = probe(_probe_model(model))
    if result.ok or result.signal_name:
        verdicts[key] = {"returncode": result.returncode, "detail": result.detail, "library": str(lib_dir),
                         "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        try:
            atomic_write(json.dumps(verdicts, indent=1) + "\n", path)
        except OSError:
            pass  # an unwritable cache only costs the next start another probe
    return lib_dir, result


def ensure_llama_cpp_runs(model: Path, cache_dir: Path) -> None:
    """Raise ModelLoadError when llama.cpp's library would crash this process on this CPU.

    Probes once per library build (a child process runs the real backend, see `_child`) and
    caches the verdict in `cache_dir`. Only a death by signal refuses: any other failure of
    the child is left for the real load to report in its own words.
    """
    found = _verdict(model, cache_dir)
    if found is not None and found[1].signal_name:
        raise ModelLoadError(refusal(cpu_library(found[0]), found[1]))


def _child(model: Path) -> int:
    """The probe itself (runs in the child): a batched prefill of > 200 tokens, then two sequences at once."""
    backend = LlamaCppBackend(ModelConfig(model=str(model), threads=os.cpu_count()), source=resolve_model(str(model)))
    text = " ".join(f"Item {i} is a {'red' if i % 2 else 'blue'} box holding {i * 3} apples." for i in range(40))
    messages = [{"role": "user", "content": text + " List the number of apples in every item, one per line."}]
    prompt_tokens = len(backend._prompt_tokens(messages))
    if prompt_tokens <= PROBE_PROMPT_TOKENS:
        raise CalibratedChatError(f"probe prompt has {prompt_tokens} tokens, not over {PROBE_PROMPT_TOKENS}")
    options = GenerationOptions(max_new_tokens=PROBE_NEW_TOKENS)
    _, stats = backend.stream(messages, options).drain()
    second = [{"role": "user", "content": "Name three colours."}]
    many = sorted(index for index, _, _ in backend.generate_many([messages, second], options, parallel=2))
    backend.close()
    print(json.dumps({"prompt_tokens": prompt_tokens, "generated": stats.tokens, "generate_many": many}))
    return 0


def _smoke_check() -> int:
    """`make install`'s last step: a fresh probe, its verdict cached for the first start; any failure fails."""
    found = _verdict(default_model_path(), model_config_from_env().cache_folder, fresh=True)
    if found is None:
        raise ModelLoadError("llama-cpp-python is not installed: run `python -m assistant.models.native install-llama-cpp`")
    lib_dir, result = found
    if result.signal_name:
        raise ModelLoadError(refusal(cpu_library(lib_dir), result))
    if not result.ok:
        raise ModelLoadError(f"the llama.cpp smoke check failed (exit {result.returncode}): {result.detail}")
    print(f"llama.cpp smoke check passed: {result.detail}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m assistant.models.native", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("flags", help="print the CMAKE_ARGS this machine's build gets")
    build = sub.add_parser("install-llama-cpp", help="build (or reuse) llama-cpp-python for this CPU and install it")
    build.add_argument("--force", action="store_true", help="rebuild and reinstall even when a matching wheel exists")
    build.add_argument("--version", default=LLAMA_CPP_VERSION, help=f"llama-cpp-python version (default {LLAMA_CPP_VERSION})")
    sub.add_parser("smoke-check", help="run the real backend in a child process; fail if it dies")
    child = sub.add_parser("_child")  # the probe's child process
    child.add_argument("--model", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "flags":
        return run_cli(lambda: print(" ".join(ggml_cmake_args(cpu_features()))))
    if args.command == "install-llama-cpp":
        return run_cli(lambda: print(install_llama_cpp(version=args.version, force=args.force, log=print)) or 0)
    if args.command == "smoke-check":
        return run_cli(_smoke_check)
    return _child(args.model)


if __name__ == "__main__":
    sys.exit(main())
