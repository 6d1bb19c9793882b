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
    fit_payers,
)
from bench.runner import CellSpec


def _rec(family, originals, budget_steps, fit, augment, total, texts_per_step=None, status="ok", fit_reused=None,
         backbone=None, fit_work=None):
    training = {"texts_per_step": texts_per_step} if texts_per_step else {}
    return NS(status=status, method=family, method_info=NS(family=family), classifier={"batch_size": 16},
              counts=NS(train=originals), dev=NS(budget_steps=budget_steps, training=training),
              timings={"fit": fit, "augment": augment, "total": total}, fit_reused=fit_reused, backbone=backbone,
              fit_work=fit_work)


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


def test_a_reused_fit_does_not_make_the_next_training_look_cheap():
    """One cell trained the diffusion LM (2,020 s), one loaded it (0.5 s): the LM's rate is the
    training's, and only a cell that trains one pays it."""
    m = cost_model([_rec("diffusioncls", 505, 640, 2020.0, 101.0, 3401.0, fit_reused=False),
                    _rec("diffusioncls", 505, 640, 0.5, 101.0, 1381.5, fit_reused=True)])
    c = m["diffusioncls"]
    assert c.fit_per_unit == pytest.approx(4.0)
    assert c.per_original == pytest.approx((101.0 + 101.5) / 2 / 505)
    assert c.seconds(505, 640) - c.seconds(505, 640, pays_fit=False) == pytest.approx(2020.0)
    # a family whose records never trained the shared stage keeps the reference rate for it
    only_reused = cost_model([_rec("diffusioncls", 505, 640, 0.5, 101.0, 1381.5, fit_reused=True)])
    assert only_reused["diffusioncls"].fit_per_unit == default_cost("diffusioncls").fit_per_unit > 0


def test_a_capped_diffusion_lm_is_priced_by_its_steps_not_by_the_views_size(tmp_path):
    """The diffusion LM stops at dlm_max_steps (1,200 in the quick preset): a 1% cell trained 104 steps
    in 312 s, so a 20% view (about 2,000 tweets, 1,200 steps) costs 3,600 s of fit, not 20x the 1%."""
    from bench.config import RunConfig
    from bench.executors import cell_fit_work

    m = cost_model([_rec("diffusioncls", 102, 640, 312.0, 15.0, 1000.0, fit_reused=False, fit_work=104.0)])
    assert m["diffusioncls"].fit_per_unit == pytest.approx(3.0)
    cfg = RunConfig.from_preset("quick", out_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), device="cpu")
    cell = CellSpec("airline", "20pct", "diffusioncls-ref", "G-E", 0)
    assert cell_fit_work(CellSpec("airline", "1pct", "diffusioncls-ref", "G-E", 0), cfg, 102) == 104.0
    assert cell_fit_work(cell, cfg, 2020) == 1200.0  # 4 epochs x 505 batches, capped
    assert cell_fit_work(CellSpec("airline", "20pct", "eda", "G-E", 0), cfg, 2020) == 2020.0  # default: originals
    fit = (estimate_seconds(cell, m, (2020, 2000), fit_work=1200.0)
           - estimate_seconds(cell, m, (2020, 2000), pays_fit=False))
    assert fit == pytest.approx(3600.0)
    # a record without the field prices its fit per original, the default unit
    old = cost_model([_rec("diffusioncls", 102, 640, 312.0, 15.0, 1000.0, fit_reused=False)])
    assert old["diffusioncls"].fit_per_unit == pytest.approx(312.0 / 102)


def test_one_cell_that_also_prepared_the_machine_does_not_price_every_later_cell():
    """fig5's first DiffusionCLS cell spent 2,489 s in its fit, 37 minutes of it adapting MiniLM's MLM
    head once for the machine; the next two trained the same 104 steps in 311 and 326 s."""
    recs = [_rec("diffusioncls", 102, 640, fit, 15.0, fit + 600.0, fit_reused=False, fit_work=104.0)
            for fit in (2489.0, 311.0, 326.0)]
    assert cost_model(recs)["diffusioncls"].fit_per_unit == pytest.approx(326.0 / 104)


