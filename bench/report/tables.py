"""Tables 2, 3, 4 and 9 of the paper (plus an rliable-style aggregate), drawn from the long DataFrame.

Every table is a :class:`Table`: display strings (Markdown, LaTeX) and the numbers behind them (CSV).
Scores are shown in percent; ``mean ± sample std (ddof=1)`` with the number of seeds ``n``; a 95%
seeded bootstrap interval of the mean (3 or more seeds); the paired difference against ``none`` on
identical splits (data set, view, seed) with its paired t-test, Holm-adjusted across the comparisons of
the section, a Holm-consistent t-interval, a sign-flip p (6 or more pairs) and a verdict; each section's
power notes say what difference its seeds could detect. Cells whose records are all ``unavailable`` show
``unavailable: <reason>``, all ``failed`` show ``failed``; failed records are excluded from every
statistic and each table's notes count them. With one seed, std and intervals are ``-``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.report import stats
from bench.report.load import ablation_mask, ablation_rows
from bench.report.paper import paper_text

BASELINE = "none"
METRIC_NAMES = {"macro_f1": "macro-F1", "accuracy": "accuracy"}
DASH = "-"


@dataclass
class Table:
    """A rendered table. ``display``: strings, one row per table row; ``data``: the numbers (CSV);
    ``section``: display columns whose values split the Markdown into sub-tables with headings."""

    name: str
    title: str
    display: pd.DataFrame
    data: pd.DataFrame
    section: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.display.empty


# ---------------------------------------------------------------- formatting


def pct(x: float, digits: int = 2) -> str:
    return DASH if stats.is_missing(x) else f"{100 * x:.{digits}f}"


def signed_pct(x: float, digits: int = 2) -> str:
    if stats.is_missing(x):
        return DASH
    v = round(100 * x, digits)
    return f"{v + 0.0 if v != 0 else 0.0:+.{digits}f}"  # never "-0.00"


def interval(lo: float, hi: float, signed: bool = False) -> str:
    if stats.is_missing(lo) or stats.is_missing(hi):
        return "[-]" if signed else DASH
    f = signed_pct if signed else pct
    return f"[{f(lo)}, {f(hi)}]"


def mean_pm(mean: float, std: float) -> str:
    return f"{pct(mean)} ± {pct(std)}"


def pval(p: float) -> str:
    if stats.is_missing(p):
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _order_key(method: str, policy: str) -> tuple:
    return (method != BASELINE, policy or "", method)


def _view_sort(view: str) -> tuple:
    from bench.data import ViewSpec

    try:
        v = ViewSpec.parse(str(view))
    except ValueError:
        return (True, math.inf, str(view))
    return (v.shots is not None, v.fraction if v.fraction is not None else v.shots, str(view))


# ---------------------------------------------------------------- cells


def with_variants(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``variant``: the method name, plus ``[axis=value]`` when one data set/view/method/policy
    holds records at several values of the method's declared axis (a sweep, e.g. of step_group), so a
    table never mixes them."""
    df = df.copy()
    df["variant"] = df["method"].astype(str)
    if df["sweep_value"].notna().any():
        keys = ["dataset", "view", "method", "policy"]
        n_values = df.groupby(keys)["sweep_value"].transform(lambda s: s.dropna().nunique())
        sweep = (n_values > 1) & df["sweep_value"].notna()
        df.loc[sweep, "variant"] = [f"{m} [{a}={g:g}]" for m, a, g in zip(df.loc[sweep, "method"],
                                                                         df.loc[sweep, "sweep_param"],
                                                                         df.loc[sweep, "sweep_value"])]
    return df


@dataclass
class Cell:
    status: str  # ok | unavailable | failed | missing
    summary: stats.Summary | None = None
    n_failed: int = 0
    n_unavailable: int = 0
    reason: str | None = None

    def text(self, mean_std: bool = True) -> str:
        if self.status == "ok":
            s = self.summary
            t = mean_pm(s.mean, s.std) if mean_std else pct(s.mean)
            if self.n_failed:
                t += f" ({self.n_failed} failed)"
            return t
        if self.status == "unavailable":
            return f"unavailable: {self.reason}" if self.reason else "unavailable"
        if self.status == "failed":
            return "failed"
        return DASH


def cell(rows: pd.DataFrame, metric: str, n_boot: int, seed: int) -> Cell:
    ok = rows[(rows["status"] == "ok") & rows[metric].notna()]
    n_failed = int(((rows["status"] == "failed") | ((rows["status"] == "ok") & rows[metric].isna())).sum())
    unav = rows[rows["status"] == "unavailable"]
    reasons = sorted({str(r) for r in unav["reason"].dropna()})
    reason = "; ".join(reasons) if reasons else None
    if len(ok):
        return Cell("ok", stats.summarize(ok[metric], n_boot=n_boot, seed=seed), n_failed, len(unav), reason)
    if len(unav):
        return Cell("unavailable", None, n_failed, len(unav), reason)
    if n_failed:
        return Cell("failed", None, n_failed, 0, None)
    return Cell("missing")


