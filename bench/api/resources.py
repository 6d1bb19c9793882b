"""Where things live outside a run directory: ``$BENCH_HOME`` and installed data packages."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


class ResourceMissing(FileNotFoundError):
    """An offline resource (a data or model package, a prepared file) is not installed here."""


def bench_home() -> Path:
    """Everything the suite prepares once per machine (default ``~/.cache/lowres-aug-bench``)."""
    return Path(os.environ.get("BENCH_HOME", Path.home() / ".cache" / "lowres-aug-bench"))


def prepared_backbone_dir(name: str) -> Path:
    """Where ``python -m bench prepare backbone NAME`` writes a suite-built encoder."""
    return bench_home() / "backbones" / name


def build_identity(directory: str | Path) -> str:
    """A model directory named with its build: ``<dir>@<hash of prepare.json>`` for a suite-prepared
    backbone (rebuilt with ``--force``, it is another model at the same path), the path otherwise.
    What caches derived from the model (a diffusion LM started from it) key on."""
    from bench.api.hashing import stable_hash

    d = Path(directory)
    meta = d / "prepare.json"
    return f"{d}@{stable_hash(meta.read_text(encoding='utf-8'))}" if meta.is_file() else str(d)


def package_dir(package: str, *parts: str) -> Path:
    """The directory of an installed package (or a path inside it) without importing it.

    Several offline model and data packages import unrelated things in ``__init__`` (or nothing
    useful), so they are located with ``importlib.util.find_spec`` and read as files.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ResourceMissing(f"the package {package.replace('_', '-')!r} is not installed; run "
                              f"`python -m bench prepare offline` (scripts/setup.sh does)")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if parts and not path.exists():
        raise ResourceMissing(f"{path} is missing from the installed package {package!r}")
    return path
