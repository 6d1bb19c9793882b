"""Figures (matplotlib's Agg backend, seaborn for the mean lines; each saved as PNG and PDF).

- ``schedule``: the label-aware noise schedule (paper Figure 2), from the formula alone;
- ``fig5_fraction``: macro-F1 against the train fraction, one line per method, mean ± 1 SD over seeds;
- ``fig6_step_group``: macro-F1 of DiffusionCLS against the diffusion step group, mean ± 1 SD over seeds;
- ``fig7_tsne``: t-SNE of originals and pseudo samples by label, pseudo samples shaded by masking step.

Every figure draws a method in the same colour and marker (:func:`method_styles`: the Okabe-Ito palette,
``none`` black and dashed), with fonts of at least 8 pt (:data:`PAPER_RC`) and human labels
(:func:`view_label`, :func:`policy_label`). A figure the run has no data for is returned with
``path_png=None`` and a note saying why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import wraps
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never a display: reports are rendered headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import BoundaryNorm, to_hex  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, MaxNLocator, NullFormatter, NullLocator  # noqa: E402

from bench.report.load import ablation_mask  # noqa: E402

PARENT_TEXT_KEYS = ("parent_text", "original", "source_text", "parent")


@dataclass
class Figure:
    name: str
    title: str
    path_png: str | None = None
    path_pdf: str | None = None
    note: str | None = None  # why it was skipped, or what the reader must know (e.g. the representation)


# ---------------------------------------------------------------- one look for every figure

MIN_FONT_PT = 8  # no text in a figure is smaller (reviewers read the PDFs at print size)
PAPER_RC = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8.5, "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5, "legend.title_fontsize": 9, "figure.titlesize": 10.5,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "axes.axisbelow": True,
    "grid.color": "#e4e4e4", "grid.linewidth": 0.6, "legend.frameon": False,
    "pdf.fonttype": 42, "ps.fonttype": 42,  # TrueType in the PDFs: text stays text in a paper's editor
}


def paper_style(fn):
    """Decorator: build the figure under :data:`PAPER_RC`, so every figure has the same fonts (>= 8 pt)."""
    @wraps(fn)
    def wrapper(*args, **kwargs):
        with plt.rc_context(PAPER_RC):
            return fn(*args, **kwargs)
    return wrapper


def save(fig, out_dir: str | Path, name: str) -> tuple[str, str]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{name}.png", out_dir / f"{name}.pdf"
    with plt.rc_context(PAPER_RC):  # tick labels are made when drawn: they must see the same fonts
        fig.savefig(png, dpi=150, bbox_inches="tight")
        fig.savefig(pdf, bbox_inches="tight")
    plt.close(fig)
    return str(png), str(pdf)


def _label(method: str, policy: str) -> str:
    return method if policy in ("-", None) else f"{method} ({policy})"


# Okabe & Ito (2008), "Color universal design": distinguishable under the common colour-vision deficiencies.
OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7"}
# black is the baseline's; yellow is too faint for thin lines on white
METHOD_COLOURS = tuple(OKABE_ITO[c] for c in ("blue", "orange", "bluish green", "vermillion", "reddish purple",
                                              "sky blue"))
# 11 markers x 6 colours: 66 distinct pairs, and the 11 first known methods each have their own marker
METHOD_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "*")
BASELINE = "none"
KNOWN_METHODS = ("none", "resample", "eda", "aeda", "backtranslation", "lambada", "genius", "genius-f",
                 "nlpaug-mlm", "nlpaug-glove", "diffusioncls", "diffusioncls-wo-da", "diffusioncls-wo-lap",
                 "diffusioncls-wo-nrt", "diffusioncls-wo-las", "diffusioncls-reflective", "diffusioncls-ref",
                 "diffusioncls-las-centred")
SOLID: tuple = ()
DASHED = (5.0, 2.5)
DOTTED = (1.2, 1.6)
POLICY_LABELS = {"G/E": "n per original (G/E)", "B/D": "balanced (B/D)"}
HOLLOW_POLICIES = frozenset({"B/D"})  # B/D: dotted line, open markers; G/E: solid line, filled markers


@dataclass(frozen=True)
class MethodStyle:
    """How one method (and, through :func:`line_style`, one method x policy line) is drawn."""

    color: str
    marker: str
    dashes: tuple = SOLID  # matplotlib on-off sequence; () = solid
    hollow: bool = False  # open markers


BASELINE_STYLE = MethodStyle(OKABE_ITO["black"], "h", DASHED)


def _slot_style(i: int) -> MethodStyle:
    return MethodStyle(METHOD_COLOURS[i % len(METHOD_COLOURS)], METHOD_MARKERS[i % len(METHOD_MARKERS)])


def method_order(method: str) -> tuple:
    """Sort key: the known methods in :data:`KNOWN_METHODS` order, then the others by name."""
    m = str(method)
    return (KNOWN_METHODS.index(m), "") if m in KNOWN_METHODS else (len(KNOWN_METHODS), m)


def line_order(method: str, policy) -> tuple:
    """Sort key of a method x policy line: :func:`method_order`, then G/E before B/D before the others."""
    return (method_order(method), {"-": 0, "G/E": 1, "B/D": 2}.get(str(policy), 3), str(policy))


def method_styles(methods: Iterable[str]) -> dict[str, MethodStyle]:
    """Colour and marker of each method name, the same in every figure so a reader learns them once.

    ``none`` is black and dashed. A known method (:data:`KNOWN_METHODS`, fixed order) takes slot i of its
    position: colour i mod 6 of the Okabe-Ito palette, marker i mod 11 (66 distinct pairs), whatever other
    names are present. Other names (plugins, parameterised labels) take the next free slots in sorted order.
    """
    names = sorted({str(m) for m in methods}, key=method_order)
    known = [m for m in KNOWN_METHODS if m != BASELINE]
    out: dict[str, MethodStyle] = {}
    next_free = len(known)
    for m in names:
        if m == BASELINE:
            out[m] = BASELINE_STYLE
        elif m in known:
            out[m] = _slot_style(known.index(m))
        else:
            out[m] = _slot_style(next_free)
            next_free += 1
    return out


def method_style(method: str, methods: Iterable[str] = ()) -> MethodStyle:
    """The style of ``method`` among ``methods`` (the run's names; only unknown names depend on them)."""
    return method_styles([method, *methods])[str(method)]


def line_style(method: str, policy, styles: Mapping[str, MethodStyle]) -> MethodStyle:
    """The method's colour and marker; the policy sets the line (B/D dotted and open, G/E solid)."""
    st = styles[str(method)]
    if str(method) == BASELINE:
        return st
    hollow = str(policy) in HOLLOW_POLICIES
    return MethodStyle(st.color, st.marker, DOTTED if hollow else SOLID, hollow)


def marker_face(st: MethodStyle) -> dict:
    """Marker colours of a line: filled with a thin white edge, or open with a coloured edge."""
    if st.hollow:
        return {"markerfacecolor": "white", "markeredgecolor": st.color, "markeredgewidth": 1.3}
    return {"markerfacecolor": st.color, "markeredgecolor": "white", "markeredgewidth": 0.75}


def legend_handle(st: MethodStyle, marker: bool = True, linewidth: float = 1.5, line: bool = True) -> Line2D:
    """A legend entry drawn exactly like the line (or, ``line=False``, the point) it names."""
    kw = {"linestyle": ""} if not line else {"dashes": st.dashes} if st.dashes else {"linestyle": "-"}
    return Line2D([], [], color=st.color, marker=st.marker if marker else None, markersize=6.5,
                  linewidth=linewidth, **kw, **marker_face(st))


def view_label(view) -> str:
    """``5pct`` -> ``5% of train``, ``10shot`` -> ``10 shots per class``; anything else as it is."""
    from bench.data import ViewSpec

    try:
        v = ViewSpec.parse(str(view))
    except ValueError:
        return str(view)
    if v.shots is not None:
        return f"{v.shots} shot{'' if v.shots == 1 else 's'} per class"
    return f"{v.fraction * 100:g}% of train"


def policy_label(policy) -> str:
    """``G/E`` -> ``n per original (G/E)``, ``B/D`` -> ``balanced (B/D)``; no policy -> ``""``."""
    if policy is None or (isinstance(policy, float) and math.isnan(policy)) or str(policy) in ("-", ""):
        return ""
    return POLICY_LABELS.get(str(policy), str(policy))


def line_label(method: str, policy) -> str:
    p = policy_label(policy)
    return f"{method}, {p}" if p else str(method)


def seeds_text(seeds: Iterable) -> str:
    s = sorted({int(x) for x in seeds})
    return f"seed {s[0]}" if len(s) == 1 else "seeds " + ", ".join(map(str, s))


def figure_legend(fig, handles: Sequence, labels: Sequence[str], title: str | None = None) -> None:
    """One legend for all panels, right of them (never over data)."""
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), title=title, handlelength=3.2,
               borderaxespad=0.2)


