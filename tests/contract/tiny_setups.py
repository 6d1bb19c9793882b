"""Per-method parameters that make a method run on tiny random models in the contract suite.

Keys are registry names; values map to a callable ``(tiny_bert_dir, tmp_dir) -> params``. A
method absent here runs with its registry parameters (fine for rule-based methods).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

TINY: dict[str, Callable[[Path, Path], dict[str, Any]]] = {}
