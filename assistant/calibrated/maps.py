"""Calibration map files: per-domain maps from a confidence score to a calibrated confidence, as JSON.

A map file holds, for one model and one prompt, a monotone piecewise-linear
map from raw (verbalized) confidence to calibrated confidence for each domain,
plus that domain's review threshold. Files are plain JSON (never pickle),
validated on load, and written atomically; `assistant.calibrated.mapstore` keeps their versions.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
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
    x: tuple  # raw-confidence knots, strictly increasing, in [0, 1]
    y: tuple  # calibrated confidence at each knot, non-decreasing, in [0, 1]
    n_samples: int  # records the map was fitted on
    threshold: float  # review threshold on calibrated confidence; 1.0 = flag everything
    metrics: dict = field(default_factory=dict)  # fit diagnostics (JSON-ready; None for undefined)
    combiner: dict | None = None  # assistant.calibrated.fusion.Combiner as a dict; None: x is the stated confidence
    interval: dict | None = None  # assistant.calibrated.intervals.Bands as a dict; None: no range (maps before issue 20)

    def __post_init__(self):
        object.__setattr__(self, "x", tuple(float(v) for v in self.x))
        object.__setattr__(self, "y", tuple(float(v) for v in self.y))
        if isinstance(self.n_samples, np.integer):
            object.__setattr__(self, "n_samples", int(self.n_samples))
        if isinstance(self.threshold, (np.floating, np.integer)):
            object.__setattr__(self, "threshold", float(self.threshold))
        _check_map_fields(asdict(self), f"maps.{self.domain}", "DomainMap")
        object.__setattr__(self, "_combine", _combiner(self.combiner, f"maps.{self.domain}", "DomainMap"))
        object.__setattr__(self, "_bands", _bands(self.interval, f"maps.{self.domain}", "DomainMap"))

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
        """Calibrated confidence of raw confidence `p` (clipped into [0, 1])."""
        if p is None or math.isnan(p):
            raise ValueError(f"raw confidence must be a number in [0, 1], got {p!r}")
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

    def __post_init__(self):
        if "general" not in self.maps:
            raise MapError("CalibrationMaps: field maps: the 'general' map is required")
        object.__setattr__(self, "source", tuple(dict(s) for s in self.source))
        object.__setattr__(self, "_reference", _reference(self.ood, "CalibrationMaps"))

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

    def map_for(self, domain: str) -> DomainMap:
        """The domain's map, or the general map when the domain has none."""
        return self.maps.get(domain) or self.maps["general"]

    def calibrate(self, domain: str, p: float) -> float:
        """Calibrated confidence of raw confidence `p` in `domain` (falls back to general)."""
        return self.map_for(domain)(p)

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

    def with_source(self, source) -> CalibrationMaps:
        """A copy with `source` (records files and their sha256) replaced."""
        return replace(self, source=tuple(source))

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
            _check_map_fields(m, f"maps.{domain}", where)
            maps[domain] = DomainMap(domain, tuple(m["x"]), tuple(m["y"]), m["n_samples"],
                                     float(m["threshold"]), dict(m.get("metrics", {})), m.get("combiner"),
                                     m.get("interval"))
        return cls(model=data["model"], prompt=data["prompt"], version=data["version"],
                   fitted_at=data["fitted_at"], maps=maps, schema_version=SCHEMA_VERSION,
                   source=tuple(data.get("source", ())), notes=data.get("notes", ""),
                   signals=data.get("signals", "stated"), ood=data.get("ood"))


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


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # JSON allows integers too large for a float (1 followed by 400 zeros)
        return False


_FILE_FIELDS = {"schema_version", "model", "prompt", "version", "fitted_at", "maps", "source", "notes", "signals",
                "ood"}
