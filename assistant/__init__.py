"""calibrated-chat's answering side: a local model answers, states its confidence,
and the confidence is recalibrated for the question's domain.

    >>> from assistant import Assistant
    >>> assistant = Assistant.from_config()            # doctest: +SKIP
    >>> assistant.ask("What is 17 + 25?").confidence  # doctest: +SKIP

Importing this package is cheap: torch, transformers and llama.cpp load only when a
backend is built.
"""

import importlib

# name -> the module that defines it; imported on first use (PEP 562), so `import assistant` (and
# `python -m assistant.models.native`, run before anything else is installed) stays cheap.
_EXPORTS = {
    "ModelConfig": "assistant.core.config",
    "model_config_from_env": "assistant.core.config",
    "CalibratedChatError": "assistant.core.errors",
    "DataError": "assistant.core.errors",
    "InputError": "assistant.core.errors",
    "MapError": "assistant.core.errors",
    "ModelLoadError": "assistant.core.errors",
    "ModelNotFoundError": "assistant.core.errors",
    "StoreError": "assistant.core.errors",
    "TemplateError": "assistant.core.errors",
    "REVIEW_REASONS": "assistant.core.reply",
    "Reply": "assistant.core.reply",
    "Backend": "assistant.models.backend",
    "GenerationOptions": "assistant.models.backend",
    "GenerationStats": "assistant.models.backend",
    "Capabilities": "assistant.models.backend",
    "Stream": "assistant.models.backend",
    "FakeBackend": "assistant.models.fake",
    "default_model_path": "assistant.models.sources",
    "ParsedOutput": "assistant.answering.parsing",
    "parse_output": "assistant.answering.parsing",
    "split_reasoning": "assistant.answering.parsing",
    "Assistant": "assistant.answering.pipeline",
    "Update": "assistant.answering.pipeline",
    "Prompt": "assistant.answering.prompts",
    "list_prompts": "assistant.answering.prompts",
    "load_prompt": "assistant.answering.prompts",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")


__all__ = [
    "Assistant",
    "Backend",
    "CalibratedChatError",
    "Capabilities",
    "DataError",
    "FakeBackend",
    "GenerationOptions",
    "GenerationStats",
    "InputError",
    "MapError",
    "ModelConfig",
    "ModelLoadError",
    "ModelNotFoundError",
    "ParsedOutput",
    "Prompt",
    "REVIEW_REASONS",
    "Reply",
    "StoreError",
    "Stream",
    "TemplateError",
    "Update",
    "default_model_path",
    "list_prompts",
    "load_prompt",
    "model_config_from_env",
    "parse_output",
    "split_reasoning",
]
