"""Coverage of the range on the calibrated figure (assistant.calibrated.intervals) on held-out fitting-side answers.

    python -m bench.interval_check [--records calibration/records/calib/*.jsonl] [--folds 3] [--json]
    python -m bench.interval_check --records FIT.jsonl ... --heldout HELD.jsonl ... [--questions ../shared/calib/*.jsonl]

The committed graded records (fitting side only: never ../shared/data, never the everyday held-out
part) are dealt into `--folds` folds per domain (`calibration.fitting.fit.fold_numbers`); for each fold the
fused maps are fitted on the others (`fit_maps`, ranges included) and every answer of the fold gets its
figure and range. Per domain and pooled, 5 and 10 equal-count bins: the share of bins whose accuracy
lies inside the bins' mean range (`literal`) and inside it widened by the bin's own sampling error
(`noise_aware`), against the nominal level, and the mean width of the ranges.

With `--heldout`, the maps are fitted once on every `--records` file, with question features (text
by id from `--questions`, embedded by the router's embedder), and measured on the held-out files: the
same coverage, and the share of held-out questions called unlike the fitting ones (`extrapolating`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from assistant.calibrated.intervals import NOMINAL, bin_coverage
from assistant.calibrated.support import support_of
from assistant.core.jsonl import read_jsonl
from calibration.fitting.fit import as_records, fit_maps, fold_numbers
from calibration.labelling.question_text import question_features

ROOT = Path(__file__).resolve().parents[1]


def out_of_fold_ranges(records: list[dict], folds: int) -> dict[str, np.ndarray]:
    """Per domain (and "all"): rows (right, figure, low, high) of every answer, from maps fitted without it."""
    fold = fold_numbers(records, k=folds, seed=0)
    rows: dict[str, list] = {"all": []}
    for f in range(folds):
        maps = fit_maps([r for r, fo in zip(records, fold) if fo not in (-1, f)], model="check", prompt="check",
                        signals="fused")
        for r in as_records([r for r, fo in zip(records, fold) if fo == f]):
            dmap = maps.map_for(r.domain)
            score = dmap.score(r.signals_or_stated())
            point = dmap(score)
            row = (float(r.correct), point, *dmap.range(score, point))
            rows["all"].append(row)
            rows.setdefault(r.domain, []).append(row)
    return {d: np.array(v) for d, v in rows.items()}


def held_out_ranges(records: list[dict], heldout: list[dict], question_files) -> dict[str, np.ndarray]:
    """Per domain (and "all"): rows (right, figure, low, high, extrapolating) of each held-out answer under
    maps fitted on `records` with question features, as the live pipeline reads them."""
    maps = fit_maps(records, model="check", prompt="check", signals="fused",
                    questions=question_features(records, question_files=question_files))
    rows: dict[str, list] = {"all": []}
    for r, q in zip(as_records(heldout), question_features(heldout, question_files=question_files)):
        dmap = maps.map_for(r.domain)
        score = dmap.score(r.signals_or_stated(), q)
        point = dmap(score)
        support = support_of(maps, r.domain, score, point, None if q is None else q.embedding)
        row = (float(r.correct), point, support.low, support.high, float(support.extrapolating))
        rows["all"].append(row)
        rows.setdefault(r.domain, []).append(row)
    return {d: np.array(v) for d, v in rows.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", nargs="+", type=Path,
                        default=sorted((ROOT / "calibration" / "records" / "calib").glob("*.jsonl")))
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--heldout", nargs="*", type=Path, default=[])
    parser.add_argument("--questions", nargs="*", type=Path, default=[])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    records = [r for p in args.records for r in read_jsonl(p) if r.get("correct") is not None]
    heldout = [r for p in args.heldout for r in read_jsonl(p) if r.get("correct") is not None]
    result = {"nominal": NOMINAL, "records": len(records), "heldout": len(heldout), "domains": {}}
    rows = (held_out_ranges(records, heldout, args.questions) if heldout
            else out_of_fold_ranges(records, args.folds))
    for domain, a in rows.items():
        entry = {"n": len(a), "accuracy": round(float(a[:, 0].mean()), 3),
                 "mean_width": round(float(np.mean(a[:, 3] - a[:, 2])), 3)}
        if a.shape[1] > 4:
            entry["extrapolating"] = round(float(a[:, 4].mean()), 3)
        for bins in (5, 10):
            cov = bin_coverage(a[:, 0], a[:, 1], a[:, 2], a[:, 3], n_bins=bins)
            entry[f"{bins}_bins"] = {"literal": cov.literal, "noise_aware": cov.noise_aware}
        result["domains"][domain] = entry
    if args.json:
        print(json.dumps(result))
    else:
        print(f"nominal {NOMINAL:.0%}, {len(records)} records, "
              + (f"{len(heldout)} held out" if heldout else f"{args.folds} folds"))
        for domain, e in result["domains"].items():
            print(f"{domain:<10} n {e['n']:>5}  accuracy {e['accuracy']:.3f}  mean width {e['mean_width']:.3f}  "
                  + (f"extrapolating {e['extrapolating']:.3f}  " if "extrapolating" in e else "")
                  + "  ".join(f"{b}: literal {e[b]['literal']:.2f} noise-aware {e[b]['noise_aware']:.2f}"
                              for b in ("5_bins", "10_bins")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
