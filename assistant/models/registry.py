"""Pick and build the model backend for a `ModelConfig`.

`load_backend(config)` is the one entry point the CLIs, the web app and the
calibration tools use. It resolves what `config.model` names (the embedded
default GGUF, another .gguf file, a local folder, or a Hugging Face id already in
the local cache: nothing is ever downloaded) and builds a `TransformersBackend`
or a `LlamaCppBackend`.

    >>> from assistant.core.config import ModelConfig
    >>> backend = load_backend(ModelConfig())            # doctest: +SKIP
    >>> backend.model_id                                  # doctest: +SKIP
    'SmolLM2-135M-Instruct.Q4_1'
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from assistant.models.backend import Backend, default_model_path
from assistant.core.config import ModelConfig, set_offline_env
from assistant.core.errors import ModelLoadError, ModelNotFoundError

__all__ = ["BACKENDS", "ModelSource", "resolve_model", "choose_backend", "load_backend", "llama_cpp_installed"]

BACKENDS = ("auto", "transformers", "llamacpp")  # allowed values of ModelConfig.backend

_INSTALL_LLAMA_CPP = "install it with `pip install llama-cpp-python` (or `make install`)"


@dataclass(frozen=True)
class ModelSource:
    kind: Literal["gguf", "folder", "hub"]  # a .gguf file, a saved transformers folder, or a cached HF id
    location: str  # file or folder path, or the Hugging Face id
    model_id: str  # the name replies and calibration maps use; the same for every backend

    @property
    def path(self) -> Path:
        """The location as a path (for "gguf" and "folder")."""
        return Path(self.location)


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~", ".\\")) or spec.lower().endswith(".gguf")


def _hub_is_cached(repo_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an invalid repo id ("a b", "a/b/c") is simply not there
        return False
    return isinstance(found, str)


def resolve_model(spec: str | None) -> ModelSource:
    """Say what `spec` names, or raise ModelNotFoundError saying how to get it.

    None is the embedded default GGUF. A path to a .gguf file is used as is; a
    folder must hold a `config.json` (a saved transformers model) or exactly one
    .gguf file. Anything else is taken as a Hugging Face id, which must already
    be in the local cache because downloads are switched off.
    """
    if spec is None:
        path = default_model_path()
        return ModelSource("gguf", str(path), path.stem)
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelNotFoundError(
                f"{path} is a file but not a .gguf model: pass a .gguf file, a model folder or a Hugging Face id"
            )
        return ModelSource("gguf", str(path.resolve()), path.stem)
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource("folder", str(path.resolve()), path.resolve().name)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ModelSource("gguf", str(ggufs[0].resolve()), ggufs[0].stem)
        raise ModelNotFoundError(
            f"folder {path} holds no config.json and {len(ggufs)} .gguf files: pass a folder saved with "
            "`save_pretrained`, or the .gguf file itself"
        )
    if _looks_like_path(spec):
        raise ModelNotFoundError(f"no model file or folder at {path}: check the path passed with --model")
    if _hub_is_cached(spec):
        return ModelSource("hub", spec, spec)
    raise ModelNotFoundError(
        f"model {spec!r} is neither a local file or folder nor in the local Hugging Face cache, and downloads "
        f"are switched off: on a machine with internet run `hf download {spec}` and copy "
        "~/.cache/huggingface over, or pass a local folder or .gguf file with --model"
    )


def llama_cpp_installed() -> bool:
    """True when the `llama_cpp` package (llama-cpp-python) can be found."""
    return importlib.util.find_spec("llama_cpp") is not None


def _cuda_available() -> bool:
    # Importing torch costs seconds; without an NVIDIA driver there is no CUDA to find.
    if "torch" not in sys.modules and not os.path.exists("/proc/driver/nvidia/version"):
        return False
    import torch

    return torch.cuda.is_available()


def choose_backend(config: ModelConfig, source: ModelSource) -> str:
    """The backend to build: "transformers" or "llamacpp" (validating `config.backend`)."""
    name = (config.backend or "auto").lower()
    if name not in BACKENDS:
        raise ModelLoadError(f"unknown backend {config.backend!r}: use one of {', '.join(BACKENDS)}")
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
    device = (config.device or "auto").lower()
    on_cpu = device == "cpu" or (device == "auto" and not _cuda_available())
    return "llamacpp" if source.kind == "gguf" and on_cpu and llama_cpp_installed() else "transformers"


def load_backend(config: ModelConfig) -> Backend:
    """Build the backend `config` asks for (see `choose_backend`), loading the model."""
    if (config.backend or "auto").lower() not in BACKENDS:  # before any slow lookup
        raise ModelLoadError(f"unknown backend {config.backend!r}: use one of {', '.join(BACKENDS)}")
    set_offline_env()  # before transformers or huggingface_hub read their settings
    source = resolve_model(config.model)
    if choose_backend(config, source) == "llamacpp":
        from assistant.models.llamacpp import LlamaCppBackend
        from assistant.models.native import ensure_llama_cpp_runs

        ensure_llama_cpp_runs(source.path, config.cache_folder)  # refuse here rather than die mid-chat

        return LlamaCppBackend(config, source=source)
    from assistant.models.huggingface import TransformersBackend

    return TransformersBackend(config, source=source)
