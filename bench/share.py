"""`python -m bench share`: two llama.cpp processes on one machine, with llama.cpp's threads spinning
while they wait, sleeping (OMP_WAIT_POLICY=PASSIVE), and the backend's share mode (half the cores each).

    python -m bench share [--questions 4] [--max-new-tokens 48] [--out bench/SHARE.md] [--json]

For each setting, one worker process loads the default GGUF and answers the first `questions`
bench questions greedily (the chat's prompt, `max_new_tokens` each) alone; then two workers do
the same at once (both load first, then start together). Each worker times only its answering.
The figures are ratios measured in the same run: a worker's tokens per second beside another,
and the pair's together, over the same setting's one alone; and each setting alone over the
libgomp default alone. Settings (the first five give each worker every core, fixed):

- spinning: OMP_WAIT_POLICY=ACTIVE, threads spin at every barrier until released;
- libgomp default: GOMP_SPINCOUNT=300000, what an unset policy means (the backend's default);
- passive: OMP_WAIT_POLICY=PASSIVE, waiting threads sleep at once;
- short spin: GOMP_SPINCOUNT=1000, the spin libgomp itself uses when it sees more threads than cores;
- every core: neither set, every core (what the backend did before it counted its peers);
- default now: the backend's default: each worker takes its share of the cores among the llama.cpp
  processes it finds (`llamacpp_peers`), all of them alone, half beside the other;
- share mode: CALIBRATED_CHAT_SHARE_CPU=1, so the backend takes half the cores (`llamacpp_c.shared_threads`);
- 1 thread passive: as passive with `--threads 1`, the cores split by hand, for reference.

Each run's workers note themselves in a folder of their own (CALIBRATED_CHAT_PEERS_DIR), so
other llama.cpp processes on the machine do not change their share.

Figures only: nothing here asserts on time. The machine's load average at the start is recorded.
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

from assistant.answering.prompts import load_prompt
from assistant.core.config import DEFAULT_PROMPT, ModelConfig
from assistant.models.backend import GenerationOptions
from assistant.models.llamacpp import LlamaCppBackend  # llama_cpp itself loads when a backend is built
from assistant.models.llamacpp_c import available_cores
from assistant.models.llamacpp_peers import PEERS_DIR_ENV
from bench.questions import QUESTIONS
from bench.system import machine_info, run_stamp

__all__ = ["SETTINGS", "main", "run_share", "share_ratios"]

ALL = "all"  # every core, fixed: how the wait policies are compared
# name -> (environment the workers get, threads per worker: ALL, a number, or None for the backend's default)
SETTINGS: dict[str, tuple[dict[str, str], int | str | None]] = {
    "spinning": ({"OMP_WAIT_POLICY": "ACTIVE"}, ALL),
    "libgomp default": ({"GOMP_SPINCOUNT": "300000"}, ALL),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, ALL),
    "short spin": ({"GOMP_SPINCOUNT": "1000"}, ALL),
    "every core": ({}, ALL),
    "default now": ({}, None),
    "share mode": ({"CALIBRATED_CHAT_SHARE_CPU": "1"}, None),
    "1 thread passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, 1),
}
_OMP_NAMES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "CALIBRATED_CHAT_SHARE_CPU")  # only what a setting sets
_REFERENCE = "libgomp default"


def _worker(questions: int, max_new_tokens: int, threads: int | None) -> int:
    """Load the model, say ready, wait for a line on stdin, answer; print one JSON line."""
    backend = LlamaCppBackend(ModelConfig(threads=threads))
    prompt = load_prompt(DEFAULT_PROMPT)
    options = GenerationOptions(max_new_tokens=max_new_tokens)
    backend.stream(prompt.messages(QUESTIONS[-1][1]), options).drain()  # warm: the shared prefix cached
    print("ready", flush=True)
    sys.stdin.readline()
    start, tokens = time.perf_counter(), 0
    for _, question in QUESTIONS[:questions]:
        tokens += backend.stream(prompt.messages(question), options).drain()[1].tokens
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": round(seconds, 3), "tokens": tokens, "threads": backend.threads,
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                      "gomp_spincount": os.environ.get("GOMP_SPINCOUNT")}), flush=True)
    backend.close()
    return 0


def _start(setting: str, questions: int, max_new_tokens: int, peers: str) -> subprocess.Popen:
    extra, threads = SETTINGS[setting]
    threads = available_cores() if threads == ALL else threads
    env = {k: v for k, v in os.environ.items() if k not in _OMP_NAMES}
    env.update(extra, **{PEERS_DIR_ENV: peers})
    command = [sys.executable, "-m", "bench.share", "--worker", "--questions", str(questions),
               "--max-new-tokens", str(max_new_tokens)] + (["--threads", str(threads)] if threads else [])
    proc = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        proc.kill()
        raise RuntimeError(f"bench share worker ({setting}) did not start: exit {proc.wait()}")
    return proc


def _run_together(setting: str, n: int, questions: int, max_new_tokens: int, timeout: float) -> list[dict]:
    """Start `n` workers of `setting`, let them answer at once; each one's JSON result."""
    with tempfile.TemporaryDirectory(prefix="bench-share-peers-") as peers:
        return _answer_together(setting, n, questions, max_new_tokens, timeout, peers)


