"""Records -> one long DataFrame (one row per record). The report's only input is RUN/records/*.json."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from bench.api.hashing import stable_hash
from bench.api.objective import METHOD_OPTIONS
from bench.api.registry import configuration_name
from bench.records import CellRecord, MethodInfo, RecordError, read_record

TIMING_STAGES = ("data", "proxy", "fit", "augment", "train", "evaluate", "total")

COLUMNS = [
    "cell_id", "dataset", "language", "view", "fraction", "shots", "method", "family", "base", "is_variant",
    "sweep_param", "sweep_value", "policy", "seed", "status", "reason", "macro_f1", "accuracy", "n_test", "n_synthetic",
    "n_generated", "synthetic_requested", "identical_to_parent", *[f"time_{s}" for s in TIMING_STAGES],
    "synthetic_path", "backbone", "setting", "no_signal", "params", "substitutes", "versions", "git", "record_file",
]


def _num(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def resolve_synthetic_path(path: str | None, run_dir: Path) -> str | None:
    """Relative paths are relative to the run directory (records.md); a reference report holds the
    file gzip-compressed (``.jsonl.gz``), which is returned when the plain file is not there."""
    if not path:
        return None
    p = Path(path)
    if not p.is_absolute():
        p = run_dir / p
    return str(compressed_or_plain(p))


def compressed_or_plain(path: Path) -> Path:
    """``path`` if it exists, else ``path.gz`` if that exists, else ``path``."""
    gz = path.with_name(path.name + ".gz")
    return gz if not path.exists() and gz.exists() else path


def configuration(info: MethodInfo) -> tuple[str, str | None, Any]:
    """(configuration label, axis, axis value) from a record's registry facts.

    The label is the registered base with its non-axis overrides (``diffusioncls-wo-las[nrt_weight=0]``);
    an override of a declared axis (``diffusioncls[step_group=3]``) is a point of that axis of the same
    configuration, so it is folded into the base and reported as (axis, value).
    """
    axes = list(info.axes)
    label = configuration_name(info.base, {k: v for k, v in info.overrides.items() if k not in axes})
    axis = axes[0] if axes else None
    value = info.params.get(axis) if axis else None
    return label, axis, value


def classifier_setting(classifier: dict[str, Any]) -> str:
    """A short id of the classifier settings a record was trained under, leaving out the options a method
    sets for its own cells: records with different ids are never paired (another preset, protocol,
    backbone or learning rate is another experiment)."""
    return stable_hash({k: v for k, v in classifier.items() if k not in METHOD_OPTIONS}, 8)


def record_to_row(rec: CellRecord | dict[str, Any], run_dir: Path | None = None) -> dict[str, Any]:
    """Flatten one record (any schema this suite reads) into a row of :data:`COLUMNS`."""
    if not isinstance(rec, CellRecord):
        rec = CellRecord.from_json(rec)
    metrics, counts = rec.metrics, rec.counts
    info = rec.method_info or MethodInfo(name=rec.method, base=rec.method, family=rec.method)
    label, axis, axis_value = configuration(info)
    row = {
        "cell_id": rec.cell_id,
        "dataset": rec.dataset,
        "language": rec.language,
        "view": rec.view,
        "fraction": _num(rec.fraction),
        "shots": _num(rec.shots),
        "method": label,
        "family": info.family or info.base,
        "base": info.base,
        "is_variant": label != (info.family or info.base),
        "sweep_param": axis,
        "sweep_value": _num(axis_value),
        "policy": "-" if rec.policy in (None, "", "none") else rec.policy,
        "seed": rec.seed,
        "status": rec.status or "failed",
        "reason": rec.reason,
        "macro_f1": _num(metrics.macro_f1) if metrics else math.nan,
        "accuracy": _num(metrics.accuracy) if metrics else math.nan,
        "n_test": _num(metrics.n) if metrics else math.nan,
        "n_synthetic": _num(counts.synthetic_produced) if counts else math.nan,
        # texts a generator wrote before its own filter, where the method says (LAMBADA, GENIUS)
        "n_generated": _num((rec.method_stats or {}).get("generated")),
        "synthetic_requested": _num(counts.synthetic_requested) if counts else math.nan,
        "identical_to_parent": _num(counts.identical_to_parent) if counts else math.nan,
        **{f"time_{s}": _num(rec.timings.get(s)) for s in TIMING_STAGES},
        "synthetic_path": rec.synthetic_path,
        "backbone": rec.backbone or rec.classifier.get("backbone"),
        "setting": classifier_setting(rec.classifier),
        "no_signal": bool(metrics and metrics.predicted and sum(1 for v in metrics.predicted.values() if v) <= 1),
        "params": dict(info.params),
        "substitutes": list(rec.substitutes),
        "versions": dict(rec.versions),
        "git": rec.git,
        "record_file": None,
    }
    if run_dir is not None:
        row["synthetic_path"] = resolve_synthetic_path(row["synthetic_path"], Path(run_dir))
    if row["status"] != "ok":  # numbers of a failed/unavailable cell are never statistics
        row["macro_f1"] = row["accuracy"] = math.nan
    return row


def ablation_rows(df: pd.DataFrame) -> pd.Series:
    """Boolean Series: the rows of a variant configuration of a family (Table 4's rows, not Table 2's):
    a registered variant (``diffusioncls-wo-nrt``) or a parameterised name with non-axis parameters
    (``diffusioncls[nrt_weight=0]``); a plain axis sweep is not one."""
    return df["is_variant"].astype(bool)


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
            rec = read_record(f)
        except RecordError as e:
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
