"""The graded record: one answered question with its confidence and its verdict.

`calibrate collect` writes them, the review store exports reviewers' verdicts as them,
and `calibrate fit` and `calibrate report` read them. This dataclass is that schema,
once: `Record.to_dict()` is a records-file line and `Record.from_dict()` reads one,
raising `DataError` that names the record and the field when a value is wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from assistant.core.domains import CUSTOM_NAMES, MAP_DOMAINS, is_domain_name
from assistant.core.errors import DataError
from assistant.core.validate import Rule, check, is_unit, list_of, missing

__all__ = ["Record", "RECORD_FIELDS", "REQUIRED_FIELDS"]

# What `fit` and `report` need in every line of a records file; the rest have defaults.
REQUIRED_FIELDS = ("id", "domain", "raw_confidence", "correct", "model", "prompt")
_TEXT_FIELDS = ("id", "model", "prompt", "population")  # compared and used as keys: a list or object here is refused
_RULES = {
    "domain": Rule(is_domain_name, f"{{value}} is not one of {', '.join(MAP_DOMAINS)} or {CUSTOM_NAMES}"),
    "raw_confidence": Rule(lambda v: v is None or is_unit(v), "{value} is not null or a number in [0, 1]"),
    "correct": Rule(lambda v: v is None or v in (True, False, 0, 1), "{value} is not true, false or null"),
    "issues": Rule(lambda v: not v or list_of(lambda i: isinstance(i, str))(v),
                   "{value} is not a list of issue names (keys of assistant.core.reply.REASON_TEXT)"),
}


@dataclass(frozen=True)
class Record:
    id: str  # the data item's id (`review-<public id>` for a reviewed answer)
    domain: str  # one of MAP_DOMAINS or a custom domain's name (assistant.core.domainfile)
    raw_confidence: float | None  # the stated confidence in [0, 1]; None when none was stated
    correct: bool | None  # the grade or the reviewer's verdict; None when not attempted or not answerable
    model: str  # the model that answered
    prompt: str  # the prompt template's id
    question: str = ""  # empty in committed records: rebuilt from ../shared by id (see calibrate records)
    gold: str | None = None  # the gold answer (or the reviewer's correction)
    answer: str | None = None  # the final answer the model gave
    parse_ok: bool = False  # both an answer and a confidence were found
    tokens: int = 0  # tokens generated
    seconds: float = 0.0  # generation time
    issues: tuple[str, ...] = ()  # parsing issues and `truncated` (keys of assistant.core.reply.REASON_TEXT)
    signals: dict = field(default_factory=dict)  # assistant.core.signals.Signals as a dict
    revisions: int = 0  # how often a reviewer changed this verdict (review exports)
    source: str | None = None  # the item's source (benchmark, template), kept when the text is stripped
    license: str | None = None  # the source's licence
    population: str | None = None  # benchmark, everyday, generated or review; None: read from the id
    # (calibration.fitting.populations.population_of)

    def to_dict(self) -> dict:
        """A records-file line (tuples become lists)."""
        d = asdict(self)
        d["issues"] = list(self.issues)
        return d

    def signals_or_stated(self) -> dict:
        """The record's signals; records collected before signals existed have the stated one."""
        return dict(self.signals) if self.signals else {"stated": self.raw_confidence}

    @classmethod
    def from_dict(cls, data, *, where: str = "record", required: tuple[str, ...] = REQUIRED_FIELDS) -> Record:
        """Read one records-file line; unknown keys are ignored, missing optional ones get defaults.

        Raises DataError naming `where` (and the record's id) and the field: a missing field
        of `required`, a list or object as id/model/prompt, an unknown domain, a confidence
        outside [0, 1], or a `correct` that is not true/false/null.
        """
        if not isinstance(data, dict):
            raise DataError(f"{where}: must be a JSON object")
        where = f"{where} (id {data['id']!r})" if "id" in data else where
        lacking = missing(data, required)
        if lacking:
            raise DataError(f"{where}: lacks field(s) {', '.join(lacking)}")
        nested = [k for k in _TEXT_FIELDS if isinstance(data.get(k), (list, dict))]
        if nested:
            raise DataError(f"{where}: field(s) {', '.join(nested)} must be text, not a list or object")
        check({"domain": None, **data}, _RULES, lambda name, problem: _fail(f"{where}: field {name}: {problem}"))
        conf, correct = data.get("raw_confidence"), data.get("correct")
        known = {k: data[k] for k in RECORD_FIELDS if k in data}
        known.update(
            id=str(data.get("id", "?")), model=str(data.get("model", "")), prompt=str(data.get("prompt", "")),
            raw_confidence=None if conf is None else float(conf), correct=None if correct is None else bool(correct),
            issues=tuple(data.get("issues") or ()),
            signals=dict(data["signals"]) if isinstance(data.get("signals"), dict) else {},
        )
        return cls(**known)


def _fail(message: str):
    raise DataError(message)


RECORD_FIELDS = tuple(f.name for f in fields(Record))
