"""Rendered tables against golden files (tests/golden/report_*.md).

Regenerate the goldens after an intended change of the rendering with
``REPORT_UPDATE_GOLDEN=1 python -m pytest tests/unit/test_report_tables.py`` and review the diff.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report_fixtures import fake_record  # noqa: E402

from bench.report import tables as T  # noqa: E402
from bench.report.load import frame_from_records  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
UPDATE = os.environ.get("REPORT_UPDATE_GOLDEN") == "1"
N_BOOT = 200


def small_frame():
    """Hand-chosen scores (no randomness): two data sets, a fraction sweep, k-shot views, ablations,
    a one-seed cell, an unavailable cell and a failed seed."""
    f1 = {  # (dataset, view, method, policy) -> per-seed macro-F1
        ("airline", "5pct", "none", "-"): [0.50, 0.52, 0.54],
        ("airline", "5pct", "eda", "G/E"): [0.53, 0.52, 0.57],
        ("airline", "5pct", "diffusioncls", "G/E"): [0.55, 0.56, 0.58],
        ("airline", "100pct", "none", "-"): [0.70, 0.71, 0.72],
        ("airline", "100pct", "eda", "G/E"): [0.71],
        ("airline", "100pct", "diffusioncls", "G/E"): [0.74, 0.73, 0.75],
        ("airline", "100pct", "diffusioncls-wo-da", "G/E"): [0.71, 0.72, 0.72],
        ("airline", "100pct", "diffusioncls-wo-nrt", "G/E"): [0.72, 0.73, 0.73],
        ("rt", "5pct", "none", "-"): [0.60, 0.61, 0.59],
        ("rt", "5pct", "eda", "G/E"): [0.62, 0.60, 0.63],
        ("rt", "5pct", "diffusioncls", "G/E"): [0.64, 0.63, 0.62],
        ("rt", "5shot", "none", "-"): [0.54, 0.55, 0.53],
        ("rt", "5shot", "diffusioncls", "G/E"): [0.65, 0.66, 0.64],
        ("rt", "10shot", "none", "-"): [0.61, 0.62, 0.63],
        ("rt", "10shot", "diffusioncls", "G/E"): [0.68, 0.69, 0.67],
    }
    recs = []
    for (ds, view, m, pol), vals in f1.items():
        for seed, v in enumerate(vals):
            recs.append(fake_record(ds, view, m, pol, seed, f1=v, acc=round(v + 0.05, 4)))
    recs.append(fake_record("airline", "5pct", "eda", "G/E", 3, status="failed", reason="RuntimeError: x"))
    recs.append(fake_record("airline", "5pct", "backtranslation", "B/D", 0, status="unavailable",
                            reason="no MT engine for en offline"))
    return frame_from_records(recs)


@pytest.fixture(scope="module")
def frame():
    return small_frame()


def check_golden(name: str, text: str):
    path = GOLDEN / f"report_{name}.md"
    if UPDATE or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"golden {path.name} was missing and has been written; review it and rerun")
    assert text == path.read_text(encoding="utf-8"), (
        f"{name} differs from {path}; if intended: REPORT_UPDATE_GOLDEN=1 python -m pytest {__file__}")


@pytest.mark.parametrize("name", ["table2", "table9", "table3", "table3_f1", "table4", "aggregate", "summary"])
def test_rendered_markdown_matches_golden(frame, name):
    fn = {"table2": T.table2, "table9": T.table9, "table3": T.table3, "table3_f1": T.table3_f1, "table4": T.table4,
          "aggregate": T.aggregate,
          "summary": lambda f, n_boot, seed: T.summary([T.table2(f, n_boot, seed), T.table3(f, n_boot, seed),
                                                        T.table3_f1(f, n_boot, seed), T.table4(f, n_boot, seed)])}[name]
    check_golden(name, T.to_markdown(fn(frame, n_boot=N_BOOT, seed=0)))


def test_one_seed_shows_dashes_never_fake_spread(frame):
    t = T.table2(frame, n_boot=N_BOOT)
    row = t.display[(t.display["view"] == "100pct") & (t.display["method"] == "eda")].iloc[0]
    assert row["n"] == "1"
    assert row["macro-F1"] == "71.00 ± -"
    assert row["F1 95% CI"] == "-"
    assert row["paired ΔF1 [CI]"] == "+1.00 [-]" and row["pairs"] == "1"
    assert row["t-test p"] == "-" and row["Holm p"] == "-"  # one pair: no test
    assert row["verdict"] == "no evidence"


def _parse_interval(text: str) -> tuple[float, float]:
    """'+4.33 [+2.10, +6.57]' -> (2.10, 6.57)."""
    lo, hi = text.split("[", 1)[1].rstrip("]").split(", ")
    return float(lo), float(hi)


def test_verdict_column_agrees_with_the_interval_beside_it(frame):
    d = T.table2(frame, n_boot=N_BOOT).display
    judged = d[d["verdict"].isin(["better", "worse", "no evidence"]) & (d["Holm p"] != "-")]
    assert len(judged) >= 4
    for _, r in judged.iterrows():
        lo, hi = _parse_interval(r["paired ΔF1 [CI]"])
        assert (r["verdict"] == "better") == (lo > 0)
        assert (r["verdict"] == "worse") == (hi < 0)
    row = d[(d["dataset"] == "airline") & (d["view"] == "5pct") & (d["method"] == "diffusioncls")].iloc[0]
    assert row["verdict"] == "better" and row["sign-flip p"] == "-"  # 3 pairs: no sign-flip p


def test_holm_within_a_section(frame):
    data = T.table2(frame, n_boot=N_BOOT).data
    sec = data[(data["dataset"] == "airline") & (data["view"] == "5pct") & data["p"].notna()]
    assert set(sec["method"]) == {"diffusioncls", "eda"}  # backtranslation has no pairs, not a test
    p = sec.set_index("method")["p"]
    ph = sec.set_index("method")["p_holm"]
    assert ph["diffusioncls"] == pytest.approx(2 * p["diffusioncls"])  # smallest of 2: times 2
    assert ph["eda"] == pytest.approx(max(p["eda"], 2 * p["diffusioncls"]))
    assert sec.set_index("method")["paired_ci_level"]["diffusioncls"] == pytest.approx(0.975)
    # the unadjusted 95% t-interval stays in the CSV: mean 0.0433, sd 0.00577 of (0.05, 0.04, 0.04)
    row = sec.set_index("method").loc["diffusioncls"]
    half = 4.302652729749464 * (0.01 / 3 ** 0.5) / 3 ** 0.5
    assert (row["paired_ci_low"], row["paired_ci_high"]) == pytest.approx((0.13 / 3 - half, 0.13 / 3 + half))


def test_power_notes_per_section(frame):
    t = T.table2(frame, n_boot=N_BOOT)
    notes = [n for n in t.notes if n.startswith("Power, ")]
    assert [n.split(":")[0] for n in notes] == ["Power, airline / 5pct", "Power, airline / 100pct",
                                                "Power, rt / 5pct"]
    # airline / 100pct: only diffusioncls has pairs with spread, differences 4, 2, 3 points: sd 1 point;
    # effect 1 point = 1 sd needs 10 pairs, 2 points = 2 sd need 5 (paired t, 80%, two-sided 0.05)
    row = t.data[(t.data["view"] == "100pct") & (t.data["method"] == "diffusioncls")].iloc[0]
    assert row["section_sd_diff"] == pytest.approx(0.01) and row["section_pairs"] == 3
    assert (row["section_seeds_1pt"], row["section_seeds_2pt"]) == (10, 5)
    assert "1 point would need 10 seeds, 2 points 5" in notes[1]


def test_six_seeds_show_a_sign_flip_p():
    recs = []
    for s, (b, t) in enumerate([(0.50, 0.52), (0.60, 0.63), (0.55, 0.56), (0.52, 0.55), (0.58, 0.60),
                                (0.54, 0.545)]):
        recs.append(fake_record(method="none", seed=s, f1=b))
        recs.append(fake_record(method="eda", policy="G/E", seed=s, f1=t))
    row = T.table2(frame_from_records(recs), n_boot=N_BOOT).display.set_index("method").loc["eda"]
    assert row["pairs"] == "6" and row["sign-flip p"] == "0.031"  # all 6 positive: 2/64
    assert row["verdict"] == "better" and row["CI level"] == "95.0%"


def test_unavailable_and_failed_cells(frame):
    t = T.table2(frame, n_boot=N_BOOT)
    d = t.display
    bt = d[d["method"] == "backtranslation"].iloc[0]
    assert bt["macro-F1"] == "unavailable: no MT engine for en offline"
    eda = d[(d["view"] == "5pct") & (d["dataset"] == "airline") & (d["method"] == "eda")].iloc[0]
    assert eda["n"] == "3" and eda["macro-F1"].endswith("(1 failed)")  # the failed seed is not a number
    assert any("failed record(s) excluded" in n for n in t.notes)
    data = t.data[(t.data["view"] == "5pct") & (t.data["dataset"] == "airline") & (t.data["method"] == "eda")]
    assert data["f1_mean"].iloc[0] == pytest.approx((0.53 + 0.52 + 0.57) / 3)
    assert data["delta_f1"].iloc[0] == pytest.approx((0.53 + 0.52 + 0.57 - 0.50 - 0.52 - 0.54) / 3)


def test_all_failed_cell_reads_failed():
    df = frame_from_records([fake_record(method="none"),
                             fake_record(method="eda", policy="G/E", status="failed", reason="boom")])
    d = T.table2(df, n_boot=N_BOOT).display
    assert d[d["method"] == "eda"]["macro-F1"].iloc[0] == "failed"


def test_tables_render_without_records_of_their_kind():
    df = frame_from_records([fake_record(method="none")])
    assert "No records" in T.to_markdown(T.table3(df))
    assert "no records" in T.to_latex(T.table4(df))


def test_latex_escapes_and_csv_numbers(frame, tmp_path):
    t = T.table2(frame, n_boot=N_BOOT)
    tex = T.to_latex(t)
    assert r"$\pm$" in tex and r"95\% CI" in tex and "\\toprule" in tex
    files = T.write_table(t, tmp_path)
    assert files == ["table2.md", "table2.csv", "table2.tex"]
    import pandas as pd

    csv = pd.read_csv(tmp_path / "table2.csv")
    assert {"f1_mean", "f1_std", "f1_ci_low", "paired_diff", "test", "p", "status", "p_holm", "p_signflip",
            "paired_adj_ci_low", "paired_adj_ci_high", "paired_ci_level", "verdict", "section_mdd",
            "section_seeds_1pt", "section_seeds_2pt"} <= set(csv.columns)
    assert set(csv["verdict"].dropna()) <= {"better", "worse", "no evidence"}


def test_markdown_escapes_pipes():
    df = frame_from_records([fake_record(method="none"),
                             fake_record(method="bt", policy="G/E", status="unavailable", reason="a | b")])
    assert "unavailable: a \\| b" in T.to_markdown(T.table2(df, n_boot=N_BOOT))


def test_figure6_draws_a_step_sweep_of_a_variant_and_skips_single_groups(tmp_path, monkeypatch):
    import bench.report.figures as F
    from bench.report.figures import figure_step_group

    drawn = []
    real = F.sns.lineplot
    monkeypatch.setattr(F.sns, "lineplot", lambda data=None, **kw: (drawn.append(set(data["method"])),
                                                                    real(data=data, **kw))[1])

    recs = [fake_record(method="none", seed=s, f1=0.7) for s in (0, 1)]
    recs += [fake_record(method="diffusioncls-wo-nrt", policy="G/E", seed=s, f1=0.7 + 0.01 * g, step_group=g)
             for s in (0, 1) for g in (1, 4, 8)]
    recs += [fake_record(method="diffusioncls", policy="G/E", seed=s, f1=0.5, step_group=4) for s in (0, 1)]
    recs += [fake_record(method="eda", policy="G/E", seed=s, f1=0.6, step_group=g) for s in (0, 1) for g in (1, 2)]
    fig = figure_step_group(frame_from_records(recs), tmp_path)
    assert fig.path_png and (tmp_path / "fig6_step_group.png").exists()
    # the family's sweep only: not diffusioncls (one step group), not eda (another family)
    assert drawn == [{"diffusioncls-wo-nrt"}]
    only_one = frame_from_records([fake_record(method="diffusioncls", policy="G/E", f1=0.5, step_group=4)])
    assert "skipped" in figure_step_group(only_one, tmp_path / "x").note


def test_figure6_keeps_only_seeds_present_at_every_step_group(tmp_path, monkeypatch):
    import bench.report.figures as F

    seen = {}
    real = F.sns.lineplot

    def spy(data=None, **kw):
        seen["seeds"] = sorted(set(data["seed"]))
        return real(data=data, **kw)

    monkeypatch.setattr(F.sns, "lineplot", spy)
    recs = [fake_record(method="diffusioncls", policy="G/E", seed=s, f1=0.7, step_group=4) for s in (0, 1, 2)]
    recs += [fake_record(method="diffusioncls", policy="G/E", seed=0, f1=0.6, step_group=1)]
    F.figure_step_group(frame_from_records(recs), tmp_path)
    assert seen["seeds"] == [0]


def test_table1_markdown_cuts_long_texts_and_csv_keeps_them(tmp_path):
    import pandas as pd

    from bench.report.examples import COLUMNS, MD_MAX_CHARS, write_table1

    long = "长" * (MD_MAX_CHARS + 50) + "|尾"
    row = {"dataset": "inews", "view": "5pct", "seed": 0, "label": "positive", "step": 13,
           "original": long, "masked": "[MASK]" + long, "generated": "新" + long, "changed": 3}
    write_table1(pd.DataFrame([row], columns=COLUMNS), tmp_path)
    md = (tmp_path / "table1.md").read_text(encoding="utf-8")
    assert "尾" not in md and md.count(" …") == 3
    assert ("长" * MD_MAX_CHARS) in md and ("长" * (MD_MAX_CHARS + 1)) not in md
    assert pd.read_csv(tmp_path / "table1.csv")["original"][0] == long


def test_ablations_route_to_table4_and_join_table9_and_figure5_only_across_fractions(tmp_path, monkeypatch):
    import bench.report.figures as F

    recs = []
    for s in (0, 1):
        for view in ("5pct", "20pct"):
            recs.append(fake_record(view=view, method="none", seed=s, f1=0.6))
            recs.append(fake_record(view=view, method="diffusioncls-wo-nrt", policy="G/E", seed=s, f1=0.62))
        recs.append(fake_record(method="eda", policy="G/E", seed=s, f1=0.58))
        recs.append(fake_record(method="diffusioncls", policy="G/E", seed=s, f1=0.5))
        recs.append(fake_record(method="diffusioncls[nrt_weight=0]", policy="G/E", seed=s, f1=0.63))
        recs.append(fake_record(method="diffusioncls-wo-las[nrt_weight=0]", policy="G/E", seed=s, f1=0.61))
    df = frame_from_records(recs)
    t2 = set(T.table2(df, n_boot=N_BOOT).data["method"])
    t4 = set(T.table4(df, n_boot=N_BOOT).data["method"])
    t9 = set(T.table9(df, n_boot=N_BOOT).data["method"])
    assert t2 == {"none", "eda", "diffusioncls"}
    assert {"diffusioncls[nrt_weight=0]", "diffusioncls-wo-las[nrt_weight=0]", "diffusioncls-wo-nrt",
            "diffusioncls", "none"} <= t4 and "eda" not in t4
    # wo-nrt ran at two fractions: a Table 9 row; the one-fraction configurations stay in Table 4
    assert "diffusioncls-wo-nrt" in t9 and "diffusioncls[nrt_weight=0]" not in t9
    drawn = []
    real = F.sns.lineplot
    monkeypatch.setattr(F.sns, "lineplot", lambda data=None, **kw: (drawn.append(set(data["method"])),
                                                                    real(data=data, **kw))[1])
    F.figure_fraction(df, tmp_path)
    lines = {m.split(" (")[0] for m in set().union(*drawn)}  # labels read "method (policy)"
    assert lines >= {"none", "diffusioncls-wo-nrt"}
    assert not lines & {"diffusioncls[nrt_weight=0]", "diffusioncls-wo-las[nrt_weight=0]"}


def test_costs_samples_per_second_and_identical_share():
    recs = []
    for seed, (fit, aug, n, same) in enumerate([(10.0, 30.0, 200, 10), (0.0, 10.0, 100, 0)]):
        r = fake_record(method="lambada", policy="G/E", seed=seed, n_synthetic=n)
        r["timings"].update(fit=fit, augment=aug)
        r["counts"]["identical_to_parent"] = same
        recs.append(r)
    fast = fake_record(method="aeda", policy="G/E", n_synthetic=50)
    fast["timings"].update(fit=0.0, augment=0.01)  # too quick to give a rate
    recs.append(fast)
    recs.append(fake_record(method="none", seed=0))
    tab = T.costs(frame_from_records(recs))
    row = tab.display.set_index("method").loc["lambada"]
    assert row["samples/s"] == "7.50"  # mean of 200/40 and 100/10
    assert row["pseudo samples"] == "150" and row["identical to parent"] == "3.3%"  # 5 of 150
    assert tab.display.set_index("method").loc["aeda", "samples/s"] == T.DASH
    assert tab.display.set_index("method").loc["none", "samples/s"] == T.DASH


def test_summary_lists_the_tables_verdicts_and_the_papers_numbers():
    """The summary repeats each table's verdicts (never its own test): 6 seeds, one method clearly above
    `none`, one clearly below, one noise; the paper's Table 3 numbers beside the k-shot cell."""
    recs, rng = [], [0.01, -0.012, 0.008, -0.004, 0.011, -0.009]
    for s in range(6):
        base = 0.50 + 0.02 * s
        recs += [fake_record(method="none", seed=s, f1=base), fake_record(method="eda", policy="G/E", seed=s, f1=base + 0.05 + rng[s] / 5),
                 fake_record(method="aeda", policy="G/E", seed=s, f1=base - 0.06 + rng[s] / 5),
                 fake_record(method="resample", policy="B/D", seed=s, f1=base + rng[s]),
                 fake_record("rt", "5shot", "none", "-", s, f1=base, acc=base),
                 fake_record("rt", "5shot", "eda", "G/E", s, f1=base, acc=base + rng[s])]
    tables = T.all_tables(frame_from_records(recs), n_boot=N_BOOT)
    t2 = next(t for t in tables if t.name == "table2").data.set_index("method")
    summ = next(t for t in tables if t.name == "summary")
    row = summ.data.set_index(["dataset", "view", "table"]).loc[("airline", "5pct", "table2")]
    assert (row["better"], row["worse"], row["no_evidence"], row["compared"]) == ("eda", "aeda", "resample", 3)
    assert [t2.loc[m, "verdict"] for m in ("eda", "aeda", "resample")] == ["better", "worse", "no evidence"]
    assert row["none_n"] == 6 and row["paper"] == "-"
    shot = summ.data.set_index(["dataset", "view", "table"]).loc[("rt", "5shot", "table3")]
    assert shot["metric"] == "accuracy" and shot["no_evidence"] == "eda"
    assert shot["paper"].startswith("Table 3 (accuracy, SST-2): no aug 54.38") and "DiffusionCLS 65.30" in shot["paper"]
    # the k-shot view also in macro-F1, its own Holm family, labelled as Table 3 with the metric beside it
    shot_f1 = summ.data.set_index(["dataset", "view", "table"]).loc[("rt", "5shot", "table3_f1")]
    assert shot_f1["metric"] == "macro-F1" and shot_f1["compared"] == 1
    assert set(summ.display.loc[summ.data["table"] == "table3_f1", "table"]) == {"Table 3"}