def test_only_the_first_cell_of_a_shared_diffusion_lm_pays_for_it(tmp_path):
    from bench.config import RunConfig

    cfg = RunConfig.from_preset("quick", out_dir=str(tmp_path), cache_dir=str(tmp_path / "cache"), device="cpu")
    cells = [CellSpec("airline", "5pct", m, "G/E", s) for s in (0, 1)
             for m in ("diffusioncls", "diffusioncls-wo-nrt", "diffusioncls-las-centred", "eda")]
    assert fit_payers(cells, [], cfg) == {
        f"airline__5pct__{m}__G-E__s{s}" for s in (0, 1) for m in ("diffusioncls", "diffusioncls-las-centred", "eda")}
    done = NS(status="ok", dataset="airline", view="5pct", method="diffusioncls-wo-nrt[mask_draws=independent]",
              seed=0)
    gone = NS(status="ok", dataset="airline", view="5pct", method="a-method-since-removed", seed=1)
    assert fit_payers(cells, [done, gone], cfg) == {
        "airline__5pct__diffusioncls-las-centred__G-E__s0", "airline__5pct__eda__G-E__s0",
        *(f"airline__5pct__{m}__G-E__s1" for m in ("diffusioncls", "diffusioncls-las-centred", "eda"))}


def test_rates_are_kept_per_classifier_backbone():
    """A Chinese LAMBADA cell (Gemma generator, frozen-Gemma classifier) is priced by its own records,
    not by MiniLM's; a backbone with no records falls back to the reference costs."""
    m = cost_model([_rec("lambada", 100, 640, 200.0, 800.0, 1064.0, backbone="frozen:gemma3@9"),
                    _rec("lambada", 100, 640, 100.0, 200.0, 940.0, backbone="minilm")])
    cell = CellSpec("inews", "5pct", "lambada", "G-E", 0)
    assert estimate_seconds(cell, m, (100, 640), backbone="frozen:gemma3@9") == pytest.approx(1064.0)
    assert estimate_seconds(cell, m, (100, 640), backbone="minilm") == pytest.approx(940.0)
    assert estimate_seconds(cell, m, (100, 640)) == pytest.approx((1064.0 + 940.0) / 2)  # any backbone
    assert estimate_seconds(cell, m, (100, 640), backbone="bert-base-uncased") == pytest.approx(
        default_cost("lambada").seconds(100, 640))


def test_costs_from_another_run_price_the_dry_run(tmp_path, capsys):
    """--costs-from lends another run's rates; a directory without records is a clear error."""
    import json

    from bench.cli import main
    from tests.report_fixtures import fake_record

    other = tmp_path / "other"
    (other / "records").mkdir(parents=True)
    rec = fake_record("airline", "5pct", "eda", "G/E", 0, n_synthetic=2020)
    rec.update(schema=2, classifier={"backbone": "minilm", "batch_size": 16}, backbone="minilm",
               dev={"budget_steps": 640}, timings={"augment": 5.0, "total": 36005.0})
    rec["counts"]["train"] = 505
    rec["method_info"].update(base="eda", family="eda")
    (other / "records" / "a.json").write_text(json.dumps(rec), encoding="utf-8")
    base = ["run", "--methods", "eda", "--seeds", "0", "--out", str(tmp_path / "new"), "--dry-run", "--jobs", "1"]
    assert main(base + ["--costs-from", str(other)]) == 0
    assert "estimated 10h00m" in capsys.readouterr().out  # 36,000 s of training at the same scale
    (other / "records" / "torn.json").write_text("{", encoding="utf-8")
    assert main(base + ["--costs-from", str(other)]) == 0
    assert "1 unreadable record" in capsys.readouterr().err
    assert main(base + ["--costs-from", str(tmp_path / "empty")]) != 0
    assert "--costs-from" in (err := capsys.readouterr().err) and "no records" in err

