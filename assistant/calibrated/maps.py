"""Calibration map files: per-domain maps from a confidence score to a calibrated confidence, as JSON.

A map file holds, for one model and one prompt, a monotone piecewise-linear
map from raw (verbalized) confidence to calibrated confidence for each domain,
plus that domain's review threshold. Files are plain JSON (never pickle),
validated on load, and written atomically; `assistant.calibrated.mapstore` keeps their versions.
"""

from __future__ import annotations

import json
import math
from dataclasses import KW_ONLY, InitVar, dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import numpy as np

from assistant.calibrated.fusion import Combiner
from assistant.calibrated.intervals import Bands
from assistant.calibrated.ood import OodScore, Reference
from assistant.calibrated.questions import QuestionFeatures
from assistant.core.domains import CUSTOM_NAMES, MAP_DOMAINS, is_domain_name
from assistant.core.errors import MapError
from assistant.core.files import atomic_write
from assistant.core.validate import (
    Rule,
    check,
    is_finite,
    is_number,
    is_object,
    is_unit,
    is_whole,
    list_of,
    missing,
    unknown,
)

__all__ = [
    "SCHEMA_VERSION",
    "MAP_DOMAINS",
    "DomainMap",
    "CalibrationMaps",
    "load_maps",
    "save_maps",
]

SCHEMA_VERSION = 2  # 2 adds a per-domain signal combiner and the top-level `signals`; 1 still loads
READABLE_SCHEMAS = (1, 2)
SIGNAL_SETS = ("stated", "fused")  # what a map's x axis is: the stated confidence, or the fused score


@dataclass(frozen=True)
class DomainMap:
    domain: str  # math, factual, science, reasoning or general
    x: tuple  # knots on the score it reads (stated or fused, see `score`); strictly increasing, in [0, 1]
    y: tuple  # calibrated confidence at each knot, non-decreasing, in [0, 1]
    n_samples: int  # records the map was fitted on
    threshold: float  # review threshold on calibrated confidence; 1.0 = flag everything
    metrics: dict = field(default_factory=dict)  # fit diagnostics (JSON-ready; None for undefined)
    combiner: dict | None = None  # assistant.calibrated.fusion.Combiner as a dict; None: x is the stated confidence
    interval: dict | None = None  # assistant.calibrated.intervals.Bands as a dict; None: no range (maps before issue 20)

    _: KW_ONLY
    where: InitVar[str] = "DomainMap"  # what an error names: the file the map was read from

    def __post_init__(self, where: str):
        """Check every field (a MapError names `where` and the field), then keep plain Python values."""
        prefix = f"maps.{self.domain}"
        for name in ("x", "y"):
            if isinstance(getattr(self, name), np.ndarray):  # knots from a fit: checked as a file's lists are
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if not is_domain_name(self.domain):
            _fail(where, prefix, f"unknown domain (allowed: {', '.join(MAP_DOMAINS)} or {CUSTOM_NAMES})")
        check(vars(self), _MAP_RULES, lambda name, problem: _fail(where, f"{prefix}.{name}", problem))
        _check_knots(self.x, self.y, prefix, where)
        object.__setattr__(self, "x", tuple(float(v) for v in self.x))
        object.__setattr__(self, "y", tuple(float(v) for v in self.y))
        object.__setattr__(self, "n_samples", int(self.n_samples))
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "_combine", _combiner(self.combiner, prefix, where))
        object.__setattr__(self, "_bands", _bands(self.interval, prefix, where))

    def range(self, score: float, point: float) -> tuple[float, float] | None:
        """(low, high) around the calibrated figure `point` read at `score` (assistant.calibrated.intervals);
        None for a map fitted without one."""
        return None if self._bands is None else self._bands.at(score, point)

    @property
    def range_level(self) -> float | None:
        """The nominal level of `range` (assistant.calibrated.intervals.NOMINAL when fitted); None without one."""
        return None if self._bands is None else self._bands.level

    def score(self, signals: dict, question: QuestionFeatures | None = None) -> float | None:
        """What goes into the isotonic map: the fused score of `signals` (a dict keyed by
        assistant.core.signals.SIGNAL_NAMES) and, for a question-aware combiner, of the `question`
        (None: its features sit at their training mean); without a combiner the stated confidence
        (None if none)."""
        if self._combine is not None:
            return self._combine(signals, question)
        return (signals or {}).get("stated")

    def __call__(self, p: float) -> float:
        """Calibrated confidence of the score `p` (see `score`; clipped into [0, 1])."""
        if p is None or math.isnan(p):
            raise ValueError(f"the score a map reads must be a number in [0, 1], got {p!r}")
        return float(np.clip(np.interp(min(max(float(p), 0.0), 1.0), self.x, self.y), 0.0, 1.0))

    def needs_review(self, confidence: float) -> bool:
        """True when a calibrated `confidence` should be flagged: below the threshold, or threshold 1.0."""
        return confidence < self.threshold or self.threshold >= 1.0


