"""Statistics as pure functions (rliable style): no I/O, no global random state, seeded resampling.

Conventions: scores are fractions in 0..1; spread is the SAMPLE standard deviation (ddof=1); with fewer
than 2 values the std and every interval are NaN (rendered '-'), never invented.

Paired comparisons against a baseline (on identical splits) are judged by the paired t-test and its
t-interval of the mean paired difference; within one table section (one data set and view, every method
compared with ``none``) the p-values are Holm-adjusted, the interval shown beside the verdict is taken at
the confidence level of the Holm step that decided it (:func:`holm_levels`), so that interval and
verdict never disagree. An exact sign-flip permutation test is reported as a distribution-free check
where there are enough pairs for it to reach 0.05 (:func:`min_attainable_p`).

Bootstrap intervals (one method's mean over seeds; IQM and probability of improvement over tasks) come
from ``scipy.stats.bootstrap`` (percentile method) seeded with ``numpy.random.default_rng(seed)``, so
they reproduce. A bootstrap interval needs at least 3 values per resampled group: with 2 values the
percentile interval of their mean is just the two values themselves, which is no interval at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

NAN = float("nan")
DEFAULT_BOOT = 2000
DEFAULT_SEED = 0
ALPHA = 0.05
MIN_BOOT_VALUES = 3  # a bootstrap interval needs this many values per resampled group (see module doc)
SIGN_FLIP_MIN_PAIRS = 6  # with 5 pairs the smallest two-sided sign-flip p is 2/32 = 0.0625 > 0.05
EXACT_SIGN_FLIP_MAX = 16  # enumerate all 2^n sign assignments up to this many pairs (65,536 of them)
MC_SIGN_FLIPS = 20_000  # random sign assignments above that
ZERO_SPREAD = 1e-12  # a sample std at or below this (in score units) counts as no spread at all
VERDICTS = ("better", "worse", "no evidence")


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


def _percentile_bootstrap(samples: Sequence[np.ndarray], statistic, vectorized: bool, n_boot: int,
                          confidence: float, seed: int) -> tuple[float, float]:
    """``scipy.stats.bootstrap`` percentile interval; several samples are resampled independently,
    each within itself (a stratified bootstrap when each sample is one stratum)."""
    from scipy import stats as st

    res = st.bootstrap(tuple(samples), statistic, n_resamples=n_boot, confidence_level=confidence,
                       method="percentile", vectorized=vectorized, axis=-1, rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def bootstrap_ci(values, statistic: Callable[[np.ndarray], float] = np.mean, n_boot: int = DEFAULT_BOOT,
                 confidence: float = 0.95, seed: int = DEFAULT_SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over resamples of the values (``scipy.stats.bootstrap``).

    NaN interval for fewer than 3 values: with 2 values the percentile interval of the mean is the two
    values themselves, which describes the sample, not the uncertainty of its mean.
    """
    a = _arr(values)
    if a.size < MIN_BOOT_VALUES:
        return NAN, NAN
    if statistic is np.mean:
        return _percentile_bootstrap([a], np.mean, True, n_boot, confidence, seed)
    return _percentile_bootstrap([a], lambda x: statistic(x), False, n_boot, confidence, seed)


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float


def summarize(values, n_boot: int = DEFAULT_BOOT, seed: int = DEFAULT_SEED) -> Summary:
    """Mean, sample std, n and the percentile bootstrap interval of the mean (NaN below 3 values)."""
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


def _no_spread(d: np.ndarray) -> bool:
    return bool(d.std(ddof=1) <= ZERO_SPREAD)


