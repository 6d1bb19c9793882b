"""Atomic file writes and reads: a record, a cache entry or a manifest is either whole or absent.

A writer creates a temp file in the target's directory, fsyncs it and renames it over the target,
so a kill at any moment leaves the old file or the new one, never a torn one. Files get the
process umask's mode (as ``open`` would), so a team sharing a cache directory can read them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """An exclusive ``fcntl`` lock on ``path`` (created if missing), held while the block runs.

    Used where two processes would otherwise compute the same cache entry side by side (two grid
    lanes reaching one seed's proxy classifier, or the once-per-machine MLM adaptation, at once):
    the second waits, then finds the entry made, instead of spending a core on a copy it discards.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------ sealed cache entries
#
# A cache entry is trusted only when it is whole: a sealed directory carries `.seal.json` (the size and
# SHA-256 of every file, written last), a sealed file its `<name>.sha256`. A reader that finds a missing,
# torn or altered entry treats it as absent and recomputes it (and says so), instead of training on 3 of
# 12 pseudo samples or failing on a truncated model file forever.

SEAL = ".seal.json"


def sha256_file(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def seal(directory: str | Path) -> None:
    """Record the size and hash of every file under ``directory`` (written last, atomically)."""
    d = Path(directory)
    files = {str(p.relative_to(d)): [p.stat().st_size, sha256_file(p)]
             for p in sorted(d.rglob("*")) if p.is_file() and p.name != SEAL and not p.name.endswith(".tmp")}
    atomic_write_json(d / SEAL, files)


def check_sealed(directory: str | Path) -> str | None:
    """None when the sealed directory is whole; otherwise what is wrong (missing seal, a file missing,
    cut or altered)."""
    d = Path(directory)
    try:
        files = read_json(d / SEAL)
    except (OSError, ValueError):
        return f"{d} has no readable seal (an interrupted write, or written before seals)"
    for name, (size, digest) in files.items():
        p = d / name
        if not p.is_file():
            return f"{p} is missing"
        if p.stat().st_size != size:
            return f"{p} has {p.stat().st_size} bytes, {size} were written"
        if sha256_file(p) != digest:
            return f"{p} was altered (its hash differs from the one written)"
    return None


def write_sealed(path: str | Path, data: bytes) -> None:
    """A file and its ``.sha256`` beside it (the hash written last)."""
    import hashlib

    atomic_write_bytes(path, data)
    atomic_write_text(str(path) + ".sha256", hashlib.sha256(data).hexdigest())


def read_sealed(path: str | Path) -> tuple[bytes | None, str | None]:
    """(data, None) when the file matches its hash; (None, why) when it is missing, torn or altered."""
    import hashlib

    p = Path(path)
    try:
        data = p.read_bytes()
        want = Path(str(p) + ".sha256").read_text().strip()
    except OSError:
        return None, f"{p} or its hash is missing"
    if hashlib.sha256(data).hexdigest() != want:
        return None, f"{p} does not match its hash (cut or altered)"
    return data, None
