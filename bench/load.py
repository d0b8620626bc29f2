"""`python -m bench load`: many users at once against one app process: who gets an answer, and
who is told the app is busy.

    python -m bench load [--clients 16] [--questions 5] [--queue-size 8] [--parallel N] [--json] [--out bench/LOAD.md]

Starts `python app.py` with the default model and `--queue-size`, then runs N concurrent
`gradio_client` sessions, each asking M of the bench's short questions one after another
through `/ask`. Every request ends as exactly one of: answered (a Reply came back), rejected
(the queue was full: gradio's "Queue is full! Please try again."), error, or timeout. The
report says whether any request was lost (sent ≠ answered + rejected + error + timeout),
whether the app survived, latency p50/p95, and the app's resident memory over time.
A rejected client waits `pause_after_reject` seconds before its next question, like a person would.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from assistant.core.config import DEFAULT_PROMPT
from assistant.models.sources import resolve_model
from bench.answering import bench_maps_dir
from bench.questions import QUESTIONS
from bench.system import AppProcess, LlamaServer, summarize

__all__ = ["BUSY_WORDS", "RequestRecord", "classify", "main", "run_load"]

BUSY_WORDS = ("queue is full", "busy", "try again")  # what makes an error message a clear "busy" rejection
OUTCOMES = ("answered", "rejected", "error", "timeout")


@dataclass(frozen=True)
class RequestRecord:
    client: int  # which session sent it (0-based)
    index: int  # its place in that session's questions (0-based)
    outcome: str  # one of OUTCOMES
    seconds: float  # from submit to the result or the failure
    message: str  # the error text for rejected / error / timeout; "" when answered


def classify(error: BaseException) -> str:
    """ "rejected" when the error is the queue's clear busy message, else "error"."""
    text = f"{type(error).__name__}: {error}".lower()
    return "rejected" if "queueerror" in text or any(w in text for w in BUSY_WORDS) else "error"


def _session(
    url: str,
    client_id: int,
    questions: int,
    timeout: float,
    pause: float,
    records: list,
    lock: threading.Lock,
    start: threading.Barrier,
) -> None:
    from gradio_client import Client

    def record(index, outcome, seconds, message=""):
        with lock:
            records.append(RequestRecord(client_id, index, outcome, round(seconds, 3), message[:300]))

    try:
        client = Client(url, verbose=False)
    except Exception as err:  # every question of this session is then an error, none silently missing
        start.wait()
        for i in range(questions):
            record(i, "error", 0.0, f"could not connect: {type(err).__name__}: {err}")
        return
    start.wait()
    for i in range(questions):
        question = QUESTIONS[(client_id * questions + i) % len(QUESTIONS)][1]
        t = time.perf_counter()
        try:
            reply = client.submit(question, None, api_name="/ask").result(timeout=timeout)
        except TimeoutError as err:
            record(i, "timeout", time.perf_counter() - t, f"no answer within {timeout:.0f} s {err}")
            continue
        except Exception as err:
            outcome = classify(err)
            record(i, outcome, time.perf_counter() - t, f"{type(err).__name__}: {err}")
            if outcome == "rejected":
                time.sleep(pause)
            continue
        ok = isinstance(reply, dict) and "answer" in reply and "confidence" in reply
        record(
            i, "answered" if ok else "error", time.perf_counter() - t, "" if ok else f"odd reply {reply!r}"
        )
    close = getattr(client, "close", None)
    if close is not None:
        close()


def _sample_rss(app: AppProcess, samples: list, stop: threading.Event, every: float) -> None:
    t0 = time.perf_counter()
    while not stop.is_set() and app.proc.poll() is None:
        try:
            samples.append((round(time.perf_counter() - t0, 2), round(app.rss_mb(), 1)))
        except Exception:  # the process may vanish between the poll and the read
            pass
        stop.wait(every)