def t_interval(diffs, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval ``mean ± t_{n-1, (1+confidence)/2} * sd / sqrt(n)`` of the mean paired difference.

    NaN for fewer than 2 pairs or a NaN confidence. Without spread the t-interval is undefined: all
    differences 0 give [0, 0] (nothing changed), equal non-zero differences give NaN (the same convention
    as :func:`paired_t_test`, so interval and test stay consistent).
    """
    from scipy import stats as st

    d = _arr(diffs)
    n = int(d.size)
    if n < 2 or math.isnan(confidence):
        return NAN, NAN
    if _no_spread(d):
        return (0.0, 0.0) if np.all(d == 0) else (NAN, NAN)
    half = st.t.ppf((1 + confidence) / 2, n - 1) * d.std(ddof=1) / math.sqrt(n)
    return float(d.mean() - half), float(d.mean() + half)


def paired_t_test(diffs) -> tuple[float, float]:
    """Two-sided one-sample t-test of 'mean paired difference = 0': ``(t statistic, p)``.

    NaN for fewer than 2 pairs. Without spread the statistic is undefined: all differences 0 give
    p = 1 (nothing changed), equal non-zero differences give p = NaN (no test; see :func:`t_interval`).
    """
    from scipy import stats as st

    d = _arr(diffs)
    if d.size < 2:
        return NAN, NAN
    if _no_spread(d):
        return NAN, (1.0 if np.all(d == 0) else NAN)
    r = st.ttest_1samp(d, 0.0)
    return float(r.statistic), float(r.pvalue)


def paired_test(diffs) -> dict[str, object]:
    """The paired t-test as a record: ``{"test": "paired-t" or None, "statistic", "p", "n"}``.

    There is no test (``None``, p NaN) with fewer than 2 pairs.
    """
    d = _arr(diffs)
    n = int(d.size)
    if n < 2:
        return {"test": None, "statistic": NAN, "p": NAN, "n": n}
    t, p = paired_t_test(d)
    return {"test": "paired-t", "statistic": t, "p": p, "n": n}


def min_attainable_p(n: int) -> float:
    """Smallest two-sided p-value an exact sign-flip (or exact Wilcoxon signed-rank) test can give with
    ``n`` pairs: only the observed all-one-sign assignment and its mirror image are as extreme, 2 / 2^n.

    n = 5 gives 0.0625, so with 5 pairs neither test can ever reach 0.05; n = 6 gives 0.03125.
    """
    return min(1.0, 2.0 / 2.0 ** max(int(n), 0))


def sign_flip_p(diffs, seed: int = DEFAULT_SEED, n_exact_max: int = EXACT_SIGN_FLIP_MAX,
                n_mc: int = MC_SIGN_FLIPS) -> float:
    """Two-sided sign-flip permutation test of the mean paired difference (``scipy.stats.permutation_test``).

    Under 'no effect' each paired difference is as likely positive as negative, so the p-value is the
    share of sign assignments whose mean is at least as far from 0 as the observed one: exact (all 2^n
    assignments) for n <= ``n_exact_max``, else ``n_mc`` random assignments from a seeded generator (scipy
    enumerates anyway when ``n_mc`` >= 2^n). One pair gives p = 1.
    Distribution-free, but it can never go below :func:`min_attainable_p` (n), i.e. it cannot reach
    0.05 with 5 or fewer pairs; tables therefore report it from :data:`SIGN_FLIP_MIN_PAIRS` pairs on.
    NaN without pairs.
    """
    from scipy import stats as st

    d = _arr(diffs)
    if d.size <= 1:  # one pair: both sign assignments are as extreme as the observed one
        return NAN if d.size == 0 else 1.0
    exact = d.size <= n_exact_max
    r = st.permutation_test((d,), np.mean, permutation_type="samples", vectorized=True, axis=-1,
                            n_resamples=np.inf if exact else n_mc, alternative="two-sided",
                            rng=np.random.default_rng(seed))
    return float(r.pvalue)


# ---------------------------------------------------------------- multiplicity within a table section


def _finite_order(p: np.ndarray) -> np.ndarray:
    """Indices of the non-NaN p-values, smallest first (stable for ties)."""
    idx = np.flatnonzero(~np.isnan(p))
    return idx[np.argsort(p[idx], kind="stable")]


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control) for the non-NaN entries.

    With m tests and the p-values sorted ascending, the j-th (1-based) gets ``max_{i<=j} (m-i+1) p_(i)``,
    capped at 1. NaN entries are not tests: they stay NaN and do not count in m.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full(p.shape, NAN)
    order = _finite_order(p)
    m = order.size
    if m:
        out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def holm_levels(pvalues, alpha: float = ALPHA) -> np.ndarray:
    """Per-comparison confidence levels that make t-intervals agree with Holm's decisions at ``alpha``.

    Holm tests the j-th smallest of m p-values at ``alpha / (m-j+1)`` and stops at the first step k that
    fails. A comparison rejected at step j < k gets the level ``1 - alpha/(m-j+1)``: its p is below that
    alpha, so its t-interval excludes 0. Every comparison from step k on gets the level of the failed step,
    ``1 - alpha/(m-k+1)``: its p is at least the failing one, so its t-interval contains 0. For the
    paired t-test, 'the (1-a) t-interval excludes 0' is exactly 'p < a', so these intervals exclude 0 iff
    the Holm-adjusted p is below ``alpha``. With one comparison this is the plain 95% interval; the
    smallest p gets the Bonferroni level ``1 - alpha/m``. NaN p-values get a NaN level.

    Caveat: only intervals at the Bonferroni level ``1 - alpha/m`` for every comparison carry a guaranteed
    simultaneous coverage; these step levels are chosen so that the interval beside a verdict matches Holm's
    decision exactly, and they are never narrower than the unadjusted ``1 - alpha`` interval.
    """
    p = np.asarray(pvalues, dtype=float).ravel()
    levels = np.full(p.shape, NAN)
    order = _finite_order(p)
    m = order.size
    step_alpha = alpha / (m - np.arange(m))
    failed = np.flatnonzero(p[order] >= step_alpha)
    k = int(failed[0]) if failed.size else m
    levels[order] = 1 - step_alpha[np.minimum(np.arange(m), k)]
    return levels


def verdict(ci_low: float, ci_high: float, p_adjusted: float, alpha: float = ALPHA) -> str:
    """'better' iff the interval lies above 0 and the adjusted p < alpha; 'worse' iff below 0 and adjusted
    p < alpha; otherwise 'no evidence' (which is not evidence of no effect)."""
    if is_missing(p_adjusted) or is_missing(ci_low) or is_missing(ci_high) or not p_adjusted < alpha:
        return "no evidence"
    if ci_low > 0:
        return "better"
    if ci_high < 0:
        return "worse"
    return "no evidence"


@dataclass(frozen=True)
class PairedSummary:
    """One comparison with its baseline: mean paired difference, its 95% t-interval, the paired t-test,
    and the sign-flip p (NaN below :data:`SIGN_FLIP_MIN_PAIRS` pairs)."""

    mean_diff: float
    ci_low: float
    ci_high: float
    n_pairs: int
    test: str | None
    p: float
    sd_diff: float = NAN
    statistic: float = NAN
    p_signflip: float = NAN


def paired_summary(diffs, confidence: float = 0.95, seed: int = DEFAULT_SEED) -> PairedSummary:
    """Summary of the per-pair differences of one comparison (no multiplicity adjustment here)."""
    d = _arr(diffs)
    n = int(d.size)
    lo, hi = t_interval(d, confidence)
    t = paired_test(d)
    p_sf = sign_flip_p(d, seed=seed) if n >= SIGN_FLIP_MIN_PAIRS else NAN
    return PairedSummary(float(d.mean()) if n else NAN, lo, hi, n, t["test"], t["p"],
                         float(d.std(ddof=1)) if n >= 2 else NAN, t["statistic"], p_sf)


@dataclass(frozen=True)
class Decision:
    """A comparison judged within its section: Holm-adjusted p, the level and bounds of the interval
    shown beside the verdict (:func:`holm_levels`), and the verdict."""

    p_holm: float
    ci_level: float
    ci_low: float
    ci_high: float
    verdict: str


def decide_section(diffs_by_key: Mapping[Hashable, Sequence[float]], alpha: float = ALPHA
                   ) -> dict[Hashable, Decision]:
    """Holm-adjust the paired t-tests of one section (each comparison against the same baseline) and give
    every comparison its Holm-consistent t-interval and verdict; interval and verdict always agree."""
    keys = list(diffs_by_key)
    diffs = [_arr(diffs_by_key[k]) for k in keys]
    ps = np.array([paired_t_test(d)[1] for d in diffs])
    adjusted, levels = holm(ps), holm_levels(ps, alpha)
    out = {}
    for k, d, p_adj, level in zip(keys, diffs, adjusted, levels):
        lo, hi = t_interval(d, float(level))
        out[k] = Decision(float(p_adj), float(level), lo, hi, verdict(lo, hi, float(p_adj), alpha))
    return out


# ---------------------------------------------------------------- power and planning


def pooled_sd(samples: Sequence) -> tuple[float, int]:
    """Pooled sample std of several groups (e.g. the paired differences of every method of a section):
    ``sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1))`` and its degrees of freedom; groups under 2 values add
    nothing. NaN (df 0) when no group has 2 values."""
    arrays = [_arr(s) for s in samples]
    arrays = [a for a in arrays if a.size >= 2]
    df = int(sum(a.size - 1 for a in arrays))
    if df == 0:
        return NAN, 0
    return float(math.sqrt(sum(((a - a.mean()) ** 2).sum() for a in arrays) / df)), df


def power_paired_t(effect: float, sd_diff: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test with ``n`` pairs to detect a true mean difference ``effect``
    when the differences have std ``sd_diff``: the noncentral t (df n-1, noncentrality effect*sqrt(n)/sd)
    beyond the critical values. The lower tail P(T < -q; nc) is computed as P(T > q; -nc): scipy's
    ``nct.cdf`` returns NaN there for 1 df and a large noncentrality, its ``sf`` does not."""
    from scipy import stats as st

    df, nc = n - 1, effect * math.sqrt(n) / sd_diff
    q = st.t.ppf(1 - alpha / 2, df)
    return float(st.nct.sf(q, df, nc) + st.nct.sf(q, df, -nc))


