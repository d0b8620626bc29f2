"""The benchmark harness (bench/): its arithmetic, its report, and tiny real runs. Never asserts on time."""

from __future__ import annotations

import json

import pytest

from bench.load import RequestRecord, _summary, classify, run_load
from bench.questions import QUESTIONS
from bench.report import format_table, results_markdown, table_rows
from bench.run import SECTIONS, Settings, parse_args, run_bench
from bench.share import main as share_main
from bench.share import share_ratios
from bench.system import percentile, read_bandwidth, summarize


@pytest.mark.parametrize(
    "values, q, expected, error",
    [
        ([1, 2, 3, 4], 50, 2.5, None),
        ([1, 2, 3, 4], 0, 1.0, None),
        ([1, 2, 3, 4], 100, 4.0, None),
        ([4, 1, 3, 2], 25, 1.75, None),  # unsorted input; rank 0.75 between 1 and 2
        (list(range(1, 21)), 95, 19.05, None),  # rank 18.05 between 19 and 20
        ([10], 95, 10.0, None),
        ([], 50, None, ValueError),
    ],
)
def test_percentile(values, q, expected, error):
    if error:
        with pytest.raises(error):
            percentile(values, q)
    else:
        assert percentile(values, q) == pytest.approx(expected)


def test_summarize_hand_computed():
    assert summarize([10, 20, 30, 40], 1) == {
        "n": 4,
        "p50": 25.0,
        "p95": 38.5,
        "mean": 25.0,
        "min": 10.0,
        "max": 40.0,
    }


def test_questions_are_twenty_in_four_domains():
    domains = [d for d, _ in QUESTIONS]
    assert len(QUESTIONS) == 20 and len({q for _, q in QUESTIONS}) == 20
    assert {d: domains.count(d) for d in set(domains)} == {
        "math": 5,
        "factual": 5,
        "science": 5,
        "reasoning": 5,
    }


@pytest.mark.parametrize(
    "error, expected",
    [
        ("QueueError", "rejected"),
        ("Exception: Server busy, try again later", "rejected"),
        ("AppError: the model crashed", "error"),
        ("ConnectionError: refused", "error"),
    ],
)
def test_classify(error, expected):
    name, _, message = error.partition(": ")
    exc = type(name, (Exception,), {})(message or "Queue is full! Please try again.")
    assert classify(exc) == expected


def test_summary_counts_every_request_and_finds_lost_ones():
    records = [
        RequestRecord(0, 0, "answered", 1.0, ""),
        RequestRecord(0, 1, "answered", 3.0, ""),
        RequestRecord(1, 0, "rejected", 0.01, "QueueError: Queue is full! Please try again."),
        RequestRecord(1, 1, "timeout", 9.0, "no answer"),
    ]
    s = _summary(
        records,
        [(0.0, 500.0), (0.5, 520.0), (1.0, 530.0), (1.5, 525.0)],
        clients=2,
        questions=3,
        ready=2.0,
        wall=5.0,
        alive=True,
        peak=600.0,
    )
    assert (s["sent"], s["answered"], s["rejected"], s["error"], s["timeout"], s["lost"]) == (
        6,
        2,
        1,
        0,
        1,
        2,
    )
    assert s["answered_latency_ms"]["p50"] == 2000.0
    assert s["busy_messages"] == ["QueueError: Queue is full! Please try again."]
    assert (s["rss_mb"]["max_first_half"], s["rss_mb"]["max_second_half"], s["rss_mb"]["max"]) == (
        520.0,
        530.0,
        530.0,
    )


