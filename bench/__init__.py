"""Benchmarks of calibrated-chat: speed, overhead, load time, throughput, memory and concurrent users.

    python -m bench [--json] [--quick] [--out bench/RESULTS.md]     # one side-by-side run (bench/run.py)
    python -m bench load [--clients 16 --questions 5]              # concurrent users (bench/load.py)

Modules: `run` (sections and the CLI), `report` (table and RESULTS.md), `decode`
(tokens/s and load times), `answering` (TTFT, overhead, collect throughput), `system`
(machine facts, bandwidth, the app subprocess), `load` (concurrent gradio_client users),
`questions` (the fixed inputs). Figures are printed, never asserted.
"""

from bench.questions import DECODE_PROMPT, QUESTIONS
from bench.report import format_table, results_markdown, table_rows
from bench.system import percentile, summarize

__all__ = [
    "DECODE_PROMPT",
    "QUESTIONS",
    "format_table",
    "percentile",
    "results_markdown",
    "summarize",
    "table_rows",
]
