"""The contract every registered augmenter keeps, checked for each one.

list in / list out; counts met or the shortfall recorded; same seed -> same output; labels and
parent ids carried; input not mutated; fit required where declared; unavailability explained.
"""

from __future__ import annotations

import copy

import pytest

from bench.api import AugmenterError, Example, FitContext, MethodUnavailable, Synthetic
from bench.classifier import ClassifierConfig, train_classifier
from methods import METHODS
from tests.contract.tiny_setups import TINY
from tests.helpers import sentences

LABELS = ("negative", "neutral", "positive")


@pytest.fixture(scope="module")
def train():
    return [Example(f"e{i}", t, lab) for i, (t, lab) in enumerate(sentences(6, seed=1))]


@pytest.fixture(scope="module")
def proxy(train, tiny_bert_dir):
    cfg = ClassifierConfig(backbone=str(tiny_bert_dir), epochs=1, max_length=24)
    return train_classifier(train, train[:6], LABELS, cfg, seed=0).classifier


@pytest.fixture()
def tiny_params(request):
    def resolve(name):
        out = {}
        for k, v in TINY.get(name, {}).items():
            if isinstance(v, str) and v.startswith("fixture:"):
                v = str(request.getfixturevalue(v.split(":", 1)[1]))
            out[k] = v
        return out

    return resolve


def _context(proxy, tiny_bert_dir, tmp_path, seed=0):
    return FitContext(language="en", labels=LABELS, seed=seed, backbone=str(tiny_bert_dir),
                      cache_root=tmp_path / "cache", proxy_factory=lambda: proxy)


def _make(name, tiny, seed):
    entry = METHODS.get(name)
    return entry.load()(seed=seed, **{**entry.params, **tiny(name)})


def _run(name, train, proxy, tiny_bert_dir, tmp_path, tiny, seed=7, counts=2):
    aug = _make(name, tiny, seed)
    try:
        aug.fit(train, _context(proxy, tiny_bert_dir, tmp_path))
    except MethodUnavailable as err:
        assert str(err).strip(), "unavailable without a reason"
        pytest.skip(f"{name} unavailable here: {err}")
    return aug, aug.augment(train, counts)


@pytest.mark.parametrize("name", METHODS.names())
def test_batch_in_batch_out_counts_and_provenance(name, train, proxy, tiny_bert_dir, tmp_path, tiny_params):
    before = copy.deepcopy(train)
    aug, res = _run(name, train, proxy, tiny_bert_dir, tmp_path, tiny_params)
    assert train == before, "augment mutated its input"
    assert isinstance(res.synthetic, list)
    assert all(isinstance(s, Synthetic) and isinstance(s.text, str) for s in res.synthetic)
    parents = {e.id: e for e in train}
    for s in res.synthetic:
        assert s.parent_id in parents
        assert s.label in LABELS
        assert s.method == aug.meta.name
        assert s.text.strip(), "empty pseudo sample"
    if name == "none":
        assert res.synthetic == []
        return
    # counts met, or the shortfall recorded exactly
    made = {}
    for s in res.synthetic:
        made[s.parent_id] = made.get(s.parent_id, 0) + 1
    assert res.requested == 2 * len(train)
    for e in train:
        assert made.get(e.id, 0) + res.shortfall.get(e.id, 0) >= 2 or aug.meta.name in ("lambada",)
    assert res.produced + sum(res.shortfall.values()) >= res.requested or aug.meta.name in ("lambada",)


@pytest.mark.parametrize("name", METHODS.names())
def test_labels_carried(name, train, proxy, tiny_bert_dir, tmp_path, tiny_params):
    _, res = _run(name, train, proxy, tiny_bert_dir, tmp_path, tiny_params)
    parents = {e.id: e for e in train}
    for s in res.synthetic:
        assert s.label == parents[s.parent_id].label


@pytest.mark.parametrize("name", METHODS.names())
def test_same_seed_same_output(name, train, proxy, tiny_bert_dir, tmp_path, tiny_params):
    _, a = _run(name, train, proxy, tiny_bert_dir, tmp_path / "a", tiny_params, seed=11)
    _, b = _run(name, train, proxy, tiny_bert_dir, tmp_path / "b", tiny_params, seed=11)
    assert [(s.text, s.parent_id) for s in a.synthetic] == [(s.text, s.parent_id) for s in b.synthetic]


@pytest.mark.parametrize("name", METHODS.names())
def test_fit_required_where_declared(name, train, tiny_params):
    aug = _make(name, tiny_params, 0)
    if aug.meta.needs_fit:
        with pytest.raises(AugmenterError, match="fit"):
            aug.augment(train, 1)


@pytest.mark.parametrize("name", METHODS.names())
def test_unknown_parameter_rejected(name):
    with pytest.raises(AugmenterError, match="unknown parameter"):
        METHODS.get(name).load()(seed=0, no_such_param=1)


@pytest.mark.parametrize("name", METHODS.names())
def test_metadata_is_complete(name):
    cls = METHODS.get(name).load()
    m = cls.meta
    assert m.name and m.version and m.description and m.languages and m.policies
    assert set(m.policies) <= {"G/E", "B/D", "-"}


def test_model_based_methods_have_tiny_setups():
    """Every method that loads a generator model must run on tiny models here (no real model in CI's fast suite)."""
    for entry in METHODS:
        cls = entry.load()
        if cls.meta.paper_model and entry.name not in ("backtranslation", "nlpaug-glove") and not cls.__module__.startswith("methods.diffusioncls"):
            assert entry.name in TINY, f"{entry.name} needs a tiny set-up in tests/contract/tiny_setups.py"