def _canned() -> dict:
    meta = {
        "date": "2026-01-01T00:00:00+00:00",
        "command": "python -m bench --quick",
        "machine": {"cpu": "Test CPU", "cores": 2, "ram_gb": 8.0, "os": "Linux", "load_average": [0.1, 0, 0]},
        "libraries": {"python": "3.11", "torch": None},
        "settings": {"threads": 2},
        "maps": "synthetic",
    }
    return {
        "meta": meta,
        "bandwidth": {"gbps_1t": 17.0, "gbps_2t": 20.0},
        "load": {"skipped": "not selected (--sections)"},
        "decode": {
            "project": {
                "backend": "LlamaCppBackend",
                "tokens": 200,
                "tokens_per_s": 120.0,
                "bound": {
                    "weight_bytes": 100_000_000,
                    "counted_as": "GGUF file size",
                    "bound_tokens_per_s": 200.0,
                    "achieved_fraction": 0.6,
                },
            },
            "transformers": {"skipped": "not selected (--no-transformers)"},
            "llamacpp_raw": {"tokens": 200, "tokens_per_s": 100.0},
            "ratio_project_to_raw": 1.2,
            "same_text": True,
        },
        "pipeline": {
            "questions": 20,
            "ttft_ms": {"p50": 50.0, "p95": 80.0},
            "total_ms": {"p50": 900.0, "p95": 2e3},
            "overhead_ms": {"p50": 9.0, "p95": 20.0},
            "overhead_pct": {"p50": 1.0, "p95": 4.0},
        },
        "collect": {
            "project": {
                "backend": "LlamaCppBackend",
                "1": {"questions_per_min": 10.0},
                "8": {"questions_per_min": 40.0},
            },
            "transformers": {"skipped": "not selected (--no-transformers)"},
            "speedup_b8_over_b1": 4.0,
        },
        "app": {"skipped": "error: RuntimeError: app.py exited"},
    }


@pytest.mark.parametrize(
    "figure, value, status",
    [
        ("decode ratio project / raw llama.cpp", "1.2×", "met"),
        ("decode tokens/s, project default backend", "120 (LlamaCppBackend, 200 tokens)", ""),
        ("decode tokens/s, transformers backend", "skipped: not selected (--no-transformers)", ""),
        ("achieved fraction of bound, project default", "0.6", ""),
        ("pipeline overhead p95", "20 ms", "NOT met"),
        ("overhead share of request p95", "4 %", "met"),
        ("warm load, default backend", "skipped: not selected (--sections)", ""),
        ("warm load, transformers backend", "skipped: not selected (--sections)", ""),
        ("app start-up to ready", "skipped: error: RuntimeError: app.py exited", ""),
        ("collect questions/min, project default batch 8", "40", ""),
        ("collect questions/min, transformers batch 1", "skipped: not selected (--no-transformers)", ""),
        ("collect speed-up batch 8 / batch 1, project default", "4×", "met"),
    ],
)
def test_table_rows_give_a_number_or_a_reason(figure, value, status):
    rows = {row[0]: row for row in table_rows(_canned())}
    assert rows[figure][1] == value and rows[figure][3] == status


def test_every_row_is_a_number_or_skipped_and_markdown_names_the_run():
    for figure, value, *_ in table_rows(_canned()):
        assert value.startswith("skipped: ") or value[0].isdigit() or value in ("True", "False"), figure
    md = results_markdown(_canned())
    assert "2026-01-01" in md and "Test CPU, 2 cores, 8.0 GB RAM" in md and "`python -m bench --quick`" in md
    assert "| decode ratio project / raw llama.cpp | 1.2× | ≥ 1.0 | met |" in md
    assert json.loads(md.split("```json\n")[1].split("\n```")[0])["bandwidth"]["gbps_1t"] == 17.0
    assert format_table(table_rows(_canned())).splitlines()[0].split() == [
        "figure",
        "value",
        "target",
        "status",
    ]


@pytest.mark.parametrize(
    "argv, field, expected",
    [
        ([], "questions", 20),
        (["--quick"], "questions", 10),
        (["--quick", "--questions", "3"], "questions", 3),
        (["--batch-sizes", "1,8"], "batch_sizes", (1, 8)),
        (["--sections", "decode,app"], "sections", ("decode", "app")),
        (["--no-transformers"], "transformers", False),
        ([], "sections", SECTIONS),
    ],
)
def test_parse_args(argv, field, expected):
    assert getattr(parse_args(argv)[1], field) == expected


def test_parse_args_refuses_an_unknown_section():
    with pytest.raises(SystemExit):
        parse_args(["--sections", "decode,nonsense"])


def test_read_bandwidth_reports_both_thread_counts():
    out = read_bandwidth(megabytes=4, repeats=1)
    assert out["array_mb"] == 4 and out["gbps_1t"] > 0 and out["gbps_2t"] > 0


# -- real runs with tiny settings (the default GGUF, the embedding model, the app) ---------------------


