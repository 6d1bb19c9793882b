"""The run directory's manifest: what was run into it, by which commands, under a file lock.

Two commands may run into one run directory at once (different seeds share the cache); each reads,
changes and writes the manifest under an exclusive ``fcntl`` lock, so neither loses the other's
entry. The top level describes the latest command (its configuration is what ``run --config
RUN/manifest.json`` replays); ``history`` lists every command. A manifest that cannot be read is
moved aside (kept, named in the message) and rebuilt from the records.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.api.io import atomic_write_json, file_lock, read_json

NAME = "manifest.json"


def locked(run_dir: Path) -> contextlib.AbstractContextManager[None]:
    """An exclusive lock on the run directory's manifest (released when the block ends)."""
    return file_lock(Path(run_dir) / ".manifest.lock")


def read(run_dir: Path, warn: Callable[[str], None] = print) -> dict[str, Any]:
    """The manifest (empty when there is none); an unreadable one is moved aside and rebuilt."""
    path = Path(run_dir) / NAME
    if not path.exists():
        return {}
    try:
        m = read_json(path)
        if not isinstance(m, dict):
            raise ValueError("not a JSON object")
        return m
    except (OSError, ValueError) as err:
        aside = path.with_name(f"{NAME}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        path.rename(aside)
        rebuilt = rebuild(run_dir)
        warn(f"warning: {path} could not be read ({err}); kept as {aside.name} and rebuilt from "
             f"{len(rebuilt['cells'])} records")
        atomic_write_json(path, rebuilt)
        return rebuilt


def rebuild(run_dir: Path) -> dict[str, Any]:
    """A manifest from the records alone (the commands and configuration are lost with the old file)."""
    cells = sorted(p.stem for p in (Path(run_dir) / "records").glob("*.json"))
    return {"rebuilt_from_records": True, "cells": cells, "history": []}


def update(run_dir: Path, change: Callable[[dict[str, Any]], dict[str, Any]],
           warn: Callable[[str], None] = print) -> dict[str, Any]:
    """Read, change and write the manifest under the lock; returns what was written."""
    with locked(run_dir):
        m = change(read(run_dir, warn))
        atomic_write_json(Path(run_dir) / NAME, m)
        return m
