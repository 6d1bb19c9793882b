"""Seeds derived from a master seed with a stable hash, named by what they control.

Adding a method or a stage shifts nobody else's seeds: ``derive(seed, "view", "airline")``
depends on those names only.
"""

from __future__ import annotations

import hashlib
import random


def derive(master: int, *names: object) -> int:
    blob = "\x1f".join([str(int(master)), *map(str, names)]).encode("utf-8")
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "big") & 0x7FFFFFFF


def seed_everything(seed: int) -> None:
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
