"""`calibrate domains list|show|add|remove|refit`: the admin's own domains, and the router that knows them.

    calibrate domains add it-helpdesk --description "..." --examples it-examples.jsonl \
        --labelled it-questions.jsonl [--heldout FILE ...] [--target-risk 0.1]
    calibrate domains remove it-helpdesk
    calibrate domains list | show it-helpdesk | refit

The domains file is `<data folder>/domains.json` (`assistant.core.domains`); before the first
`add` the shipped default holds. `add`, `remove` and `refit` refit the router
(`assistant.routing.learn.learn_domains`), print each domain's routing recall on questions the
fit did not see, then write `<data folder>/router.json` and the domains file, each atomically;
a bad domain, file or name stops before anything is written.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

from assistant.calibrated.mapstore import map_store
from assistant.core.config import default_data_dir
from assistant.core.domainfile import (
    Domain,
    DomainSet,
    domains_path,
    load_domains,
    parse_domains,
    save_domains,
)
from assistant.core.errors import DataError
from assistant.reviews.store import DB_FILENAME
from assistant.routing.learn import (
    check_router,
    format_learned,
    learn_domains,
    load_router,
    read_questions,
    router_path,
)
from assistant.routing.router import load_embedder

__all__ = ["cmd_domains"]


def cmd_domains(args) -> int:
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    action = {"list": _list, "show": _show, "add": _add, "remove": _remove, "refit": _refit}[args.domains_command]
    return action(args, data_dir)


def _router_state(data_dir: Path, domains: DomainSet) -> str:
    try:
        load_router(data_dir, domains)
    except DataError as err:
        return f"NOT VALID: {err}"
    return "fitted on these domains"


def _list(args, data_dir: Path) -> int:
    domains = load_domains(data_dir)
    print(f"domains file: {domains.source}")
    for d in domains.domains:
        kind = "built-in" if d.builtin else f"custom, {len(d.examples)} examples"
        print(f"  {d.name:<14} ({kind}) {d.description}")
    print(f"router: {_router_state(data_dir, domains)}")
    return 0


def _show(args, data_dir: Path) -> int:
    domains = load_domains(data_dir)
    domain = domains.get(args.name)
    print(json.dumps(domain.to_dict(), indent=1, ensure_ascii=False))
    path = router_path(data_dir)
    if path.exists():
        extra = json.loads(path.read_text(encoding="utf-8"))
        recall = extra.get("cv_recall", {}).get(domain.name)
        held = extra.get("heldout", {}).get("per_domain", {}).get(domain.name)
        print(f"routing recall: out of fold {recall}, held out {held}")
    print(f"router: {_router_state(data_dir, domains)}")
    return 0


def _questions_of(path: Path) -> list[str]:
    """Example questions from a JSONL file of objects with a `question`, or a text file of one per line."""
    if not path.is_file():
        raise DataError(f"{path}: no such file; give --examples a JSONL file of {{\"question\": ...}} lines "
                        "or a text file with one question per line")
    if path.suffix == ".jsonl":
        return read_questions(path)
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _absolute(paths) -> tuple[str, ...]:
    """Paths as absolute ones, so the domains file finds them from any working folder."""
    return tuple(str(Path(p).resolve()) for p in paths or ())


def _checked(domains: DomainSet, data_dir: Path) -> DomainSet:
    """`domains` checked as the data folder's file would be (DataError before anything is written)."""
    path = domains_path(data_dir)
    return parse_domains(json.loads(json.dumps(domains.to_dict())), source=str(path), base=path.parent)


def _add(args, data_dir: Path) -> int:
    domains = load_domains(data_dir)
    if args.name in domains.names:
        raise DataError(f"a domain called {args.name!r} is already in {domains.source}; choose another name, "
                        f"or `calibrate domains remove {args.name}` first")
    new = Domain(args.name, args.description, examples=tuple(_questions_of(Path(args.examples))),
                 labelled_files=_absolute(args.labelled), heldout_files=_absolute(args.heldout),
                 target_risk=args.target_risk)
    wanted = _checked(replace(domains, domains=(*domains.domains[:-1], new, domains.domains[-1])), data_dir)
    return _refit_and_save(wanted, data_dir, f"added {args.name!r}")


def _remove(args, data_dir: Path) -> int:
    domains = load_domains(data_dir)
    domain = domains.get(args.name)
    if domain.builtin:
        raise DataError(f"{args.name!r} is a built-in domain, shipped read-only; only your own domains can be removed")
    _refuse_if_used(args, data_dir, args.name)
    kept = _checked(replace(domains, domains=tuple(d for d in domains.domains if d.name != args.name)), data_dir)
    return _refit_and_save(kept, data_dir, f"removed {args.name!r}")


def _refuse_if_used(args, data_dir: Path, name: str) -> None:
    """DataError when the active map has a map for `name` or the review store holds replies routed to it."""
    maps = map_store(getattr(args, "maps_dir", None), data_dir).active()
    if maps is not None and name in maps.maps:
        raise DataError(f"the active map version {maps.version} has a map for {name!r}; fit and activate a "
                        f"version without it first (`calibrate fit ... --activate`), or keep the domain")
    db = data_dir / DB_FILENAME
    if db.exists():
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM replies WHERE domain = ?", (name,)).fetchone()
        if count:
            raise DataError(f"{count} stored replies were routed to {name!r}; their reviews and exports need it, "
                            "so it stays. Edit its description or examples and `calibrate domains refit` instead")


def _refit(args, data_dir: Path) -> int:
    return _refit_and_save(load_domains(data_dir), data_dir, "refitted")


def _refit_and_save(domains: DomainSet, data_dir: Path, what: str) -> int:
    """Refit the router on `domains`, print its per-domain recall, then write the router and the domains file."""
    print(f"fitting the router on {', '.join(domains.names)} (this embeds every example; a few minutes on a CPU)")
    learned = learn_domains(domains, load_embedder())
    print(format_learned(learned))
    check_router(learned.router, domains, "the new router")
    learned.router.save(router_path(data_dir))
    path = save_domains(domains, data_dir)
    print(f"{what}: wrote {path} and {router_path(data_dir)} (threshold {learned.router.threshold}, "
          f"{learned.router.n_examples} examples); the chat uses them from its next start")
    return 0
