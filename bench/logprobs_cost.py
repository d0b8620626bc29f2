"""`python -m bench.logprobs_cost`: what asking llama_cpp.server for log probabilities costs per answer.

    python -m bench.logprobs_cost [--questions 3] [--max-new-tokens 64] [--threads 2]

Starts `bench.system.LlamaServer` (the default GGUF) and answers the same bench questions, one
after another, through the chat's answering path three ways: `--backend openai` asking for
`logprobs` and 20 `top_logprobs` (what it does to read the confidence signals), the same without
them, and the local llama.cpp backend. Prints each answer's seconds and the ratios of the means,
all measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace

from assistant.answering.answer import stream_answer
from assistant.answering.prompts import load_prompt
from assistant.core.config import DEFAULT_PROMPT, ModelConfig
from assistant.models.backend import GenerationOptions
from assistant.models.llamacpp import LlamaCppBackend
from assistant.models.openai_compat import OpenAICompatBackend
from bench.questions import QUESTIONS
from bench.system import LlamaServer

__all__ = ["main", "run_cost"]

KEY_ENV = "CC_BENCH_LOGPROBS_KEY"


def _seconds(backend, prompt, questions, max_new_tokens) -> list[float]:
    times = []
    for _, question in questions:
        start = time.perf_counter()
        answer = stream_answer(backend, prompt, question, GenerationOptions(max_new_tokens=max_new_tokens))
        for _ in answer:
            pass
        times.append(round(time.perf_counter() - start, 3))
    return times


def run_cost(questions: int = 3, max_new_tokens: int = 64, threads: int = 2) -> dict:
    prompt, asked = load_prompt(DEFAULT_PROMPT), QUESTIONS[:questions]
    result = {"questions": questions, "max_new_tokens": max_new_tokens, "threads": threads, "seconds": {}}
    with LlamaServer(threads=threads) as server:
        os.environ[KEY_ENV] = server.key
        config = ModelConfig(model=server.alias, backend="openai", base_url=server.base_url, api_key_env=KEY_ENV)
        for name, logprobs in (("server, with logprobs", True), ("server, without logprobs", False)):
            backend = OpenAICompatBackend(replace(config, logprobs=logprobs))  # --no-logprobs when False
            result["seconds"][name] = _seconds(backend, prompt, asked, max_new_tokens)
    result["seconds"]["local backend"] = _seconds(LlamaCppBackend(ModelConfig(threads=threads)), prompt, asked,
                                                  max_new_tokens)
    means = {name: statistics.mean(s) for name, s in result["seconds"].items()}
    result["with_over_without"] = round(means["server, with logprobs"] / means["server, without logprobs"], 2)
    result["without_over_local"] = round(means["server, without logprobs"] / means["local backend"], 2)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.logprobs_cost", description=__doc__.split("\n\n")[0])
    p.add_argument("--questions", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    print(json.dumps(run_cost(args.questions, args.max_new_tokens, args.threads), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
