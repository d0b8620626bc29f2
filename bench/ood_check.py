"""How often questions are called unlike the fitting questions (assistant.calibrated.ood), per population.

    python -m bench.ood_check [--calib ../shared/calib] [--data ../shared/data] [--json]

The reference is built as `calibrate fit` builds it (`assistant.calibrated.ood.reference_of`), from the
fitting side only: the benchmark fitting questions (`--calib`, text by id of the committed
calibration/records/calib records) and the everyday fitting part (calibration/everyday/fit-*.jsonl).
Its thresholds come from a held-out share of those. Then every question below is routed by the
real router and compared with its routed domain's references, as the live pipeline does, and the
share beyond the threshold is printed:

- everyday held-out (calibration/everyday/heldout-*.jsonl) and, when `--data` exists, the benchmark
  held-out questions: measured only, never used to choose anything; about 5% is expected;
- the router's held-out off-domain questions (assistant/data/off_domain_heldout.jsonl);
- OFF_DISTRIBUTION below: questions written for this check, unlike any fitting question.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from assistant.calibrated.ood import Reference, reference_of
from assistant.calibrated.questions import QuestionFeatures
from assistant.core.jsonl import read_jsonl
from assistant.routing.router import (
    OFF_DOMAIN_HELDOUT_PATH,
    DomainRouter,
    embed,
    load_embedder,
    readable_text,
)

ROOT = Path(__file__).resolve().parents[1]
EVERYDAY = ROOT / "calibration" / "everyday"
CALIB_RECORDS = ROOT / "calibration" / "records" / "calib"

# Written for this check: what staff might type that no fitting question resembles.
OFF_DISTRIBUTION = (
    "Write a limerick about a cat who hates Mondays.",
    "Can you draft a polite email declining a meeting invitation?",
    "What's your favourite colour?",
    "Translate 'good morning, how are you?' into Portuguese.",
    "Write a Python function that reverses a linked list.",
    "Summarise the plot of a romantic comedy set in Lisbon in three sentences.",
    "Give me a recipe for vegan banana bread.",
    "How do I reset my VPN password at work?",
    "Tell me a joke about accountants.",
    "Should I wear a blue or a grey suit to the interview?",
    "Compose a haiku about autumn rain.",
    "Please fix the grammar in this sentence: 'me and him goes to the shop yesterday'.",
)


def fitting_questions(calib: Path) -> tuple[list[str], list[str]]:
    """(texts, domains) of the fitting side: benchmark fitting records' questions and the everyday fit part."""
    texts, domains = [], []
    items = {}
    for path in sorted(calib.glob("*.jsonl")):
        items.update({item["id"]: item for item in read_jsonl(path)})
    for path in sorted(CALIB_RECORDS.glob("*.jsonl")):
        for record in read_jsonl(path):
            item = items.get(record["id"])
            if item:
                texts.append(item["question"])
                domains.append(record["domain"])
    for path in sorted(EVERYDAY.glob("fit-*.jsonl")):
        for item in read_jsonl(path):
            texts.append(item["question"])
            domains.append(item["domain"])
    return texts, domains


def build_reference(texts: list[str], domains: list[str], embedder, seed: int = 0) -> Reference:
    vectors = embed(embedder, [readable_text(t) for t in texts])
    return Reference.from_dict(reference_of([QuestionFeatures.of(t, v) for t, v in zip(texts, vectors)], domains,
                                            seed=seed))


def beyond_share(reference: Reference, router: DomainRouter, questions: list[str]) -> dict:
    """Share of `questions` beyond the threshold of their routed domain (the general map's: all)."""
    routes = router.route_many(questions)
    flags = [reference.score(r.embedding, r.domain).extrapolating for r in routes]
    return {"n": len(questions), "beyond": int(sum(flags)), "share": round(float(np.mean(flags)), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calib", type=Path, default=ROOT.parent / "shared" / "calib")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    embedder = load_embedder()
    router = DomainRouter.load(embedder=embedder)
    texts, domains = fitting_questions(args.calib)
    reference = build_reference(texts, domains, embedder)
    sets = {"everyday held-out": [i["question"] for p in sorted(EVERYDAY.glob("heldout-*.jsonl"))
                                  for i in read_jsonl(p)],
            "off-domain held-out (router)": [i["question"] for i in read_jsonl(OFF_DOMAIN_HELDOUT_PATH)],
            "written off-distribution": list(OFF_DISTRIBUTION)}
    if args.data.is_dir():
        sets["benchmark held-out (../shared/data)"] = [i["question"] for p in sorted(args.data.glob("*.jsonl"))
                                                       for i in read_jsonl(p)]
    result = {"fitting questions": len(texts), "thresholds": reference.thresholds,
              **{name: beyond_share(reference, router, qs) for name, qs in sets.items()}}
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