def _status_notes(df: pd.DataFrame) -> list[str]:
    notes = []
    failed = df[df["status"] == "failed"]
    if len(failed):
        notes.append(f"{len(failed)} failed record(s) excluded from all statistics: "
                     + ", ".join(sorted(failed["cell_id"].astype(str))[:20])
                     + (" ..." if len(failed) > 20 else ""))
    unav = df[df["status"] == "unavailable"]
    if len(unav):
        notes.append(f"{len(unav)} unavailable record(s) (the macro-F1 column shows 'unavailable: <reason>').")
    mixed = df.groupby(["dataset", "view"])["setting"].nunique()
    for (ds, view), n in mixed[mixed > 1].items():
        notes.append(f"WARNING: {ds} / {view} holds records made with {n} different classifier settings (another "
                     "preset, protocol, backbone or learning rate); they are never paired, and a row's mean may mix "
                     "them: report such runs separately.")
    signal = df[df["status"] == "ok"]
    if "no_signal" in signal and signal["no_signal"].any():
        cells = sorted(signal.loc[signal["no_signal"], "cell_id"].astype(str))
        notes.append(f"WARNING: {len(cells)} cell(s) carry no signal (every test prediction is one class; macro-F1 "
                     f"is the majority-class score): " + ", ".join(cells[:10]) + (" ..." if len(cells) > 10 else ""))
    return notes


def _common_notes() -> list[str]:
    return [
        "Scores in percent: mean ± sample std (ddof=1) over seeds; n = seeds with a result; "
        "'-' where a statistic needs 2 or more seeds.",
        "F1 95% CI: percentile bootstrap of the mean over seeds (scipy.stats.bootstrap, seeded, reproducible); "
        "'-' with fewer than 3 seeds (with 2 it would only repeat the two scores).",
        "ΔF1: mean F1 minus the mean F1 of `none` (policy '-') of the same data set and view. "
        "Paired ΔF1: mean of the per-seed differences against `none` on identical splits (same data set, view "
        "and seed; 'pairs' = seeds present on both sides).",
        "t-test p: two-sided paired t-test of the mean paired difference (unadjusted). Holm p: Holm-adjusted "
        "across the comparisons with `none` in this section (one data set and view). [CI]: t-interval of the "
        "mean paired difference at the 'CI level' of the Holm step that decided the comparison (95% with one "
        "comparison; 1 - 0.05/m for the smallest of m p-values; the level of the first failed step for every "
        "comparison from there on), so it excludes 0 exactly when Holm p < 0.05.",
        "verdict: 'better' / 'worse' when that interval lies above / below 0 and Holm p < 0.05, else "
        "'no evidence' (which is not evidence of no effect).",
        f"sign-flip p: two-sided sign-flip permutation test of the mean paired difference (unadjusted; exact "
        f"up to {stats.EXACT_SIGN_FLIP_MAX} pairs, {stats.MC_SIGN_FLIPS} seeded random sign assignments above), "
        f"shown from {stats.SIGN_FLIP_MIN_PAIRS} pairs on ('-' below): with n pairs it cannot go below "
        f"2/2^n, e.g. {stats.min_attainable_p(5):.4f} with 5 pairs, so it could never reach 0.05.",
        "'-' in the paired columns: fewer than 2 pairs, or paired differences that are all equal and not 0 "
        "(no spread: the t-test and t-interval are undefined).",
    ]


def _paired_diffs(df, metric, dataset, view, variant, policy, baseline=None) -> np.ndarray | None:
    """Per-seed differences of (variant, policy) minus the baseline (default: `none`) on one data set and
    view, ok records only; None without pairs."""
    base = baseline or {"variant": BASELINE}
    sel = {"dataset": dataset, "view": view, "variant": variant, "policy": policy}
    d = stats.paired_differences(df[df["status"] == "ok"], metric, sel, {"dataset": dataset, "view": view, **base},
                                 pair_on=("dataset", "view", "seed", "setting"))  # never across settings
    return None if d.empty else d["diff"].to_numpy()


@dataclass(frozen=True)
class Compared:
    """One comparison with `none`: its own paired summary and its decision within the section's family."""

    summary: stats.PairedSummary
    decision: stats.Decision


def _section_comparisons(df, metric, dataset, view, combos, seed) -> tuple[dict, list[np.ndarray]]:
    """Every (variant, policy) of one section (one data set and view) against `none`, Holm-adjusted as one
    family. Returns ``{(variant, policy): Compared}`` and the paired differences (for the power note)."""
    diffs = {}
    for variant, policy in combos:
        if variant != BASELINE:
            d = _paired_diffs(df, metric, dataset, view, variant, policy)
            if d is not None:
                diffs[(variant, policy)] = d
    decisions = stats.decide_section(diffs)
    compared = {k: Compared(stats.paired_summary(d, seed=seed), decisions[k]) for k, d in diffs.items()}
    return compared, list(diffs.values())