def _valid_plan(sd_diff: float, n: float = 2) -> bool:
    """A power calculation needs 2 or more pairs and a spread above float noise (:data:`ZERO_SPREAD`)."""
    return not is_missing(sd_diff) and sd_diff > ZERO_SPREAD and n >= 2


def min_detectable_difference(sd_diff: float, n: int, power: float = 0.8, alpha: float = ALPHA) -> float:
    """Smallest true mean paired difference that a two-sided paired t-test with ``n`` pairs detects with
    the given power at ``alpha`` (noncentral t, no normal approximation). NaN for n < 2 or no spread."""
    from scipy.optimize import brentq

    if not _valid_plan(sd_diff, n):
        return NAN
    hi = sd_diff
    while power_paired_t(hi, sd_diff, n, alpha) < power:
        hi *= 2
    return float(brentq(lambda e: power_paired_t(e, sd_diff, n, alpha) - power, 0.0, hi, xtol=1e-12 * hi))


def seeds_needed(sd_diff: float, effect: float, power: float = 0.8, alpha: float = ALPHA,
                 max_n: int = 1_000_000) -> int | None:
    """Smallest number of paired seeds for which the two-sided paired t-test at ``alpha`` detects a true
    mean difference ``effect`` (e.g. 0.01 = 1 F1 point) with the given power, given the std of the paired
    differences. None when undefined (sd <= 0 or NaN, effect 0 or NaN) or above ``max_n``."""
    if not _valid_plan(sd_diff) or is_missing(effect) or effect == 0:
        return None
    effect = abs(effect)
    if power_paired_t(effect, sd_diff, max_n, alpha) < power:
        return None
    lo, hi = 1, 2  # power(lo) < target (or lo = 1: no test), power(hi) >= target after the doubling
    while power_paired_t(effect, sd_diff, hi, alpha) < power:
        lo, hi = hi, min(2 * hi, max_n)
    while hi - lo > 1:  # power grows with n: bisect
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if power_paired_t(effect, sd_diff, mid, alpha) >= power else (mid, hi)
    return hi


