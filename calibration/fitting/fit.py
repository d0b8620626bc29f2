"""Fit calibration maps from graded records: per-domain isotonic maps, shrinkage, review thresholds.

Records are `assistant.core.record.Record`s, as `calibrate collect` writes them (a plain dict is
read with `Record.from_dict`, see `as_records`). A fit reads `domain`, `raw_confidence` (the stated
confidence), `correct`, `signals` for a fused fit, and `population` (else the id) to weight the
populations; question-aware fits also take the questions' features (`questions`). A record whose
`raw_confidence` is None (no confidence could be parsed) or whose `correct` is
None (the model did not attempt an answer) is left out of every fit and only
counted in the parse-failure and not-attempted rates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np
from threadpoolctl import threadpool_limits

from assistant.calibrated import metrics as M
from assistant.calibrated.fusion import SIGNAL_COLUMNS, signal_matrix
from assistant.calibrated.intervals import N_BOOT, bootstrap_bands
from assistant.calibrated.maps import SIGNAL_SETS, CalibrationMaps, DomainMap, _json_safe
from assistant.calibrated.ood import reference_of
from assistant.core.domains import GENERAL, in_order
from assistant.core.errors import DataError
from assistant.core.record import Record
from calibration.fitting.fusion_fit import FusionFit, fit_fused
from calibration.fitting.guarantee import candidate_thresholds, review_threshold
from calibration.fitting.mapfit import map_knots, shrink_to_general
from calibration.fitting.populations import population_counts, population_of, population_weights
from calibration.fitting.sources import describe_sources, file_sha256, source_path

__all__ = [
    "SHRINK_BELOW",
    "SHRINK_K",
    "records_to_arrays",
    "shrink_to_general",
    "fit_maps",
    "as_records",
    "cross_validate",
    "cross_validated_predictions",
    "describe_sources",
    "fold_numbers",
    "file_sha256",
    "source_path",
]

SHRINK_BELOW = 200  # domains with fewer usable records are blended with the general map
SHRINK_K = 50  # blend weight of the domain map is n / (n + SHRINK_K)
AGREEMENT_MIN_SHARE = 0.5  # graded records with self-consistency agreement for a fit to read it by default


def as_records(records) -> list[Record]:
    """`records` as Records; a plain dict is read with `Record.from_dict`, needing no more than a fit uses
    (domain, raw_confidence, correct, signals), and raising DataError naming the record and field."""
    return [r if isinstance(r, Record) else Record.from_dict(r, where=f"record {i}", required=())
            for i, r in enumerate(records)]


def records_to_arrays(records) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Domains (object array), raw confidences and correctness (float arrays, NaN where None)."""
    records = as_records(records)
    domains = np.array([r.domain for r in records], dtype=object)
    p = np.array([np.nan if r.raw_confidence is None else r.raw_confidence for r in records], dtype=float)
    y = np.array([np.nan if r.correct is None else float(r.correct) for r in records], dtype=float)
    return domains, p, y


