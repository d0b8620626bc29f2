"""The router that goes with a domains file: load it, check it, and refit it on an admin's domains.

A router is valid only with the domains it was fitted on. A router fitted by `learn_domains`
stores the domains file's hash (`DomainSet.sha256`, names and example questions) as
`domains_sha256` in its router.json, which lives beside the domains file in the data folder;
the shipped router stores none and is valid for the shipped domains only. `load_router`
refuses any other pairing with one line that says what to run.

`learn_domains` fits on the shipped router's own examples (the files in its `fitted_on` that
are here unchanged, else the package's) plus each custom domain's examples, with the same
out-of-fold temperature scaling and `general` threshold as `fit_router`, and measures each
domain on questions the fit never saw: the out-of-fold predictions, and held-out files (the
package's off-domain held-out set, the shared benchmark data when present, each custom
domain's labelled and held-out files).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from assistant.core.domainfile import DomainSet
from assistant.core.domains import GENERAL
from assistant.core.errors import DataError
from assistant.core.jsonl import read_numbered
from assistant.routing.fit import RoutingReport, evaluate, file_summary, fit_router, read_labelled
from assistant.routing.router import (
    DATA_DIR,
    DEFAULT_EXAMPLES_PATH,
    DEFAULT_ROUTER_PATH,
    OFF_DOMAIN_FIT_PATH,
    OFF_DOMAIN_HELDOUT_PATH,
    DomainRouter,
)

__all__ = ["ROUTER_FILE", "REFIT", "LearnedRouter", "read_questions", "router_path", "check_router", "load_router", "base_example_files",
           "heldout_examples", "learn_domains", "format_learned"]

ROUTER_FILE = "router.json"  # the data folder's own router, fitted on its domains file
REFIT = "python -m calibration domains refit"  # the command that refits the router on the domains file
_REPO = DATA_DIR.parent.parent  # where the shipped router's relative `fitted_on` paths start


@dataclass(frozen=True)
class LearnedRouter:
    router: DomainRouter  # fitted on every example, with `domains_sha256` set
    cv_recall: dict[str, dict]  # {domain: {"recall", "n"}}: out of fold, examples its fold did not fit on
    heldout: RoutingReport | None  # on held-out questions (None when there are none)
    fitted_on: tuple[str, ...]  # the example files of the built-in classes


def router_path(data_dir: Path | str) -> Path:
    return Path(data_dir) / ROUTER_FILE


def check_router(router: DomainRouter, domains: DomainSet, source: str) -> DomainRouter:
    """`router` when it was fitted on `domains`; DataError in one line saying what to run otherwise."""
    stored = router.extra.get("domains_sha256")
    same = router.classes == domains.names and (stored == domains.sha256() if stored else not domains.custom)
    if not same:
        raise DataError(f"{source} was fitted on other domains than {domains.source} (router: "
                        f"{', '.join(router.classes)}); refit it with `{REFIT}`")
    return router


def load_router(data_dir: Path | str | None, domains: DomainSet, embedder=None) -> DomainRouter:
    """The data folder's router when it has one, else the shipped one; checked against `domains`."""
    path = router_path(data_dir) if data_dir is not None else None
    if path is None or not path.exists():
        path = DEFAULT_ROUTER_PATH
    return check_router(DomainRouter.load(path, embedder=embedder), domains, str(path))


def base_example_files() -> list[Path]:
    """The shipped router's example files that are here unchanged (the shared calibration questions
    in a checkout), else the package's own examples and off-domain questions."""
    shipped = json.loads(DEFAULT_ROUTER_PATH.read_text(encoding="utf-8")).get("fitted_on", [])
    files = []
    for entry in shipped:
        path = _REPO / entry["path"]
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]:
            files.append(path)
    return files if len(files) == len(shipped) else [DEFAULT_EXAMPLES_PATH, OFF_DOMAIN_FIT_PATH]


def heldout_examples(domains: DomainSet) -> list[tuple[str, str]]:
    """(question, class) pairs no fit uses: the off-domain held-out set, the shared benchmark data when it
    is here, and each custom domain's labelled and held-out files (their questions, as that domain)."""
    pairs = read_labelled([OFF_DOMAIN_HELDOUT_PATH])
    shared = sorted((_REPO.parent / "shared" / "data").glob("*.jsonl"))
    pairs += read_labelled(shared)
    base = Path(domains.source).parent
    for domain in domains.custom:
        for path in (*domain.labelled_files, *domain.heldout_files):
            pairs += [(q, domain.name) for q in read_questions(base / path)]
    return pairs


def read_questions(path: Path) -> list[str]:
    """The `question` of each JSON line of `path`; DataError names the file and line."""
    questions = []
    for number, item in read_numbered(path, "stop"):
        if not isinstance(item.get("question"), str):
            raise DataError(f"{path}:{number}: expected an object with a 'question' string")
        questions.append(item["question"])
    return questions


def learn_domains(domains: DomainSet, embedder, *, base_files: Sequence[Path] | None = None,
                  heldout: Sequence[tuple[str, str]] | None = None) -> LearnedRouter:
    """Fit a router on the built-in examples plus each custom domain's, and measure it (module docstring)."""
    files = list(base_files) if base_files is not None else base_example_files()
    examples = read_labelled(files)
    examples += [(q, d.name) for d in domains.custom for q in d.examples]
    router = fit_router(examples, embedder, classes=domains.names, fitted_on=file_summary(files))
    router.extra["domains_sha256"] = domains.sha256()
    router.extra["domains"] = list(domains.names)
    pairs = heldout_examples(domains) if heldout is None else list(heldout)
    report = evaluate(router, pairs) if pairs else None
    if report is not None:
        router.extra["heldout"] = {"n": report.n, "accuracy": report.accuracy, "per_domain": report.per_domain}
    return LearnedRouter(router, router.extra["cv_recall"], report, tuple(map(str, files)))


def format_learned(learned: LearnedRouter) -> str:
    """Per domain: the out-of-fold recall and the held-out recall, as a table for the terminal."""
    held = learned.heldout.per_domain if learned.heldout else {}
    lines = [f"{'domain':<14} {'out-of-fold':>12} {'held-out':>14}"]
    for name in learned.router.classes:
        cv, ho = learned.cv_recall.get(name, {}), held.get(name, {})
        lines.append(f"{name:<14} {_share(cv):>12} {_share(ho):>14}")
    note = "recall: the share of a domain's questions routed to it" + (
        f" ({GENERAL}: off-domain questions sent to {GENERAL})" if GENERAL in held else "")
    return "\n".join([*lines, note])


def _share(row: dict) -> str:
    if not row or row.get("recall") is None or not row.get("n"):
        return "-"
    return f"{row['recall'] * 100:.1f}% of {row['n']}"
