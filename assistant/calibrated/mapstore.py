"""The versioned map store: numbered map files (`v0001.json`, …) in one folder, an `ACTIVE`
pointer and an append-only `HISTORY` that `rollback` walks back. `map_store()` is the one the
app and the CLIs use: the data folder's maps laid over the read-only maps shipped in the package.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

from assistant.calibrated.maps import CalibrationMaps, load_maps
from assistant.core.config import default_data_dir, explicit_maps_dir
from assistant.core.errors import MapError
from assistant.core.files import append_private, atomic_write

__all__ = ["MapStore", "map_store", "shipped_maps_dir"]

_VERSION_RE = re.compile(r"^v\d{4}$")


class MapStore:
    """Numbered map versions in one folder, an ACTIVE pointer and an append-only HISTORY.

    HISTORY lines are ``<version>\\t<activate|rollback>\\t<ISO time>``; replaying
    them (activate pushes, rollback pops) gives the stack `rollback` walks back.

    `base` is a read-only folder laid out the same way (the maps shipped inside the
    package): its versions, ACTIVE and HISTORY come first, and every write (a new
    version, an activation) goes to `folder`, so nothing is ever written into `base`.
    """

    def __init__(self, folder, base=None):
        self.folder = Path(folder)
        self.base = Path(base) if base is not None else None

    def _folders(self) -> list[Path]:
        """The read-only base (when any), then the writable folder: later ones win."""
        return ([self.base] if self.base is not None else []) + [self.folder]

    def _file(self, name: str) -> Path:
        """`name` in the writable folder when there, else in the base (else the writable one)."""
        for folder in reversed(self._folders()):
            if (folder / name).exists():
                return folder / name
        return self.folder / name

    def _path(self, version: str) -> Path:
        if not isinstance(version, str) or not _VERSION_RE.match(version):
            raise MapError(f"{self.folder}: invalid map version {version!r} (expected v0001, v0002, …)")
        return self._file(f"{version}.json")

    def _versions(self) -> list[str]:
        return sorted({p.stem for folder in self._folders() if folder.is_dir()
                       for p in folder.glob("v*.json") if _VERSION_RE.match(p.stem)})

    def list_versions(self) -> list[dict]:
        """Every stored version, oldest first, as dicts for listing.

        Keys: ``version``, ``model``, ``prompt``, ``fitted_at``, ``n_samples``
        (records behind the general map), ``active`` (bool) and ``error`` (why
        the file does not load, else None; the other fields are then None).
        """
        active = self.active_version()
        out = []
        for v in self._versions():
            row = {"version": v, "model": None, "prompt": None, "fitted_at": None, "n_samples": None,
                   "active": v == active, "error": None}
            try:
                m = load_maps(self._path(v))
                row.update(model=m.model, prompt=m.prompt, fitted_at=m.fitted_at,
                           n_samples=m.maps["general"].n_samples)
            except MapError as exc:
                row["error"] = str(exc)
            out.append(row)
        return out

    def load(self, version: str) -> CalibrationMaps:
        """Load and validate one version; an unknown version raises MapError listing the available ones."""
        path = self._path(version)
        if not path.exists():
            available = ", ".join(self._versions()) or "none"
            raise MapError(f"{self.folder}: no map version {version} (available: {available})")
        return load_maps(path)

    def save_new(self, maps: CalibrationMaps) -> str:
        """Store `maps` as the next version (never overwriting one) and return its name; does not activate."""
        versions = self._versions()
        number = int(versions[-1][1:]) + 1 if versions else 1
        while True:
            version = f"v{number:04d}"
            text = json.dumps(replace(maps, version=version).to_dict(), indent=1, allow_nan=False) + "\n"
            try:
                atomic_write(text, self.folder / f"{version}.json", overwrite=False)
                return version
            except FileExistsError:  # another process took this number first
                number += 1

    def _history(self) -> list[str]:
        """Replay HISTORY (the base's, then the folder's) into the stack of activated versions."""
        lines = [line for folder in self._folders() if (folder / "HISTORY").exists()
                 for line in (folder / "HISTORY").read_text(encoding="utf-8").splitlines()]
        stack: list[str] = []
        for line in lines:
            parts = line.split("\t")
            if len(parts) >= 2 and parts[1] == "rollback":
                if stack:
                    stack.pop()
            elif parts[0]:
                stack.append(parts[0])
        return stack

    def _set_active(self, version: str, action: str) -> None:
        atomic_write(version + "\n", self.folder / "ACTIVE")
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with append_private(self.folder / "HISTORY") as f:
            f.write(f"{version}\t{action}\t{stamp}\n")
            f.flush()
            os.fsync(f.fileno())

    def activate(self, version: str) -> None:
        """Make `version` the active one after checking its file loads."""
        self.load(version)
        if self.active_version() == version:
            return
        self._set_active(version, "activate")

    def rollback(self) -> str:
        """Re-activate the version active before the current one and return it."""
        stack = self._history()
        if len(stack) < 2:
            raise MapError(f"{self.folder}: no earlier active version to roll back to")
        previous = stack[-2]
        self.load(previous)
        self._set_active(previous, "rollback")
        return previous

    def active_version(self) -> str | None:
        """The version named in ACTIVE, or None when nothing is active."""
        path = self._file("ACTIVE")
        if not path.exists():
            return None
        try:
            version = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:  # a damaged pointer must stay a MapError (one line)
            raise MapError(f"{path}: cannot read the active-version pointer ({exc})") from exc
        if not _VERSION_RE.match(version):
            raise MapError(f"{path}: invalid version {version!r} (expected v0001, v0002, …)")
        return version

    def active(self) -> CalibrationMaps | None:
        """The active maps, or None when nothing is active; an invalid file raises MapError."""
        version = self.active_version()
        return None if version is None else self.load(version)


def shipped_maps_dir() -> Path:
    """The map versions shipped inside the package (read-only; the first version of every store)."""
    return Path(str(resources.files("assistant").joinpath("data", "maps")))


def map_store(maps_dir=None, data_dir=None) -> MapStore:
    """The map store the app and the CLIs use.

    `maps_dir` (a `--maps-dir` flag), else `CALIBRATED_CHAT_MAPS_DIR`: that folder alone.
    Otherwise `<data folder>/maps` laid over the shipped maps, which stay read-only; the data
    folder is `data_dir` (a `--data-dir` flag), else `CALIBRATED_CHAT_DATA_DIR`, else the user's.
    """
    folder = maps_dir or explicit_maps_dir()
    if folder:
        return MapStore(Path(folder))
    return MapStore(Path(data_dir or default_data_dir()) / "maps", base=shipped_maps_dir())