@pytest.mark.slow
def test_bench_smoke_run_default_backend(tmp_path):
    """Every section on the default backend, tiny: each gives figures (not a skip) of the right shape."""
    pytest.importorskip("llama_cpp")
    settings = Settings(
        threads=1,
        decode_tokens=6,
        decode_repeats=1,
        questions=2,
        collect_questions=2,
        batch_sizes=(1, 2),
        collect_max_tokens=12,
        bandwidth_mb=8,
        app_questions=1,
        app_max_new_tokens=12,
        load_backends=("llamacpp",),
        transformers=False,
    )
    result = run_bench(settings, tmp_path)
    for section in SECTIONS:
        assert "skipped" not in result[section], (section, result[section])
    decode = result["decode"]
    assert decode["project"]["backend"] == "LlamaCppBackend" and 2 <= decode["project"]["tokens"] <= 6
    assert decode["same_text"] is True  # greedy: the project's backend and raw llama.cpp agree
    assert decode["project"]["bound"]["counted_as"] == "GGUF file size"
    assert result["pipeline"]["ttft_ms"]["n"] == 2 and set(result["pipeline"]["steps_ms"]) == {
        "render",
        "parse",
        "embed",
        "calibrate",
    }
    collected = result["collect"]["project"]
    assert collected["backend"] == "LlamaCppBackend" and [collected[s]["questions"] for s in "12"] == [2, 2]
    assert set(result["load"]["llamacpp"]) == {"cold", "warm"}
    assert result["app"]["questions_answered"] == 1 and result["app"]["peak_rss_mb"] > 0
    measured = [(f, v) for f, v, *_ in table_rows(result) if "transformers" not in f and "batch 8" not in f]
    assert [(f, v) for f, v in measured if v.startswith("skipped")] == []


@pytest.mark.slow
def test_bench_smoke_run_transformers_batched(tmp_path):
    """The transformers backend beside the default: decode, and batched collect at two batch sizes."""
    settings = Settings(
        threads=1,
        decode_tokens=4,
        decode_repeats=1,
        collect_questions=2,
        batch_sizes=(1, 2),
        collect_max_tokens=8,
        sections=("decode", "collect"),
    )
    result = run_bench(settings, tmp_path)
    assert result["decode"]["transformers"]["tokens"] >= 2
    assert result["decode"]["transformers"]["bound"]["counted_as"].startswith("parameter bytes")
    assert [r["questions"] for r in result["collect"]["transformers"].values()] == [2, 2]


@pytest.mark.slow
def test_load_every_request_answered_or_rejected_busy(tmp_path):
    """4 concurrent sessions × 2 questions against one app with queue size 2: none lost, no crash."""
    result = run_load(tmp_path, clients=4, questions=2, queue_size=2, threads=1, max_new_tokens=16)
    assert result["lost"] == 0 and result["app_alive_after"] is True
    assert result["answered"] + result["rejected"] == result["sent"] == 8, result["error_messages"]
    assert result["answered"] >= 1
    assert all("Queue is full" in m for m in result["busy_messages"])
    assert {r["outcome"] for r in result["records"]} <= {"answered", "rejected"}


@pytest.mark.slow
def test_load_through_a_real_llama_cpp_server_loses_nothing(tmp_path):
    """The app with --backend openai in front of llama_cpp.server (the default GGUF): 4 sessions × 2 questions."""
    result = run_load(tmp_path, clients=4, questions=2, queue_size=2, threads=1, max_new_tokens=16, server=True)
    assert result["backend"].startswith("openai") and result["lost"] == 0 and result["app_alive_after"] is True
    assert result["answered"] + result["rejected"] == result["sent"] == 8, result["error_messages"]
    assert result["answered"] >= 1


@pytest.mark.slow
def test_evidence_bench_runs_both_settings_on_the_default_model(tmp_path):
    pytest.importorskip("llama_cpp")
    from bench.evidence import evidence_cost, main

    result = evidence_cost(n_questions=2, repeats=1, threads=1)
    assert result["questions"] == 2 and result["tokens"] > 0
    assert result["seconds_on"] > 0 and result["seconds_off"] > 0 and result["ratio_on_over_off"] > 0
    assert main(["--questions", "1", "--repeats", "1", "--threads", "1", "--out", str(tmp_path / "E.md")]) == 0
    assert "| 1 |" in (tmp_path / "E.md").read_text()


