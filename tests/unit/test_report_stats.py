"""Report statistics and measures as pure functions, against hand-computed cases."""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report_fixtures import fake_record  # noqa: E402

from bench.report import stats  # noqa: E402
from bench.report.diversity import (  # noqa: E402
    distinct_n,
    edit_distance,
    label_consistency,
    normalized_edit_distance,
    self_bleu,
    tokenize,
)
from bench.report.figures import label_aware_alpha  # noqa: E402
from bench.report.load import frame_from_records, record_to_row  # noqa: E402

# ---------------------------------------------------------------- one sample


def test_mean_std_uses_sample_std():
    m, s, n = stats.mean_std([1, 2, 3, 4])
    assert (m, n) == (2.5, 4)
    assert s == pytest.approx(math.sqrt(5 / 3))  # sum of squares 5, ddof=1


def test_mean_std_one_value_has_no_spread_and_nan_is_ignored():
    m, s, n = stats.mean_std([0.7, float("nan")])
    assert (m, n) == (0.7, 1) and math.isnan(s)
    m, s, n = stats.mean_std([])
    assert n == 0 and math.isnan(m) and math.isnan(s)


def test_bootstrap_ci_reproducible_and_sane():
    x = [0.61, 0.64, 0.66, 0.70, 0.59]
    a = stats.bootstrap_ci(x, n_boot=500, seed=3)
    assert a == stats.bootstrap_ci(x, n_boot=500, seed=3)
    assert a != stats.bootstrap_ci(x, n_boot=500, seed=4)
    assert min(x) <= a[0] <= np.mean(x) <= a[1] <= max(x)
    assert stats.bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    assert all(math.isnan(v) for v in stats.bootstrap_ci([0.5]))
    # two values: the percentile interval would only repeat them, so there is none
    assert all(math.isnan(v) for v in stats.bootstrap_ci([0.5, 0.7]))
    assert stats.summarize([0.5, 0.7]).std == pytest.approx(math.sqrt(0.02)) and math.isnan(stats.summarize(
        [0.5, 0.7]).ci_low)


def test_bootstrap_ci_is_an_interval_of_the_mean_not_of_the_data():
    x = np.random.default_rng(5).normal(0.0, 1.0, size=400)
    lo, hi = stats.bootstrap_ci(x, n_boot=2000, seed=0)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)  # normal-theory half width for comparison
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.1)
    assert lo < x.mean() < hi
    med = stats.bootstrap_ci(x, statistic=np.median, n_boot=300, seed=0)  # any statistic, non-vectorised
    assert med[0] < float(np.median(x)) < med[1]


# ---------------------------------------------------------------- paired


def _long():
    rows = []
    for seed, (b, t) in enumerate([(0.50, 0.52), (0.60, 0.63), (0.55, 0.56)]):
        rows.append({"dataset": "d", "view": "5pct", "method": "none", "policy": "-", "seed": seed, "macro_f1": b})
        rows.append({"dataset": "d", "view": "5pct", "method": "eda", "policy": "G/E", "seed": seed, "macro_f1": t})
    rows.append({"dataset": "d", "view": "5pct", "method": "eda", "policy": "G/E", "seed": 9, "macro_f1": 0.9})
    rows.append({"dataset": "d", "view": "5pct", "method": "none", "policy": "-", "seed": 8, "macro_f1": np.nan})
    rows.append({"dataset": "e", "view": "5pct", "method": "none", "policy": "-", "seed": 0, "macro_f1": 0.1})
    return pd.DataFrame(rows)


def test_paired_differences_pair_on_dataset_view_seed():
    d = stats.paired_differences(_long(), "macro_f1", {"method": "eda", "policy": "G/E"}, {"method": "none"})
    assert list(d["seed"]) == [0, 1, 2]  # seed 9 has no baseline; data set e has no treatment
    assert d["diff"].to_numpy() == pytest.approx([0.02, 0.03, 0.01])


def test_paired_test_is_the_paired_t_test_at_every_n():
    r = stats.paired_test([1.0, 2.0, 3.0])
    assert r["test"] == "paired-t" and r["n"] == 3
    t = 2 * math.sqrt(3)  # mean 2, sd 1, se 1/sqrt(3)
    assert r["statistic"] == pytest.approx(t)
    assert r["p"] == pytest.approx(1 - t / math.sqrt(2 + t * t))  # t with 2 df: P(|T| > t) = 1 - t/sqrt(2+t^2)
    five = [0.02, 0.03, 0.01, 0.025, 0.015]  # 5 pairs: no longer Wilcoxon, whose exact p is stuck at 0.0625
    r = stats.paired_test(five)
    assert r["test"] == "paired-t" and r["statistic"] == pytest.approx(4 * math.sqrt(2))  # 0.02 / (0.00791/sqrt 5)
    assert r["p"] < 0.01
    from scipy.stats import wilcoxon

    assert wilcoxon(five).pvalue == pytest.approx(0.0625)
    r = stats.paired_test([0.1])
    assert r["test"] is None and math.isnan(r["p"])


