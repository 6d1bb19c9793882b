"""Table 1 for the LM baselines: acceptance rates from the records, examples from their pseudo samples."""

from __future__ import annotations

import json

import pandas as pd

from bench.report.examples import lm_acceptance, lm_examples, write_table1_lm
from bench.report.load import frame_from_records
from tests.report_fixtures import fake_record


def _lm_run(tmp_path):
    recs = []
    for seed, (generated, kept) in enumerate([(300, 100), (300, 100), (240, 100)]):
        r = fake_record("airline", "5pct", "lambada", "G/E", seed, n_synthetic=kept)
        r["method_stats"] = {"generated": generated, "kept": kept}
        recs.append(r)
    g = fake_record("airline", "5pct", "genius-f", "G/E", 0, n_synthetic=45,
                    synthetic_path=str(tmp_path / "genius.jsonl"))
    g["method_stats"] = {"generated": 60}
    lines = [{"text": f"text {i}", "label": lab, "parent_id": f"p{i // 2}", "method": "genius-f",
              "provenance": {"sketch": f"{lab}: a <mask> b", "proxy_prob": 0.9, "parent_text": f"parent {i // 2}"}}
             for i, lab in enumerate(["negative", "negative", "negative", "negative", "negative", "positive"])]
    (tmp_path / "genius.jsonl").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    lam = fake_record("airline", "5pct", "lambada", "G/E", 3, status="failed", reason="boom")
    return frame_from_records([*recs, g, lam, fake_record("airline", "5pct", "none", "-", 0)])


def test_acceptance_is_kept_over_sampled_per_view_and_method(tmp_path):
    acc = lm_acceptance(_lm_run(tmp_path)).set_index("method")
    assert list(acc.index) == ["genius-f", "lambada"]  # the failed cell and `none` are not counted
    lam = acc.loc["lambada"]
    assert lam["n"] == 3 and lam["generated"] == 280 and lam["kept"] == 100
    assert abs(lam["acceptance"] - (1 / 3 + 1 / 3 + 100 / 240) / 3) < 1e-12
    assert abs(lam["acceptance_max"] - 100 / 240) < 1e-12
    assert acc.loc["genius-f", "acceptance"] == 0.75


def test_examples_take_per_label_samples_with_sketch_and_parent(tmp_path):
    ex = lm_examples(_lm_run(tmp_path), per_label=2)
    assert list(ex["label"]) == ["negative", "negative", "positive"]
    assert list(ex["original"]) == ["parent 0", "parent 1", "parent 2"]  # one sample a parent
    assert ex["sketch"].iloc[0] == "negative: a <mask> b" and ex["proxy_prob"].iloc[0] == 0.9
    write_table1_lm(lm_acceptance(_lm_run(tmp_path)), ex, tmp_path)
    md = (tmp_path / "table1_lm.md").read_text(encoding="utf-8")
    assert "| airline | 5pct | lambada | 3 | 280 | 100 | 36.1% [33.3, 41.7] |" in md
    assert "negative: a <mask> b" in md


def test_a_run_without_lm_baselines_says_so(tmp_path):
    df = frame_from_records([fake_record("airline", "5pct", "eda", "G/E", 0)])
    write_table1_lm(lm_acceptance(df), lm_examples(df), tmp_path)
    assert "no lambada, genius or genius-f records" in (tmp_path / "table1_lm.md").read_text(encoding="utf-8")
    assert pd.read_csv(tmp_path / "table1_lm_acceptance.csv").empty
