"""What the bench measures the machine with: facts about it, memory read bandwidth, percentiles,
and a web-app subprocess (start-up time, resident memory).

Nothing here imports torch or gradio at module level, so `python -m bench --help` stays quick.
"""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from assistant.models.sources import default_model_path

__all__ = [
    "LIBRARIES",
    "AppProcess",
    "free_port",
    "library_versions",
    "machine_info",
    "percentile",
    "read_bandwidth",
    "summarize",
]

ROOT = Path(__file__).resolve().parent.parent
# Packages whose versions the results name (missing ones are reported as absent).
LIBRARIES = (
    "torch",
    "transformers",
    "llama_cpp_python",
    "numpy",
    "gradio",
    "gradio_client",
    "sentence-transformers",
    "psutil",
)


def percentile(values, q: float) -> float:
    """The q-th percentile (0–100) with linear interpolation between order statistics (numpy's default).

    >>> percentile([1, 2, 3, 4], 50)
    2.5
    >>> percentile([10], 95)
    10.0
    """
    xs = sorted(float(v) for v in values)
    if not xs:
        raise ValueError("percentile of no values")
    rank = (len(xs) - 1) * q / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def summarize(values, digits: int = 3) -> dict:
    """n, p50, p95, mean, min and max of a list of numbers, rounded."""
    values = [float(v) for v in values]
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "mean": round(sum(values) / len(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def library_versions() -> dict:
    """Installed version of each of LIBRARIES (None when not installed)."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_stamp(command: str, machine: dict) -> str:
    """How a bench report opens: the command, when, and the machine it ran on (from `machine_info`)."""
    return (f"`{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine['cores']} cores "
            f"({machine['cpu']}), load average at the start {machine['load_average']}; ")


def machine_info() -> dict:
    """CPU model, cores, RAM, OS, and the load average at the start (a busy machine skews every figure)."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gb": _ram_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "load_average": load,
    }


def read_bandwidth(megabytes: int = 1024, repeats: int = 5, threads: tuple[int, ...] = (1, 2)) -> dict:
    """Best memory read bandwidth in GB/s (1e9 bytes/s) summing a float64 array of `megabytes` MB.

    With t threads each thread sums its own 1/t slice (numpy releases the GIL in the reduction);
    the best of `repeats` timings counts, since interference only ever slows a run down.
    """
    import numpy as np

    data = np.ones(megabytes * 1024 * 1024 // 8, dtype=np.float64)  # written once, so every page is mapped
    out = {"array_mb": megabytes, "repeats": repeats}
    for t in threads:
        parts = np.array_split(data, t)
        best = math.inf
        for _ in range(repeats):
            barrier = threading.Barrier(t + 1)

            def work(part, barrier=barrier):
                barrier.wait()
                np.add.reduce(part)

            workers = [threading.Thread(target=work, args=(p,)) for p in parts]
            for w in workers:
                w.start()
            start = time.perf_counter()
            barrier.wait()
            for w in workers:
                w.join()
            best = min(best, time.perf_counter() - start)
        out[f"gbps_{t}t"] = round(data.nbytes / best / 1e9, 2)
    del data
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Child:
    """A subprocess (`proc`) with its log file (`_log`): stopped gently, then killed; a context manager."""

    proc: subprocess.Popen | None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class AppProcess(_Child):
    """`python app.py` as a subprocess on a free port: start, wait until it serves, read its memory, stop."""

    args: list = field(default_factory=list)  # extra app.py flags (--data-dir, --maps-dir, --queue-size, …)
    env: dict = field(default_factory=dict)  # extra environment variables (an API key for --backend openai)
    port: int = field(default_factory=free_port)  # where it listens
    log_path: Path | None = None  # stdout+stderr of the app go here (default: a file next to the data dir)
    proc: subprocess.Popen | None = None  # the running process
    started_at: float = 0.0  # perf_counter() when it was spawned

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> "AppProcess":
        cmd = [sys.executable, str(ROOT / "app.py"), "--port", str(self.port), *map(str, self.args)]
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **self.env}
        self._log = open(self.log_path or os.devnull, "wb")
        self.started_at = time.perf_counter()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        return self

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Poll the page until it answers 200; seconds since spawn. RuntimeError if it exits or times out."""
        deadline = self.started_at + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"app.py exited with status {self.proc.returncode} before serving: {self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        return time.perf_counter() - self.started_at
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"app.py did not serve {self.url} within {timeout:.0f} s: {self.log_tail()}")

    def log_tail(self, chars: int = 600) -> str:
        if self.log_path is None or not Path(self.log_path).exists():
            return "(no log kept)"
        return Path(self.log_path).read_text(errors="replace")[-chars:].strip()

    def rss_mb(self) -> float:
        """Resident memory now of the app and its children, in MB (1e6 bytes)."""
        import psutil

        root = psutil.Process(self.proc.pid)
        procs = [root, *root.children(recursive=True)]
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total / 1e6

    def peak_rss_mb(self) -> float | None:
        """The app process's peak resident memory (VmHWM in /proc), in MB; None where /proc is absent."""
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
        except OSError:
            pass
        return None



@dataclass
class LlamaServer(_Child):
    """llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on 127.0.0.1, serving
    the default GGUF under `alias` with the API key `key`: a real server for `--backend openai`."""

    alias: str = "SmolLM2-135M-Instruct"  # the model name it serves (its /v1/models id)
    key: str = field(default_factory=lambda: "sk-bench-" + os.urandom(8).hex())
    threads: int | None = None  # its --n_threads (default: llama-cpp-python's)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    # Its default (True) ends a streaming reply when another request arrives: concurrent clients
    # would get answers cut short. Off, it answers one request after another.
    interrupt_requests: bool = False
    extra: tuple = ()  # more server flags
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model_id(self) -> str:
        """What `--backend openai` names this server's model: its alias and the URL's host."""
        return f"{self.alias}@127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> "LlamaServer":
        threads = ["--n_threads", str(self.threads), "--n_threads_batch", str(self.threads)] if self.threads else []
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(default_model_path()), "--model_alias",
               self.alias, "--host", "127.0.0.1", "--port", str(self.port), "--api_key", self.key,
               "--n_ctx", "4096", "--interrupt_requests", str(self.interrupt_requests), *threads, *self.extra]
        # A file, never a pipe: llama.cpp's load log would fill one and stall the server.
        self._log = open(self.log_path, "w+b") if self.log_path else tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.perf_counter() + timeout
        request = urllib.request.Request(self.base_url + "/models", headers={"authorization": f"Bearer {self.key}"})
        while time.perf_counter() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(request, timeout=2):
                    return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self._log.seek(0)
        tail = self._log.read()[-2000:].decode(errors="replace")
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not serve {self.base_url} within {timeout:.0f} s "
                           f"(exit status {self.proc.returncode}): {tail}")