@dataclass(frozen=True)
class CalibrationMaps:
    model: str  # model id the maps were fitted for (Backend.model_id)
    prompt: str  # prompt id the maps were fitted for
    version: str  # "v0003" once saved in a MapStore; "unsaved" before
    fitted_at: str  # ISO-8601 time of the fit
    maps: dict  # domain -> DomainMap; "general" is required
    schema_version: int = SCHEMA_VERSION  # file format version; READABLE_SCHEMAS load
    source: tuple = ()  # records files used: ({"path": ..., "sha256": ...}, ...)
    notes: str = ""  # free text (fit options, data description)
    signals: str = "stated"  # "stated": maps read the stated confidence; "fused": every signal, combined
    ood: dict | None = None  # assistant.calibrated.ood.Reference as a dict (the fitting questions); None: not stored

    _: KW_ONLY
    where: InitVar[str] = "CalibrationMaps"  # what an error names: the file the maps were read from

    def __post_init__(self, where: str):
        if "general" not in self.maps:
            _fail(where, "maps", "the 'general' map is required")
        object.__setattr__(self, "source", tuple(dict(s) for s in self.source))
        object.__setattr__(self, "_reference", _reference(self.ood, where))

    def unlike_fitting(self, domain: str, embedding) -> OodScore | None:
        """How far a question (its router embedding) lies from the questions these maps were fitted on,
        compared with `domain`'s (all of them for a domain without its own map); None when the maps
        store no reference questions or there is no embedding."""
        if self._reference is None or embedding is None:
            return None
        return self._reference.score(embedding, domain if domain in self.maps else "general")

    def matches(self, model: str, prompt: str) -> bool:
        """True when these maps were fitted for this model and prompt."""
        return self.model == model and self.prompt == prompt

    @property
    def reads_agreement(self) -> bool:
        """Whether any map's combiner reads self-consistency agreement (fitted on records collected with
        `--self-consistency K`): answers then need K samples of their own for the figure to mean the same."""
        return any(m._combine is not None and m._combine.reads_agreement for m in self.maps.values())

    def map_for(self, domain: str) -> DomainMap:
        """The domain's map, or the general map when the domain has none."""
        return self.maps.get(domain) or self.maps["general"]

    def calibrate_signals(self, domain: str, signals: dict, question: QuestionFeatures | None = None) -> float | None:
        """Calibrated confidence of an answer's signals (and its question, for question-aware maps) in
        `domain`; None when its map needs a stated confidence and there is none."""
        dmap = self.map_for(domain)
        score = dmap.score(signals, question)
        return None if score is None else dmap(score)

    def threshold(self, domain: str) -> float:
        """Review threshold of `domain` (falls back to general)."""
        return self.map_for(domain).threshold

    def needs_review(self, domain: str, confidence: float) -> bool:
        """True when calibrated `confidence` in `domain` should be flagged (see DomainMap.needs_review)."""
        return self.map_for(domain).needs_review(confidence)

    def to_dict(self) -> dict:
        """JSON-ready dict, the map-file format."""
        return {
            "schema_version": self.schema_version,
            "model": self.model,
            "prompt": self.prompt,
            "version": self.version,
            "fitted_at": self.fitted_at,
            "source": [dict(s) for s in self.source],
            "notes": self.notes,
            "signals": self.signals,
            "maps": {
                d: {"x": list(m.x), "y": list(m.y), "n_samples": m.n_samples, "threshold": m.threshold,
                    "metrics": _json_safe(m.metrics), **({"combiner": m.combiner} if m.combiner else {}),
                    **({"interval": m.interval} if m.interval else {})}
                for d, m in self.maps.items()
            },
            **({"ood": self.ood} if self.ood else {}),
        }

    @classmethod
    def from_dict(cls, data, where: str = "<dict>") -> CalibrationMaps:
        """Build and validate from the map-file dict; MapError names `where` and the field."""
        _check_file_fields(data, where)
        maps = {}
        for domain, m in data["maps"].items():
            _check_map_keys(m, f"maps.{domain}", where)
            maps[domain] = DomainMap(domain, m["x"], m["y"], m["n_samples"], m["threshold"], m.get("metrics", {}),
                                     m.get("combiner"), m.get("interval"), where=where)
        return cls(model=data["model"], prompt=data["prompt"], version=data["version"],
                   fitted_at=data["fitted_at"], maps=maps, schema_version=SCHEMA_VERSION,
                   source=tuple(data.get("source", ())), notes=data.get("notes", ""),
                   signals=data.get("signals", "stated"), ood=data.get("ood"), where=where)


