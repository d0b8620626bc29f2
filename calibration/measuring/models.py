"""Several (model, prompt) pairs on the same held-out questions: the seed paper's table for your candidates.

`compare_models(runs)` takes each pair's graded records over the same questions and gives, per
domain and overall, how often each pair is right, how honestly it says how sure it is, how many of
its answers could go out unchecked at the target risk, and what an answer costs:

- accuracy: the share of all questions answered right ("I don't know" and no answer count as not right);
- idk_rate, no_answer_rate: the shares answered "I don't know", and with no final answer to read (cut off
  at the length limit, or no answer given);
- raw ECE / Brier / AUROC: of the stated confidence, over the answers that state one;
- ECE / Brier / AUROC: of the calibrated confidence, over every graded answer. Each pair's maps are
  fitted on its own held-out answers, 5-fold cross-validated (no answer is scored by a map fitted
  on it), so the pairs are compared as each would be once calibrated;
- coverage_at_risk: the largest share of graded answers whose error rate stays at or below the
  target risk when the most confident are kept (the best cut-off on these answers: an upper figure);
- tokens and seconds: the mean per answer, as recorded when it was made.

Each figure of a pair after the first comes with its change from the first pair and that change's 95%
paired-bootstrap interval: questions are resampled, and every pair's answer to a question goes into a
resample together. The calibrated confidences are not refitted inside the resamples, so the intervals
leave out the fit's own noise: read them as a lower bound on the uncertainty. An interval that holds 0
says these questions cannot tell the two pairs apart.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from assistant.calibrated import metrics as M
from assistant.core.domains import in_order
from assistant.core.errors import DataError
from assistant.core.record import Record
from calibration.fitting.fit import cross_validate

__all__ = ["COLUMN_GROUPS", "METRICS", "Run", "compare_models", "format_markdown"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Run:
    """One (model, prompt) pair's graded answers."""

    name: str  # what the report calls it, e.g. "qwen-reasoning"
    records: list[Record]


@dataclass(frozen=True)
class _Answers:
    """One run's answers to the shared questions, as arrays aligned by question."""

    y: np.ndarray  # 1 right, 0 wrong, NaN not graded ("I don't know")
    raw: np.ndarray  # stated confidence, NaN where none
    calibrated: np.ndarray  # cross-validated calibrated confidence, NaN where none
    tokens: np.ndarray
    seconds: np.ndarray
    idk: np.ndarray  # the model said it does not know (the `not_attempted` issue)
    no_answer: np.ndarray  # no final answer could be read (`no_answer`: cut off, or no answer tag)


def _scored(y, c):
    keep = ~np.isnan(y) & ~np.isnan(c)
    return y[keep], c[keep]


def _on(which: str, metric):
    """`metric(y, confidence)` over the graded answers with a `which` confidence; NaN on none."""
    def value(a: _Answers, rows) -> float:
        y, c = _scored(a.y[rows], getattr(a, which)[rows])
        return float(metric(y, c)) if len(y) else math.nan
    return value


def _coverage_at(risk: float):
    def value(a: _Answers, rows) -> float:
        y, c = _scored(a.y[rows], a.calibrated[rows])
        if not len(y):
            return math.nan
        coverage, error, _ = M.risk_coverage_curve(y, c)
        safe = coverage[error <= risk + 1e-12]
        return float(safe.max()) if len(safe) else 0.0
    return value


def _metrics(target_risk: float) -> dict:
    """name -> (label, f(answers, rows)); rows index the shared questions."""
    return {
        "accuracy": ("accuracy", lambda a, rows: float(np.nansum(a.y[rows]) / len(rows))),
        "idk_rate": ("I don't know", lambda a, rows: float(a.idk[rows].mean())),
        "no_answer_rate": ("no answer", lambda a, rows: float(a.no_answer[rows].mean())),
        "raw_ece": ("raw ECE", _on("raw", M.expected_calibration_error)),
        "ece": ("calibrated ECE", _on("calibrated", M.expected_calibration_error)),
        "raw_brier": ("raw Brier", _on("raw", M.brier_score)),
        "brier": ("calibrated Brier", _on("calibrated", M.brier_score)),
        "raw_auroc": ("raw AUROC", _on("raw", M.auroc)),
        "auroc": ("calibrated AUROC", _on("calibrated", M.auroc)),
        "coverage_at_risk": (f"coverage at risk ≤ {target_risk:.0%}", _coverage_at(target_risk)),
        "tokens": ("tokens / answer", lambda a, rows: float(a.tokens[rows].mean())),
        "seconds": ("seconds / answer", lambda a, rows: float(a.seconds[rows].mean())),
    }


METRICS = tuple(_metrics(0.1))


def _shared(runs: list[Run]) -> tuple[list[str], list[str]]:
    """The question ids every run answered (in the first run's order), and their domains."""
    if len(runs) < 2:
        raise DataError("compare-models needs at least two (model, prompt) pairs")
    names = [run.name for run in runs]
    if len(set(names)) < len(names):
        raise DataError(f"two pairs share a name ({', '.join(names)}): name each pair once")
    by_id = [{r.id: r for r in run.records} for run in runs]
    ids = [r.id for r in runs[0].records if all(r.id in other for other in by_id[1:])]
    if not ids:
        raise DataError("the pairs share no question id: run them over the same questions")
    for run, answers in zip(runs, by_id):
        clash = next((i for i in ids if answers[i].domain != by_id[0][i].domain), None)
        if clash is not None:
            raise DataError(f"question {clash!r} has another domain in {run.name}'s records: are they the same data?")
    return ids, [by_id[0][i].domain for i in ids]


