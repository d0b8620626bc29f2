"""The question domains: the one list the router, the maps, the data items and the UI share.

Each domain has its own calibration map, because stated confidence is miscalibrated
differently per domain (Zeng et al. 2025). A question the router cannot place with
enough probability goes to GENERAL, which has a map of its own fitted on all domains.
These are the built-in domains; an admin's own ones are data (`assistant.core.domainfile`).
"""

from __future__ import annotations

__all__ = ["DOMAINS", "GENERAL", "MAP_DOMAINS"]

DOMAINS = ("math", "factual", "science", "reasoning")  # the built-in domains: data items and the router's classes
GENERAL = "general"  # the fallback for a question no domain claims
MAP_DOMAINS = (*DOMAINS, GENERAL)  # the built-in domains a calibration map file can hold
