"""The app servers that share a review store, and the calibration map version each answers with.

Each server writes its own row of `server_status` (migration 0006) when it starts, whenever its map
changes and at every heartbeat (`assistant.web.mapwatch`); the dashboard lists the rows, so an admin
sees which version every server of a team deployment runs and when each last reported.

    report_server(store, ServerStatus("web-1", "smollm2", "confidence_tags", "v0003", started, utc_now()))
    for status in server_statuses(store): ...
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from assistant.reviews.store import ReviewStore

__all__ = ["ServerStatus", "report_server", "server_statuses"]

_COLUMNS = ("server", "model", "prompt", "map_version", "started_at", "seen_at")


@dataclass(frozen=True)
class ServerStatus:
    server: str  # the server's name (`--server-name`; "" for a server that was given none)
    model: str  # the model it answers with
    prompt: str  # the prompt it asks with
    map_version: str | None  # the calibration map version it applies; None: it answers uncalibrated
    started_at: str  # when it started (ISO 8601, UTC)
    seen_at: str  # when it last reported (ISO 8601, UTC)

    def to_dict(self) -> dict:
        return asdict(self)


def report_server(store: ReviewStore, status: ServerStatus) -> None:
    """Write `status` as its server's row, replacing the one it wrote before (StoreError on failure)."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    with store.write() as db:
        db.execute(f"INSERT INTO server_status ({', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?) "
                   f"ON CONFLICT (server) DO UPDATE SET {updates}",
                   tuple(getattr(status, c) for c in _COLUMNS))


def server_statuses(store: ReviewStore) -> list[ServerStatus]:
    """Every server's last report, by name."""
    rows = store.read(f"SELECT {', '.join(_COLUMNS)} FROM server_status ORDER BY server")
    return [ServerStatus(**{c: row[c] for c in _COLUMNS}) for row in rows]
