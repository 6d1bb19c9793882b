"""The training protocol: the same step budget and dev checks for every method of a view, no early stop
before the minimum, a learning-rate schedule that counts the steps that run."""

from __future__ import annotations

import random

import pytest

from bench.api import Example, Synthetic
from bench.classifier import ClassifierConfig, train_classifier
from bench.training import Item, grouped_batches, plain_batches, schedule_for

LABELS = ["neg", "pos"]


def _view(n):
    return [Example(f"e{i}", f"the flight was {'good' if i % 2 else 'bad'} number {i}", LABELS[i % 2]) for i in range(n)]


def _synth(view, k):
    return [Synthetic(f"{e.text} again {j}", e.label, e.id, "test") for e in view for j in range(k)]


def test_none_and_a_ge_method_get_the_same_steps_and_dev_checks(tiny_bert_dir):
    view = _view(20)
    cfg = ClassifierConfig(backbone=str(tiny_bert_dir), epochs=1, batch_size=8, evals=4, patience=99, max_length=16)
    budget = len(view) * (1 + 4)  # what the runner passes: a G/E-sized set of the view
    none = train_classifier(view, view[:4], LABELS, cfg, seed=0, budget_items=budget)
    ge = train_classifier(view, view[:4], LABELS, cfg, seed=0, synthetic=_synth(view, 4), budget_items=budget)
    assert none.schedule == ge.schedule and none.schedule.total_steps == 13  # ceil(100 / 8)
    assert none.steps == ge.steps == 13
    assert [h["step"] for h in none.history] == [h["step"] for h in ge.history] == [4, 8, 12, 13]
    # the same steps are 5 passes over none's 20 originals and 1 over the G/E set's 100 items
    assert none.history[-1]["epoch"] == pytest.approx(13 / 3, abs=1e-3) and ge.history[-1]["epoch"] == 1.0


def test_a_small_view_is_not_stopped_before_the_minimum(tiny_bert_dir):
    """10 steps a pass over the view; patience 1 would stop at the second check of an epoch protocol."""
    view = _view(80)
    dev = [Example("d0", "zzz", "neg"), Example("d1", "zzz", "pos")]  # dev F1 cannot improve: constant input
    cfg = ClassifierConfig(backbone=str(tiny_bert_dir), epochs=1, batch_size=8, evals=10, patience=1,
                           min_train=0.5, max_length=16)
    res = train_classifier(view, dev, LABELS, cfg, seed=0, budget_items=len(view) * 5)
    assert res.schedule.total_steps == 50 and res.schedule.min_steps_before_stop == 25
    assert res.stopped_early and res.steps == 25  # the first check at or after the minimum
    assert all(h["step"] <= 25 for h in res.history) and len(res.history) == 5


def test_the_learning_rate_counts_the_steps_that_run(tiny_bert_dir):
    """Grouped batches (an original with its pseudo samples) used to make more batches than the schedule
    planned, so the last steps ran at learning rate 0."""
    view = _view(12)
    cfg = ClassifierConfig(backbone=str(tiny_bert_dir), epochs=1, batch_size=8, evals=2, patience=99, max_length=16,
                           group_batches=True, originals_per_batch=1, warmup=0.0)
    res = train_classifier(view, view[:2], LABELS, cfg, seed=0, synthetic=_synth(view, 4), budget_items=60)
    assert res.steps == res.schedule.total_steps == 13  # 8 batches of 8 = 64 texts, in groups of 1 + 4
    lrs = [h["lr"] for h in res.history]
    assert lrs[-1] > 0 and lrs[0] > lrs[-1]


