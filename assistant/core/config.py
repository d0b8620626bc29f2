"""Configuration, built once at the edge (CLI flags, environment) and passed down.

Environment variables share the prefix `CALIBRATED_CHAT_`:

| variable | meaning | default |
| --- | --- | --- |
| `CALIBRATED_CHAT_MODEL` | HF id, local folder or .gguf file of the chat model | the embedded SmolLM2-135M-Instruct GGUF |
| `CALIBRATED_CHAT_BACKEND` | `auto`, `transformers`, `llamacpp` or `openai` (an OpenAI-compatible server) | `auto` |
| `CALIBRATED_CHAT_BASE_URL` | the `openai` backend's server, e.g. `http://127.0.0.1:8000/v1` | - |
| `CALIBRATED_CHAT_API_KEY_ENV` | the variable that holds that server's API key (the key itself is never a setting) | `OPENAI_API_KEY` |
| `CALIBRATED_CHAT_DEVICE` | `auto`, `cpu`, `cuda`, `cuda:1`, … | `auto` |
| `CALIBRATED_CHAT_DTYPE` | `auto`, `float32`, `bfloat16`, `float16` | `auto` |
| `CALIBRATED_CHAT_PROMPT` | prompt id (a file in `prompts/`) | `confidence_tags` |
| `CALIBRATED_CHAT_DATA_DIR` | the one data folder: review store, map versions, runs, exports, caches | on a Hugging Face Space with persistent storage `/data/calibrated-chat`, else the user data folder (`platformdirs`; `~/.local/share/calibrated-chat` on Linux) |
| `CALIBRATED_CHAT_MAPS_DIR` | a folder of map versions used alone, instead of `<data>/maps` over the shipped maps | - |
| `CALIBRATED_CHAT_CACHE_DIR` | converted-model and self-test cache | `<data>/cache` |
| `CALIBRATED_CHAT_PARALLEL` | llama.cpp: chat requests decoded together (continuous batching); `1` answers one at a time | `16` |
| `CALIBRATED_CHAT_LOGPROBS` | `0`: the `openai` backend asks for no log probabilities (faster servers, fewer signals) | `1` |
| `CALIBRATED_CHAT_SHARE_CPU` | `1`: the llama.cpp backend takes half the cores, fixed (for processes that cannot see each other) | its share among the llama.cpp processes it finds |
| `CALIBRATED_CHAT_PEERS_DIR` | where llama.cpp processes note themselves to share the cores | `<temp dir>/calibrated-chat-llama-<uid>` |
| `CALIBRATED_CHAT_MAX_WAITING_PER_USER` | web app: questions one signed-in user (or API key) may have waiting or being answered (`--max-waiting-per-user`) | `4` |
| `CALIBRATED_CHAT_VISITOR_MAX_WAITING` | web app: the same for a visitor without a sign-in, per address (`--visitor-max-waiting`) | `2` |
| `CALIBRATED_CHAT_VISITOR_QUESTIONS_PER_MINUTE` | web app: questions a visitor without a sign-in may ask in any minute, per address | `6` |
| `CALIBRATED_CHAT_TRUSTED_PROXIES` | the web app's reverse proxies (IPs or CIDR networks, comma-separated) whose `X-Forwarded-For` names the caller's address (`--trusted-proxy`) | none: forwarded headers are ignored |

Nothing is ever written inside the installed package: the maps shipped there are the
read-only first version, and new versions go to `<data>/maps`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = [
    "ModelConfig",
    "ENV_PREFIX",
    "set_offline_env",
    "model_config_from_env",
    "explicit_maps_dir",
    "default_data_dir",
    "space_storage",
    "lost_on_restart",
    "SPACE_STORAGE",
    "default_prompt",
    "DEFAULT_PROMPT",
]

ENV_PREFIX = "CALIBRATED_CHAT_"
DEFAULT_PROMPT = "confidence_tags"  # the prompt (prompts/confidence_tags.toml) the shipped maps were fitted for
SPACE_STORAGE = Path("/data")  # where a Hugging Face Space mounts its persistent storage, once the owner turns it on


def default_prompt() -> str:
    """The prompt id every command uses unless told otherwise: CALIBRATED_CHAT_PROMPT, else DEFAULT_PROMPT."""
    return os.environ.get(ENV_PREFIX + "PROMPT") or DEFAULT_PROMPT


@dataclass(frozen=True)
class ModelConfig:
    model: str | None = None  # HF id, local folder or .gguf path; None = embedded default
    backend: str = "auto"  # "auto" picks llama.cpp for GGUF on CPU when installed, else transformers
    device: str = "auto"  # "auto": CUDA when available, else CPU
    dtype: str = "auto"  # "auto": bfloat16 on CUDA, float32 on CPU
    threads: int | None = None  # CPU threads; None = all cores
    parallel: int = 16  # llama.cpp: chat requests decoded together (continuous batching, at most 16); 1 = in turn
    cache_dir: Path | None = None  # converted GGUF models and the llama.cpp self-test; None = <data>/cache
    base_url: str | None = None  # the "openai" backend's server (OpenAI-compatible API), e.g. http://host:8000/v1
    api_key_env: str = "OPENAI_API_KEY"  # the variable holding that server's key, read when the backend is built
    logprobs: bool = True  # the "openai" backend asks for token log probabilities (False: faster, fewer signals)
    chat_template: Path | None = None  # a Jinja chat template file over the model's own (a base model has none)

    @property
    def cache_folder(self) -> Path:
        """`cache_dir`, else `<data folder>/cache`."""
        return Path(self.cache_dir).expanduser() if self.cache_dir is not None else default_data_dir() / "cache"

    def with_overrides(self, **changes) -> "ModelConfig":
        """A copy with the given non-None fields replaced (for CLI flags over env)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def model_config_from_env(env: dict | None = None) -> ModelConfig:
    """Read `CALIBRATED_CHAT_*` variables into a ModelConfig."""
    env = os.environ if env is None else env
    get = lambda name: env.get(ENV_PREFIX + name) or None  # noqa: E731
    threads, parallel = get("THREADS"), get("PARALLEL")
    return ModelConfig(
        model=get("MODEL"),
        backend=get("BACKEND") or "auto",
        device=get("DEVICE") or "auto",
        dtype=get("DTYPE") or "auto",
        threads=int(threads) if threads else None,
        parallel=int(parallel) if parallel else ModelConfig.parallel,
        cache_dir=Path(get("CACHE_DIR")) if get("CACHE_DIR") else None,
        base_url=get("BASE_URL"),
        api_key_env=get("API_KEY_ENV") or "OPENAI_API_KEY",
        logprobs=(get("LOGPROBS") or "1").strip().lower() not in ("0", "false", "no"),
        chat_template=Path(get("CHAT_TEMPLATE")) if get("CHAT_TEMPLATE") else None,
    )


