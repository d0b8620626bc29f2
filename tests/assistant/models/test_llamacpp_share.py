"""The llama.cpp backend's CPU set-up: its share of the cores this process may use among the llama.cpp
processes on the machine (`llamacpp_peers`), or half of them in share mode (CALIBRATED_CHAT_SHARE_CPU=1),
leaving the wait policy to libgomp or the user. The measurement it is for is bench/SHARE.md
(`python -m bench share`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from assistant.models.llamacpp_c import SHARE_CPU_ENV, available_cores, shared_threads
from assistant.models.llamacpp_peers import (
    PEERS_DIR_ENV,
    REFIT_SECONDS,
    CoreShare,
    Peers,
    _started,
    fair_threads,
)


@pytest.mark.parametrize("value, share", [(None, False), ("", False), ("0", False), ("1", True), ("true", True),
                                          ("YES", True)])
def test_share_mode_takes_half_the_cores_only_when_asked(value, share):
    environ = {} if value is None else {SHARE_CPU_ENV: value}
    assert shared_threads(environ) == (max(1, available_cores() // 2) if share else None)
    assert environ == ({} if value is None else {SHARE_CPU_ENV: value})  # nothing else is changed


def test_available_cores_follows_the_affinity():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cores() == expected >= 1


CHILD = """
import os
from assistant.core.config import ModelConfig
from assistant.models.llamacpp import LlamaCppBackend
from assistant.models.llamacpp_c import available_cores
backend = LlamaCppBackend(ModelConfig())
print("policy", os.environ.get("OMP_WAIT_POLICY"), "threads", backend.threads, "cores", available_cores())
"""


@pytest.mark.slow
@pytest.mark.parametrize("share", [False, True])
def test_the_backend_uses_every_core_or_half_in_share_mode_and_leaves_the_wait_policy_alone(share, tmp_path):
    """Alone a process spins at libgomp's default (fastest: a passive wait made it 3.4 times slower);
    in share mode it takes half the cores, so two processes never oversubscribe them."""
    pytest.importorskip("llama_cpp")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", SHARE_CPU_ENV)}
    env[PEERS_DIR_ENV] = str(tmp_path)  # alone: no other llama.cpp process counted
    if share:
        env[SHARE_CPU_ENV] = "1"
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    words = done.stdout.split()
    cores = int(words[5])
    assert words[:2] == ["policy", "None"] and int(words[3]) == (max(1, cores // 2) if share else cores)


@pytest.mark.parametrize("cores, processes, threads", [(2, 1, 2), (2, 2, 1), (2, 3, 1), (16, 3, 5), (8, 0, 8)])
def test_a_fair_share_is_the_cores_over_the_processes_and_at_least_one(cores, processes, threads):
    assert fair_threads(cores, processes) == threads


@pytest.fixture
def other_process():
    """A live process that is not this one, with the start time its note would carry."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_peers_count_live_notes_and_forget_the_dead(tmp_path, other_process):
    peers = Peers(tmp_path)
    assert peers.count() == 0
    peers.join()
    peers.join()  # a second backend of this process: still one note
    assert [p.name for p in tmp_path.iterdir()] == [str(os.getpid())] and peers.count() == 1
    (tmp_path / str(other_process.pid)).write_text(_started(other_process.pid) or "")
    assert peers.count() == 2
    other_process.kill()
    other_process.wait()
    assert peers.count() == 1 and not (tmp_path / str(other_process.pid)).exists()  # the dead one's note went
    peers.leave()
    assert peers.count() == 1  # the other backend of this process is still loaded
    peers.leave()
    assert peers.count() == 0 and list(tmp_path.iterdir()) == []


def test_a_note_whose_pid_now_names_another_process_is_not_counted(tmp_path, other_process):
    (tmp_path / str(other_process.pid)).write_text("1")  # started at tick 1: an earlier process with this pid
    (tmp_path / "not-a-pid").write_text("")
    assert Peers(tmp_path).count() == 0


def test_a_share_follows_the_peers_and_a_fixed_count_never_changes(tmp_path, other_process):
    applied = []
    share = CoreShare(None, Peers(tmp_path), every=0)
    share.apply = applied.append
    cores = available_cores()
    assert share.threads == cores
    (tmp_path / str(other_process.pid)).write_text(_started(other_process.pid) or "")
    share.refit()
    assert share.threads == fair_threads(cores, 2)
    other_process.kill()
    other_process.wait()
    share.refit()
    assert share.threads == cores and applied == ([fair_threads(cores, 2), cores] if cores > 1 else [])
    share.close()
    assert list(tmp_path.iterdir()) == []
    fixed = CoreShare(3, Peers(tmp_path), every=0)
    fixed.apply = applied.append
    fixed.refit()
    assert fixed.threads == 3 and list(tmp_path.iterdir()) == []  # a fixed count leaves no note


PEER = """
import sys
from assistant.core.config import ModelConfig
from assistant.models.backend import GenerationOptions
from assistant.models.llamacpp import LlamaCppBackend
backend = LlamaCppBackend(ModelConfig())
print(backend.threads, flush=True)
for line in sys.stdin:
    backend.stream([{"role": "user", "content": "Hi"}], GenerationOptions(max_new_tokens=2)).drain()
    print(backend.threads, flush=True)
"""


@pytest.mark.slow
def test_two_real_processes_share_the_cores_and_the_survivor_takes_them_back(tmp_path):
    """The app answering while `calibrate collect` runs: each decodes on half the cores, then the one left
    on all of them again (bench/SHARE.md measures what that is worth)."""
    pytest.importorskip("llama_cpp")
    cores = available_cores()
    if cores < 2:
        pytest.skip("one core: there is nothing to share")
    env = {**os.environ, PEERS_DIR_ENV: str(tmp_path)}
    env.pop(SHARE_CPU_ENV, None)
    env.pop("CALIBRATED_CHAT_THREADS", None)

    def start():
        proc = subprocess.Popen([sys.executable, "-c", PEER], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)
        return proc, int(proc.stdout.readline())

    def answer(proc) -> int:
        time.sleep(REFIT_SECONDS + 0.1)  # the next decode counts the peers again
        proc.stdin.write("go\n")
        proc.stdin.flush()
        return int(proc.stdout.readline())

    app, alone = start()
    collect = None
    try:
        collect, beside = start()
        assert (alone, beside) == (cores, cores // 2)
        assert answer(app) == cores // 2 and answer(collect) == cores // 2
        collect.kill()  # killed, not closed: its note stays, and is known dead
        collect.wait()
        assert answer(app) == cores
    finally:
        for proc in (app, collect):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
