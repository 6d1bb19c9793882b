"""A classifier backbone is fine-tuned from its checkpoint's weights, never silently from random ones."""

from __future__ import annotations

import shutil

import pytest

from bench.api.hub import ModelNotAvailable
from bench.classifier import ClassifierConfig, check_loaded, load_backbone


def test_a_masked_lm_checkpoint_loads_with_only_the_new_head_missing(tiny_bert_dir):
    tok, model = load_backbone(ClassifierConfig(backbone=str(tiny_bert_dir)), ["neg", "pos"])
    assert model.config.num_labels == 2


def test_missing_encoder_weights_are_an_error(tiny_bert_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    d = tmp_path / "cut"
    shutil.copytree(tiny_bert_dir, d)
    state = load_file(d / "model.safetensors")
    save_file({k: v for k, v in state.items() if ".layer.1." not in k}, d / "model.safetensors")
    with pytest.raises(ModelNotAvailable, match="random weights"):
        load_backbone(ClassifierConfig(backbone=str(d)), ["neg", "pos"])


def test_only_head_and_pooler_may_be_new():
    check_loaded("x", "p", ["classifier.weight", "score.bias", "bert.pooler.dense.weight"])
    with pytest.raises(ModelNotAvailable, match="1 encoder weights"):
        check_loaded("x", "p", ["classifier.weight", "bert.encoder.layer.0.attention.self.query.weight"])
