"""Split the written everyday questions into a fitting part and a held-out part.

Reads calibration/everyday/written/<domain>.jsonl (the questions as written) and
writes calibration/everyday/fit-<domain>.jsonl and heldout-<domain>.jsonl, each
item with a ``split`` field. Deterministic: within each answer type the items
are shuffled by `random.Random(SEED)` and dealt alternately to fit and held-out,
so both parts hold the same mix of formats. Run from the repository root:

    python -m calibration.everyday.split

The held-out part is for evaluation only: never fit, tune or choose on it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from assistant.core.domains import DOMAINS

SEED = 20
HERE = Path(__file__).resolve().parent


def split(items: list[dict], seed: int = SEED) -> tuple[list[dict], list[dict]]:
    """(fit, heldout): per answer type, a seeded shuffle dealt alternately; both keep the written order."""
    rng = random.Random(seed)
    parts: dict[str, list[str]] = {"fit": [], "heldout": []}
    for answer_type in sorted({it["answer_type"] for it in items}):
        ids = [it["id"] for it in items if it["answer_type"] == answer_type]
        rng.shuffle(ids)
        for k, item_id in enumerate(ids):
            parts["fit" if k % 2 == 0 else "heldout"].append(item_id)
    chosen = {name: set(ids) for name, ids in parts.items()}
    return tuple([{**it, "split": name} for it in items if it["id"] in chosen[name]] for name in ("fit", "heldout"))


def main() -> None:
    for domain in DOMAINS:
        lines = (HERE / "written" / f"{domain}.jsonl").read_text(encoding="utf-8").splitlines()
        items = [json.loads(line) for line in lines if line.strip()]
        for name, part in zip(("fit", "heldout"), split(items)):
            text = "".join(json.dumps(it, ensure_ascii=False) + "\n" for it in part)
            (HERE / f"{name}-{domain}.jsonl").write_text(text, encoding="utf-8")
            print(f"{name}-{domain}.jsonl: {len(part)} items")


if __name__ == "__main__":
    main()
