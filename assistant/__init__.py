"""calibrated-chat's answering side: a local model answers, states its confidence,
and the confidence is recalibrated for the question's domain.

    >>> from assistant import Assistant
    >>> assistant = Assistant.from_config()            # doctest: +SKIP
    >>> assistant.ask("What is 17 + 25?").confidence  # doctest: +SKIP

Importing this package is cheap: torch, transformers and llama.cpp load only when a
backend is built.
"""

from assistant.core.config import ModelConfig, model_config_from_env
from assistant.core.errors import (
    CalibratedChatError,
    DataError,
    InputError,
    MapError,
    ModelLoadError,
    ModelNotFoundError,
    ParseError,
    StoreError,
    TemplateError,
)
from assistant.core.reply import REVIEW_REASONS, Reply
from assistant.models.backend import Backend, GenerationOptions, GenerationStats, run_to_end
from assistant.models.fake import FakeBackend
from assistant.models.sources import default_model_path
from assistant.parsing import ParsedOutput, parse_output, parse_output_strict, split_reasoning
from assistant.pipeline import Assistant, Update
from assistant.prompts import Prompt, list_prompts, load_prompt

__all__ = [
    "Assistant",
    "Backend",
    "CalibratedChatError",
    "DataError",
    "FakeBackend",
    "GenerationOptions",
    "GenerationStats",
    "InputError",
    "MapError",
    "ModelConfig",
    "ModelLoadError",
    "ModelNotFoundError",
    "ParseError",
    "ParsedOutput",
    "Prompt",
    "REVIEW_REASONS",
    "Reply",
    "StoreError",
    "TemplateError",
    "Update",
    "default_model_path",
    "list_prompts",
    "load_prompt",
    "model_config_from_env",
    "parse_output",
    "parse_output_strict",
    "run_to_end",
    "split_reasoning",
]
