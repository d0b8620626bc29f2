"""The question domains: the one list the router, the maps, the data items and the UI share.

Each domain has its own calibration map, because stated confidence is miscalibrated
differently per domain (Zeng et al. 2025). A question the router cannot place with
enough probability goes to GENERAL, which has a map of its own fitted on all domains.
These are the built-in domains; an admin's own ones are data (`assistant.core.domainfile`).
"""

from __future__ import annotations

import re

__all__ = ["DOMAINS", "GENERAL", "MAP_DOMAINS", "DOMAIN_NAME", "CUSTOM_NAMES", "is_domain_name", "in_order"]

DOMAINS = ("math", "factual", "science", "reasoning")  # the built-in domains: data items and the router's classes
GENERAL = "general"  # the fallback for a question no domain claims
MAP_DOMAINS = (*DOMAINS, GENERAL)  # the built-in domains a calibration map file can hold
DOMAIN_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)+")  # a custom domain's name: a slug with a '-' (it-helpdesk)
CUSTOM_NAMES = "a custom domain's name (lowercase words joined by '-', e.g. it-helpdesk; `calibrate domains list`)"


def is_domain_name(name) -> bool:
    """Whether `name` is a built-in domain or could be a custom one (which one the domains file says).

    >>> [is_domain_name(n) for n in ("math", "it-helpdesk", "poetry", "IT Help", None)]
    [True, True, False, False, False]
    """
    return isinstance(name, str) and (name in MAP_DOMAINS or DOMAIN_NAME.fullmatch(name) is not None)


def in_order(names) -> list[str]:
    """The distinct `names`: built-in ones in MAP_DOMAINS order, then custom ones by name.

    >>> in_order(["it-helpdesk", "general", "math", "math"])
    ['math', 'general', 'it-helpdesk']
    """
    present = set(names)
    return [d for d in MAP_DOMAINS if d in present] + sorted(present - set(MAP_DOMAINS))
