"""Figures: one colour and marker per method in every figure, honest spread, readable text.

The records are TEST FIXTURES (tests/report_fixtures.py), not results. The figures are inspected as
matplotlib objects before they are saved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report_fixtures import fake_record  # noqa: E402

from bench.report import diversity as D  # noqa: E402
from bench.report import figures as F  # noqa: E402
from bench.report.load import frame_from_records  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import BoundaryNorm, to_hex  # noqa: E402

GE = "n per original (G/E)"
F1 = {("none", "-"): 0.60, ("eda", "G/E"): 0.62, ("aeda", "B/D"): 0.61, ("diffusioncls", "G/E"): 0.64}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def run_frame() -> pd.DataFrame:
    """Four methods at 1/2/5/10/20% of airline (seeds 0, 1; fixed scores), and a diffusioncls step sweep."""
    recs = []
    for view, base in (("1pct", 0.0), ("2pct", 0.02), ("5pct", 0.04), ("10pct", 0.06), ("20pct", 0.08)):
        for (m, pol), f1 in F1.items():
            recs += [fake_record("airline", view, m, pol, s, f1=f1 + base + 0.02 * s) for s in (0, 1)]
    for g in (1, 3, 5):
        for s in (0, 1):
            r = fake_record("airline", "20pct", "diffusioncls", "G/E", s, f1=0.6 + 0.01 * g, step_group=g)
            r["cell_id"] += f"__g{g}"
            recs.append(r)
    return frame_from_records(recs)


def map_data():
    """Per-seed diversity measures of eda and diffusioncls on two views, and their summary table."""
    rows = [{"dataset": "airline", "view": v, "method": m, "policy": "G/E", "seed": s, "synthetic_path": "x",
             "n_samples": 30, "n_measured": 30, "distinct_1": 0.5, "distinct_2": 0.8, "self_bleu": 0.1 + 0.02 * s,
             "edit_to_parent": 0.4, "copies": 0.0, "consistency": c + 0.05 * s}
            for v in ("5pct", "20pct") for m, c in (("eda", 0.7), ("diffusioncls", 0.8)) for s in (0, 1)]
    per = pd.DataFrame(rows)
    return D.summarize_frame(per).data, per


def tagged_lines(fig) -> dict[str, matplotlib.lines.Line2D]:
    """{line label: artist} of the lines the figure code named ``line:<label>``."""
    return {ln.get_gid()[5:]: ln for ax in fig.axes for ln in ax.lines if (ln.get_gid() or "").startswith("line:")}


def legend_entries(fig) -> dict[str, matplotlib.lines.Line2D]:
    legend = fig.legends[0]
    return {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles)}


# ---------------------------------------------------------------- the mapping


def test_known_methods_keep_their_style_whatever_else_is_present():
    alone = F.method_styles(["eda"])["eda"]
    crowded = F.method_styles([*F.KNOWN_METHODS, "zz-plugin", "aa-plugin"])
    assert crowded["eda"] == alone == F.method_style("eda", ["diffusioncls", "x"])
    pairs = [(s.color, s.marker) for s in crowded.values()]
    assert len(set(pairs)) == len(pairs), "two methods share a colour and a marker"
    okabe_ito = {c.lower() for c in F.OKABE_ITO.values()}
    assert all(s.color.lower() in okabe_ito for s in crowded.values())
    main = [m for m in F.KNOWN_METHODS[1:11]]  # the ten methods of the main job: a marker each
    assert len({crowded[m].marker for m in main}) == len(main)


def test_none_is_black_and_dashed_and_nobody_else_is():
    styles = F.method_styles(F.KNOWN_METHODS)
    assert to_hex(styles["none"].color) == "#000000" and styles["none"].dashes
    assert all(to_hex(s.color) != "#000000" and not s.dashes for m, s in styles.items() if m != "none")


def test_unknown_names_take_the_next_free_slots_in_a_fixed_order():
    a = F.method_styles(["b-plugin", "eda", "a-plugin"])
    b = F.method_styles(["a-plugin", "b-plugin"])
    assert a["a-plugin"] == b["a-plugin"] and a["b-plugin"] == b["b-plugin"]
    n_known = len(F.KNOWN_METHODS) - 1  # none has its own style
    assert a["a-plugin"] == F._slot_style(n_known) and a["b-plugin"] == F._slot_style(n_known + 1)
    known = {(s.color, s.marker) for s in F.method_styles(F.KNOWN_METHODS).values()}
    assert (a["a-plugin"].color, a["a-plugin"].marker) not in known


def test_policies_change_the_line_not_the_colour_or_marker():
    styles = F.method_styles(["eda"])
    ge, bd = F.line_style("eda", "G/E", styles), F.line_style("eda", "B/D", styles)
    assert (ge.color, ge.marker) == (bd.color, bd.marker) == (styles["eda"].color, styles["eda"].marker)
    assert not ge.hollow and not ge.dashes and bd.hollow and bd.dashes


def test_human_labels():
    assert F.view_label("5pct") == "5% of train" and F.view_label("100pct") == "100% of train"
    assert F.view_label("10shot") == "10 shots per class" and F.view_label("1shot") == "1 shot per class"
    assert F.view_label("odd") == "odd"
    assert F.policy_label("G/E") == GE and F.policy_label("B/D") == "balanced (B/D)" and F.policy_label("-") == ""
    assert F.line_label("eda", "G/E") == f"eda, {GE}" and F.line_label("none", "-") == "none"


# ---------------------------------------------------------------- the figures use it


def test_a_method_has_the_same_colour_and_marker_in_figure_5_figure_6_and_the_map():
    df = run_frame()
    data, per = map_data()
    figs = {"fig5": F.draw_fraction(df), "fig6": F.draw_step_group(df), "map": D.draw_map(data, per)}
    label = f"diffusioncls, {GE}"
    want = F.method_style("diffusioncls")
    for name, fig in figs.items():
        line = tagged_lines(fig)[label]
        assert to_hex(line.get_color()) == to_hex(want.color), name
        assert line.get_marker() == want.marker, name
    fig5 = tagged_lines(figs["fig5"])
    assert set(fig5) == {"none", f"eda, {GE}", "aeda, balanced (B/D)", label}
    for lab, ln in fig5.items():  # every line in the style of its method, and open markers for B/D
        m, pol = (lab.split(", ", 1) + ["-"])[:2]
        st = F.line_style(m, "B/D" if "B/D" in pol else "G/E" if "G/E" in pol else "-", F.method_styles([m]))
        assert to_hex(ln.get_color()) == to_hex(st.color) and ln.get_marker() == st.marker, lab
        assert (to_hex(ln.get_markerfacecolor()) == "#ffffff") == st.hollow, lab


@pytest.mark.parametrize("draw", ["fraction", "step_group"])
def test_legend_entries_are_drawn_like_their_lines(draw):
    fig = getattr(F, f"draw_{draw}")(run_frame())
    lines, legend = tagged_lines(fig), legend_entries(fig)
    assert set(lines) <= set(legend)
    for label, ln in lines.items():
        h = legend[label]
        assert to_hex(h.get_color()) == to_hex(ln.get_color()), label
        assert h.get_marker() == ln.get_marker() and h.get_linestyle() == ln.get_linestyle(), label
        assert to_hex(h.get_markerfacecolor()) == to_hex(ln.get_markerfacecolor()), label


def test_figure_6_shows_none_in_its_legend_with_the_baseline_line_style():
    fig = F.draw_step_group(run_frame())
    base = [ln for ax in fig.axes for ln in ax.lines if ln.get_gid() == "baseline:none"]
    assert len(base) == 1 and base[0].get_linestyle() == "--" and to_hex(base[0].get_color()) == "#000000"
    entry = next(h for t, h in legend_entries(fig).items() if t.startswith("none"))
    assert entry.get_linestyle() == "--" and to_hex(entry.get_color()) == "#000000"
    assert entry.get_marker() in ("None", None, "")  # the baseline line has no marker: nor has its entry


def test_figure_5_ticks_are_the_measured_fractions_on_a_log_axis():
    ax = F.draw_fraction(run_frame()).axes[0]
    assert ax.get_xscale() == "log"
    assert list(ax.get_xticks()) == pytest.approx([1, 2, 5, 10, 20])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1%", "2%", "5%", "10%", "20%"]


def test_figure_6_ticks_are_the_measured_step_groups():
    ax = F.draw_step_group(run_frame()).axes[0]
    assert list(ax.get_xticks()) == pytest.approx([1, 3, 5])
    assert ax.get_title().startswith("airline, 20% of train, G/E")


def test_error_bars_are_one_standard_deviation_over_seeds():
    """eda at 1%: seeds score 62 and 64, so the bar must run from 63 - 1.414 to 63 + 1.414 (not a bootstrap CI)."""
    ax = F.draw_fraction(run_frame()).axes[0]
    sd = np.std([62.0, 64.0], ddof=1)
    bars = [seg for c in ax.containers for coll in c.get_children()
            if isinstance(coll, matplotlib.collections.LineCollection) for seg in coll.get_segments()]
    spans = {(round(s[:, 1].min(), 6), round(s[:, 1].max(), 6)) for s in bars}
    assert (round(63 - sd, 6), round(63 + sd, 6)) in spans
    seeds = [c for c in ax.collections if c.get_gid() == f"seeds:eda, {GE}"]
    assert len(seeds) == 1 and len(seeds[0].get_offsets()) == 10  # 5 fractions x 2 seeds, drawn faintly


def test_map_names_points_in_the_legend_not_next_to_them():
    data, per = map_data()
    fig = D.draw_map(data, per)
    assert all(not ax.texts for ax in fig.axes), "text annotations next to points overlap"
    assert set(legend_entries(fig)) == {f"eda, {GE}", f"diffusioncls, {GE}"}
    assert sorted(ax.get_title() for ax in fig.axes if ax.get_visible()) == ["airline, 20% of train",
                                                                          "airline, 5% of train"]


def tsne_points(t) -> pd.DataFrame:
    n = len(t)
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=2 * n), "y": rng.normal(size=2 * n),
                         "label": ["negative", "positive"] * n, "kind": ["pseudo"] * n + ["original"] * n,
                         "t": list(t) + [np.nan] * n})


def test_figure_7_colour_bar_is_discrete_with_integer_ticks():
    fig = F.draw_tsne(tsne_points([1, 2, 2, 4, 6, 6, 3, 5]), "airline, 5% of train", "test")
    sc = next(c for ax in fig.axes for c in ax.collections if c.get_array() is not None and c.get_array().size)
    assert isinstance(sc.norm, BoundaryNorm) and sc.cmap.N == 6  # one colour per step 1..6
    cbar_ax = fig.axes[-1]
    ticks = cbar_ax.get_yticks()
    assert list(ticks) == [1, 2, 3, 4, 5, 6]


def test_schedule_uses_symbols_not_names():
    ax = F.draw_schedule().axes[0]
    assert r"\lambda" in ax.get_title() and r"\alpha_t" in ax.get_ylabel()
    assert all("lambda" not in t.get_text().replace(r"\lambda", "") for t in ax.texts)


def all_figures():
    df = run_frame()
    data, per = map_data()
    return {"schedule": F.draw_schedule(), "fig5": F.draw_fraction(df), "fig6": F.draw_step_group(df),
            "fig7": F.draw_tsne(tsne_points(range(1, 40)), "airline, 5% of train", "test"),
            "map": D.draw_map(data, per)}


def test_no_text_smaller_than_8_pt():
    for name, fig in all_figures().items():
        with plt.rc_context(F.PAPER_RC):
            fig.canvas.draw()  # tick labels exist once drawn
        small = [(t.get_text(), t.get_fontsize()) for t in fig.findobj(matplotlib.text.Text)
                 if t.get_visible() and t.get_text().strip() and t.get_fontsize() < F.MIN_FONT_PT]
        assert not small, f"{name}: {small}"
