"""Self-consistency (issue 20, item 6): what k sampled answers add to ranking answers, and what they cost.

    python -m bench.consistency sample --records FILE ... --out runs/consistency [--k 3] [--per-file 100]
    python -m bench.consistency measure --fit runs/consistency/fit-*.jsonl \
        --heldout everyday runs/consistency/everyday-heldout-*.jsonl --heldout benchmark runs/consistency/data-*.jsonl
    python -m bench.consistency latency --data calibration/everyday/heldout-*.jsonl --n 24 --k 2

`sample` draws k answers per graded record (`assistant.answering.consistency.sample_answers`, every
question of a batch × k decoded together) and appends the record with its `samples` and their
`sample_seconds` to `--out` (resumable by id, as `calibrate collect` is). A record that keeps only its
id and no answer (committed benchmark records) gets its greedy answer again first (text by id from
`--questions`); it is kept only when that answer has the record's token count, so it is the record's own.

`measure` scores agreement at k = 1…K (the first k samples) against each held-out set: its own AUROC,
and the fused maps fitted on the `--fit` records with and without it (`calibration.fitting.fit.fit_maps`,
the same fit as `calibrate fit`), applied to the held-out records: AUROC and ECE within each domain and
over the set, with a paired-bootstrap 95% interval on the AUROC gain. Nothing is fitted on a held-out set.

`latency` times the chat's own path (`Assistant.ask`) on the same questions with and without sampling,
alternating, and reports the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from assistant.answering.answer import answer_batch
from assistant.answering.consistency import agreement, sample_answers
from assistant.answering.pipeline import Assistant
from assistant.answering.prompts import load_prompt
from assistant.calibrated.fusion import agreement_rows
from assistant.calibrated.metrics import auroc, expected_calibration_error
from assistant.core.config import ModelConfig
from assistant.core.files import append_private
from assistant.core.jsonl import read_jsonl
from assistant.models.backend import GenerationOptions
from assistant.models.registry import load_backend
from calibration.fitting.fit import fit_maps
from calibration.labelling.question_text import question_features
from calibration.labelling.redact import items_by_id

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QUESTIONS = sorted((ROOT.parent / "shared" / "calib").glob("*.jsonl")) + sorted(
    (ROOT.parent / "shared" / "data").glob("*.jsonl"))


def _out_path(out: Path, records: Path) -> Path:
    """runs/consistency/<parent>-<name>: calib/math.jsonl and generated/math.jsonl do not collide."""
    return out / f"{records.parent.name}-{records.name}"


def sample(paths: list[Path], out: Path, k: int, per_file: int | None, question_files, batch: int) -> None:
    backend, options = load_backend(ModelConfig()), GenerationOptions()
    items = items_by_id(question_files)
    out.mkdir(parents=True, exist_ok=True)
    for path in paths:
        target = _out_path(out, path)
        done = {r["id"] for r in read_jsonl(target)} if target.exists() else set()
        records = list(read_jsonl(path))[:per_file]
        todo = [r for r in records if r["id"] not in done]
        prompt = load_prompt(records[0]["prompt"]) if records else None
        skipped = 0
        for start in range(0, len(todo), batch):
            rows = []
            for record in todo[start:start + batch]:
                question = record.get("question") or (items.get(record["id"]) or {}).get("question")
                if question is None:
                    skipped += 1
                    continue
                if "answer" not in record:  # greedy again, one at a time, exactly as collected
                    again = answer_batch(backend, prompt, [question], options)[0]
                    if again.stats.tokens != record.get("tokens"):
                        skipped += 1
                        continue
                    record = {**record, "answer": again.parsed.answer}
                rows.append((record, question))
            if not rows:
                continue
            drawn = sample_answers(backend, prompt, [prompt.messages(q) for _, q in rows], k, options)
            with append_private(target) as f:
                for (record, _), answers in zip(rows, drawn.answers):
                    line = {**record, "samples": answers,  # a text looked up by id stays out, as in the file read
                            "sample_seconds": round(drawn.seconds / len(rows), 3)}
                    f.write(json.dumps(line) + "\n")
                f.flush()
                os.fsync(f.fileno())
            print(f"{target.name}: {start + len(rows)}/{len(todo)}", file=sys.stderr, flush=True)
        if skipped:
            print(f"{target.name}: {skipped} records skipped (no question text, or the greedy answer "
                  "did not come back the same)", file=sys.stderr)


def agreeing_at(records: list[dict], k: int | None) -> list[dict]:
    """Records with signals.agreement from their first k samples (None: no agreement at all)."""
    result = []
    for r in records:
        value = None if k is None else agreement(r.get("answer") if r.get("correct") is not None else None,
                                                 r.get("samples", [])[:k])
        result.append({**r, "signals": {**(r.get("signals") or {}), "agreement": value}})
    return result


def _auroc(y: np.ndarray, s: np.ndarray) -> float | None:
    keep = ~np.isnan(s)
    y, s = y[keep], s[keep]
    return float(auroc(y, s)) if 0 < y.sum() < len(y) else None


def _figures(maps, records: list[dict], questions) -> np.ndarray:
    """Each record's calibrated figure under `maps` (NaN where the map reads no score)."""
    figures = []
    for record, question in zip(records, questions):
        dmap = maps.map_for(record["domain"])
        score = dmap.score(record["signals"], question)
        figures.append(np.nan if score is None else dmap(score))
    return np.array(figures, dtype=float)