_MAP_FIELDS = {"domain", "x", "y", "n_samples", "threshold", "metrics", "combiner", "interval"}


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
    """Validate the top level of a map-file dict (each map is checked by _check_map_fields)."""
    if not isinstance(data, dict):
        raise MapError(f"{where}: the file must hold one JSON object, got {type(data).__name__}")
    if "schema_version" not in data:
        _fail(where, "schema_version", "missing")
    sv = data["schema_version"]
    if not isinstance(sv, int) or isinstance(sv, bool) or sv not in READABLE_SCHEMAS:
        _fail(where, "schema_version", f"is {data['schema_version']!r}; this version of calibrated-chat "
              f"reads schema_version {' and '.join(map(str, READABLE_SCHEMAS))} (refit with `calibrate fit`)")
    if data.get("signals", "stated") not in SIGNAL_SETS:
        _fail(where, "signals", f"must be one of {', '.join(SIGNAL_SETS)}, got {data.get('signals')!r}")
    for name in ("model", "prompt", "version", "fitted_at", "maps"):
        if name not in data:
            _fail(where, name, "missing")
    for name in ("model", "prompt", "version", "fitted_at"):
        if not isinstance(data[name], str) or not data[name]:
            _fail(where, name, f"must be a non-empty string, got {data[name]!r}")
    try:
        datetime.fromisoformat(data["fitted_at"])
    except ValueError:
        _fail(where, "fitted_at", f"not an ISO-8601 time: {data['fitted_at']!r}")
    unknown = sorted(set(data) - _FILE_FIELDS)
    if unknown:
        _fail(where, unknown[0], f"unknown field (known: {', '.join(sorted(_FILE_FIELDS))})")
    if not isinstance(data.get("notes", ""), str):
        _fail(where, "notes", "must be a string")
    source = data.get("source", [])
    if not isinstance(source, list) or not all(isinstance(s, dict) for s in source):
        _fail(where, "source", "must be a list of {\"path\", \"sha256\"} objects")
    maps = data["maps"]
    if not isinstance(maps, dict):
        _fail(where, "maps", "must be an object mapping domain -> map")
    for domain in maps:
        if not is_domain_name(domain):
            shown = domain if domain.isprintable() else ascii(domain)  # errors stay one line
            _fail(where, f"maps.{shown}", f"unknown domain (allowed: {', '.join(MAP_DOMAINS)} or {CUSTOM_NAMES})")
    if "general" not in maps:
        _fail(where, "maps.general", "missing (every map file needs a general map)")
    _reference(data.get("ood"), where)


def _check_map_fields(m, prefix: str, where: str) -> None:
    """Validate one domain map (dict form): knots, threshold, counts."""
    if not isinstance(m, dict):
        _fail(where, prefix, "must be an object")
    domain = prefix.split(".", 1)[1]
    if not is_domain_name(domain):
        _fail(where, prefix, f"unknown domain (allowed: {', '.join(MAP_DOMAINS)} or {CUSTOM_NAMES})")
    for name in ("x", "y", "n_samples", "threshold"):
        if name not in m:
            _fail(where, f"{prefix}.{name}", "missing")
    unknown = sorted(set(m) - _MAP_FIELDS)
    if unknown:
        _fail(where, f"{prefix}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(_MAP_FIELDS))})")
    if m.get("domain", domain) != domain:
        _fail(where, f"{prefix}.domain", f"is {m['domain']!r} but the map is stored under {domain!r}")
    for name in ("x", "y"):
        v = m[name]
        if not isinstance(v, (list, tuple)) or not all(_is_number(t) for t in v):
            _fail(where, f"{prefix}.{name}", "must be a list of numbers")
        if not all(_finite(t) for t in v):
            _fail(where, f"{prefix}.{name}", "contains NaN or infinity")
        if not all(0.0 <= t <= 1.0 for t in v):
            _fail(where, f"{prefix}.{name}", "values must lie in [0, 1]")
    x, y = m["x"], m["y"]
    if len(x) != len(y):
        _fail(where, f"{prefix}.y", f"has {len(y)} values but x has {len(x)}")
    if len(x) < 2:
        _fail(where, f"{prefix}.x", f"needs at least 2 knots, got {len(x)}")
    if any(b <= a for a, b in pairwise(x)):
        _fail(where, f"{prefix}.x", "knots must be strictly increasing")
    if any(b < a for a, b in pairwise(y)):
        _fail(where, f"{prefix}.y", "values must be non-decreasing (monotone map)")
    t = m["threshold"]
    if not _is_number(t) or not _finite(t) or not 0.0 <= t <= 1.0:
        _fail(where, f"{prefix}.threshold", f"must be a number in [0, 1], got {t!r}")
    n = m["n_samples"]
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        _fail(where, f"{prefix}.n_samples", f"must be a non-negative integer, got {n!r}")
    if not isinstance(m.get("metrics", {}), dict):
        _fail(where, f"{prefix}.metrics", "must be an object")
    _combiner(m.get("combiner"), prefix, where)
    _bands(m.get("interval"), prefix, where)


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