def _dodge(levels: Sequence[str], span: float) -> dict[str, float]:
    """Offsets spreading the levels over ``span`` around each x, so error bars of one x do not overlap."""
    n = len(levels)
    return {k: (span * (i / (n - 1) - 0.5) if n > 1 else 0.0) for i, k in enumerate(levels)}


def _tag_lines(new_lines: Sequence[Line2D], levels: Sequence[str], looks: Mapping[str, MethodStyle]) -> None:
    """Name seaborn's mean lines (gid ``line:<label>``) and open the markers of hollow looks.

    seaborn draws one line per level in ``levels`` order; its error bars add lines without a line style.
    Nothing is changed unless every line's colour is the one its level asked for."""
    main = [ln for ln in new_lines if ln.get_linestyle() != "None"]
    if len(main) != len(levels) or any(to_hex(ln.get_color()) != to_hex(looks[k].color)
                                       for ln, k in zip(main, levels)):
        return
    for ln, k in zip(main, levels):
        ln.set_gid(f"line:{k}")
        ln.set(**marker_face(looks[k]))


def _mean_sd_lines(ax, d: pd.DataFrame, x: str, y: str, levels: Sequence[str],
                   looks: Mapping[str, MethodStyle]) -> None:
    """Per line (column ``line``): the mean over seeds with ±1 SD bars, and every seed as a faint point.

    ±1 SD, not seaborn's bootstrap CI: a bootstrap over 3 seeds is far too narrow to be honest."""
    n0 = len(ax.lines)
    sns.lineplot(data=d, x=x, y=y, hue="line", hue_order=list(levels), style="line", style_order=list(levels),
                 palette={k: looks[k].color for k in levels}, markers={k: looks[k].marker for k in levels},
                 dashes={k: looks[k].dashes or "" for k in levels}, errorbar="sd", err_style="bars",
                 err_kws={"capsize": 2.5, "elinewidth": 0.9, "capthick": 0.9}, markersize=6.5, linewidth=1.5,
                 legend=False, ax=ax)
    _tag_lines(ax.lines[n0:], levels, looks)
    for k in levels:
        p = d[d["line"] == k]
        st = looks[k]
        ax.scatter(p[x], p[y], s=14, marker=st.marker, facecolors="none" if st.hollow else st.color,
                   edgecolors=st.color, linewidths=0.6, alpha=0.35, zorder=1.5, gid=f"seeds:{k}")