def _json_safe(value):
    """Replace NaN/inf by None (JSON has no NaN) and numpy scalars by Python ones, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _fail(where: str, fld: str, problem: str):
    raise MapError(f"{where}: field {fld}: {problem}")


_FILE_FIELDS = {"schema_version", "model", "prompt", "version", "fitted_at", "maps", "source", "notes", "signals",
                "ood"}
_MAP_FIELDS = {"domain", "x", "y", "n_samples", "threshold", "metrics", "combiner", "interval"}
_TEXT = Rule(lambda v: isinstance(v, str) and v != "", "must be a non-empty string, got {value}")
# The top level of a map file, checked in this order (each map is checked by DomainMap itself).
_FILE_RULES = {
    "schema_version": Rule(lambda v: is_whole(v) and v in READABLE_SCHEMAS,
                           f"is {{value}}; this version of calibrated-chat reads schema_version "
                           f"{' and '.join(map(str, READABLE_SCHEMAS))} (refit with `calibrate fit`)"),
    "signals": Rule(lambda v: v in SIGNAL_SETS, f"must be one of {', '.join(SIGNAL_SETS)}, got {{value}}"),
    "model": _TEXT, "prompt": _TEXT, "version": _TEXT,
    "fitted_at": (_TEXT, Rule(lambda v: _iso_time(v), "not an ISO-8601 time: {value}")),
    "notes": Rule(lambda v: isinstance(v, str), "must be a string"),
    "source": Rule(list_of(is_object), 'must be a list of {{"path", "sha256"}} objects'),
    "maps": Rule(is_object, "must be an object mapping domain -> map"),
}
_KNOTS = (Rule(list_of(is_number), "must be a list of numbers"),
          Rule(list_of(is_finite), "contains NaN or infinity"),
          Rule(list_of(is_unit), "values must lie in [0, 1]"))
# One domain map, in this order (its keys are checked by _check_map_keys, its knots' shape by _check_knots).
_MAP_RULES = {
    "x": _KNOTS, "y": _KNOTS,
    "threshold": Rule(is_unit, "must be a number in [0, 1], got {value}"),
    "n_samples": Rule(is_whole, "must be a non-negative integer, got {value}"),
    "metrics": Rule(is_object, "must be an object"),
}


def _iso_time(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _combiner(data, prefix: str, where: str):
    """The Combiner a map's `combiner` field holds (None for none); MapError names a bad one."""
    if data is None:
        return None
    try:
        return Combiner.from_dict(data)
    except ValueError as err:
        _fail(where, f"{prefix}.combiner", str(err))