def _answer_together(setting: str, n: int, questions: int, max_new_tokens: int, timeout: float,
                     peers: str) -> list[dict]:
    procs = [_start(setting, questions, max_new_tokens, peers) for _ in range(n)]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    try:
        return [json.loads(proc.communicate(timeout=timeout)[0].strip().splitlines()[-1]) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def share_ratios(alone: dict, pair: list[dict], reference_alone: dict) -> dict:
    """Ratios of tokens per second: each of a pair over alone, the pair's sum over alone, alone over the reference.

    >>> share_ratios({"seconds": 2.0, "tokens": 100}, [{"seconds": 4.0, "tokens": 100}] * 2,
    ...              {"seconds": 2.0, "tokens": 100})
    {'each_of_two_over_alone': 0.5, 'two_together_over_alone': 1.0, 'alone_over_reference': 1.0}
    """
    def rate(r):
        return r["tokens"] / r["seconds"]

    each = [rate(r) / rate(alone) for r in pair]
    return {"each_of_two_over_alone": round(min(each), 3),
            "two_together_over_alone": round(sum(rate(r) for r in pair) / rate(alone), 3),
            "alone_over_reference": round(rate(alone) / rate(reference_alone), 3)}


def run_share(questions: int = 4, max_new_tokens: int = 48, repeats: int = 3, settings=tuple(SETTINGS),
              timeout: float = 600.0) -> dict:
    """Every setting alone, then two at once, `repeats` times each, the best run counting (interference from
    whatever else runs only ever slows a run down); the best runs and the ratios."""
    result = {"machine": machine_info(), "questions": questions, "max_new_tokens": max_new_tokens,
              "repeats": repeats, "settings": {}}
    for setting in dict.fromkeys((_REFERENCE, *settings)):
        alone = min((_run_together(setting, 1, questions, max_new_tokens, timeout)[0] for _ in range(repeats)),
                    key=lambda r: r["seconds"])
        pair = min((_run_together(setting, 2, questions, max_new_tokens, timeout) for _ in range(repeats)),
                   key=lambda rs: max(r["seconds"] for r in rs))
        result["settings"][setting] = {"alone": alone, "pair": pair}
    reference = result["settings"][_REFERENCE]["alone"]
    for entry in result["settings"].values():
        entry["ratios"] = share_ratios(entry["alone"], entry["pair"], reference)
    return result


def share_markdown(result: dict, command: str) -> str:
    lines = ["# Several llama.cpp processes on one machine", "",
             run_stamp(command, result["machine"]) + f"{result['questions']} questions of up to "
             f"{result['max_new_tokens']} tokens per worker, the default GGUF, greedy.", "",
             "Ratios of tokens per second, measured in this run. `each of two / alone`: the slower of two "
             "workers running at once over one worker alone with the same setting (0.5 is a fair half of "
             "the machine). `two together / alone`: the pair's summed rate over one alone. `alone / libgomp "
             "default alone`: what the setting costs a process that has the machine to itself.", "",
             "| setting | threads each | s alone | s each of two | each of two / alone | two together / alone "
             "| alone / libgomp default alone |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, entry in result["settings"].items():
        r = entry["ratios"]
        pair = " / ".join(str(p["seconds"]) for p in entry["pair"])
        lines.append(f"| {name} | {entry['alone']['threads']} | {entry['alone']['seconds']} | {pair} | "
                     f"{r['each_of_two_over_alone']} | {r['two_together_over_alone']} | {r['alone_over_reference']} |")
    return "\n".join(lines) + "\n\n```json\n" + json.dumps(result, indent=1) + "\n```\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench share", description=__doc__.split("\n")[0])
    p.add_argument("--questions", type=int, default=4, help="bench questions per worker (default 4)")
    p.add_argument("--max-new-tokens", type=int, default=48, help="new tokens per answer at most (default 48)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each measurement; the best counts (default 3)")
    p.add_argument("--settings", default=",".join(SETTINGS),
                   help=f"comma-separated, of: {', '.join(SETTINGS)} (the libgomp default always runs)")
    p.add_argument("--out", type=Path, help="also write the result as markdown here (bench/SHARE.md)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(args.questions, args.max_new_tokens, args.threads)
    chosen = tuple(name.strip() for name in args.settings.split(","))
    unknown = [name for name in chosen if name not in SETTINGS]
    if unknown:
        p.error(f"unknown setting(s) {unknown}: choose from {', '.join(SETTINGS)}")
    result = run_share(args.questions, args.max_new_tokens, args.repeats, chosen)
    command = (f"python -m bench share --questions {args.questions} --max-new-tokens {args.max_new_tokens} "
               f"--repeats {args.repeats}" + (f' --settings "{args.settings}"' if chosen != tuple(SETTINGS) else ""))
    text = share_markdown(result, command)
    print(json.dumps(result, indent=1) if args.json else text.split("\n```json")[0])
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