PAIRED_DISPLAY = ("paired ΔF1 [CI]", "CI level", "pairs", "t-test p", "Holm p", "sign-flip p", "verdict")


def level_text(level: float) -> str:
    return DASH if stats.is_missing(level) else f"{100 * level:.1f}%"


def _paired_display(c: Compared | None) -> dict[str, str]:
    """The statistics columns of a Table 2/4 row ('-' for the baseline and for cells without pairs)."""
    if c is None:
        return dict.fromkeys(PAIRED_DISPLAY, DASH)
    s, dec = c.summary, c.decision
    return {"paired ΔF1 [CI]": f"{signed_pct(s.mean_diff)} {interval(dec.ci_low, dec.ci_high, signed=True)}",
            "CI level": level_text(dec.ci_level), "pairs": str(s.n_pairs), "t-test p": pval(s.p),
            "Holm p": pval(dec.p_holm), "sign-flip p": pval(s.p_signflip), "verdict": dec.verdict}


def _paired_data(c: Compared | None) -> dict[str, object]:
    """The statistics of a row as numbers for the CSV (NaN / 0 / None without pairs): ``paired_ci_*`` is the
    unadjusted 95% t-interval, ``paired_adj_ci_*`` the Holm-consistent one at ``paired_ci_level``."""
    s, dec = (c.summary, c.decision) if c else (None, None)
    nan = math.nan
    return {"paired_diff": s.mean_diff if s else nan, "paired_sd": s.sd_diff if s else nan,
            "paired_ci_low": s.ci_low if s else nan, "paired_ci_high": s.ci_high if s else nan,
            "pairs": s.n_pairs if s else 0, "test": s.test if s else None, "t_stat": s.statistic if s else nan,
            "p": s.p if s else nan, "p_holm": dec.p_holm if dec else nan,
            "p_signflip": s.p_signflip if s else nan, "paired_ci_level": dec.ci_level if dec else nan,
            "paired_adj_ci_low": dec.ci_low if dec else nan, "paired_adj_ci_high": dec.ci_high if dec else nan,
            "verdict": dec.verdict if dec else None}


@dataclass(frozen=True)
class SectionPower:
    """What one section's seeds can detect: the pooled SD of its paired differences (all comparisons with
    `none`), the typical number of pairs, the minimum detectable difference there (80% power, two-sided
    paired t at 0.05, unadjusted) and the seeds a 1- and a 2-point effect would need."""

    sd_diff: float
    df: int
    pairs: int
    mdd: float
    seeds_1pt: int | None
    seeds_2pt: int | None


def section_power(diffs: Sequence[np.ndarray]) -> SectionPower:
    """Power summary of a section; 'pairs' is the most common number of pairs among its comparisons with 2
    or more pairs (ties: the smaller)."""
    sd, df = stats.pooled_sd(diffs)
    counts = [len(d) for d in diffs if len(d) >= 2]
    pairs = min(set(counts), key=lambda c: (-counts.count(c), c)) if counts else 0
    return SectionPower(sd, df, pairs, stats.min_detectable_difference(sd, pairs),
                        stats.seeds_needed(sd, 0.01), stats.seeds_needed(sd, 0.02))


def _seeds_text(n: int | None) -> str:
    return "over a million" if n is None else str(n)  # None with a valid SD: beyond seeds_needed's max_n


def power_note(label: str, p: SectionPower) -> str:
    if stats.is_missing(p.mdd):
        return (f"Power, {label}: not computed (no comparison with `none` has 2 or more pairs with spread).")
    return (f"Power, {label}: pooled SD of the paired differences {pct(p.sd_diff)} points (df {p.df}); with "
            f"{p.pairs} pairs a two-sided paired t-test at 0.05 (unadjusted) has 80% power for a true paired "
            f"difference of {pct(p.mdd)} points; 1 point would need {_seeds_text(p.seeds_1pt)} seeds, "
            f"2 points {_seeds_text(p.seeds_2pt)}.")


def _power_data(p: SectionPower) -> dict[str, object]:
    return {"section_sd_diff": p.sd_diff, "section_pairs": p.pairs, "section_mdd": p.mdd,
            "section_seeds_1pt": p.seeds_1pt, "section_seeds_2pt": p.seeds_2pt}


# ---------------------------------------------------------------- Table 2 / Table 4 (one view per section)