# ---------------------------------------------------------------- degenerate classifiers


def no_signal(per_class_f1: Mapping[str, float], test_label_counts: Mapping[str, int] | None = None) -> bool:
    """True when the classifier evidently predicts one class only: every class but (at most) one has F1 0.

    A classifier that always answers 'A' has no true positive in any other class, so their F1 is 0, while
    A keeps a positive F1 from its recall of 1; such a cell's score measures the label distribution, not
    the method. NaN F1 (a class neither present nor predicted) counts as 0. With ``test_label_counts``,
    classes without test examples are ignored (their F1 says nothing). Needs at least 2 classes to
    judge; an empty mapping is False (nothing to judge).
    """
    labels = list(per_class_f1)
    if test_label_counts is not None:
        labels = [c for c in labels if test_label_counts.get(c, 0) > 0]
    if len(labels) < 2:
        return False
    positive = [c for c in labels if not is_missing(per_class_f1[c]) and per_class_f1[c] > 0]
    return len(positive) <= 1


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


def _bootstrappable(groups: Sequence[np.ndarray]) -> bool:
    """Every group has enough runs for a bootstrap interval (see :data:`MIN_BOOT_VALUES`)."""
    return bool(groups) and all(g.size >= MIN_BOOT_VALUES for g in groups)


