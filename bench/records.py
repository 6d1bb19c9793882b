"""Records: one JSON file per cell, written atomically (temp file + rename); the run manifest."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = 1
REPO = Path(__file__).resolve().parent.parent


def atomic_write_text(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    import platform

    out["python"] = platform.python_version()
    for pkg in ("torch", "transformers", "nlpaug", "scikit-learn", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    from bench import __version__

    out["bench"] = __version__
    return out


def git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if r.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return r.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def records_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "records"


def iter_records(run_dir: Path):
    d = records_dir(run_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{run_dir} has no records/ directory: is it a run directory (--out of `bench run`)?")
    for p in sorted(d.glob("*.json")):
        yield read_json(p)


def load_records(run_dir: Path):
    """All records of a run as one long DataFrame (metrics flattened to columns)."""
    import pandas as pd

    rows = []
    for r in iter_records(run_dir):
        row = {k: v for k, v in r.items() if not isinstance(v, dict | list)}
        m = r.get("metrics") or {}
        row["macro_f1"] = m.get("macro_f1")
        row["accuracy"] = m.get("accuracy")
        rows.append(row)
    return pd.DataFrame(rows)