def _line_frame(d: pd.DataFrame, styles: Mapping[str, MethodStyle]) -> tuple[list[str], dict[str, MethodStyle]]:
    """Adds ``line`` (the human label of method x policy); returns its levels in legend order and looks."""
    d["line"] = [line_label(m, p) for m, p in zip(d["method"], d["policy"])]
    firsts = d.drop_duplicates("line")
    order = sorted(zip(firsts["method"], firsts["policy"].astype(str), firsts["line"]),
                   key=lambda r: line_order(r[0], r[1]))
    return [r[2] for r in order], {r[2]: line_style(r[0], r[1], styles) for r in order}


# ---------------------------------------------------------------- Figure 2: the noise schedule


def label_aware_alpha(t, T: int = 32, w=0.0, lam: float = 0.5):
    """Probability that a token is still UNMASKED at step t under the label-aware schedule.

    Paper Eq. 2-3 (DiffusionCLS, EMNLP 2024; DiffusionBERT's spindle schedule with the [CLS]-attention
    weight ``w`` of the token in place of its entropy):
    ``alpha_t = 1 - t/T - lam * sin(pi * t / T) * w``, clipped to [0, 1]. The probability of being masked
    is ``1 - alpha_t``. Broadcasts over ``t`` and ``w``. Implemented from the formula; independent of
    ``methods/diffusioncls``.
    """
    t = np.asarray(t, dtype=float)
    return np.clip(1.0 - t / T - lam * np.sin(np.pi * t / T) * np.asarray(w, dtype=float), 0.0, 1.0)


