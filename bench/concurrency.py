"""`python -m bench concurrency`: `calibrate collect --concurrency 4` against `--concurrency 1` through
llama-cpp-python's server on this machine, with the server's `interrupt_requests` off and at its default.

    python -m bench concurrency [--questions 16] [--max-new-tokens 64] [--threads 2] [--out bench/CONCURRENCY.md]

Each server setting starts `python -m llama_cpp.server` on the default GGUF and runs
`calibrate collect` four times into fresh files, alternating 1, 4, 1, 4 concurrent requests over
the same generated math questions; the fastest run of each counts. The figures are the wall-time
ratio 4 / 1 from the same server, and how many of the records agree (same answer and token count)
and how many came back shorter with 4 at once. Figures only: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.system import LlamaServer, machine_info, run_stamp
from calibration.labelling.datagen import make_questions

__all__ = ["SERVER_SETTINGS", "main", "run_concurrency"]

KEY_ENV = "CC_BENCH_SERVER_KEY"
# label -> the server's --interrupt_requests. Its default, True, ends a streaming reply when another request
# waits; such a reply has no finish_reason, which the backend now refuses as an error, so with it a
# concurrent collect stops (bench/CONCURRENCY.md keeps the run from before, when it recorded cut-off answers).
SERVER_SETTINGS = {"interrupt_requests False": False}


def _collect(server: LlamaServer, data: Path, out: Path, concurrency: int, max_new_tokens: int) -> tuple[float, dict]:
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "calibration", "collect", "--backend", "openai", "--base-url", server.base_url,
               "--model", server.alias, "--api-key-env", KEY_ENV, "--data", str(data), "--out", str(out),
               "--concurrency", str(concurrency), "--max-new-tokens", str(max_new_tokens), "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, KEY_ENV: server.key}, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"calibrate collect --concurrency {concurrency} failed: {done.stderr[-2000:]}")
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return seconds, {r["id"]: r for r in records}


def _one_server(interrupt: bool, work: Path, data: Path, threads: int, max_new_tokens: int) -> dict:
    seconds, records = {1: [], 4: []}, {}
    with LlamaServer(threads=threads, interrupt_requests=interrupt) as server:
        for concurrency in (1, 4, 1, 4):
            s, records[concurrency] = _collect(server, data, work / f"c{concurrency}.jsonl", concurrency,
                                               max_new_tokens)
            seconds[concurrency].append(round(s, 2))
    one, four = records[1], records[4]
    return {"seconds": seconds, "ratio_4_over_1": round(min(seconds[4]) / min(seconds[1]), 3),
            "same_answers": sum(one[i]["answer"] == four[i]["answer"] and one[i]["tokens"] == four[i]["tokens"]
                                for i in one),
            "shorter_with_4": sum(four[i]["tokens"] < one[i]["tokens"] for i in one), "records": len(one)}


def run_concurrency(questions: int = 16, max_new_tokens: int = 64, threads: int = 2) -> dict:
    """Both server settings: the timings, the 4 / 1 ratio and how the records compare."""
    result = {"machine": machine_info(), "questions": questions, "max_new_tokens": max_new_tokens,
              "server_threads": threads, "servers": {}}
    with tempfile.TemporaryDirectory(prefix="bench-concurrency-") as folder:
        work = Path(folder)
        data = work / "questions.jsonl"
        items = make_questions("math", questions, seed=13)
        data.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
        for label, interrupt in SERVER_SETTINGS.items():
            result["servers"][label] = _one_server(interrupt, work, data, threads, max_new_tokens)
    return result


def concurrency_markdown(result: dict, command: str) -> str:
    lines = ["# calibrate collect --concurrency 4 vs 1 through llama_cpp.server", "",
             run_stamp(command, result["machine"]) + f"{result['questions']} generated math questions, up to {result['max_new_tokens']} tokens, server on "
             f"{result['server_threads']} threads; runs 1, 4, 1, 4, the fastest of each counting.", "",
             "| server | s with 1 | s with 4 | 4 / 1 | same answer and tokens | shorter with 4 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for label, r in result["servers"].items():
        lines.append(f"| {label} | {min(r['seconds'][1])} | {min(r['seconds'][4])} | {r['ratio_4_over_1']} | "
                     f"{r['same_answers']} / {r['records']} | {r['shorter_with_4']} |")
    return "\n".join(lines) + "\n\n```json\n" + json.dumps(result, indent=1) + "\n```\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench concurrency", description=__doc__.split("\n")[0])
    p.add_argument("--questions", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="the server's threads (default 2)")
    p.add_argument("--out", type=Path, help="also write the result as markdown here (bench/CONCURRENCY.md)")
    args = p.parse_args(argv)
    result = run_concurrency(args.questions, args.max_new_tokens, args.threads)
    command = (f"python -m bench concurrency --questions {args.questions} --max-new-tokens {args.max_new_tokens} "
               f"--threads {args.threads}")
    text = concurrency_markdown(result, command)
    print(text.split("\n```json")[0])
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
