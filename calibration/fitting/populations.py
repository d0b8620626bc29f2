"""Populations of graded records, and the sample weights that keep any one from dominating a fit.

A record's population says where its question came from: `benchmark` (the shared calibration
questions), `everyday` (the project's own everyday questions), `generated` (`calibrate make-data`)
or `review` (a reviewer's verdict on a live answer). Records say it in their `population` field;
older records are read by their id (`review-…`, `gen-…`, `everyday-…`; anything else is a benchmark
question).

Within each domain, every population present gets the same total weight (a few hundred benchmark
answers do not drown sixty everyday ones), except that no record weighs more than `MAX_WEIGHT`
times a record of the domain's largest population, so a handful of reviews cannot outweigh hundreds
of answers. Weights are then scaled to average 1 within the domain.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_WEIGHT", "POPULATIONS", "population_counts", "population_of", "population_weights"]

POPULATIONS = ("benchmark", "everyday", "generated", "review")
MAX_WEIGHT = 5.0


def population_of(record) -> str:
    """The record's population: its `population` field, else read from its id."""
    population = getattr(record, "population", None)
    if population:
        return str(population)
    rid = str(getattr(record, "id", ""))
    if rid.startswith("review-"):
        return "review"
    if rid.startswith("gen-"):
        return "generated"
    if rid.startswith("everyday-"):
        return "everyday"
    return "benchmark"


def population_weights(domains, populations, mask, *, max_weight: float = MAX_WEIGHT) -> np.ndarray:
    """Per-record weights (0 outside `mask`): equal total weight per population within each domain,
    each record at most `max_weight` times a record of its largest population, averaging 1 within it."""
    domains, populations = np.asarray(domains, dtype=object), np.asarray(populations, dtype=object)
    mask = np.asarray(mask, dtype=bool)
    w = np.zeros(len(domains))
    for domain in np.unique(domains[mask]):
        mine = mask & (domains == domain)
        names = np.unique(populations[mine])
        n = int(mine.sum())
        for name in names:
            rows = mine & (populations == name)
            w[rows] = n / len(names) / rows.sum()
        w[mine] = np.minimum(w[mine], max_weight * w[mine].min())
        w[mine] *= n / w[mine].sum()
    return w


def population_counts(y, populations, weights, tested) -> dict:
    """How many right and wrong answers (and how much weight) of each population a map rests on, and
    which populations its review threshold was tested on."""
    by = {}
    for name in sorted(set(populations.tolist())):
        mine = populations == name
        by[name] = {"right": int(y[mine].sum()), "wrong": int((1 - y[mine]).sum()),
                    "weight": float(weights[mine].sum()) if weights is not None else float(mine.sum())}
    return {"right": int(y.sum()), "wrong": int(len(y) - y.sum()), "by_population": by,
            "threshold_tested_on": {n: int((tested == n).sum()) for n in sorted(set(tested.tolist()))}}
