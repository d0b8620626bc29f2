"""`calibrate maps`: list, show, activate and roll back map versions, each (model, prompt) pair apart."""

from __future__ import annotations

import json

from assistant.calibrated.mapstore import map_store
from calibration.measuring.report import format_maps_summary

__all__ = ["cmd_maps"]


def _list(store) -> None:
    rows = store.list_versions()
    if not rows:
        print(f"no map versions in {store.folder}")
    for row in rows:
        mark = "*" if row["active"] else " "
        if row["error"]:
            print(f"{mark} {row['version']}  UNREADABLE: {row['error']}")
        else:
            print(f"{mark} {row['version']}  fitted {row['fitted_at']}  n={row['n_samples']}  "
                  f"model={row['model']}  prompt={row['prompt']}")


def cmd_maps(args) -> int:
    store = map_store(args.maps_dir, args.data_dir)
    if args.maps_command == "list":
        _list(store)
    elif args.maps_command == "show":
        maps = store.load(args.version)
        print(json.dumps(maps.to_dict(), indent=2) if args.json else format_maps_summary(maps))
    else:
        version = args.version if args.maps_command == "activate" else store.rollback(args.model, args.prompt)
        if args.maps_command == "activate":
            store.activate(version)
        maps = store.load(version)
        print(f"active map for model {maps.model} / prompt {maps.prompt} is now {version}")
    return 0