def _per_view_table(df: pd.DataFrame, name: str, title: str, variants_filter, n_boot: int, seed: int,
                    extra_baseline: str | None = None) -> Table:
    df = with_variants(df)
    disp_rows, data_rows, power_notes = [], [], []
    groups = df[variants_filter(df)].groupby(["dataset", "view"], sort=False)
    keys = sorted(groups.groups.keys(), key=lambda k: (str(k[0]), _view_sort(k[1])))
    for dataset, view in keys:
        g = groups.get_group((dataset, view))
        dv = df[(df["dataset"] == dataset) & (df["view"] == view) & (df["status"] == "ok")]
        combos = sorted({(v, p) for v, p in zip(g["variant"], g["policy"])}, key=lambda t: _order_key(*t))
        base_cell = cell(df[(df["dataset"] == dataset) & (df["view"] == view) & (df["variant"] == BASELINE)],
                         "macro_f1", n_boot, seed)
        compared, section_diffs = _section_comparisons(dv, "macro_f1", dataset, view, combos, seed)
        power = section_power(section_diffs)
        power_notes.append(power_note(f"{dataset} / {view}", power))
        for variant, policy in combos:
            rows = g[(g["variant"] == variant) & (g["policy"] == policy)]
            f1, acc = cell(rows, "macro_f1", n_boot, seed), cell(rows, "accuracy", n_boot, seed)
            is_base = variant == BASELINE
            ps = None if is_base or f1.status != "ok" else compared.get((variant, policy))
            delta = (f1.summary.mean - base_cell.summary.mean
                     if f1.status == "ok" and base_cell.status == "ok" and not is_base else math.nan)
            drow = {"dataset": dataset, "view": view, "method": variant, "policy": policy,
                    "n": str(f1.summary.n) if f1.status == "ok" else DASH,
                    "macro-F1": f1.text(), "F1 95% CI": interval(f1.summary.ci_low, f1.summary.ci_high)
                    if f1.status == "ok" else DASH,
                    "accuracy": "unavailable" if acc.status == "unavailable" else acc.text(), "ΔF1": "(ref)" if is_base else signed_pct(delta),
                    **_paired_display(ps)}
            nrow = {"dataset": dataset, "view": view, "method": variant, "policy": policy, "status": f1.status,
                    "reason": f1.reason, "n": f1.summary.n if f1.summary else 0, "n_failed": f1.n_failed,
                    "f1_mean": f1.summary.mean if f1.summary else math.nan,
                    "f1_std": f1.summary.std if f1.summary else math.nan,
                    "f1_ci_low": f1.summary.ci_low if f1.summary else math.nan,
                    "f1_ci_high": f1.summary.ci_high if f1.summary else math.nan,
                    "acc_mean": acc.summary.mean if acc.summary else math.nan,
                    "acc_std": acc.summary.std if acc.summary else math.nan,
                    "acc_ci_low": acc.summary.ci_low if acc.summary else math.nan,
                    "acc_ci_high": acc.summary.ci_high if acc.summary else math.nan,
                    "delta_f1": delta, **_paired_data(ps), **_power_data(power)}
            if extra_baseline:
                pf = None
                if variant != extra_baseline and f1.status == "ok":
                    d = _paired_diffs(dv, "macro_f1", dataset, view, variant, policy,
                                      baseline={"variant": extra_baseline, "policy": policy})
                    pf = None if d is None else stats.paired_summary(d, seed=seed)
                drow[f"paired ΔF1 vs {extra_baseline} [95% CI]"] = (
                    "(ref)" if variant == extra_baseline else DASH if pf is None else
                    f"{signed_pct(pf.mean_diff)} {interval(pf.ci_low, pf.ci_high, signed=True)}")
                nrow[f"paired_diff_vs_{extra_baseline}"] = pf.mean_diff if pf else math.nan
                nrow[f"paired_ci_low_vs_{extra_baseline}"] = pf.ci_low if pf else math.nan
                nrow[f"paired_ci_high_vs_{extra_baseline}"] = pf.ci_high if pf else math.nan
                nrow[f"p_vs_{extra_baseline}"] = pf.p if pf else math.nan
            disp_rows.append(drow)
            data_rows.append(nrow)
    display, data = pd.DataFrame(disp_rows), pd.DataFrame(data_rows)
    notes = []
    if len(display):
        notes = _common_notes() + _extra_baseline_notes(extra_baseline) + power_notes \
            + _status_notes(df[variants_filter(df)])
    return Table(name, title, display, data, section=["dataset", "view"], notes=notes)


def _extra_baseline_notes(extra_baseline: str | None) -> list[str]:
    if not extra_baseline:
        return []
    return [f"paired ΔF1 vs {extra_baseline}: the same pairing against `{extra_baseline}` (same policy) with "
            "its 95% t-interval, unadjusted and without a verdict; p-values in the CSV."]


def table2(df: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOT, seed: int = stats.DEFAULT_SEED) -> Table:
    """Table 2: per data set and fraction view, every method x policy (ablation variants go to Table 4)."""
    def keep(d):
        return d["fraction"].notna() & ~ablation_rows(d)
    return _per_view_table(df, "table2", "Table 2: macro-F1 and accuracy per data set (fraction views)",
                           keep, n_boot, seed)


