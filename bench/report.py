"""Turn a bench result (the dict `run_bench` returns) into table rows, a text table and `RESULTS.md`.

Every row is (figure, value, target, status): the value is a measured number or
"skipped: <reason>"; status compares it with the product's speed target ("met" / "NOT met"), never fails.
"""

from __future__ import annotations

import json

from assistant.core.validate import is_number

__all__ = ["format_table", "results_markdown", "table_rows"]


class _Skipped(Exception):
    """A figure is missing; the message says why."""


def _get(result: dict, *path):
    """result[path...], or _Skipped naming the reason recorded on the way ("skipped" keys)."""
    node = result
    for key in path:
        if isinstance(node, dict) and "skipped" in node:
            raise _Skipped(node["skipped"])
        if not isinstance(node, dict) or key not in node or node[key] is None:
            raise _Skipped("not measured")
        node = node[key]
    if isinstance(node, dict) and "skipped" in node:
        raise _Skipped(node["skipped"])
    return node


def _row(rows, figure, fetch, unit="", target=None, check=None):
    """`fetch()` gives the value (or raises _Skipped); `check(value)` says if it meets the target."""
    try:
        value = fetch()
    except _Skipped as why:
        rows.append((figure, f"skipped: {why}", target or "", ""))
        return
    text = (
        f"{value:g}{unit}" if is_number(value) else str(value)
    )
    status = ("met" if check(value) else "NOT met") if check and target else ""
    rows.append((figure, text, target or "", status))


def table_rows(result: dict) -> list[tuple[str, str, str, str]]:
    """The figures of one run, in a fixed order."""
    rows: list = []
    for section in (_decode_rows, _pipeline_rows, _load_rows, _app_and_collect_rows):
        section(result, rows)
    return rows


def _decode_rows(r: dict, rows: list) -> None:
    """Memory bandwidth, decoding speed and its bound."""
    d = lambda *p: _get(r, "decode", *p)  # noqa: E731
    _row(rows, "memory read bandwidth, 1 thread", lambda: _get(r, "bandwidth", "gbps_1t"), " GB/s")
    _row(rows, "memory read bandwidth, 2 threads", lambda: _get(r, "bandwidth", "gbps_2t"), " GB/s")
    _row(
        rows,
        "decode tokens/s, project default backend",
        lambda: (
            f"{d('project', 'tokens_per_s'):g} ({d('project', 'backend')}, {d('project', 'tokens')} tokens)"
        ),
    )
    _row(
        rows,
        "decode tokens/s, raw llama.cpp",
        lambda: f"{d('llamacpp_raw', 'tokens_per_s'):g} ({d('llamacpp_raw', 'tokens')} tokens)",
    )
    _row(
        rows,
        "decode ratio project / raw llama.cpp",
        lambda: d("ratio_project_to_raw"),
        "×",
        "≥ 1.0",
        lambda v: v >= 1.0,
    )
    _row(rows, "same greedy text, project vs raw", lambda: d("same_text"))
    _row(
        rows,
        "decode tokens/s, transformers backend",
        lambda: f"{d('transformers', 'tokens_per_s'):g} ({d('transformers', 'tokens')} tokens)",
    )
    for key, name in (("project", "project default"), ("transformers", "transformers")):
        _row(
            rows,
            f"bandwidth bound tokens/s, {name}",
            lambda k=key: (
                f"{d(k, 'bound', 'bound_tokens_per_s'):g} "
                f"({d(k, 'bound', 'weight_bytes') / 1e6:.0f} MB/token, {d(k, 'bound', 'counted_as')})"
            ),
        )
        _row(rows, f"achieved fraction of bound, {name}", lambda k=key: d(k, "bound", "achieved_fraction"))


def _pipeline_rows(r: dict, rows: list) -> None:
    """Latency of the answering pipeline and its overhead."""
    p = lambda *k: _get(r, "pipeline", *k)  # noqa: E731
    _row(
        rows,
        "time to first token p50 / p95",
        lambda: f"{p('ttft_ms', 'p50'):g} / {p('ttft_ms', 'p95'):g} ms ({p('questions')} questions)",
    )
    _row(rows, "request time p50 / p95", lambda: f"{p('total_ms', 'p50'):g} / {p('total_ms', 'p95'):g} ms")
    _row(rows, "pipeline overhead p95", lambda: p("overhead_ms", "p95"), " ms", "≤ 15 ms", lambda v: v <= 15)
    _row(rows, "pipeline overhead p50", lambda: p("overhead_ms", "p50"), " ms")
    _row(
        rows,
        "overhead share of request p95",
        lambda: p("overhead_pct", "p95"),
        " %",
        "≤ 5 %",
        lambda v: v <= 5,
    )