def stratified_bootstrap_ci(tasks: Sequence, statistic: Callable[[list[np.ndarray]], float],
                            n_boot: int = DEFAULT_BOOT, confidence: float = 0.95, seed: int = DEFAULT_SEED
                            ) -> tuple[float, float]:
    """rliable's stratified bootstrap: resample the runs WITHIN each task (task = stratum; each task is one
    sample of ``scipy.stats.bootstrap``), recompute ``statistic(list_of_task_arrays)``; percentile interval.
    Empty tasks are dropped; NaN unless every remaining task has 3 or more runs."""
    ts = [t for t in (_arr(t) for t in tasks) if t.size]
    if not _bootstrappable(ts):
        return NAN, NAN
    return _percentile_bootstrap(ts, lambda *r: statistic(list(r)), False, n_boot, confidence, seed)


def _iqm_of_concatenated(*tasks: np.ndarray, axis: int = -1) -> np.ndarray:
    from scipy import stats as st

    return st.trim_mean(np.concatenate(tasks, axis=-1), 0.25, axis=-1)


def iqm_with_ci(tasks: Sequence, n_boot: int = DEFAULT_BOOT, confidence: float = 0.95,
                seed: int = DEFAULT_SEED) -> tuple[float, float, float]:
    """IQM of all runs of all tasks, with a stratified bootstrap interval (runs resampled within each task,
    ``scipy.stats.bootstrap``, vectorised). NaN interval unless every task has 3 or more runs."""
    ts = [t for t in (_arr(t) for t in tasks) if t.size]
    point = iqm(np.concatenate(ts) if ts else [])
    if not _bootstrappable(ts):
        return point, NAN, NAN
    return (point, *_percentile_bootstrap(ts, _iqm_of_concatenated, True, n_boot, confidence, seed))


def _poi_statistic(n_tasks: int):
    """Vectorised probability of improvement over samples ``x_1..x_T, y_1..y_T`` (last axis = runs)."""
    def stat(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        per_task = []
        for x, y in zip(samples[:n_tasks], samples[n_tasks:]):
            bx, by = x[..., :, None], y[..., None, :]
            per_task.append(((bx > by) + 0.5 * (bx == by)).mean(axis=(-2, -1)))
        return np.mean(per_task, axis=0)
    return stat


def poi_with_ci(x_by_task: Sequence, y_by_task: Sequence, n_boot: int = DEFAULT_BOOT, confidence: float = 0.95,
                seed: int = DEFAULT_SEED) -> tuple[float, float, float]:
    """Probability of improvement with rliable's stratified bootstrap: the runs of X and of Y resampled
    independently within each task (each a sample of ``scipy.stats.bootstrap``). Tasks missing either side
    are dropped; NaN interval unless every remaining task has 3 or more runs on both sides."""
    xs = [_arr(t) for t in x_by_task]
    ys = [_arr(t) for t in y_by_task]
    point = probability_of_improvement(xs, ys)
    keep = [(x, y) for x, y in zip(xs, ys) if x.size and y.size]
    if not keep or not _bootstrappable([a for pair in keep for a in pair]):
        return point, NAN, NAN
    samples = [x for x, _ in keep] + [y for _, y in keep]
    return (point, *_percentile_bootstrap(samples, _poi_statistic(len(keep)), True, n_boot, confidence, seed))


def is_missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))
