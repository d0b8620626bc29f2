"""The calibration card `calibrate onboard` writes: one Markdown page on how well a (model, prompt) pair's new
maps calibrate held-out answers, with the stated-only baseline beside them, PNG plots per domain, its cost,
what each domain's fit still lacks, and the activation gate's decision."""

from __future__ import annotations

import datetime
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.core.files import atomic_write
from assistant.core.record import Record
from calibration.fitting.populations import population_of
from calibration.measuring.gate import Gate, answers_needed

__all__ = ["Card", "write_card"]


@dataclass(frozen=True)
class Card:
    model: str
    prompt: str
    version: str  # the new maps
    fitting: list[Record]
    heldout: list[Record]
    reports: dict[str, dict]  # per held-out population: build_report(its answers, new maps, baseline_maps=stated-only)
    gate: Gate
    activated: bool
    argv: list[str]  # the command that made it
    answers_per_minute: float | None  # while collecting in this run (None: everything was collected before)


def _figure(block: dict | None, key: str) -> str:
    value = (block or {}).get(key)
    return "–" if value is None else f"{value:.3f}"


def _table(population: str, report: dict, heldout: list[Record]) -> list[str]:
    risk = report.get("target_risk") or 0.1
    head = ("| domain | answers | right | accuracy | ECE (stated-only) | Brier (stated-only) | AUROC (stated-only) "
            f"| coverage at risk ≤ {risk:.0%} |")
    lines = [f"**{population} questions**", "", head, "|---" * 8 + "|"]
    baseline = report.get("baseline") or {}
    rows = [*report["domains"].items(), ("overall", report["overall"])]
    for name, s in rows:
        base = ((baseline.get("domains") or {}).get(name) if name != "overall" else baseline.get("overall")) or {}
        cal, stated = s["calibrated"], base.get("calibrated")
        cells = [f"{_figure(cal, k)} ({_figure(stated, k)})" for k in ("ece", "brier", "auroc")]
        right = sum(bool(r.correct) for r in heldout
                    if name in ("overall", r.domain) and population_of(r) == population)
        coverage = "–" if s["coverage"] is None else f"{s['coverage']:.0%}"
        lines.append(f"| {name} | {s['n']} | {right} | {right / s['n']:.3f} | {' | '.join(cells)} | {coverage} |")
    return lines


def write_card(card: Card, folder: Path, plots: list[Path]) -> Path:
    """Write `folder/card.md` (the plots are already in `folder`) and return its path."""
    tokens = np.mean([r.tokens for r in card.heldout + card.fitting])
    seconds = np.mean([r.seconds for r in card.heldout + card.fitting])
    speed = (f"{card.answers_per_minute:.1f} answers per minute while collecting; " if card.answers_per_minute
             else "")
    decision = ("activated" if card.activated else "not activated") + f": {card.gate.reason}"
    checks = "\n".join(f"- {c.line()}" for c in card.gate.checks)
    needed = "\n".join(f"- {line}" for line in answers_needed(card.fitting))
    images = "\n".join(f"![{p.stem}]({p.name})" for p in plots)
    tables = "\n\n".join("\n".join(_table(name, report, card.heldout)) for name, report in card.reports.items())
    mix = ", ".join(f"{n} {name}" for name, n in sorted(Counter(map(population_of, card.fitting)).items()))
    text = f"""# Calibration card: {card.model} / {card.prompt}

Maps **{card.version}**, fitted on {len(card.fitting)} answers to fitting questions ({mix}; each population
weighs the same within a domain) and measured on {len(card.heldout)} answers to held-out questions they never saw. Made {datetime.date.today().isoformat()} by:

```bash
calibrate {' '.join(shlex.quote(a) for a in card.argv)}
```

**Gate: {decision}.**
{checks}

Accuracy: right answers of all held-out answers ("I don't know" and no answer count as not right). ECE,
Brier and AUROC: of the new maps' calibrated figure on the graded held-out answers; in brackets, the
stated-only baseline (the model's own stated confidence through a map fitted on the same fitting answers;
– where no answer stated one). Coverage: the share of answers that would go out without a human check
at the maps' review thresholds.

{tables}

Cost: {speed}{tokens:.0f} tokens per answer and {seconds:.1f} s from asking to the whole answer (waiting for the
model included) on average.

Enough answers to learn from (fitting answers per domain):
{needed}

{images}
"""
    path = folder / "card.md"
    atomic_write(text, path)
    return path
