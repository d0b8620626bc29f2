"""Domains as data: the domains file, its checks, and the set of domains it holds.

The four built-in domains and GENERAL (`assistant.core.domains`) are the shipped domains
file, `assistant/data/domains.json`, read-only like the shipped maps. An admin's own domains
live in `<data folder>/domains.json` (`calibrate domains add`), a copy of the shipped file with
their domains added between the built-in ones and GENERAL: each with a plain-words
description, at least MIN_EXAMPLES example questions for the router, and optionally labelled
question files and a target risk. `load_domains` reads and checks either; every error names
the file, the domain and the field, and says what to do.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from assistant.core.domains import DOMAINS, GENERAL, MAP_DOMAINS, is_domain_name
from assistant.core.errors import DataError
from assistant.core.files import atomic_write

__all__ = ["MIN_EXAMPLES", "SCHEMA_VERSION", "SHIPPED_DOMAINS_PATH", "Domain", "DomainSet", "domains_path",
           "load_domains", "parse_domains", "save_domains"]

SCHEMA_VERSION = 1  # of the domains file
MIN_EXAMPLES = 20  # example questions a custom domain needs for the router to learn it
FILE_NAME = "domains.json"
SHIPPED_DOMAINS_PATH = Path(str(resources.files("assistant").joinpath("data", FILE_NAME)))
MAX_NAME = 32  # characters in a domain's name
_KEYS = {"name", "description", "builtin", "examples", "labelled_files", "heldout_files", "target_risk"}


@dataclass(frozen=True)
class Domain:
    name: str  # a lowercase slug: the router class, the map key and the review filter
    description: str  # plain words shown to staff and reviewers
    builtin: bool = False  # shipped with the package (examples in assistant/data); cannot be removed
    examples: tuple[str, ...] = ()  # example questions the router learns this domain from (custom domains)
    labelled_files: tuple[str, ...] = ()  # question JSONL files (with answers) to collect and fit on
    heldout_files: tuple[str, ...] = ()  # question JSONL files only ever measured on
    target_risk: float | None = None  # the review threshold's target risk; None: `calibrate fit --target-risk`

    def to_dict(self) -> dict:
        """The domains-file entry (empty optional fields left out)."""
        entry = {"name": self.name, "description": self.description}
        if self.builtin:
            return {**entry, "builtin": True}
        entry["examples"] = list(self.examples)
        for key in ("labelled_files", "heldout_files"):
            if getattr(self, key):
                entry[key] = list(getattr(self, key))
        if self.target_risk is not None:
            entry["target_risk"] = self.target_risk
        return entry


@dataclass(frozen=True)
class DomainSet:
    domains: tuple[Domain, ...]  # the built-in ones, then the custom ones, then GENERAL
    source: str  # the file they were read from

    @property
    def names(self) -> tuple[str, ...]:
        """Every domain's name, GENERAL last: the router's classes and the map keys."""
        return tuple(d.name for d in self.domains)

    @property
    def routed(self) -> tuple[str, ...]:
        """The names a question can be routed to on purpose (all but GENERAL)."""
        return tuple(d.name for d in self.domains if d.name != GENERAL)

    @property
    def custom(self) -> tuple[Domain, ...]:
        return tuple(d for d in self.domains if not d.builtin)

    def get(self, name: str) -> Domain:
        """The domain called `name`; DataError listing the known ones otherwise."""
        for domain in self.domains:
            if domain.name == name:
                return domain
        raise DataError(f"no domain {name!r} in {self.source} (known: {', '.join(self.names)}); "
                        "see `calibrate domains list`")

    def description(self, name: str) -> str:
        """The plain-words description of `name`, or "" for a name this set does not hold."""
        return next((d.description for d in self.domains if d.name == name), "")

    def sha256(self) -> str:
        """The hash a router fitted on these domains stores: their names and example questions, in order."""
        key = [[d.name, list(d.examples)] for d in self.domains]
        return hashlib.sha256(json.dumps(key, ensure_ascii=False).encode()).hexdigest()

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "domains": [d.to_dict() for d in self.domains]}


def domains_path(data_dir: Path | str) -> Path:
    """Where the admin's domains file lives in a data folder."""
    return Path(data_dir) / FILE_NAME


def load_domains(data_dir: Path | str | None = None) -> DomainSet:
    """The data folder's domains file when it has one, else the shipped default (checked either way)."""
    path = domains_path(data_dir) if data_dir is not None else None
    if path is None or not path.exists():
        path = SHIPPED_DOMAINS_PATH
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the domains file ({exc.strerror or exc})") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: the domains file is not valid JSON ({exc}); fix it or restore it from a "
                        f"backup (the shipped default is {SHIPPED_DOMAINS_PATH})") from exc
    return parse_domains(data, source=str(path), base=path.parent)