def _rate(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if len(mask) else None


def _fit_one(domain, p, y, held_p, held_y, *, strict, target_risk, delta, extra, general=None, weight=1.0,
             combiner=None, sample_weight=None, n_boot=N_BOOT) -> DomainMap:
    """Fit (and maybe shrink) one domain's map on (p, y), its threshold on the held-out (held_p, held_y),
    and diagnostics. With no held-out answers the threshold is tested on (p, y) and carries no guarantee.
    A fused map (with a combiner) is isotonic blended with Platt scaling (`mapfit.platt_blend`), both weighted
    by `sample_weight` (None: equal). The range on its figures bootstraps the same fit `n_boot` times
    (`assistant.calibrated.intervals.bootstrap_bands`)."""
    fit_map = functools.partial(map_knots, strict=strict, combiner=combiner, general=general, weight=weight)
    x, yk = fit_map(p, y, sample_weight)
    bands = bootstrap_bands(p, y, fit_map, weights=sample_weight, n_boot=n_boot)
    c = np.clip(np.interp(p, x, yk), 0.0, 1.0)
    guaranteed = len(held_p) > 0
    if guaranteed:
        held_c = np.clip(np.interp(held_p, x, yk), 0.0, 1.0)
        thr = review_threshold(held_y, held_c, target_risk=target_risk, delta=delta,
                               candidates=candidate_thresholds(c, len(held_p), target_risk, delta))
    else:
        thr = review_threshold(y, c, target_risk=target_risk, delta=delta,
                               candidates=candidate_thresholds(c, len(c), target_risk, delta))
    diag = {
        **extra,
        "n": len(p),
        "accuracy": float(y.mean()),
        "shrink_weight": weight,
        "ece_raw": M.expected_calibration_error(y, p),
        "ece_calibrated": M.expected_calibration_error(y, c),
        "brier_raw": M.brier_score(y, p),
        "brier_calibrated": M.brier_score(y, c),
        "auroc_raw": M.auroc(y, p),
        "auroc_calibrated": M.auroc(y, c),
        **thr,
        "threshold_guaranteed": guaranteed,
        "target_risk": target_risk,
        "delta": delta,
    }
    if guaranteed:
        diag.update(n_holdout=len(held_p), accuracy_holdout=float(np.mean(held_y)),
                    ece_calibrated_holdout=M.expected_calibration_error(held_y, held_c),
                    auroc_holdout=M.auroc(held_y, held_c))
    return DomainMap(domain, x, yk, len(p), thr["threshold"], _json_safe(diag),
                     combiner.to_dict() if combiner is not None else None, bands.to_dict())


def _holdout_mask(domains: np.ndarray, usable: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A random `share` of each domain's usable records, held out of the fit to test thresholds on."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(domains), dtype=bool)
    if share <= 0:
        return held
    for domain in in_order(domains.tolist()):
        idx = rng.permutation(np.flatnonzero((domains == domain) & usable))
        held[idx[: int(round(share * len(idx)))]] = True
    return held


def fit_maps(
    records,
    *,
    model: str,
    prompt: str,
    target_risk: float = 0.1,
    delta: float = 0.05,
    min_samples: int = 30,
    strict: bool = True,
    shrink_below: int = SHRINK_BELOW,
    shrink_k: float = SHRINK_K,
    signals: str = "stated",
    holdout: float = 1 / 3,
    seed: int = 0,
    version: str = "unsaved",
    source=(),
    notes: str = "",
    questions=None,
    n_boot: int = N_BOOT,
    agreement: bool | None = None,
) -> CalibrationMaps:
    """Fit a general map on all usable records and one map per domain.

    Parameters
    ----------
    records : list of Record (or of dicts `Record.from_dict` reads)
        Graded records (`domain`, `raw_confidence`, `correct`, and `signals` for a fused fit).
    model, prompt : str
        What the maps are for (`CalibrationMaps.matches`).
    target_risk, delta : float
        Review thresholds keep answers whose error rate is at most `target_risk`
        with confidence 1 - `delta` (see `review_threshold`).
    min_samples : int, default 30
        A domain with fewer usable records gets no map (it falls back to
        general); fewer usable records overall raises DataError.
    strict : bool, default True
        Centred isotonic regression (see `assistant.calibrated.isotonic.IsotonicCalibrator`).
    shrink_below, shrink_k
        Shrinkage rule: a domain map fitted on n < `shrink_below` records is
        replaced by ``w * domain(x) + (1 - w) * general(x)`` with
        ``w = n / (n + shrink_k)`` (defaults 200 and 50: w = 0.5 at n = 50,
        0.8 at n = 199; from n = 200 on the domain map is used as fitted).
        Small domains thus lean on the general map, whose data include theirs.
    signals : "stated" or "fused"
        "stated": the map's input is the stated confidence, and records without one
        are left out (the paper's baseline). "fused": every graded record counts,
        weighted so that no population dominates by count (`calibration.fitting.populations`);
        logistic combiners fitted together (`calibration.fitting.fusion_fit`: pooled weights,
        per-domain intercepts, each domain's own weights shrunk toward the pooled ones)
        turn its signals into one score per domain, and the domain's isotonic map
        (weighted too) reads that score.
    holdout : float, default 1/3
        Share of each domain's usable records kept out of the fit; the review
        thresholds are tested on them, which is what makes their guarantee hold.
        0 tests thresholds on the fitting records (no guarantee; marked in metrics).
    seed : int
        Seeds the holdout split and the combiner's cross-validation folds.
    version, source, notes
        Stored as is (`MapStore.save_new` sets the version).
    questions : list of QuestionFeatures or None, optional
        Aligned with `records` (`calibration.labelling.question_text.question_features`): the fused
        combiners then read question features too (`assistant.calibrated.questions`). None: they do not.
        Their embeddings also make the reference that live questions are compared with
        (`assistant.calibrated.ood.reference_of`: numbers only; None with fewer than 20 embeddings).
    n_boot : int, default assistant.calibrated.intervals.N_BOOT
        Bootstrap resamples behind each map's range on its figures (0: the Jeffreys floor alone).
    agreement : bool or None
        Whether fused combiners read self-consistency agreement (`Signals.agreement`). None: they do
        when at least `AGREEMENT_MIN_SHARE` of the graded records carry it (`collect --self-consistency K`).

    Returns
    -------
    CalibrationMaps
        Each map's `metrics` holds diagnostics: counts, accuracy, parse-failure and
        not-attempted rates, ECE/Brier/AUROC raw and calibrated (in-sample), shrink
        weight, threshold, coverage, risk bound, and held-out ECE/AUROC.
        Use `calibration.measuring.report.build_report` for numbers on other records.
    """

    if signals not in SIGNAL_SETS:
        raise DataError(f"signals must be one of {', '.join(SIGNAL_SETS)}, not {signals!r}")
    records = as_records(records)
    domains, p, y = records_to_arrays(records)
    fused = signals == "fused"
    usable = ~np.isnan(y) if fused else ~np.isnan(p) & ~np.isnan(y)
    if usable.sum() < max(min_samples, 1):
        raise DataError(f"only {int(usable.sum())} records have both raw_confidence and correct; "
                        f"at least {max(min_samples, 1)} are needed to fit maps")
    held = _holdout_mask(domains, usable, holdout, seed)
    populations = np.array([population_of(r) for r in records], dtype=object)
    fitter = _Fitter(p, y, [r.signals_or_stated() for r in records], fit=usable & ~held, held=held,
                     opts=dict(strict=strict, target_risk=target_risk, delta=delta, n_boot=n_boot),
                     populations=populations)
    with threadpool_limits(1):  # many small fits, which BLAS threads only slow down on a busy machine
        if fused:
            fitter.fuse(domains, questions, seed, _reads_agreement(fitter.sig, usable) if agreement is None else agreement)
        general = fitter.general()
        maps = {"general": general}
        for domain in [d for d in in_order(domains.tolist()) if d != GENERAL]:
            mask = domains == domain
            if int((mask & usable).sum()) >= max(min_samples, 1):
                maps[domain] = (fitter.fused_domain(domain, mask) if fused
                                else fitter.stated_domain(domain, mask, general, shrink_below, shrink_k))
            else:  # it borrows the pooled (general) map, which its answers are part of; say with how many
                general.metrics.setdefault("borrowed_by", {})[domain] = int((mask & usable).sum())
    return CalibrationMaps(
        model=model, prompt=prompt, version=version,
        fitted_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        maps=maps, source=tuple(source), notes=notes, signals=signals,
        ood=reference_of(None if questions is None else [q for q, u in zip(questions, usable) if u],
                         domains[usable], seed=seed),
    )


def _reads_agreement(signal_dicts: list[dict], graded: np.ndarray) -> bool:
    """Whether at least AGREEMENT_MIN_SHARE of the graded records carry a self-consistency agreement."""
    has = np.array([(s or {}).get("agreement") is not None for s in signal_dicts])
    return bool(graded.any() and has[graded].mean() >= AGREEMENT_MIN_SHARE)


@dataclass
class _Fitter:
    """One `fit_maps` call's arrays, and the fit of one domain's map from them."""

    p: np.ndarray  # stated confidence per record (NaN: none)
    y: np.ndarray  # 1 right, 0 wrong, NaN not attempted
    sig: list[dict]  # every record's signals
    fit: np.ndarray  # records the maps are fitted on
    held: np.ndarray  # records held out to test review thresholds on
    opts: dict  # strict, target_risk, delta
    populations: np.ndarray  # each record's population (calibration.fitting.populations)
    weights: np.ndarray | None = None  # population weights of the fitting records (fused fits only)
    fusion: FusionFit | None = None  # the combiners (fused fits only)

    def __post_init__(self):
        self.columns = signal_matrix(self.sig)

    def fuse(self, domains: np.ndarray, questions, seed: int, agreement: bool) -> None:
        """Weigh the populations and fit every domain's combiner together (`fit_fused`)."""
        self.weights = population_weights(domains, self.populations, self.fit)
        self.fusion = fit_fused(self.sig, self.y, labels=domains, fit=self.fit, weights=self.weights,
                                questions=questions, agreement=agreement, seed=seed)

    def extra(self, mask) -> dict:
        return {"n_total": int(mask.sum()), "parse_failure_rate": _rate(np.isnan(self.p[mask])),
                "not_attempted_rate": _rate(np.isnan(self.y[mask]))}

    def one(self, domain: str, mask, combiner=None, **kw) -> DomainMap:
        x = combiner.scores_of(self.fusion.x) if combiner is not None else self.p
        fit, held, y = mask & self.fit, mask & self.held, self.y
        weight = self.weights[fit] if combiner is not None else None
        extra = {**self.extra(mask), **population_counts(y[fit], self.populations[fit], weight, self.populations[held])}
        if combiner is not None:
            extra["combiner_fit"] = self.fusion.details.get(domain)
        dmap = _fit_one(domain, x[fit], y[fit], x[held], y[held], extra=extra, combiner=combiner,
                        sample_weight=weight, **kw, **self.opts)
        aurocs = {}  # how well each signal alone ranks the held-out answers, for the dashboard
        for j, name in enumerate(SIGNAL_COLUMNS):
            has = held & ~np.isnan(self.columns[:, j])
            aurocs[name] = M.auroc(y[has], self.columns[has, j]) if has.any() else None
        return replace(dmap, metrics=_json_safe({**dmap.metrics, "signal_auroc_holdout": aurocs}))

    def general(self) -> DomainMap:
        combiner = self.fusion.combiners["general"] if self.fusion is not None else None
        return self.one("general", np.ones(len(self.p), dtype=bool), combiner=combiner)

    def fused_domain(self, domain: str, mask) -> DomainMap:
        """A domain's map reads its own combiner (pooled weights and its own intercept when it has few
        right or wrong answers, `calibration.fitting.fusion_fit`); the map is isotonic blended with Platt
        scaling (`_fit_one`), not shrunk toward general, whose score means something else."""
        return self.one(domain, mask, combiner=self.fusion.combiners[domain])

    def stated_domain(self, domain: str, mask, general: DomainMap, shrink_below: int, shrink_k: float) -> DomainMap:
        """A stated-confidence map, shrunk toward the general one when fitted on fewer than `shrink_below`."""
        n = int((mask & self.fit).sum())
        small = n < shrink_below
        return self.one(domain, mask, general=general if small else None, weight=n / (n + shrink_k) if small else 1.0)


def fold_numbers(records, *, k: int = 5, seed: int = 0) -> np.ndarray:
    """The cross-validation fold of each record (-1 when it is not graded): each domain's graded records
    are shuffled with `seed` and dealt round-robin, whatever signals they carry, so every pipeline
    cross-validated with the same `k` and `seed` is fitted and tested on the same folds."""
    domains, _, y = records_to_arrays(records)
    rng = np.random.default_rng(seed)
    folds = np.full(len(domains), -1)
    for domain in in_order(domains.tolist()):
        idx = np.flatnonzero((domains == domain) & ~np.isnan(y))
        folds[rng.permutation(idx)] = np.arange(len(idx)) % k
    return folds


CV_BOOT = 0  # no ranges on maps fitted inside a cross-validation: they are never read


def cross_validate(records, *, k: int = 5, seed: int = 0, questions=None,
                   **fit_options) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold calibrated confidences and the review threshold that applied to each record.

    Returns two float arrays aligned with `records`, NaN for records left out (no confidence or
    not attempted). See `cross_validated_predictions`. The folds are `fold_numbers`, the same
    for every signal set (a stated-only fit just leaves out the records that state none).
    `questions` (aligned with `records`) go to each fold's fit and scoring (see `fit_maps`).
    """
    if not isinstance(k, int) or k < 2:
        raise ValueError(f"k must be an integer >= 2, got {k!r}")
    records = as_records(records)
    domains, p, y = records_to_arrays(records)
    folds = fold_numbers(records, k=k, seed=seed)
    conf, thr = np.full(len(p), np.nan), np.full(len(p), np.nan)
    # The folds' maps give confidences and thresholds only: their ranges are never read, so their bootstrap
    # (most of a fit's time) is left out unless asked for.
    fit_options = {"model": "cross-validation", "prompt": "cross-validation", "n_boot": CV_BOOT, **fit_options}
    for f in range(k):
        held = folds == f
        if not held.any():
            continue
        train = [i for i, fo in enumerate(folds) if fo not in (-1, f)]
        maps = fit_maps([records[i] for i in train], **fit_options,
                        questions=None if questions is None else [questions[i] for i in train])
        for i in np.flatnonzero(held):
            question = None if questions is None else questions[i]
            conf[i] = maps.calibrate_signals(domains[i], records[i].signals_or_stated(), question)
            thr[i] = maps.threshold(domains[i])
    return conf, thr


def cross_validated_predictions(records, k: int = 5, seed: int = 0, **fit_options) -> np.ndarray:
    """Calibrated confidences of each record from maps fitted without it (k-fold, stratified by domain).

    Parameters
    ----------
    records : list of dict
    k : int, default 5
        Number of folds; each domain's usable records are shuffled with `seed`
        and dealt round-robin into folds, so every fold holds every domain.
    seed : int, default 0
    **fit_options
        Passed to `fit_maps` (min_samples, strict, shrink_below, …).

    Returns
    -------
    ndarray of float, aligned with `records`; NaN for records left out of
    fitting (raw_confidence or correct is None).
    """
    return cross_validate(records, k=k, seed=seed, **fit_options)[0]
