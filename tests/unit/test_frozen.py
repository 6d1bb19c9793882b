"""The frozen-feature classifier: the encoder never changes, features are cached, the head trains and
round-trips through save/load, and the step protocol treats it like any classifier."""

from __future__ import annotations

import pytest
import torch

from bench.api import Example
from bench.classifier import ClassifierConfig, TrainedClassifier, train_classifier

LABELS = ["neg", "pos"]


def _view(n):
    words = {"neg": "awful late rude", "pos": "lovely kind great"}
    return [Example(f"e{i}", f"the crew was {words[LABELS[i % 2]].split()[i % 3]} today {i}", LABELS[i % 2])
            for i in range(n)]


def test_a_frozen_encoder_under_a_trained_head(tiny_llama_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    cfg = ClassifierConfig(backbone=f"frozen:{tiny_llama_dir}", epochs=1, min_steps=30, batch_size=8, evals=3,
                           patience=99, max_length=16, lr=1e-2)
    view = _view(24)
    res = train_classifier(view, view[:6], LABELS, cfg, seed=0, budget_items=48)
    model = res.classifier.model
    fresh = type(model.encoder).from_pretrained(str(tiny_llama_dir))
    for (n, a), (_, b) in zip(model.encoder.named_parameters(), fresh.named_parameters()):
        assert torch.equal(a, b), f"the frozen encoder changed: {n}"
    cached = list((tmp_path / "home" / "features").rglob("*.pt"))
    assert len(cached) == len({e.text for e in view})  # one feature file per distinct text, computed once
    assert res.steps == 30 and res.history[-1]["loss"] < res.history[0]["loss"] + 1.0
    d = tmp_path / "clf"
    res.classifier.save(d)
    back = TrainedClassifier.load(d)
    texts = [e.text for e in view[:5]]
    assert back.predict_proba(texts) == pytest.approx(res.classifier.predict_proba(texts), abs=1e-6)
    assert res.classifier.backbone.startswith("frozen:")