def table4(df: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOT, seed: int = stats.DEFAULT_SEED) -> Table:
    """Table 4: the variants of a method family (registered ablations such as DiffusionCLS's, and
    parameterised configurations) with the family's own method and `none` as references; the paired
    difference against the family's method too (when the table holds one family)."""
    abl = ablation_rows(df)
    if not abl.any():
        return Table("table4", "Table 4: ablations", pd.DataFrame(), pd.DataFrame())
    pairs = set(zip(df.loc[abl, "dataset"], df.loc[abl, "view"]))
    families = sorted(set(df.loc[abl, "family"]))

    def keep(d):
        in_pair = pd.Series([(a, b) in pairs for a, b in zip(d["dataset"], d["view"])], index=d.index)
        return in_pair & (d["method"].isin((BASELINE, *families)) | ablation_rows(d))
    return _per_view_table(df, "table4", f"Table 4: ablations of {', '.join(families)} (macro-F1)", keep,
                           n_boot, seed, extra_baseline=families[0] if len(families) == 1 else None)


# ---------------------------------------------------------------- Table 9 / Table 3 (views as columns)


def _views_as_columns(df: pd.DataFrame, name: str, title: str, view_mask, metric: str, n_boot: int,
                      seed: int) -> Table:
    df = with_variants(df)
    sub = df[view_mask(df)]
    sub = sub[ablation_mask(sub, "dataset", "view")]
    if sub.empty:
        return Table(name, title, pd.DataFrame(), pd.DataFrame())
    views = sorted(sub["view"].unique(), key=_view_sort)
    disp_rows, data_rows, power_notes = [], [], []
    for dataset in sorted(sub["dataset"].unique(), key=str):
        g = sub[sub["dataset"] == dataset]
        combos = sorted({(v, p) for v, p in zip(g["variant"], g["policy"])}, key=lambda t: _order_key(*t))
        compared, power = {}, {}
        for view in views:  # one Holm family per data set and view
            dv = df[(df["dataset"] == dataset) & (df["view"] == view) & (df["status"] == "ok")]
            compared[view], section_diffs = _section_comparisons(dv, metric, dataset, view, combos, seed)
            power[view] = section_power(section_diffs)
            if section_diffs:
                power_notes.append(power_note(f"{dataset} / {view}", power[view]))
        for variant, policy in combos:
            drow = {"dataset": dataset, "method": variant, "policy": policy}
            for view in views:
                rows = g[(g["variant"] == variant) & (g["policy"] == policy) & (g["view"] == view)]
                c = cell(rows, metric, n_boot, seed)
                base = cell(g[(g["variant"] == BASELINE) & (g["view"] == view)], metric, n_boot, seed)
                is_base = variant == BASELINE
                delta = (c.summary.mean - base.summary.mean
                         if c.status == "ok" and base.status == "ok" and not is_base else math.nan)
                ps = None if is_base or c.status != "ok" else compared[view].get((variant, policy))
                t = c.text()
                if c.status == "ok":
                    t += f" (n={c.summary.n}"
                    t += ")" if is_base else f", Δ {signed_pct(delta)})"
                drow[view] = t
                data_rows.append({"dataset": dataset, "method": variant, "policy": policy, "view": view,
                                  "status": c.status, "reason": c.reason, "n": c.summary.n if c.summary else 0,
                                  "n_failed": c.n_failed,
                                  "mean": c.summary.mean if c.summary else math.nan,
                                  "std": c.summary.std if c.summary else math.nan,
                                  "ci_low": c.summary.ci_low if c.summary else math.nan,
                                  "ci_high": c.summary.ci_high if c.summary else math.nan,
                                  "delta": delta, **_paired_data(ps), **_power_data(power[view])})
            disp_rows.append(drow)
    notes = [f"{METRIC_NAMES[metric]} in percent, mean ± sample std (ddof=1) over n seeds; "
             "Δ = difference of means against `none` of the same data set and view. The paired statistics "
             "against `none` are in the CSV, computed as in Table 2: paired t-test, Holm across the comparisons "
             "of each data set and view, the Holm-consistent t-interval (paired_adj_ci_*, at paired_ci_level; "
             "paired_ci_* is the unadjusted 95% t-interval), sign-flip p from "
             f"{stats.SIGN_FLIP_MIN_PAIRS} pairs on, verdict.", *power_notes, *_status_notes(sub)]
    return Table(name, title, pd.DataFrame(disp_rows), pd.DataFrame(data_rows), section=["dataset"], notes=notes)


def table9(df: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOT, seed: int = stats.DEFAULT_SEED) -> Table:
    """Table 9: macro-F1 for each train fraction, every method against `none`."""
    return _views_as_columns(df, "table9", "Table 9: macro-F1 by fraction of the train split",
                             lambda d: d["fraction"].notna(), "macro_f1", n_boot, seed)


