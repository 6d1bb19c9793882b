"""Tables 2, 3, 4 and 9 of the paper (plus an rliable-style aggregate), drawn from the long DataFrame.

Every table is a :class:`Table`: display strings (Markdown, LaTeX) and the numbers behind them (CSV).
Scores are shown in percent; ``mean ± sample std (ddof=1)`` with the number of seeds ``n``; a 95%
seeded bootstrap interval; the paired difference against ``none`` on identical splits (data set, view,
seed) with its bootstrap interval and a paired test. Cells whose records are all ``unavailable`` show
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
    from bench.report.load import _view_numbers

    f, s = _view_numbers(view)
    return (s is not None, f if f is not None else (s if s is not None else math.inf), str(view))


# ---------------------------------------------------------------- cells


def with_variants(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``variant``: the method name, plus ``[step_group=g]`` when one data set/view/method/policy
    holds records with several step groups (a step sweep), so a table never mixes them."""
    df = df.copy()
    df["variant"] = df["method"].astype(str)
    if "step_group" in df and df["step_group"].notna().any():
        keys = ["dataset", "view", "method", "policy"]
        n_groups = df.groupby(keys)["step_group"].transform(lambda s: s.dropna().nunique())
        sweep = (n_groups > 1) & df["step_group"].notna()
        df.loc[sweep, "variant"] = [f"{m} [step_group={g:g}]" for m, g in zip(df.loc[sweep, "method"],
                                                                             df.loc[sweep, "step_group"])]
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
    return notes


def _common_notes() -> list[str]:
    return [
        "Scores in percent: mean ± sample std (ddof=1) over seeds; n = seeds with a result; "
        "'-' where a statistic needs 2 or more seeds.",
        "95% CI: percentile bootstrap over seeds (seeded, reproducible).",
        "ΔF1: mean F1 minus the mean F1 of `none` (policy '-') of the same data set and view. "
        "Paired ΔF1: mean of the per-seed differences against `none` on identical splits (same data set, view "
        "and seed; 'pairs' = seeds present on both sides) with its bootstrap 95% CI; "
        "test: Wilcoxon signed-rank when pairs >= 5, paired t-test when 2 <= pairs < 5, none with 1 pair.",
    ]


def _paired(df, metric, dataset, view, variant, policy, n_boot, seed, baseline=None, ok_only=False):
    """Paired summary of (variant, policy) minus the baseline (default: `none`) on one data set and view."""
    base = baseline or {"variant": BASELINE}
    sel = {"dataset": dataset, "view": view, "variant": variant, "policy": policy}
    d = stats.paired_differences(df if ok_only else df[df["status"] == "ok"], metric, sel,
                                 {"dataset": dataset, "view": view, **base})
    if d.empty:
        return None
    return stats.paired_summary(d["diff"], n_boot=n_boot, seed=seed)


# ---------------------------------------------------------------- Table 2 / Table 4 (one view per section)


def _per_view_table(df: pd.DataFrame, name: str, title: str, variants_filter, n_boot: int, seed: int,
                    extra_baseline: str | None = None) -> Table:
    df = with_variants(df)
    disp_rows, data_rows = [], []
    groups = df[variants_filter(df)].groupby(["dataset", "view"], sort=False)
    keys = sorted(groups.groups.keys(), key=lambda k: (str(k[0]), _view_sort(k[1])))
    for dataset, view in keys:
        g = groups.get_group((dataset, view))
        dv = df[(df["dataset"] == dataset) & (df["view"] == view) & (df["status"] == "ok")]
        combos = sorted({(v, p) for v, p in zip(g["variant"], g["policy"])}, key=lambda t: _order_key(*t))
        base_cell = cell(df[(df["dataset"] == dataset) & (df["view"] == view) & (df["variant"] == BASELINE)],
                         "macro_f1", n_boot, seed)
        for variant, policy in combos:
            rows = g[(g["variant"] == variant) & (g["policy"] == policy)]
            f1, acc = cell(rows, "macro_f1", n_boot, seed), cell(rows, "accuracy", n_boot, seed)
            is_base = variant == BASELINE
            ps = None if is_base or f1.status != "ok" else _paired(dv, "macro_f1", dataset, view, variant, policy,
                                                                   n_boot, seed, ok_only=True)
            delta = (f1.summary.mean - base_cell.summary.mean
                     if f1.status == "ok" and base_cell.status == "ok" and not is_base else math.nan)
            drow = {"dataset": dataset, "view": view, "method": variant, "policy": policy,
                    "n": str(f1.summary.n) if f1.status == "ok" else DASH,
                    "macro-F1": f1.text(), "F1 95% CI": interval(f1.summary.ci_low, f1.summary.ci_high)
                    if f1.status == "ok" else DASH,
                    "accuracy": "unavailable" if acc.status == "unavailable" else acc.text(), "ΔF1": "(ref)" if is_base else signed_pct(delta),
                    "paired ΔF1 [95% CI]": DASH if ps is None else
                    f"{signed_pct(ps.mean_diff)} {interval(ps.ci_low, ps.ci_high, signed=True)}",
                    "pairs": DASH if ps is None else str(ps.n_pairs),
                    "test (p)": DASH if ps is None or ps.test is None else f"{ps.test} ({pval(ps.p)})"}
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
                    "delta_f1": delta,
                    "paired_diff": ps.mean_diff if ps else math.nan,
                    "paired_ci_low": ps.ci_low if ps else math.nan, "paired_ci_high": ps.ci_high if ps else math.nan,
                    "pairs": ps.n_pairs if ps else 0, "test": ps.test if ps else None,
                    "p": ps.p if ps else math.nan}
            if extra_baseline:
                pf = None
                if variant != extra_baseline and f1.status == "ok":
                    pf = _paired(dv, "macro_f1", dataset, view, variant, policy, n_boot, seed,
                                 baseline={"variant": extra_baseline, "policy": policy}, ok_only=True)
                drow[f"paired ΔF1 vs {extra_baseline}"] = ("(ref)" if variant == extra_baseline else DASH
                                                            if pf is None else
                                                            f"{signed_pct(pf.mean_diff)} "
                                                            f"{interval(pf.ci_low, pf.ci_high, signed=True)}")
                nrow[f"paired_diff_vs_{extra_baseline}"] = pf.mean_diff if pf else math.nan
            disp_rows.append(drow)
            data_rows.append(nrow)
    display, data = pd.DataFrame(disp_rows), pd.DataFrame(data_rows)
    notes = _common_notes() + _status_notes(df[variants_filter(df)]) if len(display) else []
    return Table(name, title, display, data, section=["dataset", "view"], notes=notes)


