"""Rebuild JSON records from an old report's ``records.csv``, so the current report code can redraw it.

The reports made under the earlier (epoch) protocol kept their results frame (``records.csv``) but not
their JSON records. This writes one schema-1 record per CSV row into ``RUN/records/`` with what the CSV
holds (cell identity, status and reason, macro-F1, accuracy, test size, timings, backbone, git, the step
group) and nothing it does not: the method's other parameters, its code version, the split sizes and
synthetic counts (the record's counts need split sizes the CSV lacks), the dev curve and per-class scores
are left empty; every record's notes say it was reconstructed.
Method facts (base, family, axes, the name's own parameters) come from the registry by name.

    python scripts/records_from_csv.py reports/earlier-protocol/zh
    python -m bench report reports/earlier-protocol/zh --out reports/earlier-protocol/zh
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_STEP_GROUP = 4
NOTE = ("reconstructed from the report's records.csv by scripts/records_from_csv.py (the JSON record was not "
        "kept): parameters other than the name's and the step group, the method version, the dev curve and "
        "per-class scores are unknown")


def _num(v):
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v


def method_name(method: str, step_group) -> str:
    """The registry name of a CSV row: a step group other than the default is a sweep point."""
    if _num(step_group) is None or int(step_group) == DEFAULT_STEP_GROUP or "step_group=" in method:
        return method
    if method.endswith("]"):
        return f"{method[:-1]};step_group={int(step_group)}]"
    return f"{method}[step_group={int(step_group)}]"


def method_info(name: str, step_group) -> dict:
    from methods import METHODS

    entry = METHODS.get(name)
    facts = entry.facts()
    axes = list(entry.load().Params.axes())
    params = dict(facts["overrides"])
    if _num(step_group) is not None:
        params["step_group"] = int(step_group)
    return {"name": facts["name"], "base": facts["base"], "family": facts["family"], "axes": axes,
            "overrides": facts["overrides"], "tags": facts["tags"], "plugin": facts["plugin"],
            "version": "unknown (reconstructed)", "params": params, "seed": 0}


def record(row: dict) -> dict:
    ok = row["status"] == "ok"
    name = method_name(row["method"], row.get("step_group"))
    timings = {k[5:]: float(v) for k, v in row.items() if k.startswith("time_") and _num(v) is not None}
    return {
        "schema": 1, "cell_id": row["cell_id"], "status": row["status"], "reason": _num(row.get("reason")),
        "dataset": row["dataset"], "language": row["language"], "view": row["view"],
        "fraction": _num(row.get("fraction")), "shots": _num(row.get("shots")), "method": name,
        "policy": row["policy"], "seed": int(row["seed"]),
        "metrics": {"macro_f1": float(row["macro_f1"]), "accuracy": float(row["accuracy"]),
                    "n": int(row["n_test"])} if ok else {},
        "counts": {},  # the CSV has no split sizes, which the record's counts require
        "timings": timings, "method_info": method_info(name, row.get("step_group")),
        "classifier": {"backbone": row["backbone"], "protocol": "epochs (earlier protocol)"},
        "backbone": row["backbone"], "git": _num(row.get("git")), "notes": [NOTE],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("report", help="a report directory with records.csv; records/ is written beside it")
    args = ap.parse_args(argv)
    import pandas as pd

    src = Path(args.report) / "records.csv"
    if not src.is_file():
        print(f"error: {src} does not exist", file=sys.stderr)
        return 2
    df = pd.read_csv(src)
    out = Path(args.report) / "records"
    out.mkdir(exist_ok=True)
    for row in df.to_dict("records"):
        rec = record({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
        (out / f"{row['cell_id']}.json").write_text(json.dumps(rec, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(df)} records written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