def table3(df: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOT, seed: int = stats.DEFAULT_SEED) -> Table:
    """Table 3: k-shot accuracy (views such as `5shot`, `10shot`)."""
    return _views_as_columns(df, "table3", "Table 3: k-shot accuracy", lambda d: d["shots"].notna(),
                             "accuracy", n_boot, seed)


def table3_f1(df: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOT, seed: int = stats.DEFAULT_SEED) -> Table:
    """Table 3 in macro-F1: the paper reports k-shot accuracy only; macro-F1 is the suite's metric
    everywhere else and tells a classifier that predicts mostly one class from one that separates them."""
    return _views_as_columns(df, "table3_f1", "Table 3, macro-F1: k-shot macro-F1 (the paper reports accuracy)",
                             lambda d: d["shots"].notna(), "macro_f1", n_boot, seed)


# ---------------------------------------------------------------- aggregate over data sets (rliable)


def aggregate(df: pd.DataFrame, metric: str = "macro_f1", n_boot: int = stats.DEFAULT_BOOT,
              seed: int = stats.DEFAULT_SEED) -> Table:
    """Per view, across data sets (tasks): IQM of the metric and the probability of improving on `none`,
    both with stratified bootstrap 95% CIs (rliable's definitions)."""
    df = with_variants(df)
    ok = df[(df["status"] == "ok") & df[metric].notna()]
    ok = ok[ablation_mask(ok, "view", "dataset")]
    disp_rows, data_rows = [], []
    for view in sorted(ok["view"].unique(), key=_view_sort):
        v = ok[ok["view"] == view]
        datasets = sorted(v["dataset"].unique(), key=str)
        combos = sorted({(a, b) for a, b in zip(v["variant"], v["policy"])}, key=lambda t: _order_key(*t))
        base_tasks = {d: v[(v["dataset"] == d) & (v["variant"] == BASELINE)][metric].to_numpy() for d in datasets}
        for variant, policy in combos:
            m = v[(v["variant"] == variant) & (v["policy"] == policy)]
            tasks = {d: m[m["dataset"] == d][metric].to_numpy() for d in datasets}
            tasks = {d: a for d, a in tasks.items() if a.size}
            point, lo, hi = stats.iqm_with_ci(list(tasks.values()), n_boot=n_boot, seed=seed)
            common = [d for d in tasks if base_tasks.get(d, np.array([])).size]
            if variant != BASELINE and common:
                poi, plo, phi = stats.poi_with_ci([tasks[d] for d in common], [base_tasks[d] for d in common],
                                                  n_boot=n_boot, seed=seed)
            else:
                poi = plo = phi = math.nan
            disp_rows.append({"view": view, "method": variant, "policy": policy, "tasks": str(len(tasks)),
                              "runs": str(int(sum(a.size for a in tasks.values()))),
                              f"IQM {METRIC_NAMES[metric]} [95% CI]": f"{pct(point)} {interval(lo, hi)}",
                              "P(improve over none) [95% CI]": "(ref)" if variant == BASELINE else (
                                  DASH if math.isnan(poi) else
                                  f"{poi:.2f} " + (DASH if math.isnan(plo) else f"[{plo:.2f}, {phi:.2f}]"))})
            data_rows.append({"view": view, "method": variant, "policy": policy, "tasks": len(tasks),
                              "iqm": point, "iqm_ci_low": lo, "iqm_ci_high": hi, "poi": poi,
                              "poi_ci_low": plo, "poi_ci_high": phi, "poi_tasks": len(common)})
    notes = ["Tasks = data sets of the view; runs = seeds. IQM = mean of the middle 50% of all runs of all "
             "tasks; P(improve) = per task the probability that a run of the method beats a run of `none` "
             "(ties 1/2), averaged over tasks; 95% CIs: percentile intervals of a stratified bootstrap (runs "
             "resampled within each task; scipy.stats.bootstrap, seeded), '-' unless every task has 3 or more "
             "runs (of the method and of `none`). Failed and unavailable records are excluded."]
    return Table("aggregate", f"Aggregate over data sets ({METRIC_NAMES[metric]})", pd.DataFrame(disp_rows),
                 pd.DataFrame(data_rows), section=["view"], notes=notes)