@paper_style
def draw_schedule(weights: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), T: int = 32, lam: float = 0.5):
    """Figure 2: alpha_t against t, one line per importance weight (an ordered quantity: a sequential palette)."""
    t = np.arange(0, T + 1)
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, len(weights)))
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for w, c in zip(weights, colours):
        ax.plot(t, label_aware_alpha(t, T, w, lam), color=c, marker="o", markersize=2.8, linewidth=1.6,
                label=rf"$w = {w:g}$")
    ax.set(xlabel=r"diffusion step $t$", ylabel=r"$\alpha_t$ = P(token still unmasked at $t$)", xlim=(0, T),
           ylim=(0, 1.02), title=rf"Label-aware noise schedule ($T = {T}$, $\lambda = {lam:g}$)")
    ax.xaxis.set_major_locator(FixedLocator(np.linspace(0, T, 5)) if T % 4 == 0 else MaxNLocator(integer=True))
    ax.text(0.97, 0.96, r"$\alpha_t = 1 - t/T - \lambda\,\sin(\pi t/T)\,w$, clipped to $[0, 1]$",
            transform=ax.transAxes, ha="right", va="top", fontsize=9)
    ax.legend(title=r"importance weight $w$", loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def figure_schedule(out_dir, weights: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), T: int = 32,
                    lam: float = 0.5) -> Figure:
    png, pdf = save(draw_schedule(weights, T, lam), out_dir, "schedule")
    return Figure("schedule", "Noise schedule (paper Figure 2)", png, pdf,
                  "α_t = 1 − t/T − λ·sin(πt/T)·w, clipped to [0, 1] (Eq. 2-3): the probability that a token is "
                  "still unmasked at step t; w = the token's [CLS] attention weight. Drawn from the formula, "
                  "not from a run.")


# ---------------------------------------------------------------- Figure 5: F1 against train fraction


def default_step_only(d: pd.DataFrame) -> pd.DataFrame:
    """Where one data set / view / method / policy holds a sweep of the method's axis (e.g. step
    group), keep only its most common value (the default, which every plain cell has)."""
    if d["sweep_value"].notna().sum() == 0:
        return d
    keys = ["dataset", "view", "method", "policy"]
    keep = pd.Series(True, index=d.index)
    for _, g in d.groupby(keys):
        if g["sweep_value"].nunique() <= 1:
            continue
        mode = d.loc[d["method"] == g["method"].iloc[0], "sweep_value"].mode().iloc[0]
        keep[g.index[g["sweep_value"] != mode]] = False
    return d[keep]



def fraction_data(df: pd.DataFrame) -> pd.DataFrame:
    """The ok records Figure 5 draws: data sets with two or more train fractions, default step group only."""
    d = df[(df["status"] == "ok") & df["fraction"].notna() & df["macro_f1"].notna()].copy()
    d = d[ablation_mask(d, "dataset", "fraction")]  # an ablation run at several fractions is a line too
    d = default_step_only(d)  # a step sweep is Figure 6's business
    return d[d.groupby("dataset")["fraction"].transform("nunique") >= 2].copy()


def _panel_seeds(p: pd.DataFrame) -> str:
    n = p.groupby(["line", "x0"])["seed"].nunique()
    return f"{n.min()} seeds" if n.min() == n.max() else f"{n.min()}-{n.max()} seeds"


