"""bench.results.load: one row per record, nested fields flattened, usable with plain pandas idioms;
add_metric recomputes a metric from saved predictions. The records are TEST FIXTURES."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report_fixtures import fake_record  # noqa: E402

import bench.results as R  # noqa: E402


@pytest.fixture()
def run(tmp_path):
    (tmp_path / "records").mkdir()
    (tmp_path / "predictions").mkdir()
    for seed, method, f1 in [(0, "none", 0.6), (1, "none", 0.7), (0, "diffusioncls", 0.65), (1, "diffusioncls", 0.75)]:
        rec = fake_record(method=method, policy="-" if method == "none" else "G/E", seed=seed, f1=f1,
                          step_group=4 if method == "diffusioncls" else None)
        rec["metrics"]["per_class_f1"] = {"negative": f1, "positive": f1}
        pred = f"predictions/{rec['cell_id']}.json"
        rec["metrics"]["predictions_path"] = pred
        (tmp_path / pred).write_text(json.dumps({"labels": ["negative", "positive"], "gold": ["negative", "positive"],
                                                 "predicted": ["negative", "negative"],
                                                 "proba": [[0.9, 0.1], [0.6, 0.4]]}))
        (tmp_path / "records" / f"{rec['cell_id']}.json").write_text(json.dumps(rec))
    (tmp_path / "records" / "broken.json").write_text("{")
    return tmp_path


def test_one_row_per_readable_record_with_flattened_fields(run):
    errors = []
    df = R.load(run, errors)
    assert len(df) == 4 and [e[0] for e in errors] == ["broken.json"]
    assert {"metrics.per_class_f1.negative", "classifier.epochs", "timings.total", "macro_f1"} <= set(df.columns)
    assert sorted(df.loc[df["method"] == "diffusioncls", "macro_f1"]) == [0.65, 0.75]
    assert set(df.loc[df["method"] == "diffusioncls", "sweep_param"]) == {"step_group"}


def test_no_column_shadows_a_dataframe_attribute(run):
    """A column named like a DataFrame attribute (it was 'axis') breaks groupby(...).agg([...]) in pandas."""
    df = R.load(run)
    assert [c for c in df.columns if hasattr(pd.DataFrame, c)] == []
    agg = df.groupby("method")[["macro_f1", "timings.total"]].agg(["mean", "count"])
    assert agg.loc["none", ("macro_f1", "mean")] == pytest.approx(0.65)


def test_add_metric_from_saved_predictions(run):
    df = R.add_metric(R.load(run), run, "accuracy")
    assert df["metric.accuracy"].tolist() == [0.5] * 4
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        R.add_metric(df, run, "nope")