def _load_rows(r: dict, rows: list) -> None:
    """Cold and warm model loads, per backend."""
    timed = r.get("load", {})
    for backend in [k for k, v in timed.items() if isinstance(v, dict)] or ["auto", "transformers"]:
        label = "default backend" if backend == "auto" else f"{backend} backend"
        for kind in ("cold", "warm"):
            # the warm-load target (a model ready in 3 s) is for the default model's backend
            warm_default = kind == "warm" and backend == "auto"
            target, check = ("≤ 3 s", lambda v: v <= 3) if warm_default else (None, None)
            _row(
                rows,
                f"{kind} load, {label}",
                lambda b=backend, k=kind: _get(r, "load", b, k, "load_s"),
                " s",
                target,
                check,
            )
            _row(
                rows,
                f"{kind} load, {label}: engine import before it",
                lambda b=backend, k=kind: _get(r, "load", b, k, "engine_import_s"),
                " s",
            )
            _row(
                rows,
                f"{kind} load, {label}: torch imported inside load_backend",
                lambda b=backend, k=kind: _get(r, "load", b, k, "imports_torch"),
            )


def _app_and_collect_rows(r: dict, rows: list) -> None:
    """The app's start-up and memory, and the speed of `calibrate collect`."""
    _row(
        rows,
        "app start-up to ready",
        lambda: _get(r, "app", "startup_to_ready_s"),
        " s",
        "≤ 8 s",
        lambda v: v <= 8,
    )
    _row(
        rows,
        "app peak resident memory",
        lambda: _get(r, "app", "peak_rss_mb"),
        " MB",
        "≤ 1500 MB",
        lambda v: v <= 1500,
    )
    for key, name in (("project", "project default"), ("transformers", "transformers")):
        for size in _get_or(r, ("collect", key), {}) or {"1": None}:  # a skipped run still gets a row saying why
            _row(
                rows,
                f"collect questions/min, {name} batch {size}",
                lambda k=key, s=size: _get(r, "collect", k, s, "questions_per_min"),
            )
    _row(
        rows,
        "collect speed-up batch 8 / batch 1, project default",
        lambda: _get(r, "collect", "speedup_b8_over_b1"),
        "×",
        "≥ 3×",
        lambda v: v >= 3,
    )


def _get_or(result, path, default):
    try:
        value = _get(result, *path)
    except _Skipped:
        return default
    return {k: v for k, v in value.items() if k.isdigit()} if isinstance(value, dict) else default


def format_table(rows) -> str:
    """A plain-text table for the terminal."""
    head = ("figure", "value", "target", "status")
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(4)]
    line = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths]), *map(line, rows)])


def results_markdown(result: dict) -> str:
    """RESULTS.md: when, where, how, the table, the method and the whole result as JSON."""
    meta = result["meta"]
    m = meta["machine"]
    libs = ", ".join(f"{k} {v}" for k, v in meta["libraries"].items() if v)
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    table = ["| figure | value | target | status |", "| --- | --- | --- | --- |"]
    table += [f"| {' | '.join(esc(c) for c in row)} |" for row in table_rows(result)]
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"- date: {meta['date']}",
            f"- machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}; "
            f"load average at start {m['load_average']}",
            f"- command: `{meta['command']}`",
            f"- libraries: {libs}",
            f"- threads: {meta['settings']['threads']}; calibration map: {meta.get('maps', 'n/a')}",
            "",
            *table,
            "",
            "Method: decode tokens/s = (tokens produced − 1) ÷ (time of last token − time of first "
            "token), so the prompt's prefill is excluded; greedy, batch 1, the same prompt and thread "
            "count for every engine; raw llama.cpp is `Llama.generate` in a plain loop. Overhead = "
            "prompt rendering + parse + embed/classify + calibrate per question. Cold load = fresh "
            "interpreter with an empty converted-model cache (the OS file cache is not dropped); warm = "
            "the same again. Bound = read bandwidth ÷ weight bytes per token. Timings are figures, never "
            "test assertions.",
            "",
            "<details><summary>full result (JSON)</summary>",
            "",
            "```json",
            json.dumps(result, indent=1, ensure_ascii=False),
            "```",
            "</details>",
            "",
        ]
    )
