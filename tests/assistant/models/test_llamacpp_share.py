"""The llama.cpp backend's CPU set-up (`llamacpp_c.shared_threads`, `available_cores`): every core this
process may use, or half of them in share mode (CALIBRATED_CHAT_SHARE_CPU=1), leaving the wait policy
to libgomp or the user. The measurement it is for is bench/SHARE.md (`python -m bench share`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assistant.models.llamacpp_c import SHARE_CPU_ENV, available_cores, shared_threads


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
def test_the_backend_uses_every_core_or_half_in_share_mode_and_leaves_the_wait_policy_alone(share):
    """Alone a process spins at libgomp's default (fastest: a passive wait made it 3.4 times slower);
    in share mode it takes half the cores, so two processes never oversubscribe them."""
    pytest.importorskip("llama_cpp")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", SHARE_CPU_ENV)}
    if share:
        env[SHARE_CPU_ENV] = "1"
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    words = done.stdout.split()
    cores = int(words[5])
    assert words[:2] == ["policy", "None"] and int(words[3]) == (max(1, cores // 2) if share else cores)