def test_paired_summary():
    s = stats.paired_summary([0.02, 0.03, 0.01], seed=0)
    assert s.mean_diff == pytest.approx(0.02) and s.n_pairs == 3 and s.test == "paired-t"
    assert s.sd_diff == pytest.approx(0.01)
    half = 4.302652729749464 * 0.01 / math.sqrt(3)  # t_{0.975, 2} from a t table
    assert (s.ci_low, s.ci_high) == pytest.approx((0.02 - half, 0.02 + half))
    assert math.isnan(s.p_signflip)  # 3 pairs: a sign-flip p could not go below 0.25
    six = stats.paired_summary([0.01, 0.02, -0.005, 0.03, 0.04, 0.02])
    assert six.p_signflip == pytest.approx(4 / 64) and six.p < 0.05


# ---------------------------------------------------------------- rliable aggregates


def test_iqm_known_arrays():
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # middle half: 3, 4, 5, 6
    assert stats.iqm([[1, 2], [3, 4]]) == pytest.approx(2.5)
    assert stats.iqm([10, 1, 2, 3, 4, 5, 6, -100]) == pytest.approx(3.5)  # outliers trimmed


def test_probability_of_improvement_known_pair():
    # x beats y: 3>1, 3=3 (1/2), 4>1, 4>3 -> 3.5 / 4
    assert stats.probability_of_improvement([[3, 4]], [[1, 3]]) == pytest.approx(0.875)
    # averaged over tasks: 0.875 and 0
    assert stats.probability_of_improvement([[3, 4], [0]], [[1, 3], [1]]) == pytest.approx(0.4375)
    assert stats.probability_of_improvement([[1, 2]], [[1, 2]]) == pytest.approx(0.5)


def test_stratified_bootstrap_resamples_within_tasks():
    tasks = [np.zeros(3), np.ones(3)]  # any within-task resample keeps each task's mean
    lo, hi = stats.stratified_bootstrap_ci(tasks, lambda r: float(np.mean(np.concatenate(r))), n_boot=200)
    assert (lo, hi) == (0.5, 0.5)
    p, lo, hi = stats.iqm_with_ci([[0.1, 0.2, 0.3], [0.5, 0.6, 0.4]], n_boot=300, seed=1)
    assert (p, lo, hi) == stats.iqm_with_ci([[0.1, 0.2, 0.3], [0.5, 0.6, 0.4]], n_boot=300, seed=1)
    assert lo <= p <= hi
    # the vectorised IQM interval is the generic stratified bootstrap of the IQM, same seed
    generic = stats.stratified_bootstrap_ci([[0.1, 0.2, 0.3], [0.5, 0.6, 0.4]],
                                            lambda r: stats.iqm(np.concatenate(r)), n_boot=300, seed=1)
    assert generic == pytest.approx((lo, hi))
    # a task with 2 runs: no interval (its resamples only repeat its two runs)
    assert all(math.isnan(v) for v in stats.iqm_with_ci([[0.1, 0.2, 0.3], [0.5, 0.6]])[1:])
    assert all(math.isnan(v) for v in stats.stratified_bootstrap_ci([[0.1, 0.2]], np.mean))


def test_poi_with_ci_point_and_reproducibility():
    x, y = [[0.6, 0.7, 0.65], [0.5, 0.55, 0.52]], [[0.6, 0.62, 0.5], [0.45, 0.5, 0.56]]
    p, lo, hi = stats.poi_with_ci(x, y, n_boot=300, seed=2)
    assert p == pytest.approx(stats.probability_of_improvement(x, y))
    assert (p, lo, hi) == stats.poi_with_ci(x, y, n_boot=300, seed=2)
    assert 0 <= lo <= p <= hi <= 1
    assert all(math.isnan(v) for v in stats.poi_with_ci([[0.6]], [[0.5]])[1:])  # single runs: no interval
    assert all(math.isnan(v) for v in stats.poi_with_ci([[0.6, 0.7, 0.65]], [[0.5, 0.6]])[1:])  # 2 runs of Y
    # X always beats Y in one task and never in the other: every resample gives 1/2
    assert stats.poi_with_ci([[0.9, 0.8, 0.95], [0.1, 0.2, 0.15]], [[0.5, 0.4, 0.6], [0.5, 0.4, 0.6]],
                             n_boot=200) == pytest.approx((0.5, 0.5, 0.5))


# ---------------------------------------------------------------- schedule, diversity, load


def test_label_aware_schedule_formula():
    assert label_aware_alpha(0, 32, 1.0) == pytest.approx(1.0)
    assert label_aware_alpha(32, 32, 1.0) == pytest.approx(0.0)
    assert label_aware_alpha(8, 32, 0.0) == pytest.approx(0.75)  # w = 0: linear
    assert label_aware_alpha(16, 32, 1.0, lam=0.5) == pytest.approx(0.0)  # 1 - 0.5 - 0.5
    assert label_aware_alpha(16, 32, 0.5, lam=0.5) == pytest.approx(0.25)
    assert label_aware_alpha(20, 32, 1.0, lam=0.5) == 0.0  # clipped, not negative