@paper_style
def draw_fraction(df: pd.DataFrame):
    """Figure 5: one panel per data set, macro-F1 against the train fraction on a log axis whose ticks are the
    measured fractions; None when no data set has two fractions."""
    d = fraction_data(df)
    if d.empty:
        return None
    styles = method_styles(df["method"].dropna())  # the run's names: the same slots in every figure
    levels, looks = _line_frame(d, styles)
    d["x0"] = d["fraction"] * 100
    d["macro-F1 (%)"] = d["macro_f1"] * 100
    datasets = sorted(d["dataset"].unique(), key=str)
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.6 * len(datasets), 3.6), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        p = d[d["dataset"] == ds].copy()
        present = [k for k in levels if k in set(p["line"])]
        off = _dodge(present, min(0.12, 0.025 * (len(present) - 1)))  # decades
        p["train fraction"] = p["x0"] * 10 ** p["line"].map(off)
        _mean_sd_lines(ax, p, "train fraction", "macro-F1 (%)", present, looks)
        xs = sorted(p["x0"].unique())
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.set_xticklabels([f"{v:g}%" for v in xs])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(xs[0] / 10 ** 0.12, xs[-1] * 10 ** 0.12)
        ax.set(xlabel="train fraction (% of the train split, log scale)", ylabel="macro-F1 (%)",
               title=f"{ds} ({_panel_seeds(p)})")
    figure_legend(fig, [legend_handle(looks[k]) for k in levels], levels, "method, policy")
    fig.suptitle("Macro-F1 against train fraction: mean ± 1 SD over seeds")
    fig.tight_layout()
    return fig


def figure_fraction(df: pd.DataFrame, out_dir, seed: int = 0) -> Figure:
    """Figure 5 saved; ``seed`` is unused (no resampling) and kept for the callers."""
    title = "Macro-F1 against train fraction (paper Figure 5)"
    fig = draw_fraction(df)
    if fig is None:
        return Figure("fig5_fraction", title, note="skipped: no data set has ok records at two or more train fractions")
    png, pdf = save(fig, out_dir, "fig5_fraction")
    return Figure("fig5_fraction", title, png, pdf,
                  "Markers and lines: mean over seeds; error bars: ±1 standard deviation over seeds (n−1); faint "
                  "points: the individual seeds. x axis logarithmic, ticks at the measured fractions; the points "
                  "of one fraction are spread slightly sideways so their bars do not hide each other. Dashed "
                  "black: none (no augmentation); dotted with open markers: balanced (B/D) policy.")


# ---------------------------------------------------------------- Figure 6: F1 against step group

AXIS_LABELS = {"step_group": "diffusion step group"}


def step_group_data(df: pd.DataFrame, axis: str = "step_group") -> pd.DataFrame:
    """Configurations whose ok records sweep ``axis``: two or more values on one data set / view / policy,
    each line kept to the seeds present at every one of its values (so the comparison stays paired)."""
    d = df[(df["status"] == "ok") & (df["sweep_param"] == axis) & df["sweep_value"].notna() & df["macro_f1"].notna()].copy()
    if d.empty:
        return d
    d = d[d.groupby(["dataset", "view", "policy", "method"])["sweep_value"].transform("nunique") >= 2]
    keep = []
    for _, g in d.groupby(["dataset", "view", "policy", "method"]):
        common = set.intersection(*(set(x["seed"]) for _, x in g.groupby("sweep_value")))
        keep.append(g[g["seed"].isin(common)])
    return pd.concat(keep).copy() if keep else d.iloc[0:0].copy()


def _panel_title(ds, view, policy) -> str:
    parts = [str(ds), view_label(view)] + ([str(policy)] if policy_label(policy) else [])
    return ", ".join(parts)


def _baseline(ax, df: pd.DataFrame, ds, view, seeds: set) -> bool:
    """``none`` on the same view and seeds as a dashed line with a ±1 SD band; False when there is none."""
    base = df[(df["status"] == "ok") & (df["method"] == BASELINE) & (df["dataset"] == ds) & (df["view"] == view)
              & df["seed"].isin(seeds) & df["macro_f1"].notna()]
    if base.empty:
        return False
    m, sd = base["macro_f1"].mean() * 100, base["macro_f1"].std() * 100
    if not math.isnan(sd):
        ax.axhspan(m - sd, m + sd, color=BASELINE_STYLE.color, alpha=0.07, linewidth=0, zorder=0)
    ax.axhline(m, color=BASELINE_STYLE.color, dashes=BASELINE_STYLE.dashes, linewidth=1.3, zorder=1,
               gid=f"baseline:{BASELINE}")
    return True


