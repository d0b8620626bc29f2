"""`python -m bench`: one run that measures speed, overhead, load times, throughput and memory side by side.

    python -m bench [--json] [--quick] [--out bench/RESULTS.md] [--threads N] [--sections a,b,...]
    python -m bench load [--clients 16 --questions 5]          # the concurrent-users test (bench/load.py)

Sections (all by default): bandwidth, load, decode, pipeline, collect, app. Each figure is a
measured number or "skipped: <reason>" (a section that fails is reported as skipped with its
error, and the run goes on). Timings are figures, never pass/fail checks: the "target" column
only compares them with the product's speed goals. Measure on a quiet machine: every figure here
shares the CPU with whatever else runs, and the load average at the start is recorded.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from assistant.answering.pipeline import Assistant
from assistant.core.config import DEFAULT_PROMPT, ModelConfig, set_offline_env
from assistant.models.llamacpp import N_CTX
from assistant.models.registry import llama_cpp_installed, load_backend
from assistant.models.sources import default_model_path, resolve_model
from bench import answering, decode, system
from bench.questions import QUESTIONS
from bench.report import format_table, results_markdown, table_rows

__all__ = ["SECTIONS", "Settings", "main", "parse_args", "run_bench"]

log = logging.getLogger("bench")

SECTIONS = ("bandwidth", "load", "decode", "pipeline", "collect", "app")


@dataclass(frozen=True)
class Settings:
    threads: int = os.cpu_count() or 1  # CPU threads for every engine (the same for all)
    decode_tokens: int = 200  # new tokens per decode run (greedy; fewer if the model stops)
    decode_repeats: int = 2  # decode runs per engine; the fastest counts
    questions: int = 20  # short questions for TTFT and overhead (at most 20)
    collect_questions: int = 32  # generated questions per collect batch size
    batch_sizes: tuple = (1, 4, 8, 16)  # collect batch sizes (every backend)
    collect_max_tokens: int = 256  # max new tokens per collected answer (the `calibrate collect` default)
    bandwidth_mb: int = 1024  # array size for the read-bandwidth test
    app_questions: int = 3  # questions answered through the app before reading its peak memory
    app_max_new_tokens: int | None = None  # --max-new-tokens for the app (None: its default)
    load_backends: tuple = ("auto", "transformers")  # backends whose cold/warm load is timed
    transformers: bool = True  # also measure the transformers backend (decode, batched collect)
    sections: tuple = SECTIONS  # which sections run

    @classmethod
    def quick(cls) -> "Settings":
        """Fewer questions and repeats: a few minutes instead of a quarter of an hour."""
        return cls(decode_repeats=3, questions=10, collect_questions=16)


def _section(name: str, settings: Settings, fn, *args) -> dict:
    if name not in settings.sections:
        return {"skipped": "not selected (--sections)"}
    log.info("bench: %s …", name)
    start = time.perf_counter()
    try:
        out = fn(*args)
    except Exception as err:  # one failing section must not lose the others' figures
        log.exception("bench section %s failed", name)
        return {"skipped": f"error: {type(err).__name__}: {err}"}
    out["section_s"] = round(time.perf_counter() - start, 1)
    return out


def run_bench(settings: Settings, work: Path) -> dict:
    """Run the selected sections with scratch files under `work`; return the results as one dict."""
    set_offline_env()
    cache = work / "model-cache"  # empty: the load section's first transformers load is a cold one
    result: dict = {"meta": _meta(settings)}
    backends: dict = {}

    def backend(name: str):
        if name not in backends:
            # The user's converted-model cache: only the load section needs an empty one.
            backends[name] = load_backend(ModelConfig(backend=name, threads=settings.threads))
        return backends[name]

    result["bandwidth"] = _section("bandwidth", settings, system.read_bandwidth, settings.bandwidth_mb)
    result["load"] = _section(
        "load",
        settings,
        lambda: {b: decode.load_times(b, cache, settings.threads) for b in settings.load_backends},
    )
    raw_ok = llama_cpp_installed()
    result["decode"] = _section(
        "decode", settings, _decode_section, settings, backend, raw_ok, result["bandwidth"]
    )
    maps_dir, maps_note = answering.bench_maps_dir(
        work / "maps", resolve_model(None).model_id, DEFAULT_PROMPT
    )
    result["meta"]["maps"] = maps_note
    result["pipeline"] = _section("pipeline", settings, _pipeline_section, settings, maps_dir)
    result["collect"] = _section("collect", settings, _collect_section, settings, backend, work)
    backends.clear()
    result["app"] = _section("app", settings, _app_section, settings, maps_dir, work)
    return result


def _meta(settings: Settings) -> dict:
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": system.machine_info(),
        "libraries": system.library_versions(),
        "command": "python -m bench " + shlex.join(sys.argv[1:]),
        "settings": asdict(settings),
    }


def _decode_section(settings: Settings, backend, raw_ok: bool, bandwidth: dict) -> dict:
    n, reps = settings.decode_tokens, settings.decode_repeats
    out = {
        "method": "tokens/s = (produced - 1) / (last token time - first token time); the first token "
        "(prefill) is excluded; greedy, batch 1, best of repeats; project and raw llama.cpp runs alternate"
    }
    default = backend("auto")
    if raw_ok:
        raw = decode.RawLlamaCpp(default_model_path(), settings.threads, N_CTX)
        try:
            project, theirs = decode.interleaved_decode(default, raw, n, reps)
        finally:
            raw.close()
        out["llamacpp_raw"] = theirs
        rates = project["tokens_per_s"], theirs["tokens_per_s"]
        out["ratio_project_to_raw"] = round(rates[0] / rates[1], 3) if all(rates) else None
        out["same_text"] = project["text"] == theirs["text"]
    else:
        project = decode.backend_decode(default, n, reps)
        out["llamacpp_raw"] = {"skipped": "llama_cpp is not importable (pip install llama-cpp-python)"}
    out["project"] = {"backend": type(default).__name__, **project}
    if settings.transformers:
        out["transformers"] = {
            "backend": "TransformersBackend",
            **decode.backend_decode(backend("transformers"), n, reps),
        }
    else:
        out["transformers"] = {"skipped": "not selected (--no-transformers)"}
    for key in ("project", "transformers") if settings.transformers else ("project",):
        out[key]["bound"] = _bound(
            backend("auto" if key == "project" else "transformers"),
            out[key]["tokens_per_s"],
            bandwidth,
            settings.threads,
        )
    for run in (out["project"], out["transformers"], out["llamacpp_raw"]):  # a sample, not the whole essay
        if "text" in run:
            run["text"] = run["text"][:160]
    return out


def _bound(backend, tokens_per_s, bandwidth: dict, threads: int) -> dict:
    """Memory-bandwidth bound on decode: every weight read once per token."""
    size, how = decode.weight_bytes(backend)
    key = f"gbps_{min(threads, 2)}t"
    if "skipped" in bandwidth or key not in bandwidth:
        return {"weight_bytes": size, "counted_as": how, "skipped": "no bandwidth figure (bandwidth section)"}
    bound = bandwidth[key] * 1e9 / size
    return {
        "weight_bytes": size,
        "counted_as": how,
        "bandwidth_used": key,
        "bound_tokens_per_s": round(bound, 1),
        "bound_1t_tokens_per_s": round(bandwidth["gbps_1t"] * 1e9 / size, 1),
        "achieved_fraction": round(tokens_per_s / bound, 4) if tokens_per_s else None,
    }


def _pipeline_section(settings: Settings, maps_dir: Path) -> dict:
    assistant = Assistant.from_config(ModelConfig(threads=settings.threads), maps_dir=maps_dir)
    out = answering.pipeline_timings(assistant, min(settings.questions, 20))
    out["backend"] = type(assistant.backend).__name__
    return out


def _collect_section(settings: Settings, backend, work: Path) -> dict:
    """`calibrate collect` questions/min per batch size: the default backend, and transformers."""
    items = answering.collect_items(settings.collect_questions)
    folder = work / "records"
    out = {"questions": len(items), "max_new_tokens": settings.collect_max_tokens}
    default = backend("auto")
    out["project"] = {
        "backend": type(default).__name__,
        **answering.collect_throughput(default, items, settings.batch_sizes, folder, settings.collect_max_tokens),
    }
    if settings.transformers and type(default).__name__ != "TransformersBackend":
        out["transformers"] = answering.collect_throughput(
            backend("transformers"), items, settings.batch_sizes, folder, settings.collect_max_tokens
        )
    else:
        out["transformers"] = {"skipped": "not selected (--no-transformers)" if not settings.transformers
                               else "the default backend is transformers"}
    runs = out["project"]
    if "1" in runs and "8" in runs and runs["1"]["questions_per_min"]:
        out["speedup_b8_over_b1"] = round(runs["8"]["questions_per_min"] / runs["1"]["questions_per_min"], 2)
    else:
        out["speedup_b8_over_b1"] = {"skipped": "needs batch sizes 1 and 8"}
    return out


def _app_section(settings: Settings, maps_dir: Path, work: Path) -> dict:
    from gradio_client import Client


    args = ["--data-dir", work / "app-data", "--maps-dir", maps_dir, "--threads", settings.threads]
    if settings.app_max_new_tokens:
        args += ["--max-new-tokens", settings.app_max_new_tokens]
    with system.AppProcess(args=args, log_path=work / "app.log") as app:
        ready = app.wait_ready()
        rss_ready = app.rss_mb()
        client = Client(app.url, verbose=False)
        answered = [client.predict(q, None, api_name="/ask") for _, q in QUESTIONS[: settings.app_questions]]
        return {
            "startup_to_ready_s": round(ready, 2),
            "rss_ready_mb": round(rss_ready, 1),
            "rss_after_mb": round(app.rss_mb(), 1),
            "peak_rss_mb": _round(app.peak_rss_mb(), 1),
            "questions_answered": sum(1 for r in answered if isinstance(r, dict) and "answer" in r),
        }


def _round(value, digits):
    return None if value is None else round(value, digits)


def _ints(text: str) -> tuple:
    return tuple(int(v) for v in text.split(",") if v.strip())


def _names(text: str) -> tuple:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown section(s) {unknown}: choose from {', '.join(SECTIONS)}")
    return names


def parse_args(argv=None) -> tuple[argparse.Namespace, Settings]:
    """Flags over the full (or --quick) settings."""
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0],
        epilog="`python -m bench load --help`: the concurrent-users test",
    )
    p.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout (the table goes to stderr)"
    )
    p.add_argument("--quick", action="store_true", help="fewer questions and repeats")
    p.add_argument("--out", type=Path, help="write the table, machine and command to this file (RESULTS.md)")
    p.add_argument("--threads", type=int, help="CPU threads for every engine (default: all cores)")
    p.add_argument("--tokens", type=int, dest="decode_tokens", help="new tokens per decode run (200)")
    p.add_argument("--repeats", type=int, dest="decode_repeats", help="decode runs per engine, best counts")
    p.add_argument("--questions", type=int, help="short questions for TTFT/overhead (20; --quick 10)")
    p.add_argument(
        "--collect-questions", type=int, help="generated questions per batch size (32; --quick 16)"
    )
    p.add_argument("--batch-sizes", type=_ints, help="collect batch sizes (1,4,8,16)")
    p.add_argument("--collect-max-tokens", type=int, help="max new tokens per collected answer (256)")
    p.add_argument("--bandwidth-mb", type=int, help="array size of the bandwidth test (1024)")
    p.add_argument(
        "--app-questions", type=int, help="questions asked through the app before reading memory (3)"
    )
    p.add_argument("--app-max-new-tokens", type=int, help="the app's --max-new-tokens (its default)")
    p.add_argument(
        "--load-backends",
        type=lambda t: tuple(t.split(",")),
        help="backends whose load is timed (auto,transformers)",
    )
    p.add_argument(
        "--no-transformers",
        dest="transformers",
        action="store_const",
        const=False,
        help="skip the transformers backend in decode and collect",
    )
    p.add_argument("--sections", type=_names, help=f"comma list of sections to run ({','.join(SECTIONS)})")
    p.add_argument("--work-dir", type=Path, help="keep scratch files here (default: a temporary folder)")
    args = p.parse_args(argv)
    settings = Settings.quick() if args.quick else Settings()
    fields = {k: v for k, v in vars(args).items() if k in Settings.__dataclass_fields__ and v is not None}
    return args, replace(settings, **fields)


def main(argv=None) -> int:
    args, settings = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    for noisy in ("httpx", "sentence_transformers", "transformers", "calibration", "assistant"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        result = run_bench(settings, work)
    table = format_table(table_rows(result))
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(results_markdown(result), encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