def table2(df: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOT, seed: int = stats.DEFAULT_SEED) -> Table:
    """Table 2: per data set and fraction view, every method x policy (ablation variants go to Table 4)."""
    def keep(d):
        return d["fraction"].notna() & ~ablation_rows(d)
    return _per_view_table(df, "table2", "Table 2: macro-F1 and accuracy per data set (fraction views)",
                           keep, n_boot, seed)


def table4(df: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOT, seed: int = stats.DEFAULT_SEED) -> Table:
    """Table 4: DiffusionCLS ablations (and `none` as the reference), with the paired difference against
    the full method too."""
    abl = ablation_rows(df)
    if not abl.any():
        return Table("table4", "Table 4: DiffusionCLS ablations", pd.DataFrame(), pd.DataFrame())
    pairs = set(zip(df.loc[abl, "dataset"], df.loc[abl, "view"]))

    def keep(d):
        in_pair = pd.Series([(a, b) in pairs for a, b in zip(d["dataset"], d["view"])], index=d.index)
        return in_pair & (d["method"].isin((BASELINE, "diffusioncls")) | ablation_rows(d))
    return _per_view_table(df, "table4", "Table 4: DiffusionCLS ablations (macro-F1)", keep, n_boot, seed,
                           extra_baseline="diffusioncls")


# ---------------------------------------------------------------- Table 9 / Table 3 (views as columns)


def _views_as_columns(df: pd.DataFrame, name: str, title: str, view_mask, metric: str, n_boot: int,
                      seed: int) -> Table:
    df = with_variants(df)
    sub = df[view_mask(df)]
    sub = sub[ablation_mask(sub, "dataset", "view")]
    if sub.empty:
        return Table(name, title, pd.DataFrame(), pd.DataFrame())
    views = sorted(sub["view"].unique(), key=_view_sort)
    disp_rows, data_rows = [], []
    for dataset in sorted(sub["dataset"].unique(), key=str):
        g = sub[sub["dataset"] == dataset]
        combos = sorted({(v, p) for v, p in zip(g["variant"], g["policy"])}, key=lambda t: _order_key(*t))
        for variant, policy in combos:
            drow = {"dataset": dataset, "method": variant, "policy": policy}
            for view in views:
                rows = g[(g["variant"] == variant) & (g["policy"] == policy) & (g["view"] == view)]
                c = cell(rows, metric, n_boot, seed)
                base = cell(g[(g["variant"] == BASELINE) & (g["view"] == view)], metric, n_boot, seed)
                is_base = variant == BASELINE
                delta = (c.summary.mean - base.summary.mean
                         if c.status == "ok" and base.status == "ok" and not is_base else math.nan)
                ps = None if is_base or c.status != "ok" else _paired(
                    df[(df["dataset"] == dataset) & (df["view"] == view) & (df["status"] == "ok")], metric,
                    dataset, view, variant, policy, n_boot, seed, ok_only=True)
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
                                  "delta": delta, "paired_diff": ps.mean_diff if ps else math.nan,
                                  "paired_ci_low": ps.ci_low if ps else math.nan,
                                  "paired_ci_high": ps.ci_high if ps else math.nan,
                                  "pairs": ps.n_pairs if ps else 0, "test": ps.test if ps else None,
                                  "p": ps.p if ps else math.nan})
            disp_rows.append(drow)
    notes = [f"{METRIC_NAMES[metric]} in percent, mean ± sample std (ddof=1) over n seeds; "
             "Δ = difference of means against `none` of the same data set and view; "
             "paired intervals and tests are in the CSV.", *_status_notes(sub)]
    return Table(name, title, pd.DataFrame(disp_rows), pd.DataFrame(data_rows), section=["dataset"], notes=notes)


def table9(df: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOT, seed: int = stats.DEFAULT_SEED) -> Table:
    """Table 9: macro-F1 for each train fraction, every method against `none`."""
    return _views_as_columns(df, "table9", "Table 9: macro-F1 by fraction of the train split",
                             lambda d: d["fraction"].notna(), "macro_f1", n_boot, seed)


def table3(df: pd.DataFrame, n_boot: int = stats.DEFAULT_BOOT, seed: int = stats.DEFAULT_SEED) -> Table:
    """Table 3: k-shot accuracy (views such as `5shot`, `10shot`)."""
    return _views_as_columns(df, "table3", "Table 3: k-shot accuracy", lambda d: d["shots"].notna(),
                             "accuracy", n_boot, seed)


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
             "(ties 1/2), averaged over tasks; 95% CIs from a stratified bootstrap (runs resampled within each "
             "task), seeded. Failed and unavailable records are excluded."]
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
    return [table2(df, n_boot, seed), table9(df, n_boot, seed), table3(df, n_boot, seed), table4(df, n_boot, seed),
            aggregate(df, "macro_f1", n_boot, seed), costs(df)]


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