@paper_style
def draw_step_group(df: pd.DataFrame, axis: str = "step_group"):
    """Figure 6: one panel per data set / view / policy, macro-F1 against the swept ``axis`` with ticks at the
    measured values, ``none`` on the same seeds as a dashed line; None when nothing sweeps ``axis``."""
    d = step_group_data(df, axis)
    if d.empty:
        return None
    styles = method_styles(df["method"].dropna())
    levels, looks = _line_frame(d, styles)
    d["macro-F1 (%)"] = d["macro_f1"] * 100
    panels = sorted({(a, b, c) for a, b, c in zip(d["dataset"], d["view"], d["policy"].astype(str))})
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6), squeeze=False)
    any_base = False
    for ax, (ds, view, pol) in zip(axes[0], panels):
        p = d[(d["dataset"] == ds) & (d["view"] == view) & (d["policy"].astype(str) == pol)].copy()
        present = [k for k in levels if k in set(p["line"])]
        xs = sorted(p["sweep_value"].unique())
        gap = float(np.min(np.diff(xs))) if len(xs) > 1 else 1.0
        off = _dodge(present, gap * min(0.25, 0.08 * (len(present) - 1)))
        p[axis] = p["sweep_value"] + p["line"].map(off)
        _mean_sd_lines(ax, p, axis, "macro-F1 (%)", present, looks)
        any_base |= _baseline(ax, df, ds, view, set(p["seed"]))
        ax.xaxis.set_major_locator(FixedLocator(xs))
        ax.set_xticklabels([f"{v:g}" for v in xs])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set(xlabel=AXIS_LABELS.get(axis, axis.replace("_", " ")), ylabel="macro-F1 (%)",
               title=f"{_panel_title(ds, view, pol)}\n{seeds_text(p['seed'])}")
    handles = [legend_handle(looks[k]) for k in levels]
    labels = list(levels)
    if any_base:
        handles.append(legend_handle(BASELINE_STYLE, marker=False, linewidth=1.3))
        labels.append("none (no augmentation), same seeds; band ±1 SD")
    figure_legend(fig, handles, labels, "method, policy")
    fig.tight_layout()
    return fig


def figure_step_group(df: pd.DataFrame, out_dir, seed: int = 0, axis: str = "step_group") -> Figure:
    """One line per configuration whose records sweep the declared ``axis`` parameter: two or more
    values on one data set / view / policy (DiffusionCLS and its variants for the step group)."""
    title = "Macro-F1 against diffusion step group (paper Figure 6)"
    fig = draw_step_group(df, axis)
    if fig is None:
        return Figure("fig6_step_group", title, note=f"skipped: no records with two or more values of the {axis} "
                                                     "parameter")
    png, pdf = save(fig, out_dir, "fig6_step_group")
    return Figure("fig6_step_group", title, png, pdf,
                  "Mean over the seeds present at every step group of a line (paired), error bars ±1 standard "
                  "deviation over those seeds (n−1), faint points the individual seeds; ticks at the measured "
                  "step groups. Dashed black: none (no augmentation) on the same view and seeds, with a ±1 SD band.")


# ---------------------------------------------------------------- Figure 7: t-SNE