def set_offline_env() -> None:
    """Forbid every hub download: models come from packages or local paths only."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def explicit_maps_dir(env: dict | None = None) -> Path | None:
    """`CALIBRATED_CHAT_MAPS_DIR` when set (a maps folder used alone), else None."""
    env = os.environ if env is None else env
    value = env.get(ENV_PREFIX + "MAPS_DIR")
    return Path(value) if value else None


def space_storage(env: dict | None = None) -> Path | None:
    """The persistent storage of the Hugging Face Space this runs as (SPACE_ID set, SPACE_STORAGE a writable
    folder), else None. Only on a Space: elsewhere a /data folder may belong to something else."""
    env = os.environ if env is None else env
    if not env.get("SPACE_ID"):
        return None
    return SPACE_STORAGE if SPACE_STORAGE.is_dir() and os.access(SPACE_STORAGE, os.W_OK | os.X_OK) else None


def lost_on_restart(data_dir: Path, env: dict | None = None) -> bool:
    """True when this runs as a Space and `data_dir` is not on its persistent storage: a restart empties it."""
    env = os.environ if env is None else env
    if not env.get("SPACE_ID"):
        return False
    storage = space_storage(env)
    return storage is None or not Path(data_dir).resolve().is_relative_to(storage.resolve())


def default_data_dir(env: dict | None = None) -> Path:
    """`CALIBRATED_CHAT_DATA_DIR`; else, on a Space with persistent storage, `/data/calibrated-chat`; else
    the user data folder that `platformdirs` names."""
    env = os.environ if env is None else env
    value = env.get(ENV_PREFIX + "DATA_DIR")
    if value:
        return Path(value).expanduser()
    storage = space_storage(env)
    if storage is not None:
        return storage / "calibrated-chat"
    from platformdirs import user_data_dir

    return Path(user_data_dir("calibrated-chat", appauthor=False))