def costs(df: pd.DataFrame) -> Table:
    """What each cell cost and produced (ok records): mean seconds per stage, pseudo samples produced and
    the share identical to their parent."""
    d = with_variants(df[df["status"] == "ok"])
    title = "Cost and output per cell (means over ok records)"
    if d.empty:
        return Table("costs", title, pd.DataFrame(), pd.DataFrame())
    keys = ["dataset", "view", "variant", "policy"]
    d = d.copy()
    # throughput per record: pseudo samples over the seconds spent making them (fit + augment; a
    # method without a fit stage counts 0 s for it); undefined below 0.05 s (rule-based methods)
    gen_s = d["time_fit"].fillna(0.0) + d["time_augment"].fillna(0.0)
    d["samples_per_s"] = (d["n_synthetic"] / gen_s).where((gen_s >= 0.05) & (d["n_synthetic"] > 0))
    g = d.groupby(keys, sort=False)
    data = g.agg(records=("seed", "size"), augment_s=("time_augment", "mean"), fit_s=("time_fit", "mean"),
                 train_s=("time_train", "mean"), total_s=("time_total", "mean"),
                 synthetic=("n_synthetic", "mean"), identical=("identical_to_parent", "mean"),
                 samples_per_s=("samples_per_s", "mean")).reset_index()
    data["identical_share"] = data["identical"] / data["synthetic"].where(data["synthetic"] > 0)
    data = data.rename(columns={"variant": "method"})
    data = data.iloc[sorted(range(len(data)), key=lambda i: (str(data["dataset"].iloc[i]),
                                                            _view_sort(data["view"].iloc[i]),
                                                            _order_key(data["method"].iloc[i], data["policy"].iloc[i])))]

    def sec(x):
        return DASH if pd.isna(x) else f"{x:.1f}"
    disp = pd.DataFrame({"dataset": data["dataset"], "view": data["view"], "method": data["method"],
                         "policy": data["policy"], "records": data["records"].astype(str),
                         "fit s": data["fit_s"].map(sec), "augment s": data["augment_s"].map(sec),
                         "train s": data["train_s"].map(sec), "total s": data["total_s"].map(sec),
                         "pseudo samples": data["synthetic"].map(lambda x: DASH if pd.isna(x) else f"{x:.0f}"),
                         "samples/s": data["samples_per_s"].map(
                             lambda x: DASH if pd.isna(x) else f"{x:.0f}" if x >= 100 else f"{x:.2f}"),
                         "identical to parent": data["identical_share"].map(
                             lambda x: DASH if pd.isna(x) else f"{100 * x:.1f}%")}).reset_index(drop=True)
    return Table("costs", title, disp, data.reset_index(drop=True), section=["dataset", "view"],
                 notes=["Seconds from the records' timings; pseudo samples = counts.synthetic_produced; samples/s "
                        "= produced / (fit s + augment s) per record, then the mean (a dash where that is under "
                        "0.05 s); identical to parent = counts.identical_to_parent / produced. A cell whose "
                        "pseudo samples came from the run's cache reports the timings of the run that made them. "
                        "genius and genius-f share their generations (same seed): whichever ran first paid "
                        "for sampling, the other only for loading and filtering (method_stats.samples_from_cache "
                        "says which)."])


def all_tables(df: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOT, seed: int = stats.DEFAULT_SEED) -> list[Table]:
    t2, t3, t4 = table2(df, n_boot, seed), table3(df, n_boot, seed), table4(df, n_boot, seed)
    t3f = table3_f1(df, n_boot, seed)
    return [t2, table9(df, n_boot, seed), t3, t3f, t4, aggregate(df, "macro_f1", n_boot, seed), costs(df),
            summary([t2, t3, t3f, t4])]


# ---------------------------------------------------------------- the answer: where augmentation helps

SUMMARY_SOURCES = {"table2": ("macro-F1", "f1_mean", "f1_std"), "table3": ("accuracy", "mean", "std"),
                   "table3_f1": ("macro-F1", "mean", "std"), "table4": ("macro-F1", "f1_mean", "f1_std")}


def _table_label(name: str) -> str:
    """'table3_f1' -> 'Table 3' (the metric has its own column of the summary)."""
    return "Table " + name.removeprefix("table").split("_")[0]


def _verdict_list(rows: pd.DataFrame) -> str:
    """``method Δ [CI]`` for each row, largest difference first (the Holm-consistent interval)."""
    if rows.empty:
        return DASH
    rows = rows.sort_values("paired_diff", ascending=False)
    return "; ".join(f"{m} {signed_pct(d)} {interval(lo, hi, signed=True)}" for m, d, lo, hi in
                     zip(rows["method"], rows["paired_diff"], rows["paired_adj_ci_low"], rows["paired_adj_ci_high"]))


