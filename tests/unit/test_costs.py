"""The grid's cost estimate: per-family rates measured from records, scaled to each cell's view size
and step budget (a 5-shot cell is not priced like a 5% view)."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from bench.executors import (
    DEFAULT_MINUTES,
    REFERENCE_SCALE,
    cell_scale,
    cost_model,
    default_cost,
    estimate_seconds,
)
from bench.runner import CellSpec


def _rec(family, originals, budget_steps, fit, augment, total, texts_per_step=None, status="ok"):
    training = {"texts_per_step": texts_per_step} if texts_per_step else {}
    return NS(status=status, method=family, method_info=NS(family=family), classifier={"batch_size": 16},
              counts=NS(train=originals), dev=NS(budget_steps=budget_steps, training=training),
              timings={"fit": fit, "augment": augment, "total": total})


def test_rates_come_from_records_and_scale_with_the_view():
    recs = [_rec("eda", 505, 640, 0.0, 50.5, 1330.5), _rec("eda", 505, 640, 0.0, 50.5, 1330.5),
            _rec("eda", 505, 640, 0.0, 1.0, 9.0, status="failed")]
    m = cost_model(recs)
    assert m["eda"].per_original == pytest.approx(0.1) and m["eda"].per_step == pytest.approx(2.0)
    five_shot = CellSpec("rt", "5shot", "eda", "G-E", 0)
    assert estimate_seconds(five_shot, m, (10, 200)) == pytest.approx(0.1 * 10 + 2.0 * 200)
    assert estimate_seconds(five_shot, m, (10, 200)) < estimate_seconds(five_shot, m, REFERENCE_SCALE) / 3


def test_grouped_steps_are_counted_in_steps_of_the_batch_size():
    """130 grouped steps of ~78.8 texts are the texts of 640 plain steps of 16."""
    m = cost_model([_rec("diffusioncls", 505, 130, 2000.0, 100.0, 3000.0, texts_per_step=78.77)])
    assert m["diffusioncls"].per_step == pytest.approx(900.0 / 640, rel=1e-3)


def test_the_fallback_prices_the_reference_view_at_the_reference_minutes():
    for family, (gen, rest) in DEFAULT_MINUTES.items():
        assert default_cost(family).seconds(*REFERENCE_SCALE) == pytest.approx(60.0 * (gen + rest))
    assert estimate_seconds(CellSpec("airline", "5pct", "lambada", "G-E", 0), {}) == pytest.approx(60.0 * 48)


def test_cell_scale_is_the_views_originals_and_its_budget(tmp_path):
    from bench.config import RunConfig

    cfg = RunConfig.from_preset("quick", out_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), device="cpu")
    assert cell_scale(CellSpec("airline", "5pct", "eda", "G-E", 0), cfg) == REFERENCE_SCALE  # 505 tweets, 640 steps
