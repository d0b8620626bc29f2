"""The answering path under the clock: time to first token and pipeline overhead through
`Assistant.ask_stream`, and `calibrate collect` throughput at several batch sizes.

Overhead outside generation = prompt rendering (timed here: `assistant.answering.answer.conversation`, the same
call `ask_stream` makes) + parse + embed/classify + calibrate (from `Reply.timings_ms`).
When no calibration map is active for the model, a synthetic bench map (five knots, not a
fit) is stored in a temporary folder, so the calibrate step still runs a real map lookup.
"""

from __future__ import annotations

import time
from pathlib import Path

from assistant.answering.answer import conversation
from assistant.answering.prompts import load_prompt
from assistant.calibrated.maps import CalibrationMaps, DomainMap
from assistant.calibrated.mapstore import MapStore, map_store
from assistant.core.config import DEFAULT_PROMPT
from assistant.core.domains import DOMAINS
from assistant.models.backend import GenerationOptions
from bench.questions import QUESTIONS
from bench.system import summarize
from calibration.labelling.collect import collect
from calibration.labelling.datagen import make_questions

__all__ = ["bench_maps_dir", "collect_items", "collect_throughput", "pipeline_timings"]

OVERHEAD_STEPS = ("parse", "embed", "calibrate")  # Reply.timings_ms keys that are not generation


def bench_maps_dir(folder: Path, model_id: str, prompt_id: str) -> tuple[Path, str]:
    """A maps folder whose active map fits (model_id, prompt_id), and what it holds.

    `folder`, holding a copy of the project's active map when it fits; else a synthetic map.
    """

    try:
        active = map_store().active(model_id, prompt_id)
    except Exception:  # an invalid active map: the bench still runs, on its own map
        active = None
    if active is not None and active.matches(model_id, prompt_id):
        store = MapStore(folder)
        store.activate(store.save_new(active))
        return folder, f"active map {active.version}"
    knots = dict(x=(0.0, 0.25, 0.5, 0.75, 1.0), y=(0.05, 0.2, 0.4, 0.55, 0.7))
    maps = {
        d: DomainMap(d, n_samples=100, threshold=0.5, **knots)
        for d in ("general", "math", "factual", "science", "reasoning")
    }
    store = MapStore(folder)
    version = store.save_new(
        CalibrationMaps(
            model=model_id,
            prompt=prompt_id,
            version="unsaved",
            fitted_at="1970-01-01T00:00:00Z",
            maps=maps,
            notes="synthetic map written by bench/ (not a fit)",
        )
    )
    store.activate(version)
    return Path(folder), "synthetic bench map (no active map fits this model)"


def pipeline_timings(assistant, n_questions: int) -> dict:
    """TTFT, total request time and overhead outside generation over the first `n_questions` QUESTIONS.

    One untimed warm-up question first (the embedding model's first call is slower).
    """
    assistant.ask(QUESTIONS[-1][1])
    ttft, total, overhead, render, share = [], [], [], [], []
    steps = {s: [] for s in OVERHEAD_STEPS}
    tokens = 0
    for _, question in QUESTIONS[:n_questions]:
        t = time.perf_counter()
        conversation(assistant.prompt, question, None)  # what ask_stream renders first
        rendered = (time.perf_counter() - t) * 1000
        start = time.perf_counter()
        first, reply = None, None
        for update in assistant.ask_stream(question):
            if first is None:
                first = time.perf_counter() - start
            reply = update.reply or reply
        seconds = time.perf_counter() - start
        ms = sum(reply.timings_ms.get(s, 0.0) for s in OVERHEAD_STEPS) + rendered
        ttft.append(first * 1000)
        total.append(seconds * 1000)
        overhead.append(ms)
        render.append(rendered)
        share.append(100 * ms / (seconds * 1000))
        for s in OVERHEAD_STEPS:
            steps[s].append(reply.timings_ms.get(s, 0.0))
        tokens += reply.tokens
    return {
        "questions": n_questions,
        "ttft_ms": summarize(ttft, 1),
        "total_ms": summarize(total, 1),
        "overhead_ms": summarize(overhead, 3),
        "overhead_pct": summarize(share, 3),
        "overhead_pct_of_all": round(100 * sum(overhead) / sum(total), 3),
        "steps_ms": {"render": summarize(render, 3), **{s: summarize(v, 3) for s, v in steps.items()}},
        "mean_tokens": round(tokens / n_questions, 1),
    }


def collect_items(n: int, seed: int = 0) -> list[dict]:
    """n generated questions, the four domains interleaved (a prefix of a longer run)."""
    per = -(-n // len(DOMAINS))
    pools = [make_questions(d, per, seed) for d in DOMAINS]
    mixed = [pool[i] for i in range(per) for pool in pools]
    return mixed[:n]


def collect_throughput(
    backend,
    items: list[dict],
    batch_sizes,
    folder: Path,
    max_new_tokens: int,
    prompt_id: str = DEFAULT_PROMPT,
) -> dict:
    """Questions/minute of `calibration.labelling.collect.collect` over `items` per batch size (fresh out file each)."""
    prompt = load_prompt(prompt_id)
    options = GenerationOptions(max_new_tokens=max_new_tokens)
    out = {}
    for size in batch_sizes:
        path = Path(folder) / f"records-{type(backend).__name__}-b{size}.jsonl"
        summary = collect(items, path, backend, prompt, options=options, batch_size=size, progress=False)
        out[str(size)] = {
            "questions": summary.written,
            "failed": summary.failed,
            "seconds": round(summary.seconds, 2),
            "questions_per_min": round(60 * summary.written / summary.seconds, 1),
        }
    return out