def test_grouped_batches_get_the_views_texts_not_its_steps(tiny_bert_dir):
    """Groups of 2 originals with 4 pseudo samples each are 10 texts a step: the budget of 13 plain steps of
    8 texts (104 texts) is 10 grouped steps by default, and 13 (130 texts) with budget_unit="steps"."""
    view = _view(20)
    base = dict(backbone=str(tiny_bert_dir), epochs=1, batch_size=8, evals=2, patience=99, max_length=16)
    none = train_classifier(view, view[:2], LABELS, ClassifierConfig(**base), seed=0, budget_items=100)
    runs = {unit: train_classifier(view, view[:2], LABELS, ClassifierConfig(**base, group_batches=True,
                                   originals_per_batch=2, budget_unit=unit), seed=0, synthetic=_synth(view, 4),
                                   budget_items=100) for unit in ("texts", "steps")}
    assert none.steps == 13 and none.stats["texts_per_step"] == 8
    assert runs["texts"].steps == 10 and runs["texts"].stats == {**runs["texts"].stats, "texts_per_step": 10.0,
                                                                   "budget_unit": "texts"}
    assert runs["steps"].steps == 13 and runs["steps"].stats["budget_unit"] == "steps"
    assert [h["step"] for h in runs["texts"].history] == [5, 10]


def test_the_budget_unit_keys_only_grouped_classifiers():
    """Plain batches give the same schedule in either unit, so their cache keys (and every record made
    before the unit existed) stay as they were; grouped classifiers are keyed by it."""
    plain = [ClassifierConfig(budget_unit=u).key() for u in ("texts", "steps")]
    grouped = [ClassifierConfig(group_batches=True, budget_unit=u).key() for u in ("texts", "steps")]
    assert plain[0] == plain[1] and "budget_unit" not in plain[0]
    assert grouped[0] != grouped[1]
    with pytest.raises(ValueError, match="budget_unit"):
        ClassifierConfig(budget_unit="epochs")


def test_schedule_and_batches_are_what_they_say():
    s = schedule_for(budget_items=2530, batch_size=16, epochs=4, min_steps=640, evals=16, patience=4, min_train=0.5)
    assert (s.total_steps, s.eval_every, s.min_steps_before_stop) == (640, 40, 320)
    g = schedule_for(budget_items=2530, batch_size=16, epochs=4, min_steps=640, evals=16, patience=4, min_train=0.5,
                     texts_per_step=80)  # 16 originals + 64 pseudo samples: the same 10,240 texts
    assert (g.total_steps, g.eval_every, g.min_steps_before_stop) == (128, 8, 64)
    assert s.eval_steps()[:2] == [40, 80] and s.eval_steps()[-1] == 640
    items = [Item(tuple(range(i % 7 + 1)), i % 2, True) for i in range(40)]
    stream = plain_batches(items, 8, random.Random(0), bucket=5)
    first_pass = [next(stream) for _ in range(5)]
    assert sorted(i for b in first_pass for i in b) == list(range(40))  # one pass = every item once
    assert sum(max(len(items[i].ids) for i in b) - min(len(items[i].ids) for i in b) for b in first_pass) < 10
    kids = [Item((1,), 0, True), Item((1,), 1, True), Item((2,), 0, False, 0), Item((2,), 1, False, 1),
            Item((3,), 1, False, -1)]
    g = grouped_batches(kids, 1, 8, random.Random(0))
    batches = [sorted(next(g)) for _ in range(3)]
    assert sorted(batches) == [[0, 2], [1, 3], [4]]  # each original with its own pseudo samples; orphans apart


def test_sibling_diversity_counts_distinct_texts_and_word_overlap():
    from bench.api.augmenter import sibling_diversity

    s = [Synthetic("a b c", "x", "p", "m"), Synthetic("a b d", "x", "p", "m"), Synthetic("a b c", "x", "p", "m"),
         Synthetic("alone", "x", "r", "m")]
    d = sibling_diversity(s)
    assert d["siblings_distinct_mean"] == 2.0  # parent p: 2 distinct of 3; r has one sample and is left out
    assert d["siblings_jaccard_mean"] == pytest.approx((0.5 + 1.0 + 0.5) / 3, abs=1e-4)
    assert sibling_diversity([Synthetic("其他", "x", "p", "m"), Synthetic("其它", "x", "p", "m")])[
        "siblings_jaccard_mean"] == pytest.approx(1 / 3, abs=1e-4)