def summary(tables: Sequence[Table]) -> Table:
    """Per data set, view and table: which methods beat `none` (verdict 'better': the Holm-consistent
    interval above 0), which are worse, how many show no evidence either way, what difference the seeds
    could detect, and the paper's numbers for the same cell. Verdicts are the tables' own (each table is
    its own Holm family), so this table never disagrees with them."""
    disp, data = [], []
    for t in tables:
        if t.name not in SUMMARY_SOURCES or t.data.empty or "verdict" not in t.data:
            continue
        metric, mean_col, std_col = SUMMARY_SOURCES[t.name]
        d = t.data[t.data["status"] == "ok"]
        for (dataset, view), g in d.groupby(["dataset", "view"], sort=False):
            base = g[g["method"] == BASELINE]
            others = g[(g["method"] != BASELINE) & (g["pairs"] > 0)]
            if base.empty or others.empty:
                continue
            b = base.iloc[0]
            better, worse = others[others["verdict"] == "better"], others[others["verdict"] == "worse"]
            none_ev = others[others["verdict"] == "no evidence"]
            mdd = g["section_mdd"].dropna()
            data.append({"dataset": dataset, "view": view, "table": t.name, "metric": metric,
                         "none_mean": b[mean_col], "none_std": b[std_col], "none_n": int(b["n"]),
                         "better": ";".join(better["method"]), "worse": ";".join(worse["method"]),
                         "no_evidence": ";".join(none_ev["method"]), "compared": len(others),
                         "section_mdd": float(mdd.iloc[0]) if len(mdd) else math.nan,
                         "paper": paper_text(dataset, view)})
            disp.append({"dataset": dataset, "view": view, "table": _table_label(t.name),
                         "metric": metric, "none": f"{mean_pm(b[mean_col], b[std_col])} (n={int(b['n'])})",
                         "better than none": _verdict_list(better), "worse than none": _verdict_list(worse),
                         "no evidence": f"{len(none_ev)} of {len(others)}",
                         "detectable at 80% power": DASH if not len(mdd) or stats.is_missing(mdd.iloc[0])
                         else f"{pct(mdd.iloc[0])} points",
                         "paper, same cell": paper_text(dataset, view)})
    notes = ["Verdicts are those of the table named (paired t-test against `none` on the same seeds, Holm across "
             "the table's comparisons of that data set and view); the differences are paired, in points, with "
             "the Holm-consistent interval. 'No evidence' is not evidence of no effect: compare the detectable "
             "difference. The paper's numbers come from its GPU runs with hub backbones and one number per cell; "
             "its SST-2 cells are matched with Rotten Tomatoes sentences (SST-2's source)."] if disp else []
    return Table("summary", "Where augmentation helps: verdicts against `none`", pd.DataFrame(disp),
                 pd.DataFrame(data), notes=notes)


# ---------------------------------------------------------------- rendering


def _md_escape(s: object) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _md_grid(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| " + " | ".join(_md_escape(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in frame.iterrows():
        lines.append("| " + " | ".join(_md_escape(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def _sections(table: Table):
    if not table.section:
        yield None, table.display
        return
    seen = []
    for key in zip(*(table.display[c] for c in table.section)):
        if key not in seen:
            seen.append(key)
    for key in seen:
        m = pd.Series(True, index=table.display.index)
        for c, v in zip(table.section, key):
            m &= table.display[c] == v
        yield key, table.display.loc[m].drop(columns=table.section)


def to_markdown(table: Table, heading_level: int = 2) -> str:
    h = "#" * heading_level
    out = [f"{h} {table.title}", ""]
    if table.empty:
        out += ["_No records for this table in this run._", ""]
        return "\n".join(out)
    for key, frame in _sections(table):
        if key is not None:
            out += [f"{h}# " + " / ".join(str(k) for k in key), ""]
        out += [_md_grid(frame), ""]
    if table.notes:
        out += ["Notes:", ""] + [f"- {n}" for n in table.notes] + [""]
    return "\n".join(out)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "±": r"$\pm$", "Δ": r"$\Delta$", "≥": r"$\geq$"}


def latex_escape(s: object) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s))


def to_latex(table: Table) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); sections become \\midrule-separated blocks."""
    if table.empty:
        return f"% {latex_escape(table.title)}: no records in this run\n"
    cols = list(table.display.columns)
    out = [f"% {table.title}", "\\begin{tabular}{" + "l" * len(cols) + "}", "\\toprule",
           " & ".join(latex_escape(c) for c in cols) + r" \\", "\\midrule"]
    prev = None
    for _, r in table.display.iterrows():
        key = tuple(r[c] for c in table.section)
        if prev is not None and key != prev:
            out.append("\\midrule")
        prev = key
        out.append(" & ".join(latex_escape(r[c]) for c in cols) + r" \\")
    out += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(out)


def write_table(table: Table, out_dir, formats: Sequence[str] = ("md", "csv", "tex")) -> list[str]:
    """Write ``<name>.md``, ``<name>.csv`` (the numbers), ``<name>.tex``; returns the file names."""
    from pathlib import Path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    if "md" in formats:
        (out_dir / f"{table.name}.md").write_text(to_markdown(table), encoding="utf-8")
        written.append(f"{table.name}.md")
    if "csv" in formats:
        table.data.to_csv(out_dir / f"{table.name}.csv", index=False)
        written.append(f"{table.name}.csv")
    if "tex" in formats:
        (out_dir / f"{table.name}.tex").write_text(to_latex(table), encoding="utf-8")
        written.append(f"{table.name}.tex")
    return written
