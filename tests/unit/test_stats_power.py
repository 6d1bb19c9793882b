"""Power of the paired t-test: minimum detectable difference and seeds needed (noncentral t)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.report import stats


def test_seeds_needed_matches_textbook_sample_sizes():
    # paired / one-sample t, two-sided, alpha 0.05, 80% power (Cohen's tables, G*Power):
    # d = 0.5 needs 34 pairs, d = 1 needs 10
    assert stats.seeds_needed(1.0, 0.5) == 34
    assert stats.seeds_needed(1.0, 1.0) == 10
    assert stats.seeds_needed(0.02, 0.01) == 34  # only effect / sd matters: 1 F1 point at sd 2 points
    assert stats.seeds_needed(0.02, -0.01) == 34  # a drop is as detectable as a gain


def test_seeds_needed_is_the_smallest_n_with_enough_power():
    for sd, effect in ((0.01, 0.01), (0.015, 0.02), (0.03, 0.01)):
        n = stats.seeds_needed(sd, effect)
        assert stats.power_paired_t(effect, sd, n) >= 0.8 > stats.power_paired_t(effect, sd, n - 1)


def test_seeds_needed_undefined_inputs():
    assert stats.seeds_needed(0.0, 0.01) is None
    assert stats.seeds_needed(math.nan, 0.01) is None
    assert stats.seeds_needed(0.01, 0.0) is None
    assert stats.seeds_needed(1.0, 1e-4, max_n=1000) is None  # would need ~785 million


def test_min_detectable_difference_uses_the_noncentral_t_not_the_normal():
    mdd = stats.min_detectable_difference(1.0, 10)
    assert mdd == pytest.approx(0.9960, abs=1e-3)  # G*Power: d = 0.996 for 10 pairs
    normal = (1.959964 + 0.841621) / math.sqrt(10)  # the normal approximation would claim 0.886
    assert mdd - normal > 0.1
    assert stats.power_paired_t(mdd, 1.0, 10) == pytest.approx(0.8, abs=1e-9)
    assert stats.min_detectable_difference(0.02, 10) == pytest.approx(0.02 * mdd)  # scales with the sd
    assert math.isnan(stats.min_detectable_difference(0.01, 1))
    assert math.isnan(stats.min_detectable_difference(0.0, 5))


def test_power_formula_against_simulation():
    from scipy.stats import ttest_1samp

    n, sd = 5, 0.01
    mdd = stats.min_detectable_difference(sd, n)
    rng = np.random.default_rng(0)
    draws = rng.normal(mdd, sd, size=(40_000, n))
    hit = (ttest_1samp(draws, 0.0, axis=1).pvalue < 0.05).mean()
    assert hit == pytest.approx(0.8, abs=0.01)  # 40,000 draws: standard error 0.002


def test_power_is_finite_and_grows_with_the_effect_even_with_two_pairs():
    for n in (2, 3, 4):
        power = [stats.power_paired_t(e, 0.0053, n) for e in np.linspace(0.0, 0.2, 81)]
        assert all(np.isfinite(power)) and power == sorted(power)
        assert power[0] == pytest.approx(0.05)  # no effect: the test's own alpha
    # 2 pairs, sd 0.53 points (a real section): scipy's nct.cdf gives NaN in this range
    mdd = stats.min_detectable_difference(0.0053028277853906115, 2)
    assert stats.power_paired_t(mdd, 0.0053028277853906115, 2) == pytest.approx(0.8, abs=1e-9)


def test_min_detectable_difference_agrees_with_statsmodels_when_installed():
    power = pytest.importorskip("statsmodels.stats.power", reason="statsmodels not installed")
    for n in (3, 5, 8):
        d = power.TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8)
        assert stats.min_detectable_difference(1.0, n) == pytest.approx(d, rel=1e-4)


def test_pooled_sd_of_paired_differences():
    # [1, 2, 3]: squares about the mean 2, df 2; [0, 4]: 8, df 1; [5] adds nothing
    assert stats.pooled_sd([[1, 2, 3], [0, 4], [5]]) == pytest.approx((math.sqrt(10 / 3), 3))
    sd, df = stats.pooled_sd([[1.0]])
    assert math.isnan(sd) and df == 0
