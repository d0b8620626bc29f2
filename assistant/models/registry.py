"""Pick and build the model backend for a `ModelConfig`.

`load_backend(config)` is the one entry point the CLIs, the web app and the
calibration tools use. It resolves what `config.model` names (the embedded
default GGUF, another .gguf file, a local folder, or a Hugging Face id already in
the local cache: nothing is ever downloaded) and builds a `TransformersBackend`
or a `LlamaCppBackend`; or, for `backend="openai"`, an `OpenAICompatBackend` that talks to
the server at `config.base_url` (no local model file: `config.model` is the server's model name).

    >>> from assistant.core.config import ModelConfig
    >>> backend = load_backend(ModelConfig())            # doctest: +SKIP
    >>> backend.model_id                                  # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1'
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

from assistant.core.config import ModelConfig, set_offline_env
from assistant.core.errors import ModelLoadError
from assistant.models.backend import Backend
from assistant.models.huggingface import TransformersBackend
from assistant.models.llamacpp import LlamaCppBackend
from assistant.models.native import ensure_llama_cpp_runs
from assistant.models.openai_compat import OpenAICompatBackend
from assistant.models.sources import ModelSource, resolve_model

__all__ = ["BACKENDS", "FACTORIES", "REMOTE", "choose_backend", "load_backend", "llama_cpp_installed"]


def _llamacpp(config: ModelConfig, source: ModelSource) -> Backend:
    ensure_llama_cpp_runs(source.path, config.cache_folder)  # refuse here rather than die mid-chat
    return LlamaCppBackend(config, source=source)


# name -> factory(config, source); a new backend is one entry here (and one module beside this one)
FACTORIES = {"transformers": TransformersBackend, "llamacpp": _llamacpp, "openai": OpenAICompatBackend}
BACKENDS = ("auto", *FACTORIES)  # allowed values of ModelConfig.backend
REMOTE = frozenset({"openai"})  # backends whose model lives on a server: no local model to resolve

_INSTALL_LLAMA_CPP = ("install it with `pip install llama-cpp-python` (the portable line of requirements.txt on a "
                      "hosted Space, `make install` in a checkout)")
log = logging.getLogger(__name__)


def llama_cpp_installed() -> bool:
    """True when the `llama_cpp` package (llama-cpp-python) can be found."""
    return importlib.util.find_spec("llama_cpp") is not None


def _cuda_available() -> bool:
    # Importing torch costs seconds; without an NVIDIA driver there is no CUDA to find.
    if "torch" not in sys.modules and not os.path.exists("/proc/driver/nvidia/version"):
        return False
    import torch

    return torch.cuda.is_available()


def _on_cpu(config: ModelConfig) -> bool:
    device = (config.device or "auto").lower()
    return device == "cpu" or (device == "auto" and not _cuda_available())


def choose_backend(config: ModelConfig, source: ModelSource | None) -> str:
    """The backend to build: "transformers", "llamacpp" or "openai" (validating `config.backend`).

    `source` is None for a remote backend (nothing local to resolve)."""
    name = (config.backend or "auto").lower()
    if name not in BACKENDS:
        raise ModelLoadError(f"unknown backend {config.backend!r}: use one of {', '.join(BACKENDS)}")
    if name in REMOTE:
        return name
    if name == "llamacpp":
        if source.kind != "gguf":
            raise ModelLoadError(
                f"the llamacpp backend runs .gguf files only, and {source.location!r} is a {source.kind} model: "
                "pass a .gguf file or use --backend transformers"
            )
        if not llama_cpp_installed():
            raise ModelLoadError(f"the llamacpp backend needs llama-cpp-python: {_INSTALL_LLAMA_CPP}")
        return name
    if name == "transformers":
        return name
    return "llamacpp" if source.kind == "gguf" and _on_cpu(config) and llama_cpp_installed() else "transformers"


def _auto_gguf_on_cpu(config: ModelConfig, source: ModelSource) -> Backend:
    """The auto backend for a GGUF on the CPU: llama.cpp when installed and its self-test passes, else
    transformers (same model, same calibration maps, slower), with one warning line saying why."""
    if not llama_cpp_installed():
        log.warning("llama-cpp-python is not installed, so the auto backend answers through transformers "
                    "(slower); %s", _INSTALL_LLAMA_CPP)
        return TransformersBackend(config, source=source)
    try:
        ensure_llama_cpp_runs(source.path, config.cache_folder)
    except ModelLoadError as refused:
        log.warning("%s. The auto backend answers through transformers instead (slower).", refused)
        return TransformersBackend(config, source=source)
    return LlamaCppBackend(config, source=source)


def load_backend(config: ModelConfig) -> Backend:
    """Build the backend `config` asks for (see `choose_backend`), loading the model."""
    name = (config.backend or "auto").lower()
    if name not in BACKENDS:  # before any slow lookup
        raise ModelLoadError(f"unknown backend {config.backend!r}: use one of {', '.join(BACKENDS)}")
    if name in REMOTE:  # config.model names the server's model, not a local file
        return FACTORIES[choose_backend(config, None)](config, source=None)
    set_offline_env()  # before transformers or huggingface_hub read their settings
    source = resolve_model(config.model)
    if name == "auto" and source.kind == "gguf" and _on_cpu(config):
        return _auto_gguf_on_cpu(config, source)
    return FACTORIES[choose_backend(config, source)](config, source=source)