def _answers(run: Run, ids: list[str], seed: int) -> _Answers:
    by_id = {r.id: r for r in run.records}
    records = [by_id[i] for i in ids]
    try:
        calibrated, _ = cross_validate(records, k=5, seed=seed, signals="fused")
    except DataError as error:  # too few answers to fit maps in folds: the calibrated figures stay empty
        log.warning("%s: no calibrated figures (%s)", run.name, error)
        calibrated = np.full(len(records), np.nan)
    as_float = lambda values: np.array([np.nan if v is None else float(v) for v in values])  # noqa: E731
    return _Answers(y=as_float(r.correct for r in records), raw=as_float(r.raw_confidence for r in records),
                    calibrated=calibrated, tokens=as_float(r.tokens for r in records),
                    seconds=as_float(r.seconds for r in records),
                    idk=np.array(["not_attempted" in r.issues for r in records]),
                    no_answer=np.array(["no_answer" in r.issues for r in records]))


def _interval(first: _Answers, other: _Answers, metric, rows, draws) -> list[float | None]:
    changes = [metric(other, rows[d]) - metric(first, rows[d]) for d in draws]
    changes = [c for c in changes if not math.isnan(c)]  # AUROC is undefined on a resample of one class
    if len(changes) < len(draws) / 2:
        return [None, None]
    return [round(float(v), 4) for v in np.percentile(changes, [2.5, 97.5])]


def _section(answers: list[_Answers], rows: np.ndarray, metrics: dict, resamples: int, rng) -> dict:
    draws = rng.integers(0, len(rows), size=(resamples, len(rows)))
    section = {"n": len(rows), "pairs": []}
    first = {name: metric(answers[0], rows) for name, (_, metric) in metrics.items()}
    for k, a in enumerate(answers):
        cells = {}
        for name, (_, metric) in metrics.items():
            value = first[name] if k == 0 else metric(a, rows)
            cell = {"value": None if math.isnan(value) else round(value, 4)}
            if k > 0:
                base = first[name]
                known = not (math.isnan(value) or math.isnan(base))
                cell["change"] = round(value - base, 4) if known else None
                cell["interval"] = _interval(answers[0], a, metric, rows, draws) if known else [None, None]
            cells[name] = cell
        right = np.nansum(a.y[rows])
        section["pairs"].append({"right": int(right), "wrong": int(np.sum(a.y[rows] == 0)), **cells})
    return section


def compare_models(runs: list[Run], *, target_risk: float = 0.1, resamples: int = 1000, seed: int = 0) -> dict:
    """{"pairs": [{"name", "model", "prompt", "n"}], "target_risk", "resamples", "domains": {domain: section},
    "overall": section}. A section is {"n", "pairs": [per pair: {"right", "wrong", metric: {"value",
    "change", "interval"}}]}; the first pair's cells have no change. See the module docstring."""
    ids, domains = _shared(runs)
    metrics = _metrics(target_risk)
    answers = [_answers(run, ids, seed) for run in runs]
    rng = np.random.default_rng(seed)
    domains = np.array(domains, dtype=object)
    sections = {d: _section(answers, np.flatnonzero(domains == d), metrics, resamples, rng)
                for d in in_order(set(domains.tolist()))}
    return {
        "pairs": [{"name": run.name, "model": run.records[0].model, "prompt": run.records[0].prompt,
                   "n": len(ids)} for run in runs],
        "target_risk": target_risk, "resamples": resamples, "labels": {k: label for k, (label, _) in metrics.items()},
        "domains": sections, "overall": _section(answers, np.arange(len(ids)), metrics, resamples, rng),
    }


def _cell(cell: dict, name: str) -> str:
    value = cell["value"]
    if value is None:
        return "–"
    spec = ".1f" if name in ("tokens", "seconds") else ".3f"
    text = f"{value:{spec}}"
    if cell.get("change") is None:
        return text
    low, high = cell["interval"]
    if low is None:
        return f"{text} ({cell['change']:+{spec}})"
    noise = "" if low > 0 or high < 0 else " ~"  # the interval holds 0: within noise
    return f"{text} ({cell['change']:+{spec}} [{low:+{spec}}, {high:+{spec}}]{noise})"


# The report's two tables per domain: how often right and how honest about it; then the Brier score,
# how much could go out unchecked, and the cost.
COLUMN_GROUPS = (("accuracy", "idk_rate", "no_answer_rate", "raw_ece", "ece", "raw_auroc", "auroc"),
                 ("raw_brier", "brier", "coverage_at_risk", "tokens", "seconds"))


def format_markdown(result: dict, groups: tuple[tuple[str, ...], ...] = COLUMN_GROUPS) -> str:
    """Markdown tables per domain and overall, one per group of metrics: a row per pair. A pair after the first
    shows its change from the first and the change's 95% interval; `~` marks an interval that holds 0."""
    labels = result["labels"]
    lines = []
    for title, section in [*result["domains"].items(), ("overall", result["overall"])]:
        lines += ["", f"**{title}** ({section['n']} questions)"]
        for columns in groups:
            head = "| pair | right / wrong | " + " | ".join(labels[c] for c in columns) + " |"
            lines += ["", head, "|---" * (len(columns) + 2) + "|"]
            for pair, cells in zip(result["pairs"], section["pairs"]):
                row = " | ".join(_cell(cells[c], c) for c in columns)
                lines.append(f"| {pair['name']} | {cells['right']} / {cells['wrong']} | {row} |")
    return "\n".join(lines).lstrip("\n")