def tfidf_svd_embed(texts: Sequence[str], n_components: int = 50, seed: int = 0) -> np.ndarray:
    """Cheap, language-agnostic default representation: TF-IDF of character 1-3-grams (word boundaries
    respected; works for unsegmented Chinese too) reduced by truncated SVD. Not the classifier's space."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=1, sublinear_tf=True).fit_transform(texts)
    k = max(1, min(n_components, x.shape[1] - 1, x.shape[0] - 1))
    return TruncatedSVD(n_components=k, random_state=seed).fit_transform(x)


tfidf_svd_embed.description = "TF-IDF (char 1-3-grams) + truncated SVD (50 dims)"


def read_jsonl(path: str | Path, limit: int | None = None) -> list[dict]:
    """The JSON lines of ``path`` (gzip-compressed when it ends in ``.gz``), skipping unparsable ones."""
    import gzip

    out = []
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
            if limit is not None and len(out) >= limit:
                break
    return out


def parent_text(sample: dict, parents: Mapping[str, str] | None = None) -> str | None:
    """The parent's text: from the sample's provenance if it carries it, else from ``parents``; None if neither."""
    prov = sample.get("provenance") or {}
    for k in PARENT_TEXT_KEYS:
        if isinstance(prov.get(k), str):
            return prov[k]
    if parents is not None:
        return parents.get(str(sample.get("parent_id")))
    return None


def masking_step(sample: dict) -> float:
    prov = sample.get("provenance") or {}
    for k in ("t", "step", "mask_step"):
        v = prov.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return math.nan


def _pick_synthetic(df: pd.DataFrame, prefer: str = "diffusioncls") -> pd.Series | None:
    d = df[df["synthetic_path"].notna() & (df["status"] == "ok")]
    d = d[[Path(p).is_file() for p in d["synthetic_path"]]]
    if d.empty:
        return None
    pref = d[d["method"] == prefer]
    return (pref if len(pref) else d).sort_values(["dataset", "view", "seed"]).iloc[0]


def figure_tsne(df: pd.DataFrame, out_dir, embed: Callable[[Sequence[str]], np.ndarray] | None = None,
                parents: Mapping[str, str] | Callable[[str], Mapping[str, str] | None] | None = None, seed: int = 0, max_samples: int = 300) -> Figure:
    title = "t-SNE of originals and pseudo samples (paper Figure 7)"
    row = _pick_synthetic(df)
    if row is None:
        return Figure("fig7_tsne", title, note="skipped: no ok record with a readable synthetic_path")
    samples = read_jsonl(row["synthetic_path"])
    if callable(parents):  # a provider: data set -> {id: text} or None
        parents = parents(row["dataset"])
    rng = np.random.default_rng(seed)
    if len(samples) > max_samples:
        samples = [samples[i] for i in sorted(rng.choice(len(samples), size=max_samples, replace=False))]
    originals: dict[str, tuple[str, str]] = {}
    for s in samples:
        pt = parent_text(s, parents)
        if pt is not None:
            originals.setdefault(str(s.get("parent_id")), (pt, str(s.get("label"))))
    texts = [str(s.get("text", "")) for s in samples] + [t for t, _ in originals.values()]
    if len(texts) < 5:
        return Figure("fig7_tsne", title, note=f"skipped: only {len(texts)} texts in {row['synthetic_path']}")
    from sklearn.manifold import TSNE

    emb_fn = embed or (lambda xs: tfidf_svd_embed(xs, seed=seed))
    rep = getattr(embed, "description", getattr(embed, "__name__", "custom")) if embed else \
        tfidf_svd_embed.description
    x = np.asarray(emb_fn(texts), dtype=float)
    perplexity = float(max(2.0, min(30.0, (len(texts) - 1) / 3)))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # OpenMP threads on a busy machine cost 10x; a few hundred points need one
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=500, random_state=seed,
                  n_jobs=1).fit_transform(x)
    n_s = len(samples)
    pts = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                        "label": [str(s.get("label")) for s in samples] + [lab for _, lab in originals.values()],
                        "kind": ["pseudo"] * n_s + ["original"] * len(originals),
                        "t": [masking_step(s) for s in samples] + [math.nan] * len(originals)})
    where = f"{row['dataset']}, {view_label(row['view'])}, {line_label(row['method'], row['policy'])}, " \
            f"seed {row['seed']}"
    png, pdf = save(draw_tsne(pts, where, rep), out_dir, "fig7_tsne")
    note = (f"{where}: {n_s} pseudo samples, {len(originals)} originals"
            + ("" if originals else " (no parent texts in provenance or parents map: originals not drawn)")
            + f"; representation: {rep}; t-SNE perplexity {perplexity:g}, seed {seed}. t-SNE axes have no "
              "units; only neighbourhoods mean something.")
    return Figure("fig7_tsne", title, png, pdf, note)


LABEL_COLOURS = tuple(OKABE_ITO[c] for c in ("blue", "vermillion", "bluish green", "reddish purple", "orange",
                                             "sky blue"))


def step_colours(t: pd.Series):
    """(colormap, norm, ticks) for the masking step: one colour per integer step with integer ticks when the
    steps are whole numbers (they are: t counts diffusion steps), a continuous scale otherwise."""
    v = t.dropna().to_numpy(dtype=float)
    lo, hi = float(v.min()), float(v.max())
    if not np.allclose(v, np.round(v)):
        return plt.get_cmap("viridis"), plt.Normalize(lo, hi), None
    lo, hi = int(round(lo)), int(round(hi))
    n = hi - lo + 1
    norm = BoundaryNorm(np.arange(lo - 0.5, hi + 1.0), n)
    ticks = list(range(lo, hi + 1)) if n <= 12 else \
        [int(x) for x in MaxNLocator(nbins=8, integer=True).tick_values(lo, hi) if lo <= x <= hi]
    return plt.get_cmap("viridis", n), norm, ticks


def _no_coordinates(ax, title: str) -> None:
    """t-SNE coordinates have no unit: no ticks, no grid."""
    ax.set(title=title, xlabel="t-SNE 1", ylabel="t-SNE 2", xticks=[], yticks=[])
    ax.grid(False)


@paper_style
def draw_tsne(pts: pd.DataFrame, where: str, rep: str):
    """Figure 7: left, originals (circles) and pseudo samples (crosses) coloured by label; right, when the
    samples carry a masking step, the pseudo samples coloured by it (a discrete, integer colour bar)."""
    has_t = pts["t"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_t else 1, figsize=(10.5 if has_t else 5.2, 4.3), squeeze=False)
    ax = axes[0][0]
    labels = sorted(pts["label"].unique(), key=str)
    colour = {lab: LABEL_COLOURS[i % len(LABEL_COLOURS)] for i, lab in enumerate(labels)}
    kinds = {"original": ("o", 30), "pseudo": ("X", 34)}
    for kind, (marker, size) in kinds.items():
        for lab in labels:
            q = pts[(pts["kind"] == kind) & (pts["label"] == lab)]
            ax.scatter(q["x"], q["y"], color=colour[lab], marker=marker, s=size, alpha=0.85, edgecolors="white",
                       linewidths=0.5, gid=f"{kind}:{lab}")
    handles = [Line2D([], [], color=colour[lab], marker="s", linestyle="", markersize=7) for lab in labels]
    handles += [Line2D([], [], color="#555555", marker=m, linestyle="", markersize=6.5) for m, _ in kinds.values()]
    ax.legend(handles, [f"label: {lab}" for lab in labels] + list(kinds), loc="center left",
              bbox_to_anchor=(1.0, 0.5))
    _no_coordinates(ax, "by label")
    if has_t:
        ax = axes[0][1]
        o = pts[pts["kind"] == "original"]
        ax.scatter(o["x"], o["y"], c="#d9d9d9", edgecolors="#555555", linewidths=0.5, s=28, label="original")
        p = pts[pts["kind"] == "pseudo"]
        cmap, norm, ticks = step_colours(p["t"])
        sc = ax.scatter(p["x"], p["y"], c=p["t"], cmap=cmap, norm=norm, marker="X", s=34, edgecolors="white",
                        linewidths=0.4, label="pseudo sample")
        cb = fig.colorbar(sc, ax=ax, ticks=ticks, label=r"masking step $t$ (from provenance)")
        cb.minorticks_off()
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, borderaxespad=0)
        _no_coordinates(ax, "pseudo samples by masking step")
    fig.suptitle(f"t-SNE of originals and pseudo samples: {where}\nrepresentation: {rep}")
    fig.tight_layout()
    return fig


def all_figures(df: pd.DataFrame, run_dir, out_dir, embed=None, parents=None, seed: int = 0) -> list[Figure]:
    out: list[Figure] = []
    for name, fn in (("schedule", lambda: figure_schedule(out_dir)),
                     ("fig5_fraction", lambda: figure_fraction(df, out_dir, seed)),
                     ("fig6_step_group", lambda: figure_step_group(df, out_dir, seed)),
                     ("fig7_tsne", lambda: figure_tsne(df, out_dir, embed, parents, seed))):
        try:
            out.append(fn())
        except Exception as e:  # one broken figure must not cost the others
            plt.close("all")
            out.append(Figure(name, name, note=f"skipped: {type(e).__name__}: {e}"))
    return out