def test_head_only_pseudo_samples_train_the_head_even_in_a_batch_without_originals(tiny_bert_dir):
    """The reference code's training on plain batches: a batch may hold no original; its pseudo samples
    then reach the classification head and nothing else."""
    import torch
    from transformers import AutoModelForSequenceClassification

    from bench.training import head_only_forward

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    ids = torch.randint(5, 50, (3, 6))
    loss = torch.nn.functional.cross_entropy(head_only_forward(model, ids, torch.ones_like(ids)), torch.tensor([0, 1, 0]))
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is None or not g.any() for n, g in grads.items() if n.startswith(model.base_model_prefix + "."))
    assert any(g is not None and g.any() for n, g in grads.items() if not n.startswith(model.base_model_prefix + "."))
    view = _view(4)
    cfg = ClassifierConfig(backbone=str(tiny_bert_dir), epochs=1, batch_size=2, evals=2, patience=99, max_length=16,
                           pseudo_grad="head", ce_weighting="balanced", bucket=1)
    res = train_classifier(view, view[:2], LABELS, cfg, seed=0, synthetic=_synth(view, 4), budget_items=20)
    assert res.steps == 10  # 4 originals among 20 items in batches of 2: some batches hold none


def test_the_contrastive_terms_gradient_is_probed_at_the_first_step_and_before_each_check(tiny_bert_dir):
    """The record says how the contrastive term's gradient compares with the cross-entropy's (the paper's
    loss collapsed the classifier; this is the measurement that says why); without the term, no probe."""
    view = _view(20)
    base = dict(backbone=str(tiny_bert_dir), epochs=1, batch_size=8, evals=2, patience=99, max_length=16,
                group_batches=True, originals_per_batch=2)
    with_lc = train_classifier(view, view[:2], LABELS, ClassifierConfig(**base, nrt_weight=1.0, nrt_tau=0.05),
                               seed=0, synthetic=_synth(view, 4), budget_items=100)
    probes = with_lc.stats["gradient_probe"]
    assert [p["step"] for p in probes] == [0, 4, 9]  # dev checks at steps 5 and 10 (1-based)
    for p in probes:
        assert p["ce_grad_norm"] > 0 and -1 <= p["cosine"] <= 1
        assert (p["contrastive_grad_norm"] > 0) == (p["cross_label_pairs"] > 0)  # 2 originals: may share a label
        assert p["ratio"] == pytest.approx(p["contrastive_grad_norm"] / p["ce_grad_norm"], rel=1e-2, abs=1e-3)
    assert any(p["cross_label_pairs"] for p in probes)
    without = train_classifier(view, view[:2], LABELS, ClassifierConfig(**base), seed=0,
                               synthetic=_synth(view, 4), budget_items=100)
    assert "gradient_probe" not in without.stats


def test_the_gradient_probe_does_not_change_the_training(tiny_bert_dir, monkeypatch):
    """The probe takes gradients of the same graph before the step's backward pass: the dev curve and the
    final weights are those of a run without it."""
    import torch

    from bench import classifier as C

    view = _view(20)
    cfg = ClassifierConfig(backbone=str(tiny_bert_dir), epochs=1, batch_size=8, evals=2, patience=99, max_length=16,
                           group_batches=True, originals_per_batch=4, nrt_weight=1.0, nrt_tau=0.05)
    probed = train_classifier(view, view[:4], LABELS, cfg, seed=0, synthetic=_synth(view, 4), budget_items=100)
    monkeypatch.setattr(C._Loop, "probe_gradients", lambda self, ce, lc: None)
    plain = train_classifier(view, view[:4], LABELS, cfg, seed=0, synthetic=_synth(view, 4), budget_items=100)
    assert "gradient_probe" in probed.stats and "gradient_probe" not in plain.stats
    assert probed.history == plain.history
    a, b = probed.classifier.model.state_dict(), plain.classifier.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
