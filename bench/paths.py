"""Where the suite keeps things outside a run directory ($BENCH_HOME, default ~/.cache/lowres-aug-bench)."""

from __future__ import annotations

from pathlib import Path

from methods.lexicons import bench_home


def prepared_backbone_dir(name: str) -> Path:
    return bench_home() / "backbones" / name


__all__ = ["bench_home", "prepared_backbone_dir", "Path"]