def _bands(data, prefix: str, where: str):
    """The Bands a map's `interval` field holds (None for none); MapError names a bad one."""
    if data is None:
        return None
    try:
        return Bands.from_dict(data)
    except ValueError as err:
        _fail(where, f"{prefix}.interval", str(err))


def _reference(data, where: str):
    """The Reference a file's `ood` field holds (None for none); MapError names a bad one."""
    if data is None:
        return None
    try:
        return Reference.from_dict(data)
    except ValueError as err:
        _fail(where, "ood", str(err))


def _check_file_fields(data, where: str) -> None:
    """Validate the top level of a map-file dict (each map is checked by _check_map_keys and DomainMap)."""
    if not isinstance(data, dict):
        raise MapError(f"{where}: the file must hold one JSON object, got {type(data).__name__}")
    for name in missing(data, ("schema_version", "model", "prompt", "version", "fitted_at", "maps")):
        _fail(where, name, "missing")
    for name in unknown(data, _FILE_FIELDS):
        _fail(where, name, f"unknown field (known: {', '.join(sorted(_FILE_FIELDS))})")
    check(data, _FILE_RULES, lambda name, problem: _fail(where, name, problem))
    for domain in data["maps"]:
        if not is_domain_name(domain):
            shown = domain if domain.isprintable() else ascii(domain)  # errors stay one line
            _fail(where, f"maps.{shown}", f"unknown domain (allowed: {', '.join(MAP_DOMAINS)} or {CUSTOM_NAMES})")
    if "general" not in data["maps"]:
        _fail(where, "maps.general", "missing (every map file needs a general map)")


def _check_map_keys(m, prefix: str, where: str) -> None:
    """Check that one domain map of a file is an object with the fields a DomainMap takes."""
    if not isinstance(m, dict):
        _fail(where, prefix, "must be an object")
    for name in missing(m, ("x", "y", "n_samples", "threshold")):
        _fail(where, f"{prefix}.{name}", "missing")
    for name in unknown(m, _MAP_FIELDS):
        _fail(where, f"{prefix}.{name}", f"unknown field (known: {', '.join(sorted(_MAP_FIELDS))})")
    domain = prefix.split(".", 1)[1]
    if m.get("domain", domain) != domain:
        _fail(where, f"{prefix}.domain", f"is {m['domain']!r} but the map is stored under {domain!r}")


def _check_knots(x, y, prefix: str, where: str) -> None:
    """The knots of a map (each already a list of numbers in [0, 1]) make a monotone map."""
    if len(x) != len(y):
        _fail(where, f"{prefix}.y", f"has {len(y)} values but x has {len(x)}")
    if len(x) < 2:
        _fail(where, f"{prefix}.x", f"needs at least 2 knots, got {len(x)}")
    if any(b <= a for a, b in pairwise(x)):
        _fail(where, f"{prefix}.x", "knots must be strictly increasing")
    if any(b < a for a, b in pairwise(y)):
        _fail(where, f"{prefix}.y", "values must be non-decreasing (monotone map)")


def load_maps(path) -> CalibrationMaps:
    """Read and validate a map file; any problem raises MapError naming the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MapError(f"{path}: cannot read the map file ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise MapError(f"{path}: not valid JSON (truncated or corrupt?) at line {exc.lineno} "
                       f"column {exc.colno}: {exc.msg}") from exc
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits; arrays nested too deep
        raise MapError(f"{path}: not valid JSON (corrupt?): {exc}") from exc
    return CalibrationMaps.from_dict(data, where=str(path))


def save_maps(maps: CalibrationMaps, path) -> None:
    """Write `maps` as JSON to `path` atomically (a reader sees the old file or the new one, never half)."""
    text = json.dumps(maps.to_dict(), indent=1, allow_nan=False) + "\n"
    atomic_write(text, Path(path))


