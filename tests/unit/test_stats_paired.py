"""Paired statistics: t-interval, paired t-test, sign-flip test, Holm, verdicts (hand-checked values)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from bench.report import stats

# ---------------------------------------------------------------- t-interval and paired t-test


def test_t_interval_matches_the_closed_form_for_two_degrees_of_freedom():
    # t with 2 df: P(|T| <= q) = q / sqrt(2 + q^2), so q = sqrt(2 c^2 / (1 - c^2)) for confidence c
    for c in (0.95, 0.975, 0.99):
        q = math.sqrt(2 * c * c / (1 - c * c))
        lo, hi = stats.t_interval([1.0, 2.0, 3.0], confidence=c)  # mean 2, sd 1, n 3
        assert (lo, hi) == pytest.approx((2 - q / math.sqrt(3), 2 + q / math.sqrt(3)))
    assert 4.30 < math.sqrt(2 * 0.95 ** 2 / (1 - 0.95 ** 2)) < 4.31  # the familiar t_{0.975, 2} = 4.303


def test_t_interval_and_test_undefined_cases():
    assert all(math.isnan(v) for v in stats.t_interval([0.1]))
    assert stats.t_interval([0.0, 0.0, 0.0]) == (0.0, 0.0)  # nothing changed
    assert stats.paired_t_test([0.0, 0.0, 0.0])[1] == 1.0
    same = [0.65 - 0.54, 0.66 - 0.55, 0.64 - 0.53]  # equal up to float noise: no spread, no t
    assert all(math.isnan(v) for v in stats.t_interval(same))
    assert math.isnan(stats.paired_t_test(same)[1])
    assert all(math.isnan(v) for v in stats.paired_t_test([]))


def test_t_interval_excludes_zero_exactly_when_p_is_below_alpha():
    rng = np.random.default_rng(11)
    for _ in range(300):
        d = rng.normal(rng.normal(0, 0.01), rng.uniform(0.002, 0.03), size=int(rng.integers(2, 12)))
        p = stats.paired_t_test(d)[1]
        for alpha in (0.05, 0.0125):
            lo, hi = stats.t_interval(d, confidence=1 - alpha)
            assert (lo > 0 or hi < 0) == (p < alpha)


# ---------------------------------------------------------------- sign-flip permutation test


def _enumerated_sign_flip_p(d):
    """All 2^n sign assignments by hand: share whose |sum| reaches the observed |sum|."""
    obs = abs(sum(d))
    hits = sum(abs(sum(s * x for s, x in zip(signs, d))) >= obs - 1e-12
               for signs in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


def test_sign_flip_exact_p_matches_a_hand_enumeration():
    d = [0.01, 0.02, -0.005, 0.03, 0.04, 0.02]
    # only flipping -0.005 (to +) and the two mirror images reach |sum| 0.115: 4 of 64
    assert stats.sign_flip_p(d) == pytest.approx(4 / 64)
    for d in ([0.03, -0.01, 0.02, 0.005, -0.02, 0.01, 0.015], [0.2, -0.1, 0.05], [0.01] * 6):
        assert stats.sign_flip_p(d) == pytest.approx(_enumerated_sign_flip_p(d))
    assert stats.sign_flip_p([0.0, 0.0, 0.0, 0.0, 0.0, 0.0]) == pytest.approx(1.0)
    assert math.isnan(stats.sign_flip_p([]))


def test_sign_flip_monte_carlo_is_seeded_and_close_to_exact():
    d = [0.03, -0.01, 0.02, 0.005, -0.02, 0.01, 0.015, 0.025, -0.004, 0.012, -0.006, 0.001]
    exact = stats.sign_flip_p(d)
    assert exact == pytest.approx(_enumerated_sign_flip_p(d))
    mc = stats.sign_flip_p(d, seed=3, n_exact_max=4, n_mc=3000)  # 3000 random of the 4096 assignments
    assert mc == stats.sign_flip_p(d, seed=3, n_exact_max=4, n_mc=3000)
    assert mc != stats.sign_flip_p(d, seed=4, n_exact_max=4, n_mc=3000)
    assert mc != exact and mc == pytest.approx(exact, abs=0.03)  # ~4 Monte Carlo standard errors
    big = np.linspace(0.001, 0.02, 20)  # 20 pairs: beyond enumeration; all positive, p near 1/20001 * 2
    assert 0 < stats.sign_flip_p(big) < 1e-3


def test_min_attainable_p_is_the_floor_of_sign_flip_and_wilcoxon():
    from scipy.stats import wilcoxon

    assert stats.min_attainable_p(5) == 0.0625 and stats.min_attainable_p(6) == 0.03125
    assert stats.min_attainable_p(0) == 1.0 and stats.min_attainable_p(1) == 1.0
    for n in range(1, 9):  # all differences one sign: the floor is reached exactly
        d = np.arange(1, n + 1) / 100
        assert stats.sign_flip_p(d) == pytest.approx(stats.min_attainable_p(n))
        if n >= 2:
            assert wilcoxon(d).pvalue == pytest.approx(stats.min_attainable_p(n))
    rng = np.random.default_rng(2)  # and no 5-pair vector gets below it: 5 pairs can never reach 0.05
    assert min(stats.sign_flip_p(rng.normal(0.02, 0.01, 5)) for _ in range(50)) >= 0.0625 - 1e-12
    assert stats.SIGN_FLIP_MIN_PAIRS == min(n for n in range(1, 20) if stats.min_attainable_p(n) < 0.05)


# ---------------------------------------------------------------- Holm


def test_holm_worked_example():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.06 for the last
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    out = stats.holm([math.nan, 0.2, 0.01])  # NaN is not a test: m = 2
    assert math.isnan(out[0]) and list(out[1:]) == pytest.approx([0.2, 0.02])
    assert list(stats.holm([0.6, 0.7])) == [1.0, 1.0]  # capped
    assert stats.holm([0.03]) == pytest.approx([0.03])  # one test: unchanged
    assert stats.holm([]).size == 0


def test_holm_agrees_with_statsmodels_when_installed():
    multitest = pytest.importorskip("statsmodels.stats.multitest", reason="statsmodels not installed")
    rng = np.random.default_rng(4)
    for m in (2, 3, 7):
        p = rng.uniform(0, 0.2, size=m)
        assert stats.holm(p) == pytest.approx(multitest.multipletests(p, method="holm")[1])


def test_holm_levels_worked_example():
    # steps: 0.005 < 0.05/4 yes, 0.01 < 0.05/3 yes, 0.03 < 0.05/2 no -> stop; 0.03 and 0.04 get the stop level
    lv = stats.holm_levels([0.01, 0.04, 0.03, 0.005])
    assert lv == pytest.approx([1 - 0.05 / 3, 1 - 0.05 / 2, 1 - 0.05 / 2, 1 - 0.05 / 4])
    assert stats.holm_levels([0.2]) == pytest.approx([0.95])
    assert math.isnan(stats.holm_levels([math.nan, 0.01])[0])


# ---------------------------------------------------------------- verdicts


def test_verdict_needs_both_the_interval_and_the_adjusted_p():
    assert stats.verdict(0.001, 0.02, 0.01) == "better"
    assert stats.verdict(-0.02, -0.001, 0.01) == "worse"
    assert stats.verdict(0.001, 0.02, 0.06) == "no evidence"
    assert stats.verdict(-0.01, 0.02, 0.01) == "no evidence"
    assert stats.verdict(math.nan, math.nan, math.nan) == "no evidence"


def test_significant_alone_but_not_after_holm_reads_no_evidence_with_a_wider_interval():
    a = [0.03, 0.01, 0.02, 0.045, 0.005]
    b = [0.01, 0.03, 0.02, 0.04, 0.0]
    pa, pb = stats.paired_t_test(a)[1], stats.paired_t_test(b)[1]
    assert 0.025 < pa < pb < 0.05  # each alone 'significant', and its 95% t-interval excludes 0
    assert stats.t_interval(a)[0] > 0 and stats.t_interval(b)[0] > 0
    dec = stats.decide_section({"a": a, "b": b})
    assert dec["a"].p_holm == pytest.approx(2 * pa) and dec["b"].p_holm == pytest.approx(2 * pa)
    for k in "ab":
        assert dec[k].verdict == "no evidence" and dec[k].ci_level == pytest.approx(0.975)
        assert dec[k].ci_low < 0 < dec[k].ci_high
    alone = stats.decide_section({"a": a})["a"]
    assert alone.verdict == "better" and alone.ci_level == pytest.approx(0.95) and alone.ci_low > 0


def _random_section(rng):
    section = {}
    for j in range(int(rng.integers(1, 7))):
        n = int(rng.integers(1, 11))
        if rng.uniform() < 0.08:
            d = np.full(n, rng.choice([0.0, 0.01]))  # no spread
        else:
            d = rng.normal(rng.normal(0, 0.015), rng.uniform(0.002, 0.03), size=n)
        section[j] = d
    return section


def test_interval_and_verdict_never_disagree_over_random_sections():
    rng = np.random.default_rng(2024)
    seen = {"better": 0, "worse": 0, "no evidence": 0, "raw 95% excludes 0 but Holm says no": 0}
    for _ in range(400):
        section = _random_section(rng)
        for k, dec in stats.decide_section(section).items():
            excludes = not math.isnan(dec.ci_low) and (dec.ci_low > 0 or dec.ci_high < 0)
            adj_sig = not math.isnan(dec.p_holm) and dec.p_holm < 0.05
            assert excludes == adj_sig, (section[k], dec)
            assert (dec.verdict == "better") == (excludes and dec.ci_low > 0)
            assert (dec.verdict == "worse") == (excludes and dec.ci_high < 0)
            seen[dec.verdict] += 1
            lo95, hi95 = stats.t_interval(section[k])
            if (lo95 > 0 or hi95 < 0) and not adj_sig:
                seen["raw 95% excludes 0 but Holm says no"] += 1
    assert all(v > 5 for v in seen.values()), seen  # every case, the tricky one included, was exercised


# ---------------------------------------------------------------- no signal


def test_no_signal_flags_a_one_class_classifier():
    assert stats.no_signal({"negative": 0.78, "neutral": 0.0, "positive": 0.0})
    assert stats.no_signal({"negative": 0.0, "neutral": 0.0, "positive": 0.0})
    assert stats.no_signal({"a": 0.6, "b": math.nan})  # undefined F1 counts as none
    assert not stats.no_signal({"negative": 0.7, "neutral": 0.05, "positive": 0.0})
    assert not stats.no_signal({}) and not stats.no_signal({"a": 0.9})
    counts = {"negative": 60, "neutral": 0, "positive": 40}  # neutral absent from the test set: ignored
    assert stats.no_signal({"negative": 0.75, "neutral": 0.0, "positive": 0.0}, counts)
    assert stats.no_signal({"negative": 0.8, "neutral": 0.0})  # without counts: two classes, one predicted
    assert not stats.no_signal({"negative": 0.8, "neutral": 0.0}, {"negative": 9, "neutral": 0})  # one class
    assert not stats.no_signal({"negative": 0.6, "neutral": 0.0, "positive": 0.5}, counts)


def test_no_signal_on_sklearn_per_class_f1():
    metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn not installed")
    labels = ["negative", "neutral", "positive"]
    y = ["negative"] * 6 + ["neutral"] * 2 + ["positive"] * 2
    for pred, flagged in ((["negative"] * 10, True), (y[:5] + ["positive"] * 5, False)):
        f1 = metrics.f1_score(y, pred, labels=labels, average=None, zero_division=0)
        assert stats.no_signal(dict(zip(labels, f1))) is flagged
