"""Augmenter.resource_key: which models a method's fit would load here, resolved without loading.

The runner keys its cache of pseudo samples on it, so samples made by one generator (an offline
stand-in, an older build of a backbone, another masked LM) are never served for another.
"""

from __future__ import annotations

import pytest

from bench.api import FitContext, MethodUnavailable
from methods import METHODS
from tests.tiny_models import LABELS


def ctx(language="en", backbone="minilm") -> FitContext:
    return FitContext(language=language, labels=LABELS, seed=0, backbone=backbone)


def make(name, **params):
    entry = METHODS.get(name)
    return entry.load()(seed=0, **{**entry.params, **params})


def test_rule_methods_depend_on_no_model_and_unsupported_languages_fail_as_fit_would():
    assert make("aeda").resource_key(ctx()) == {}
    with pytest.raises(MethodUnavailable, match="does not support language 'xx'"):
        make("aeda").resource_key(ctx(language="xx"))


def test_lm_methods_name_the_hub_model_when_found_else_the_offline_stand_in(tiny_gpt2_dir, tiny_llama_dir):
    hub = make("lambada", model=str(tiny_gpt2_dir)).resource_key(ctx())
    assert hub == {"generator": str(tiny_gpt2_dir), "path": str(tiny_gpt2_dir), "kind": "causal",
                   "engine": "transformers"}
    fallback = make("lambada", model="no-such-org/no-such-model", offline_model=str(tiny_llama_dir))
    assert fallback.resource_key(ctx())["path"] == str(tiny_llama_dir)
    genius = make("genius", model=str(tiny_gpt2_dir)).resource_key(ctx())
    assert genius["kind"] == "seq2seq"  # GENIUS's hub model is a sketch-to-text seq2seq model
    with pytest.raises(MethodUnavailable, match="no causal LM for 'zh'"):
        make("lambada", model="no-such-org/x", offline_model="").resource_key(ctx(language="zh"))


def test_an_offline_gguf_stand_in_is_named_by_its_file_without_building_it(tmp_path, monkeypatch):
    from methods.common import lm

    gguf = tmp_path / "stand-in.gguf"
    gguf.write_bytes(b"0" * 10)

    def never():
        raise AssertionError("the de-quantised copy must not be built to name the model")

    monkeypatch.setitem(lm.OFFLINE_LMS, "fake-lm", lm.OfflineLM("fake-lm", "a fake", never, lambda: gguf))
    key = make("lambada", model="no-such-org/x", offline_model="fake-lm").resource_key(ctx())
    assert key["generator"] == "fake-lm" and key["gguf"] == ["stand-in.gguf", 10]
    gguf.write_bytes(b"0" * 11)  # another file is another generator
    assert make("lambada", model="no-such-org/x", offline_model="fake-lm").resource_key(ctx()) != key


def test_diffusioncls_names_its_masked_lm(tiny_bert_dir, tmp_path):
    from bench.api.resources import build_identity

    key = make("diffusioncls").resource_key(ctx(backbone=str(tiny_bert_dir)))
    # the tiny BERT ships an MLM head: the masked LM is the checkpoint itself, named by its build
    assert key == {"generator_backbone": str(tiny_bert_dir), "build": None, "mlm": build_identity(tiny_bert_dir)}
    assert make("diffusioncls", generate=False).resource_key(ctx(backbone=str(tiny_bert_dir))) == {}


def test_a_masked_lm_without_a_head_is_named_by_the_adaptation_recipe(tmp_path, monkeypatch):
    from methods.common import mlm

    d = tmp_path / "encoder"
    d.mkdir()
    (d / "config.json").write_text("{}")
    monkeypatch.setattr(mlm, "has_trained_mlm_head", lambda path: False)
    first = mlm.mlm_identity(str(d))
    assert first.startswith("adapted@")
    monkeypatch.setitem(mlm.ADAPT_DEFAULTS, "seed", mlm.ADAPT_DEFAULTS["seed"] + 1)
    assert mlm.mlm_identity(str(d)) != first  # another recipe, another masked LM


def test_backtranslation_names_the_marian_models_or_the_apertium_pairs(tiny_marian_dirs):
    key = make("backtranslation", engine="marian", models=[tiny_marian_dirs[:2]]).resource_key(ctx())
    assert [m for m, _ in key["marian"]] == tiny_marian_dirs[:2]
    with pytest.raises(MethodUnavailable, match="MarianMT models not available"):
        make("backtranslation", engine="marian", models=[["no-such/a", "no-such/b"]]).resource_key(ctx())
    assert "apertium" in make("backtranslation", engine="apertium").resource_key(ctx())