def run_load(
    work: Path,
    *,
    clients: int = 16,
    questions: int = 5,
    queue_size: int = 8,
    threads: int | None = None,
    max_new_tokens: int | None = None,
    timeout: float = 900.0,
    pause_after_reject: float = 1.0,
    sample_every: float = 0.5,
    server: bool = False,
    parallel: int | None = None,
) -> dict:
    """Run the load test with scratch files under `work`; return figures and every request's record.

    `server`: the app answers through `--backend openai` from a llama.cpp server (`LlamaServer`,
    the same default GGUF) instead of loading the model itself. `parallel`: the app's --parallel, how
    many chat requests its local llama.cpp backend decodes together (1: one at a time)."""
    with contextlib.ExitStack() as stack:
        if server:
            llama = stack.enter_context(LlamaServer(threads=threads, log_path=work / "llama-server.log"))
            model_id = llama.model_id
            args = ["--backend", "openai", "--base-url", llama.base_url, "--model", llama.alias,
                    "--api-key-env", "CC_BENCH_KEY"]
            env = {"CC_BENCH_KEY": llama.key}
        else:
            model_id, args, env = resolve_model(None).model_id, ["--threads", threads] if threads else [], {}
            args += ["--parallel", parallel] if parallel else []
        maps_dir, _ = bench_maps_dir(work / "maps", model_id, DEFAULT_PROMPT)
        args += ["--queue-size", queue_size, "--data-dir", work / "app-data", "--maps-dir", maps_dir]
        args += ["--max-new-tokens", max_new_tokens] if max_new_tokens else []
        result = _drive(AppProcess(args=args, env=env, log_path=work / "app-load.log"), clients, questions,
                        timeout, pause_after_reject, sample_every)
    local = f"llamacpp (in the app, --parallel {parallel})" if parallel else "llamacpp (in the app)"
    return {**result, "backend": "openai (llama_cpp.server)" if server else local, "queue_size": queue_size}


def _drive(app: AppProcess, clients, questions, timeout, pause_after_reject, sample_every) -> dict:
    records: list[RequestRecord] = []
    samples: list = []
    with app:
        ready = app.wait_ready()
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(app, samples, stop, sample_every), daemon=True)
        sampler.start()
        lock, barrier = threading.Lock(), threading.Barrier(clients)
        sessions = [
            threading.Thread(
                target=_session,
                args=(app.url, c, questions, timeout, pause_after_reject, records, lock, barrier),
            )
            for c in range(clients)
        ]
        start = time.perf_counter()
        for s in sessions:
            s.start()
        for s in sessions:
            s.join()
        wall = time.perf_counter() - start
        alive = app.proc.poll() is None
        stop.set()
        sampler.join()
        peak = app.peak_rss_mb()
    return _summary(records, samples, clients=clients, questions=questions, ready=ready, wall=wall, alive=alive,
                    peak=peak)