def _summary(y: np.ndarray, figures: np.ndarray, raw: np.ndarray) -> dict:
    keep = ~np.isnan(figures)
    return {"right": int(y.sum()), "n": len(y), "auroc": _auroc(y, figures),
            "ece": float(expected_calibration_error(y[keep], figures[keep])) if keep.any() else None,
            "agreement_auroc": _auroc(y, raw)}


def _gain_interval(y: np.ndarray, new: np.ndarray, old: np.ndarray, boot: int, rng) -> list[float] | None:
    """95% paired-bootstrap interval of AUROC(new) - AUROC(old) on the same answers."""
    gains = []
    for _ in range(boot):
        i = rng.integers(0, len(y), len(y))
        a, b = _auroc(y[i], new[i]), _auroc(y[i], old[i])
        if a is not None and b is not None:
            gains.append(a - b)
    return [round(float(np.quantile(gains, q)), 4) for q in (0.025, 0.975)] if gains else None


def measure(fit_paths, heldout: dict[str, list[Path]], k_max: int, question_files, boot: int = 1000) -> dict:
    """Per held-out set, per k (None: without agreement): figures of maps fitted on `fit_paths`."""
    fit_records = [r for p in fit_paths for r in read_jsonl(p)]
    fit_questions = question_features(fit_records, question_files=question_files)
    ks = (None, *range(1, k_max + 1))
    fitted = {k: fit_maps(agreeing_at(fit_records, k), model="consistency", prompt="consistency", signals="fused",
                          questions=fit_questions, n_boot=0) for k in ks}
    result = {"fit_graded": sum(r.get("correct") is not None for r in fit_records), "sets": {}}
    rng = np.random.default_rng(0)
    for name, paths in heldout.items():
        records = [r for p in paths for r in read_jsonl(p) if r.get("correct") is not None]
        questions = question_features(records, question_files=question_files)
        y = np.array([float(r["correct"]) for r in records])
        domains = np.array([r["domain"] for r in records])
        rows, base = {}, None
        for k in ks:
            recs = agreeing_at(records, k)
            figures = _figures(fitted[k], recs, questions)
            raw = agreement_rows([r["signals"] for r in recs])[:, 0]
            row = {**_summary(y, figures, raw),
                   "by_domain": {d: _summary(y[domains == d], figures[domains == d], raw[domains == d])
                                 for d in sorted(set(domains))}}
            if k is None:
                base = figures
            else:
                row["auroc_gain_95"] = _gain_interval(y, figures, base, boot, rng)
            rows["without" if k is None else f"k={k}"] = row
        result["sets"][name] = rows
    return result


def latency(data: list[Path], n: int, k: int) -> dict:
    questions = [item["question"] for path in data for item in read_jsonl(path)][:n]
    assistant = Assistant.from_config()
    seconds = {0: [], k: []}
    for question in questions:  # alternating, so drift in the machine's speed falls on both
        for kk in (0, k):
            assistant.self_consistency = kk
            start = time.perf_counter()
            assistant.ask(question)
            seconds[kk].append(time.perf_counter() - start)
    plain, sampled = np.median(seconds[0]), np.median(seconds[k])
    return {"questions": len(questions), "k": k, "median_seconds_plain": float(plain),
            "median_seconds_sampled": float(sampled), "ratio": float(sampled / plain)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--records", type=Path, nargs="+", required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--k", type=int, default=3)
    s.add_argument("--per-file", type=int)
    s.add_argument("--batch", type=int, default=8, help="questions whose k samples decode together")
    s.add_argument("--questions", type=Path, nargs="*", default=DEFAULT_QUESTIONS)
    m = sub.add_parser("measure")
    m.add_argument("--fit", type=Path, nargs="+", required=True)
    m.add_argument("--heldout", nargs="+", action="append", metavar=("NAME", "FILE"), required=True)
    m.add_argument("--k", type=int, default=3)
    m.add_argument("--questions", type=Path, nargs="*", default=DEFAULT_QUESTIONS)
    lat = sub.add_parser("latency")
    lat.add_argument("--data", type=Path, nargs="+", required=True)
    lat.add_argument("--n", type=int, default=24)
    lat.add_argument("--k", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "sample":
        sample(args.records, args.out, args.k, args.per_file, args.questions, args.batch)
        return 0
    if args.command == "measure":
        heldout = {spec[0]: [Path(p) for p in spec[1:]] for spec in args.heldout}
        print(json.dumps(measure(args.fit, heldout, args.k, args.questions), indent=1))
        return 0
    print(json.dumps(latency(args.data, args.n, args.k), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
