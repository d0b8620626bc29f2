"""What reading the model's own probabilities costs: the chat's answers with token evidence and the
confidence probe on, against the same backend with both off, in one run, turn by turn.

    python -m bench.evidence [--questions 20] [--repeats 3] [--out bench/EVIDENCE.md]

Per question and setting, the best of `repeats` wall times of a whole answer (prompt, decoding,
and for "on" the probe) counts; the ratio is on/off summed over the questions. Figures only:
nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

from assistant.answering.prompts import load_prompt
from assistant.core.config import DEFAULT_PROMPT, ModelConfig
from assistant.models.backend import GenerationOptions
from assistant.models.llamacpp import LlamaCppBackend
from bench.questions import QUESTIONS

__all__ = ["evidence_cost"]


def _answer_seconds(backend, prompt, question: str, options) -> tuple[float, int]:
    start = time.perf_counter()
    _, stats = backend.stream(prompt.messages(question), options).drain()
    return time.perf_counter() - start, stats.tokens


def evidence_cost(n_questions: int = 20, repeats: int = 3, threads: int | None = None) -> dict:
    """Seconds per answer with evidence and probe on vs off (the reference), and their ratio."""
    backend = LlamaCppBackend(ModelConfig(threads=threads))
    prompt = load_prompt(DEFAULT_PROMPT)
    on = GenerationOptions(probe=prompt.probe)
    off = replace(on, probe=None)
    questions = [q for _, q in QUESTIONS[:n_questions]]
    _answer_seconds(backend, prompt, questions[0], on)  # warm-up: caches and the shared prefix
    best = {"on": [], "off": []}
    tokens = 0
    for question in questions:
        times = {"on": [], "off": []}
        for _ in range(repeats):  # alternate, so the machine's noise falls on both
            for name, options in (("off", off), ("on", on)):
                backend.evidence = name == "on"
                seconds, n = _answer_seconds(backend, prompt, question, options)
                times[name].append(seconds)
        tokens += n
        for name in times:
            best[name].append(min(times[name]))
    backend.close()
    total_on, total_off = sum(best["on"]), sum(best["off"])
    return {"questions": len(questions), "repeats": repeats, "tokens": tokens,
            "seconds_on": round(total_on, 3), "seconds_off": round(total_off, 3),
            "ratio_on_over_off": round(total_on / total_off, 4), "machine": platform.processor() or platform.machine()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.evidence", description=__doc__.split("\n")[0])
    p.add_argument("--questions", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int)
    p.add_argument("--out", type=Path, help="also write the result as a markdown table here")
    args = p.parse_args(argv)
    result = evidence_cost(args.questions, args.repeats, args.threads)
    print(json.dumps(result))
    if args.out:
        args.out.write_text(
            "# Cost of token evidence and the confidence probe\n\n"
            f"`python -m bench.evidence --questions {args.questions} --repeats {args.repeats}`, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n\n"
            "| answers | tokens | s with evidence + probe | s without (reference) | ratio |\n| --- | --- | --- | --- | --- |\n"
            f"| {result['questions']} | {result['tokens']} | {result['seconds_on']} | {result['seconds_off']} | "
            f"{result['ratio_on_over_off']} |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