def test_diversity_measures():
    assert tokenize("Good 航班 late") == ["good", "航", "班", "late"]
    assert distinct_n(["a b a"], 1) == pytest.approx(2 / 3)
    assert distinct_n(["a b", "a b"], 2) == pytest.approx(0.5)
    assert math.isnan(distinct_n(["a"], 2))
    assert edit_distance("a b c".split(), "a x c d".split()) == 2
    assert normalized_edit_distance("a b c", "a x c d") == pytest.approx(0.5)
    assert normalized_edit_distance("same text", "same text") == 0.0
    assert self_bleu(["the crew was very friendly today"] * 3) == pytest.approx(1.0)
    assert label_consistency(["x", "y", "z", "w"], ["p", "n", "p", "n"], lambda t: ["p"] * len(t)) == 0.5


def _python_levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_fast_self_bleu_and_edit_distance_equal_the_textbook_definitions():
    """The one-pass self-BLEU equals nltk's sentence_bleu averaged over texts (repeated, short, one-token
    and tied texts included), and the C++ edit distance equals the dynamic-programming table."""
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    rng = random.Random(7)
    vocab = "a b c d e f".split()
    for trial in range(30):
        texts = [" ".join(rng.choice(vocab) for _ in range(rng.choice([1, 2, 3, 5, 8, 13]))) for _ in range(12)]
        texts += texts[:2]  # exact repeats: the largest count is tied
        toks = [tokenize(t) for t in texts]
        sm = SmoothingFunction().method1
        want = sum(sentence_bleu(toks[:i] + toks[i + 1:], h, smoothing_function=sm)
                   for i, h in enumerate(toks)) / len(toks)
        assert self_bleu(texts, max_samples=100) == pytest.approx(want, abs=1e-12), trial
        a, b = toks[0], toks[3]
        assert edit_distance(a, b) == _python_levenshtein(a, b)
    assert self_bleu(["航班晚点了", "航班准点"]) == pytest.approx(
        sentence_bleu([list("航班准点")], list("航班晚点了"), smoothing_function=SmoothingFunction().method1) / 2
        + sentence_bleu([list("航班晚点了")], list("航班准点"), smoothing_function=SmoothingFunction().method1) / 2)


def test_record_row_failed_and_unavailable_carry_no_numbers(tmp_path):
    r = fake_record(status="failed", reason="boom")
    r["metrics"] = {"macro_f1": 0.9, "accuracy": 0.9}  # even if a failed record has numbers
    row = record_to_row(r, tmp_path)
    assert math.isnan(row["macro_f1"]) and row["status"] == "failed"
    ok = record_to_row(fake_record(view="10shot", method="diffusioncls", synthetic_path="synthetic/x.jsonl", step_group=4),
                       tmp_path)
    assert ok["shots"] == 10 and math.isnan(ok["fraction"]) and ok["sweep_value"] == 4 and ok["sweep_param"] == "step_group"
    assert ok["synthetic_path"] == str(tmp_path / "synthetic" / "x.jsonl")
    assert frame_from_records([fake_record(), fake_record(seed=1)])["seed"].tolist() == [0, 1]


def test_parents_fall_back_to_cached_views(tmp_path):
    import json

    from bench.report.diversity import TrainData, measure

    (tmp_path / "cache" / "views").mkdir(parents=True)
    (tmp_path / "cache" / "views" / "d__5pct.jsonl").write_text(
        json.dumps({"id": "p1", "text": "the crew was kind", "label": "positive"}) + "\n", encoding="utf-8")
    td = TrainData(None, tmp_path)
    assert td.parents("d") == {"p1": "the crew was kind"}
    m = measure([{"text": "the crew was rude", "label": "positive", "parent_id": "p1", "provenance": {}}],
                classifier=lambda t: ["positive"] * len(t), parents=td.parents("d"))
    assert m["edit_to_parent"] == pytest.approx(0.25) and m["consistency"] == 1.0
    assert math.isnan(measure([{"text": "x y", "label": "a", "parent_id": "zz"}])["edit_to_parent"])


def test_an_axis_sweep_folds_into_its_configuration_other_parameters_do_not():
    """From the records' registry facts (base, overrides, declared axes), never from the name's text."""
    from bench.records import registry_facts
    from bench.report.load import configuration
    from bench.runner import method_info

    def conf(name, params):
        facts = registry_facts(name)
        info = method_info(type("A", (), {"describe": lambda self: {
            "version": "1", "params": params, "seed": 0, "needs_fit": True, "languages": ["en"], "citation": "",
            "substitutes": [], "axes": facts["axes"]}})(), facts)
        return configuration(info)

    assert conf("diffusioncls[step_group=3]", {"step_group": 3}) == ("diffusioncls", "step_group", 3)
    assert conf("diffusioncls[lam=0]", {"step_group": 4}) == ("diffusioncls[lam=0]", "step_group", 4)
    assert conf("diffusioncls[step_group=3;lam=0]", {"step_group": 3})[0] == "diffusioncls[lam=0]"
    assert conf("diffusioncls-wo-nrt", {"step_group": 4})[0] == "diffusioncls-wo-nrt"
    assert conf("eda", {"alpha": 0.1}) == ("eda", None, None)
