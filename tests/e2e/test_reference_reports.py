"""The committed reference reports are reproducible from their committed records: regenerating the
tables from `reports/<name>/records/` gives the committed tables' numbers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORTS = sorted(p.parent.parent for p in (ROOT / "reports").glob("**/records/*.json"))
NUMERIC = ["n", "f1_mean", "f1_std", "acc_mean", "acc_std", "delta_f1", "paired_diff", "p", "p_holm", "pairs"]


@pytest.mark.parametrize("report", sorted(set(REPORTS)), ids=lambda p: str(p.relative_to(ROOT / "reports")))
def test_tables_regenerate_from_the_committed_records(report, tmp_path):
    from bench.report import tables as T
    from bench.report.load import load_records

    df = load_records(report)
    assert not df.attrs["load_errors"]
    for table in T.all_tables(df):
        committed = report / f"{table.name}.csv"
        if not committed.exists() or table.data.empty:
            continue
        want = pd.read_csv(committed)
        got = table.data.reset_index(drop=True)
        keys = [c for c in ("dataset", "view", "method", "policy", "table") if c in want.columns]
        cols = [c for c in NUMERIC if c in want.columns and c in got.columns]
        merged = want.merge(got, on=keys, suffixes=("_want", "_got"), how="outer", indicator=True)
        assert (merged["_merge"] == "both").all(), f"{table.name}: rows differ"
        for c in cols:
            pd.testing.assert_series_equal(merged[f"{c}_want"].astype(float), merged[f"{c}_got"].astype(float),
                                           check_names=False, rtol=0, atol=1e-9, obj=f"{table.name}.{c}")