@pytest.mark.parametrize("alone, pair, reference, expected", [
    # 100 tokens in 2 s alone; each of two takes 4 s: half the rate each, the same together.
    ((2.0, 100), [(4.0, 100), (4.0, 100)], (2.0, 100), (0.5, 1.0, 1.0)),
    # the slower of the two counts for "each"; alone twice as slow as the reference.
    ((4.0, 100), [(4.0, 100), (8.0, 100)], (2.0, 100), (0.5, 1.5, 0.5)),
])
def test_share_ratios_by_hand(alone, pair, reference, expected):
    def result(seconds_tokens):
        return {"seconds": seconds_tokens[0], "tokens": seconds_tokens[1]}

    ratios = share_ratios(result(alone), [result(p) for p in pair], result(reference))
    assert tuple(ratios.values()) == expected


@pytest.mark.parametrize("setting, sets, threads", [
    ("spinning", {"OMP_WAIT_POLICY": "ACTIVE"}, "all"),
    ("default now", {}, None),  # the backend's own choice: nothing set for it
    ("every core", {}, "all"),  # before it counted its peers: every core, fixed
    ("share mode", {"CALIBRATED_CHAT_SHARE_CPU": "1"}, None),
])
def test_a_share_worker_gets_its_settings_and_nothing_inherited(monkeypatch, setting, sets, threads):
    import bench.share as share

    started = []

    class Ready:  # a worker that started: its first line says so
        stdout = type("Out", (), {"readline": staticmethod(lambda: "ready\n")})()

    monkeypatch.setattr(share.subprocess, "Popen", lambda cmd, env, **kw: started.append((cmd, env)) or Ready())
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # the caller's own setting must not leak into a worker
    monkeypatch.setenv("GOMP_SPINCOUNT", "7")
    share._start(setting, 2, 8, "/tmp/peers")
    (command, env), = started
    assert {k: env[k] for k in share._OMP_NAMES if k in env} == sets
    assert env[share.PEERS_DIR_ENV] == "/tmp/peers"
    expected = [] if threads is None else ["--threads", str(share.available_cores())]
    assert command[command.index("--max-new-tokens") + 2:] == expected


@pytest.mark.slow
def test_share_bench_runs_alone_and_two_at_once_on_the_default_model(tmp_path):
    out = tmp_path / "SHARE.md"
    assert share_main(["--questions", "1", "--max-new-tokens", "4", "--repeats", "1", "--settings", "share mode",
                 "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    result = json.loads(text.split("```json\n")[1].split("\n```")[0])
    assert list(result["settings"]) == ["libgomp default", "share mode"]
    now = result["settings"]["share mode"]
    assert len(now["pair"]) == 2 and now["alone"]["tokens"] == now["pair"][0]["tokens"] > 0  # greedy: same answer
    assert now["alone"]["omp_wait_policy"] is None  # the backend leaves the wait policy to libgomp
    assert result["settings"]["libgomp default"]["alone"]["gomp_spincount"] == "300000"
    assert set(now["ratios"]) == {"each_of_two_over_alone", "two_together_over_alone", "alone_over_reference"}


@pytest.mark.slow
def test_logprobs_cost_bench_runs_through_a_real_server_and_locally():
    from bench.logprobs_cost import run_cost

    result = run_cost(questions=1, max_new_tokens=8, threads=1)
    assert set(result["seconds"]) == {"server, with logprobs", "server, without logprobs", "local backend"}
    assert all(len(s) == 1 and s[0] > 0 for s in result["seconds"].values())
    assert result["with_over_without"] > 0 and result["without_over_local"] > 0


def test_self_consistency_measure_on_the_committed_samples():
    """bench/consistency.py measure on the committed everyday and generated samples (no model, no ../shared):
    maps with and without agreement, applied to the everyday held-out answers, with the gain's interval."""
    from pathlib import Path

    from bench.consistency import measure

    folder = Path(__file__).resolve().parents[1] / "calibration" / "records" / "consistency"
    result = measure(sorted(folder.glob("everyday-fit-*.jsonl")) + sorted(folder.glob("generated-*.jsonl")),
                     {"everyday": sorted(folder.glob("everyday-heldout-*.jsonl"))}, 2, question_files=(), boot=50)
    rows = result["sets"]["everyday"]
    assert set(rows) == {"without", "k=1", "k=2"} and result["fit_graded"] > 700
    assert rows["without"]["agreement_auroc"] is None and 0.5 < rows["k=2"]["agreement_auroc"] < 1
    low, high = rows["k=2"]["auroc_gain_95"]
    assert low <= rows["k=2"]["auroc"] - rows["without"]["auroc"] <= high
    assert rows["k=2"]["by_domain"]["math"]["n"] == rows["without"]["by_domain"]["math"]["n"] > 40
