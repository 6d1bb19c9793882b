"""One results frame: every record of a run directory as one row, every field a column.

    import bench.results
    df = bench.results.load("runs/quick")        # pandas.DataFrame, one row per cell

Nested fields are flattened with dots (``metrics.per_class_f1.negative``, ``dev.best_step``,
``method_info.params.step_group``, ``classifier.lr``, ``timings.train``); the dev curve is summarised
(``dev.history`` is dropped, its length kept as ``dev.evaluations``). A few derived columns make grouping
easy without parsing names: ``method`` (the configuration: base name plus non-axis overrides),
``family``, ``sweep_param`` / ``sweep_value`` (a sweep's parameter), ``setting`` (the classifier settings id
that decides what may be paired), ``no_signal``, and ``macro_f1`` / ``accuracy`` (NaN unless ok).
The report's CSV and Parquet exports are this frame; :func:`add_metric` adds any metric computed from
the saved test predictions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from bench.records import CellRecord, RecordError, read_record

METRICS: dict[str, Callable[..., float]] = {}


def flatten(rec: CellRecord) -> dict[str, Any]:
    """A record as one flat dict (lists of facts joined into strings)."""
    d = rec.to_json()
    if d.get("dev"):
        d["dev"].pop("history", None)
    d["substitutes"] = "; ".join(f"{s.get('role')}: {s.get('used')} (paper: {s.get('paper')})"
                                 for s in rec.substitutes)
    d["notes"] = " | ".join(rec.notes)
    if d.get("method_info"):
        d["method_info"]["substitutes"] = len(rec.method_info.substitutes)
        for k in ("tags", "axes", "languages"):
            d["method_info"][k] = ",".join(map(str, d["method_info"].get(k) or []))
    d.pop("traceback", None)
    flat = pd.json_normalize(d, sep=".").to_dict("records")[0]
    return {k: (json.dumps(v) if isinstance(v, list | dict) else v) for k, v in flat.items()}


def derived(rec: CellRecord) -> dict[str, Any]:
    """The grouping columns the report uses, from the record's typed facts."""
    from bench.report.load import record_to_row

    row = record_to_row(rec)
    return {k: row[k] for k in ("method", "family", "base", "is_variant", "sweep_param", "sweep_value", "setting",
                                "no_signal", "macro_f1", "accuracy")}


def load(run_dir: str | Path, errors: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Every readable record of ``RUN/records`` as one row; unreadable files go to ``errors``."""
    rows = []
    for p in sorted((Path(run_dir) / "records").glob("*.json")):
        try:
            rec = read_record(p)
        except RecordError as err:
            if errors is not None:
                errors.append((p.name, str(err)))
            continue
        flat = flatten(rec)
        flat["method_name"] = flat.pop("method")
        rows.append({**flat, **derived(rec), "record_file": p.name})
    return pd.DataFrame(rows)


def _metric(name: str):
    """A metric of (gold, predicted, proba, labels) from scikit-learn, by name."""
    from sklearn import metrics as M

    table = {
        "accuracy": lambda g, p, pr, lab: M.accuracy_score(g, p),
        "macro_f1": lambda g, p, pr, lab: M.f1_score(g, p, labels=lab, average="macro", zero_division=0),
        "weighted_f1": lambda g, p, pr, lab: M.f1_score(g, p, labels=lab, average="weighted", zero_division=0),
        "micro_f1": lambda g, p, pr, lab: M.f1_score(g, p, labels=lab, average="micro", zero_division=0),
        "balanced_accuracy": lambda g, p, pr, lab: M.balanced_accuracy_score(g, p),
        "mcc": lambda g, p, pr, lab: M.matthews_corrcoef(g, p),
        "kappa": lambda g, p, pr, lab: M.cohen_kappa_score(g, p),
        "log_loss": lambda g, p, pr, lab: M.log_loss(g, pr, labels=lab),
        "macro_auc": lambda g, p, pr, lab: (M.roc_auc_score(g, [r[1] for r in pr]) if len(lab) == 2 else
                                            M.roc_auc_score(g, pr, labels=lab, multi_class="ovr", average="macro")),
    }
    if name not in table:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(table)}")
    return table[name]


def add_metric(df: pd.DataFrame, run_dir: str | Path, name: str) -> pd.DataFrame:
    """A column ``metric.<name>`` computed from each ok cell's saved test predictions (NaN where a cell
    has none, e.g. records written before predictions were kept)."""
    fn = _metric(name)
    values = []
    for path, status in zip(df.get("metrics.predictions_path", [None] * len(df)), df["status"]):
        if status != "ok" or not isinstance(path, str):
            values.append(math.nan)
            continue
        p = json.loads((Path(run_dir) / path).read_text(encoding="utf-8"))
        values.append(float(fn(p["gold"], p["predicted"], p["proba"], p["labels"])))
    return df.assign(**{f"metric.{name}": values})
