"""The versioned map store: numbered map files (`v0001.json`, …) in one folder and an append-only
`HISTORY` that gives each (model, prompt) pair its own active version, which `rollback` walks back. `map_store()` is the one the
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

from assistant.calibrated.maphistory import Pair, history_line, replay
from assistant.calibrated.maps import CalibrationMaps, load_maps
from assistant.core.config import default_data_dir, explicit_maps_dir
from assistant.core.errors import MapError
from assistant.core.files import append_private, atomic_write

__all__ = ["MapStore", "map_store", "shipped_maps_dir"]

_VERSION_RE = re.compile(r"^v\d{4}$")


class MapStore:
    """Numbered map versions in one folder and an append-only HISTORY, one active version per pair.

    Replaying HISTORY (`assistant.calibrated.maphistory`: activate pushes, rollback pops) gives
    each (model, prompt) pair the stack `rollback` walks back; folders written before pairs (one
    ACTIVE pointer for all models) are read as they are, history and active version kept.

    `base` is a read-only folder laid out the same way (the maps shipped inside the
    package): its versions, ACTIVE and HISTORY come first, and every write (a new
    version, an activation) goes to `folder`, so nothing is ever written into `base`.
    """

    def __init__(self, folder, base=None):
        self.folder = Path(folder)
        self.base = Path(base) if base is not None else None
        self._pairs: dict[tuple, Pair] = {}  # the pair of each version file read, by its state

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
        (records behind the general map), ``active`` (bool: active for its pair) and ``error`` (why
        the file does not load, else None; the other fields are then None).
        """
        active = set(self.active_pairs().values())
        out = []
        for v in self._versions():
            row = {"version": v, "model": None, "prompt": None, "fitted_at": None, "n_samples": None,
                   "active": v in active, "error": None}
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

    def _pair_of(self, version: str) -> Pair:
        """The (model, prompt) a version was fitted for; remembered per file state (a map is read once)."""
        path = self._path(version)
        stat = path.stat() if path.exists() else None
        key = (version, stat and (stat.st_mtime_ns, stat.st_size))
        if key not in self._pairs:
            maps = self.load(version)
            self._pairs[key] = (maps.model, maps.prompt)
        return self._pairs[key]

    def _pointer(self) -> str | None:
        """The older single-pointer ACTIVE file's version (folder, else base), or None."""
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

    def _stacks(self) -> dict[Pair, list[str]]:
        """Every pair's stack of activated versions, replayed from HISTORY (see maphistory)."""
        texts = []
        for folder in self._folders():
            path = folder / "HISTORY"
            try:
                texts.append(path.read_text(encoding="utf-8") if path.exists() else "")
            except (OSError, UnicodeDecodeError) as exc:
                raise MapError(f"{path}: cannot read the activation history ({exc})") from exc
        return replay(texts, self._pointer(), self._pair_of, lambda v: bool(_VERSION_RE.match(v)))

    def active_pairs(self) -> dict[Pair, str]:
        """The active version of every (model, prompt) pair that has one."""
        return {pair: stack[-1] for pair, stack in self._stacks().items()}

    def _pair(self, model: str | None, prompt: str | None, stacks: dict[Pair, list[str]]) -> Pair | None:
        """The pair asked for; with model or prompt left out, the one active pair that fits, if any."""
        if model is not None and prompt is not None:
            return (model, prompt)
        fits = [p for p in stacks if model in (None, p[0]) and prompt in (None, p[1])]
        if len(fits) > 1:
            listing = "; ".join(f"model={m} prompt={p}" for m, p in fits)
            raise MapError(f"{self.folder}: several (model, prompt) pairs have active maps ({listing}): "
                           "name the model and prompt (`maps rollback --model M --prompt P`, `report --keep-model M "
                           "--keep-prompt P`)")
        return fits[0] if fits else None

    def _append(self, version: str, action: str, pair: Pair) -> None:
        if any(c in "\t\n" for c in "".join(pair)):
            raise MapError(f"map {version}: model {pair[0]!r} / prompt {pair[1]!r} hold a tab or newline; "
                           "refit with plain names")
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        path = self.folder / "HISTORY"
        whole = not path.exists() or path.read_bytes()[-1:] in (b"", b"\n")
        with append_private(path) as f:
            f.write(("" if whole else "\n") + history_line(version, action, pair, stamp))
            f.flush()
            os.fsync(f.fileno())

    def activate(self, version: str) -> None:
        """Make `version` the active one for its own (model, prompt) pair after checking its file loads."""
        maps = self.load(version)
        pair = (maps.model, maps.prompt)
        if self.active_version(*pair) == version:
            return
        self._append(version, "activate", pair)

    def rollback(self, model: str | None = None, prompt: str | None = None) -> str:
        """Re-activate the version active before the current one for this pair (or the one active
        pair) and return it."""
        stacks = self._stacks()
        pair = self._pair(model, prompt, stacks)
        stack = stacks.get(pair, []) if pair else []
        if len(stack) < 2:
            which = f" for model {pair[0]} / prompt {pair[1]}" if pair else ""
            raise MapError(f"{self.folder}: no earlier active version{which} to roll back to")
        previous = stack[-2]
        self.load(previous)
        self._append(previous, "rollback", pair)
        return previous

    def active_version(self, model: str | None = None, prompt: str | None = None) -> str | None:
        """The active version for this (model, prompt) pair, or None when it has none. With either
        left out: the one active pair that fits (MapError when several do)."""
        stacks = self._stacks()
        pair = self._pair(model, prompt, stacks)
        return stacks[pair][-1] if pair in stacks else None

    def active(self, model: str | None = None, prompt: str | None = None) -> CalibrationMaps | None:
        """The pair's active maps, or None when it has none; an invalid file raises MapError."""
        version = self.active_version(model, prompt)
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
