"""Content hashes and derived seeds: the two things every cache key and every paired comparison
rest on.

``derive(seed, "view", "airline")`` depends on those names only, so adding a method or a stage
shifts nobody else's seeds; ``stable_hash`` sorts keys, so a key dict's order never matters.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def stable_hash(obj: Any, n: int = 16) -> str:
    """A short, stable content hash of any JSON-able object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:n]


def examples_fingerprint(examples: Sequence[Any]) -> str:
    """Hash of (id, text, label) of labelled examples, in order."""
    return stable_hash([[e.id, e.text, e.label] for e in examples])


def derive(master: int, *names: object) -> int:
    """A 31-bit seed derived from a master seed and the names of what it controls."""
    blob = "\x1f".join([str(int(master)), *map(str, names)]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (for code that draws from them)."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def file_digest(path: str | Path, n: int = 16) -> str:
    """SHA-256 of a file's bytes (cached per path, size and modification time)."""
    st = Path(path).stat()
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)[:n]


@functools.lru_cache(maxsize=64)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