def _summary(records, samples, *, clients, questions, ready, wall, alive, peak) -> dict:
    counts = Counter(r.outcome for r in records)
    sent = clients * questions
    rss = [mb for _, mb in samples]
    half = len(rss) // 2
    answered = [r.seconds * 1000 for r in records if r.outcome == "answered"]
    rejected = [r.seconds * 1000 for r in records if r.outcome == "rejected"]
    return {
        "clients": clients,
        "questions_per_client": questions,
        "sent": sent,
        "answered_per_minute": round(counts.get("answered", 0) / wall * 60, 1) if wall else None,
        **{o: counts.get(o, 0) for o in OUTCOMES},
        "lost": sent - sum(counts.get(o, 0) for o in OUTCOMES),
        "app_alive_after": alive,
        "startup_to_ready_s": round(ready, 2),
        "wall_s": round(wall, 1),
        "answered_latency_ms": summarize(answered, 1) if answered else {"skipped": "no request was answered"},
        "rejected_latency_ms": summarize(rejected, 1) if rejected else {"skipped": "no request was rejected"},
        "busy_messages": sorted({r.message for r in records if r.outcome == "rejected"}),
        "error_messages": sorted({r.message for r in records if r.outcome in ("error", "timeout")})[:10],
        "rss_mb": {
            "samples": len(rss),
            "first": rss[0] if rss else None,
            "max": max(rss) if rss else None,
            "last": rss[-1] if rss else None,
            "max_first_half": max(rss[:half]) if half else None,
            "max_second_half": max(rss[half:]) if half else None,
            "peak_vmhwm": _round(peak),
            "series": samples[:: max(1, len(samples) // 40)],
        },
        "records": [asdict(r) for r in sorted(records, key=lambda r: (r.client, r.index))],
    }


def _round(value):
    return None if value is None else round(value, 1)


def format_summary(s: dict) -> str:
    """The figures a person reads first, one per line."""
    lat = s["answered_latency_ms"]
    rss = s["rss_mb"]
    growth = (
        None if rss["max_second_half"] is None else round(rss["max_second_half"] - rss["max_first_half"], 1)
    )
    lines = [
        f"{s['clients']} clients × {s['questions_per_client']} questions, backend {s['backend']}, "
        f"queue size {s['queue_size']}, {s['wall_s']} s ({s['answered_per_minute']} answers per minute)",
        f"sent {s['sent']}: answered {s['answered']}, rejected busy {s['rejected']}, error {s['error']}, "
        f"timeout {s['timeout']}, lost {s['lost']}; app alive after: {s['app_alive_after']}",
        "answered latency: "
        + (
            "skipped: " + lat["skipped"]
            if "skipped" in lat
            else f"p50 {lat['p50']:g} ms, p95 {lat['p95']:g} ms, max {lat['max']:g} ms"
        ),
        f"busy message: {s['busy_messages'][0] if s['busy_messages'] else '(none: nothing was rejected)'}",
        f"app RSS: first {rss['first']} MB, max {rss['max']} MB, last {rss['last']} MB; "
        f"second-half max minus first-half max {growth} MB; VmHWM {rss['peak_vmhwm']} MB",
    ]
    if s["error_messages"]:
        lines.append("errors: " + " | ".join(s["error_messages"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench load", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=16, help="concurrent gradio_client sessions (16)")
    p.add_argument("--questions", type=int, default=5, help="questions per session, one after another (5)")
    p.add_argument("--queue-size", type=int, default=8, help="the app's --queue-size (8)")
    p.add_argument("--threads", type=int, help="the app's --threads (default: all cores)")
    p.add_argument("--max-new-tokens", type=int, help="the app's --max-new-tokens (its default)")
    p.add_argument("--parallel", type=int, help="the app's --parallel: chat requests decoded together (its default)")
    p.add_argument(
        "--timeout",
        type=float,
        default=900,
        help="seconds a request may take before it counts as a timeout (900)",
    )
    p.add_argument("--server", action="store_true",
                   help="answer through --backend openai from llama_cpp.server (the same default GGUF)")
    p.add_argument("--json", action="store_true", help="print the whole result (every request) as JSON")
    p.add_argument("--out", type=Path, help="also write the summary and the JSON to this markdown file")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        result = run_load(
            Path(tmp),
            clients=args.clients,
            questions=args.questions,
            queue_size=args.queue_size,
            threads=args.threads,
            max_new_tokens=args.max_new_tokens,
            timeout=args.timeout,
            server=args.server,
            parallel=args.parallel,
        )
    text = format_summary(result)
    print(json.dumps(result, ensure_ascii=False) if args.json else text)
    if args.json:
        print(text, file=sys.stderr)
    if args.out:
        command = shlex.join(sys.argv[1:] if argv is None else ["load", *argv])
        args.out.write_text(
            f"# Load test\n\n`python -m bench {command}`\n\n```\n{text}"
            f"\n```\n\n```json\n{json.dumps(result, indent=1)}\n```\n",
            encoding="utf-8",
        )
    return 0 if result["lost"] == 0 and result["app_alive_after"] else 1