def save_domains(domains: DomainSet, data_dir: Path | str) -> Path:
    """Check `domains` as a file would be checked, then write the data folder's domains file atomically."""
    path = domains_path(data_dir)
    parse_domains(json.loads(json.dumps(domains.to_dict())), source=str(path), base=path.parent)
    atomic_write(json.dumps(domains.to_dict(), indent=1, ensure_ascii=False) + "\n", path)
    return path


def parse_domains(data, *, source: str, base: Path) -> DomainSet:
    """Check a domains-file object; DataError names `source`, the entry and the field, and what to do.

    Relative labelled/held-out file paths are read from `base` (the file's folder); they must exist.
    """
    def fail(where: str, why: str):
        raise DataError(f"{source}: {where} {why}")

    if not isinstance(data, dict) or not isinstance(data.get("domains"), list):
        fail("(top level)", "must be an object with a 'domains' list")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        fail("field 'schema_version'", f"is {version!r}; this calibrated-chat reads version {SCHEMA_VERSION}")
    domains = [_parse_entry(entry, f"domains[{i}]", fail, base) for i, entry in enumerate(data["domains"])]
    names = [d.name for d in domains]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        fail("domains", f"name {twice[0]!r} more than once; each domain needs its own name")
    builtin = tuple(d.name for d in domains if d.builtin)
    if builtin != MAP_DOMAINS:
        fail("domains", f"must start with the built-in {', '.join(DOMAINS)} and end with {GENERAL!r}, as the "
                        f"shipped {SHIPPED_DOMAINS_PATH.name} does (got built-ins {', '.join(builtin) or 'none'})")
    if names[-1] != GENERAL or names[: len(DOMAINS)] != list(DOMAINS):
        fail("domains", f"must list the built-in domains first and {GENERAL!r} last; add yours in between")
    return DomainSet(tuple(domains), source)


def _parse_entry(entry, where: str, fail, base: Path) -> Domain:
    """One domains-file entry, checked (see `parse_domains`)."""
    if not isinstance(entry, dict):
        fail(where, "must be an object")
    name = entry.get("name")
    if not is_domain_name(name) or len(name) > MAX_NAME:
        fail(f"{where} field 'name'", f"is {name!r}; use lowercase words joined by '-', at most {MAX_NAME} "
                                      "characters (e.g. it-helpdesk, hr-policy)")
    where = f"domain {name!r}"
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        fail(where, f"has unknown field {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    description = entry.get("description")
    if not isinstance(description, str) or not description.strip():
        fail(f"{where} field 'description'", "must be a sentence in plain words for staff and reviewers")
    if entry.get("builtin", False) is True:
        if name not in MAP_DOMAINS or set(entry) - {"name", "description", "builtin"}:
            fail(where, f"is marked builtin, but only {', '.join(MAP_DOMAINS)} are, and they hold only a "
                        "name and a description")
        return Domain(name, description.strip(), builtin=True)
    if name in MAP_DOMAINS:
        fail(f"{where} field 'name'", "is taken by a built-in domain; choose another name")
    return Domain(name, description.strip(), examples=_examples(entry, where, fail),
                  labelled_files=_files(entry, "labelled_files", where, fail, base),
                  heldout_files=_files(entry, "heldout_files", where, fail, base),
                  target_risk=_risk(entry.get("target_risk"), where, fail))


def _examples(entry: dict, where: str, fail) -> tuple[str, ...]:
    examples = entry.get("examples")
    if not isinstance(examples, list) or not all(isinstance(q, str) and q.strip() for q in examples):
        fail(f"{where} field 'examples'", "must be a list of example questions (non-empty strings)")
    distinct = list(dict.fromkeys(q.strip() for q in examples))
    if len(distinct) < MIN_EXAMPLES:
        fail(f"{where} field 'examples'", f"has {len(distinct)} different questions; the router needs at "
                                          f"least {MIN_EXAMPLES} to learn a domain: add more")
    return tuple(distinct)


def _files(entry: dict, key: str, where: str, fail, base: Path) -> tuple[str, ...]:
    paths = entry.get(key, [])
    if not isinstance(paths, list) or not all(isinstance(p, str) and p for p in paths):
        fail(f"{where} field {key!r}", "must be a list of file paths")
    for path in paths:
        if not (base / path).is_file():
            fail(f"{where} field {key!r}", f"names {path!r}, which is not a file (read from {base}); "
                                           "give an existing question JSONL file")
    return tuple(paths)


def _risk(value, where: str, fail) -> float | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1):
        fail(f"{where} field 'target_risk'", f"is {value!r}; give a share of wrong answers in (0, 1), e.g. 0.1")
    return None if value is None else float(value)
