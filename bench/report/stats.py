"""Statistics as pure functions (rliable style): no I/O, no global random state, seeded resampling.

Conventions: spread is the SAMPLE standard deviation (ddof=1); with fewer than 2 values the std and
every interval are NaN (rendered '-'), never invented. Bootstrap intervals are percentile intervals
from a ``numpy.random.default_rng(seed)``, so the intervals themselves reproduce.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

NAN = float("nan")
DEFAULT_BOOT = 2000
DEFAULT_SEED = 0


def _arr(values) -> np.ndarray:
    a = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=float).ravel()
    return a[~np.isnan(a)]


# ---------------------------------------------------------------- one sample


def mean_std(values) -> tuple[float, float, int]:
    """(mean, sample std with ddof=1, n) of the non-NaN values; std is NaN for n < 2, mean NaN for n = 0."""
    a = _arr(values)
    n = int(a.size)
    if n == 0:
        return NAN, NAN, 0
    return float(a.mean()), (float(a.std(ddof=1)) if n >= 2 else NAN), n


def bootstrap_ci(values, statistic: Callable[[np.ndarray], float] = np.mean, n_boot: int = DEFAULT_BOOT,
                 confidence: float = 0.95, seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over resamples (with replacement) of the values.

    NaN interval for fewer than 2 values (one value says nothing about its spread).
    """
    a = _arr(values)
    if a.size < 2:
        return NAN, NAN
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    stats = np.apply_along_axis(statistic, 1, a[idx]) if statistic is not np.mean else a[idx].mean(axis=1)
    lo, hi = np.quantile(stats, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return float(lo), float(hi)


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float


def summarize(values, n_boot: int = DEFAULT_BOOT, seed: int = DEFAULT_SEED) -> Summary:
    m, s, n = mean_std(values)
    lo, hi = bootstrap_ci(values, n_boot=n_boot, seed=seed)
    return Summary(m, s, n, lo, hi)


# ---------------------------------------------------------------- paired comparisons


def paired_differences(df: pd.DataFrame, metric: str, treatment: Mapping[str, object],
                       baseline: Mapping[str, object], pair_on: Sequence[str] = ("dataset", "view", "seed")
                       ) -> pd.DataFrame:
    """Per-pair differences ``treatment - baseline`` of ``metric`` on identical splits.

    ``treatment`` / ``baseline`` select rows by column equality (e.g. ``{"method": "eda", "policy": "G/E"}``);
    rows are paired on ``pair_on`` (data set, view and seed: the same split). Rows whose metric is NaN
    (failed / unavailable) and seeds present on one side only drop out. Returns the columns ``pair_on``
    plus ``treatment``, ``baseline``, ``diff``, sorted by ``pair_on``.
    """
    def pick(sel):
        m = pd.Series(True, index=df.index)
        for k, v in sel.items():
            m &= df[k] == v
        sub = df.loc[m & df[metric].notna(), [*pair_on, metric]]
        return sub.groupby(list(pair_on), as_index=False)[metric].mean()  # duplicates: one value per pair

    t, b = pick(treatment), pick(baseline)
    out = t.merge(b, on=list(pair_on), suffixes=("_t", "_b"))
    out = out.rename(columns={f"{metric}_t": "treatment", f"{metric}_b": "baseline"})
    out["diff"] = out["treatment"] - out["baseline"]
    return out.sort_values(list(pair_on)).reset_index(drop=True)


def paired_test(diffs) -> dict[str, object]:
    """Test of 'mean paired difference = 0': Wilcoxon signed-rank for n >= 5, paired t-test for 2 <= n < 5.

    Returns ``{"test": name or None, "statistic", "p", "n"}``; with n < 2 (or all differences zero for
    the t-test) there is no test and p is NaN.
    """
    from scipy import stats as st

    d = _arr(diffs)
    n = int(d.size)
    if n < 2:
        return {"test": None, "statistic": NAN, "p": NAN, "n": n}
    if n >= 5:
        if np.all(d == 0):
            return {"test": "wilcoxon", "statistic": 0.0, "p": 1.0, "n": n}
        r = st.wilcoxon(d)
        return {"test": "wilcoxon", "statistic": float(r.statistic), "p": float(r.pvalue), "n": n}
    if np.all(d == d[0]):  # zero variance: the t statistic is undefined
        return {"test": "paired-t", "statistic": NAN, "p": 1.0 if d[0] == 0 else NAN, "n": n}
    r = st.ttest_1samp(d, 0.0)
    return {"test": "paired-t", "statistic": float(r.statistic), "p": float(r.pvalue), "n": n}


@dataclass(frozen=True)
class PairedSummary:
    mean_diff: float
    ci_low: float
    ci_high: float
    n_pairs: int
    test: str | None
    p: float


def paired_summary(diffs, n_boot: int = DEFAULT_BOOT, seed: int = DEFAULT_SEED) -> PairedSummary:
    d = _arr(diffs)
    lo, hi = bootstrap_ci(d, n_boot=n_boot, seed=seed)
    t = paired_test(d)
    return PairedSummary(float(d.mean()) if d.size else NAN, lo, hi, int(d.size), t["test"], t["p"])


# ---------------------------------------------------------------- aggregates over tasks (rliable)


def iqm(values) -> float:
    """Interquartile mean: the mean of the middle 50% of all values (25% trimmed from each end).

    rliable's definition, ``scipy.stats.trim_mean(scores, 0.25)`` on the flattened runs x tasks scores.
    """
    from scipy import stats as st

    a = _arr(values)
    if a.size == 0:
        return NAN
    return float(st.trim_mean(a, proportiontocut=0.25, axis=None))


def probability_of_improvement(x_by_task: Sequence, y_by_task: Sequence) -> float:
    """P(X > Y) as rliable defines it: per task, the Mann-Whitney probability that a run of X beats a run
    of Y (ties count one half), averaged over tasks. ``x_by_task[i]`` / ``y_by_task[i]``: the runs of task i.
    """
    per_task = []
    for xs, ys in zip(x_by_task, y_by_task, strict=True):
        x, y = _arr(xs), _arr(ys)
        if x.size == 0 or y.size == 0:
            continue
        gt = (x[:, None] > y[None, :]).sum()
        eq = (x[:, None] == y[None, :]).sum()
        per_task.append((gt + 0.5 * eq) / (x.size * y.size))
    return float(np.mean(per_task)) if per_task else NAN


def _resample_tasks(tasks: Sequence[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    return [t[rng.integers(0, t.size, size=t.size)] if t.size else t for t in tasks]


def stratified_bootstrap_ci(tasks: Sequence, statistic: Callable[[list[np.ndarray]], float],
                            n_boot: int = DEFAULT_BOOT, confidence: float = 0.95, seed: int = DEFAULT_SEED
                            ) -> tuple[float, float]:
    """rliable's stratified bootstrap: resample the runs WITHIN each task (task = stratum), recompute
    ``statistic(list_of_task_arrays)``; percentile interval. NaN when no task has 2 or more runs."""
    ts = [_arr(t) for t in tasks]
    if not any(t.size >= 2 for t in ts):
        return NAN, NAN
    rng = np.random.default_rng(seed)
    stats = np.array([statistic(_resample_tasks(ts, rng)) for _ in range(n_boot)])
    stats = stats[~np.isnan(stats)]
    if stats.size == 0:
        return NAN, NAN
    lo, hi = np.quantile(stats, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return float(lo), float(hi)


def _stratified_draws(tasks: Sequence[np.ndarray], n_boot: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Per task, an (n_boot, n_runs) matrix of runs resampled with replacement within that task."""
    return [t[rng.integers(0, t.size, size=(n_boot, t.size))] if t.size else np.empty((n_boot, 0)) for t in tasks]


def iqm_with_ci(tasks: Sequence, n_boot: int = DEFAULT_BOOT, confidence: float = 0.95,
                seed: int = DEFAULT_SEED) -> tuple[float, float, float]:
    """IQM of all runs of all tasks, with a stratified bootstrap interval (vectorised; same procedure as
    :func:`stratified_bootstrap_ci` with ``iqm`` of the concatenated runs)."""
    from scipy import stats as st

    ts = [_arr(t) for t in tasks]
    point = iqm(np.concatenate(ts) if ts else [])
    if not any(t.size >= 2 for t in ts):
        return point, NAN, NAN
    rng = np.random.default_rng(seed)
    boot = np.concatenate(_stratified_draws(ts, n_boot, rng), axis=1)
    vals = st.trim_mean(boot, 0.25, axis=1)
    lo, hi = np.quantile(vals, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return point, float(lo), float(hi)


def poi_with_ci(x_by_task: Sequence, y_by_task: Sequence, n_boot: int = DEFAULT_BOOT, confidence: float = 0.95,
                seed: int = DEFAULT_SEED) -> tuple[float, float, float]:
    """Probability of improvement with rliable's stratified bootstrap (the runs of X and of Y resampled
    independently within each task); vectorised."""
    xs = [_arr(t) for t in x_by_task]
    ys = [_arr(t) for t in y_by_task]
    point = probability_of_improvement(xs, ys)
    keep = [(x, y) for x, y in zip(xs, ys) if x.size and y.size]
    if not keep or not any(x.size >= 2 or y.size >= 2 for x, y in keep):
        return point, NAN, NAN
    rng = np.random.default_rng(seed)
    per_task = []
    for x, y in keep:
        bx = x[rng.integers(0, x.size, size=(n_boot, x.size))][:, :, None]
        by = y[rng.integers(0, y.size, size=(n_boot, y.size))][:, None, :]
        per_task.append(((bx > by) + 0.5 * (bx == by)).mean(axis=(1, 2)))
    vals = np.mean(per_task, axis=0)
    lo, hi = np.quantile(vals, [(1 - confidence) / 2, 1 - (1 - confidence) / 2])
    return point, float(lo), float(hi)


def is_missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))
