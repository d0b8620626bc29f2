"""The llama.cpp backend's CPU set-up (`llamacpp_c.share_cpu`, `available_cores`): OpenMP threads that
sleep while they wait unless the user chose otherwise, and threads from the cores this process may use.
The measurement it is for is bench/SHARE.md (`python -m bench share`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assistant.models.llamacpp_c import SHARE_CPU_ENV, available_cores, share_cpu


@pytest.mark.parametrize("environ, applied, after", [
    ({}, {"OMP_WAIT_POLICY": "PASSIVE"}, {"OMP_WAIT_POLICY": "PASSIVE"}),
    ({"PATH": "/bin"}, {"OMP_WAIT_POLICY": "PASSIVE"}, {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}),
    ({"OMP_WAIT_POLICY": "ACTIVE"}, {}, {"OMP_WAIT_POLICY": "ACTIVE"}),  # the user's own policy is kept
    ({"OMP_WAIT_POLICY": "passive"}, {}, {"OMP_WAIT_POLICY": "passive"}),
    ({"GOMP_SPINCOUNT": "10000"}, {}, {"GOMP_SPINCOUNT": "10000"}),  # a spin count is a choice too
])
def test_share_cpu_sets_a_passive_wait_only_when_the_user_set_none(environ, applied, after):
    assert share_cpu(environ) == applied
    assert environ == after


def test_share_cpu_env_is_the_documented_one():
    assert SHARE_CPU_ENV == {"OMP_WAIT_POLICY": "PASSIVE"}


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
@pytest.mark.parametrize("user, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_backend_applies_it_before_llama_cpp_loads(user, expected):
    """Building the real backend sets the policy in time for libgomp to read it (OMP_DISPLAY_ENV makes
    libgomp print what it read when it loads), and a user's own OMP_WAIT_POLICY is what libgomp reads."""
    pytest.importorskip("llama_cpp")
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["OMP_DISPLAY_ENV"] = "TRUE"
    if user:
        env["OMP_WAIT_POLICY"] = user
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    words = done.stdout.split()
    assert words[:2] == ["policy", expected] and words[3] == words[5]  # threads: every core it may use
    assert f"OMP_WAIT_POLICY = '{expected}'" in done.stderr  # what libgomp itself read
