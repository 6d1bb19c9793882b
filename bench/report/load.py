"""Records -> one long DataFrame (one row per record). The report's only input is RUN/records/*.json."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

TIMING_STAGES = ("data", "proxy", "fit", "augment", "train", "evaluate", "total")

COLUMNS = [
    "cell_id", "dataset", "language", "view", "fraction", "shots", "method", "policy", "seed", "status",
    "reason", "macro_f1", "accuracy", "n_test", "n_synthetic", "synthetic_requested", "identical_to_parent",
    *[f"time_{s}" for s in TIMING_STAGES],
    "synthetic_path", "backbone", "step_group", "params", "substitutes", "versions", "git", "record_file",
]


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _view_numbers(view: str | None) -> tuple[float | None, int | None]:
    """`5pct` -> (0.05, None), `10shot` -> (None, 10); anything else -> (None, None)."""
    if not isinstance(view, str):
        return None, None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)pct", view)
    if m:
        return float(m.group(1)) / 100, None
    m = re.fullmatch(r"(\d+)shot", view)
    if m:
        return None, int(m.group(1))
    return None, None


def resolve_synthetic_path(path: str | None, run_dir: Path) -> str | None:
    """Relative paths are relative to the run directory (records.md)."""
    if not path:
        return None
    p = Path(path)
    if not p.is_absolute():
        p = run_dir / p
    return str(p)


def record_to_row(rec: dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """Flatten one record (schema 1) into a row of :data:`COLUMNS`."""
    metrics = rec.get("metrics") or {}
    counts = rec.get("counts") or {}
    timings = rec.get("timings") or {}
    info = rec.get("method_info") or {}
    params = info.get("params") or {}
    fraction, shots = rec.get("fraction"), rec.get("shots")
    if fraction is None and shots is None:
        fraction, shots = _view_numbers(rec.get("view"))
    policy = rec.get("policy")
    row = {
        "cell_id": rec.get("cell_id"),
        "dataset": rec.get("dataset"),
        "language": rec.get("language"),
        "view": rec.get("view"),
        "fraction": _num(fraction),
        "shots": _num(shots),
        "method": base_method(rec.get("method")),
        "policy": "-" if policy in (None, "", "none") else policy,
        "seed": rec.get("seed"),
        "status": rec.get("status") or "failed",
        "reason": rec.get("reason"),
        "macro_f1": _num(metrics.get("macro_f1")),
        "accuracy": _num(metrics.get("accuracy")),
        "n_test": _num(metrics.get("n")),
        "n_synthetic": _num(counts.get("synthetic_produced")),
        "synthetic_requested": _num(counts.get("synthetic_requested")),
        "identical_to_parent": _num(counts.get("identical_to_parent")),
        **{f"time_{s}": _num(timings.get(s)) for s in TIMING_STAGES},
        "synthetic_path": rec.get("synthetic_path"),
        "backbone": rec.get("backbone") or (rec.get("classifier") or {}).get("backbone"),
        "step_group": _num(params.get("step_group")),
        "params": params,
        "substitutes": list(rec.get("substitutes") or []),
        "versions": dict(rec.get("versions") or {}),
        "git": rec.get("git"),
        "record_file": None,
    }
    if run_dir is not None:
        row["synthetic_path"] = resolve_synthetic_path(row["synthetic_path"], Path(run_dir))
    if row["status"] != "ok":  # numbers of a failed/unavailable cell are never statistics
        row["macro_f1"] = row["accuracy"] = math.nan
    return row


def base_method(name: str | None) -> str | None:
    """``diffusioncls[step_group=3]`` -> ``diffusioncls``: a step sweep's cells are one method whose
    ``step_group`` column tells them apart (tables then label them, Figure 6 plots them). A name with
    any other bracketed parameter stays whole: it is a different configuration, its own row."""
    if not name or not name.endswith("]") or "[" not in name:
        return name
    base, _, inner = name[:-1].partition("[")
    keys = {part.partition("=")[0].strip() for part in inner.split(";")}
    return base if keys == {"step_group"} else name


ABLATION_VARIANTS = ("diffusioncls-wo-da", "diffusioncls-wo-lap", "diffusioncls-wo-nrt", "diffusioncls-wo-las",
                     "diffusioncls-reflective")


def is_ablation(name: str | None) -> bool:
    """An ablation or diagnostic configuration of DiffusionCLS (Table 4's rows, not Table 2's): a
    registered variant, or a parameterised name of the family, e.g. ``diffusioncls[nrt_weight=0]``
    or ``diffusioncls-wo-las[nrt_weight=0]`` (a plain step sweep is folded by :func:`base_method`)."""
    name = str(name or "")
    base = name.partition("[")[0]
    return base in ABLATION_VARIANTS or (base == "diffusioncls" and "[" in name)


def ablation_rows(df: pd.DataFrame) -> pd.Series:
    """Boolean Series: the rows whose method :func:`is_ablation`."""
    return df["method"].map(is_ablation).astype(bool)


def ablation_mask(df: pd.DataFrame, within: str, across: str) -> pd.Series:
    """Rows to keep in a view that compares across ``across`` (train fractions, data sets): every
    non-ablation method, and an ablation only where someone ran it at two or more values of ``across``
    within one ``within`` group (e.g. `diffusioncls-wo-nrt` at 5% and 20% of one data set)."""
    abl = ablation_rows(df)
    spread = df.groupby([within, "method"])[across].transform("nunique") >= 2
    return ~abl | spread


def load_records(run_dir: str | Path) -> pd.DataFrame:
    """Read ``RUN/records/*.json`` into one long DataFrame, one row per record.

    Unreadable files are not fatal: they are listed in ``df.attrs["load_errors"]`` (file, error)
    so the report can say so.
    """
    run_dir = Path(run_dir)
    rows, errors = [], []
    for f in sorted((run_dir / "records").glob("*.json")):
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            errors.append((f.name, str(e)))
            continue
        row = record_to_row(rec, run_dir)
        row["record_file"] = f.name
        rows.append(row)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["load_errors"] = errors
    return df


def frame_from_records(records: list[dict[str, Any]], run_dir: str | Path | None = None) -> pd.DataFrame:
    """The same DataFrame from in-memory records (tests, notebooks)."""
    rows = [record_to_row(r, Path(run_dir) if run_dir else None) for r in records]
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["load_errors"] = []
    return df
