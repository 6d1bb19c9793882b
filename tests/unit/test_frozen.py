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
    one = torch.load(cached[0])  # a text's own entries only, not the storage of the batch it came in
    assert one.untyped_storage().nbytes() == one.numel() * one.element_size()
    assert res.steps == 30 and res.history[-1]["loss"] < res.history[0]["loss"] + 1.0
    # inputs standardised per dimension with the training texts' features
    enc = res.classifier.tokenizer([e.text for e in view], truncation=True, max_length=16, padding=True,
                                   return_tensors="pt")
    feats = model.features(enc["input_ids"], enc["attention_mask"])
    assert torch.allclose(model.feat_mean, feats.mean(0), atol=1e-5)
    assert torch.allclose(model.feat_std, feats.std(0, unbiased=False), atol=1e-5)
    d = tmp_path / "clf"
    res.classifier.save(d)
    back = TrainedClassifier.load(d)
    texts = [e.text for e in view[:5]]
    assert back.predict_proba(texts) == pytest.approx(res.classifier.predict_proba(texts), abs=1e-6)
    assert res.classifier.backbone.startswith("frozen:")


@pytest.mark.parametrize("fixture", ["tiny_gemma3_dir", "tiny_llama_dir"])
def test_the_frozen_encoder_has_the_checkpoints_weights(fixture, request):
    """A causal-LM checkpoint's base, every weight from the file (AutoModel alone gives Gemma 3 a random
    base in transformers 5: the first frozen-Gemma features were computed from one)."""
    from transformers import AutoModelForCausalLM

    from bench.frozen import load_encoder

    path = request.getfixturevalue(fixture)
    enc = load_encoder(str(path))
    want = AutoModelForCausalLM.from_pretrained(str(path)).get_decoder().state_dict()
    got = enc.state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)


@pytest.mark.parametrize("fixture", ["tiny_gemma3_dir", "tiny_llama_dir"])
def test_the_heads_first_weights_follow_the_seed_not_the_load(fixture, request, monkeypatch):
    """Loading a checkpoint may draw random numbers (initialising weights it then overwrites); the head
    must start from the same weights as one built right after seeding, whatever the load drew."""
    import bench.frozen as frozen

    path = str(request.getfixturevalue(fixture))
    torch.manual_seed(7)
    _, model = frozen.load_frozen(f"frozen:{path}", 3, 16)
    torch.manual_seed(7)
    want = frozen.FrozenFeatureModel(model.encoder, 3, model.feature_dir)
    for a, b in zip([*model.head.parameters(), *model.out.parameters()],
                    [*want.head.parameters(), *want.out.parameters()]):
        assert torch.equal(a, b)
    real = frozen.load_encoder

    def drawing(p):  # a load that draws more random numbers than the real one changes nothing
        torch.rand(1000)
        return real(p)

    monkeypatch.setattr(frozen, "load_encoder", drawing)
    torch.manual_seed(7)
    _, again = frozen.load_frozen(f"frozen:{path}", 3, 16)
    assert torch.equal(again.out.weight, model.out.weight)


def test_a_checkpoint_without_the_weights_is_an_error(tiny_gemma3_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    from bench.api.hub import ModelNotAvailable
    from bench.frozen import load_encoder

    d = tmp_path / "cut"
    shutil.copytree(tiny_gemma3_dir, d)
    state = load_file(d / "model.safetensors")
    save_file({k: v for k, v in state.items() if ".layers.1." not in k}, d / "model.safetensors")
    with pytest.raises(ModelNotAvailable, match="random weights"):
        load_encoder(str(d))


def test_frozen_classifiers_are_keyed_by_the_feature_version():
    from bench.frozen import FEATURES_VERSION

    assert ClassifierConfig(backbone="frozen:gemma3").key()["frozen_features"] == FEATURES_VERSION
    assert "frozen_features" not in ClassifierConfig(backbone="minilm").key()


def test_a_layer_other_than_the_last(tiny_llama_dir, tmp_path, monkeypatch):
    """``frozen:<model>@<layer>`` reads that layer's mean-pooled states; the last layer's pass caches every layer."""
    from transformers import AutoModel

    from bench.api.hub import frozen_parts
    from bench.frozen import load_frozen

    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    assert frozen_parts("frozen:gemma3") == ("gemma3", None) and frozen_parts("frozen:gemma3@12") == ("gemma3", 12)
    with pytest.raises(ValueError, match="integer"):
        frozen_parts("frozen:gemma3@top")
    tok, last = load_frozen(f"frozen:{tiny_llama_dir}", 2, 16)
    _, first = load_frozen(f"frozen:{tiny_llama_dir}@1", 2, 16)
    enc = tok(["the crew was kind", "late again"], return_tensors="pt", padding=True)
    ref = AutoModel.from_pretrained(str(tiny_llama_dir))(**enc, output_hidden_states=True).hidden_states
    m = enc["attention_mask"][..., None].float()
    for model, h in ((first, ref[1]), (last, ref[-1])):
        got = model.features(enc["input_ids"], enc["attention_mask"])
        assert torch.allclose(got, (h * m).sum(1) / m.sum(1), atol=1e-5)
    assert len(list((tmp_path / "home" / "features").rglob("*.pt"))) == 2  # shared by both layers
    with pytest.raises(ValueError, match="out of range"):
        load_frozen(f"frozen:{tiny_llama_dir}@9", 2, 16)


def test_a_shallow_layer_runs_only_the_layers_it_reads(tiny_tok_dir, tmp_path, monkeypatch):
    """Layer 1 of 4 runs 2 decoder layers and caches their states; the last layer then recomputes the
    texts (4 layers, the final norm's entry last), and layer 1 and -2 read the deeper entries right."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from bench.frozen import load_frozen
    from tests.tiny_models import _ids, _save

    monkeypatch.setenv("BENCH_HOME", str(tmp_path / "home"))
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=2,
                           num_key_value_heads=1, head_dim=16, max_position_embeddings=128, sliding_window=4,
                           **_ids(tiny_tok_dir))
    path = _save(Gemma3ForCausalLM(cfg), tiny_tok_dir, tmp_path / "g4")
    tok, shallow = load_frozen(f"frozen:{path}@1", 2, 16)
    enc = tok(["the crew was kind to us", "late again"], return_tensors="pt", padding=True)
    ref = Gemma3ForCausalLM.from_pretrained(str(path)).get_decoder()(**enc, output_hidden_states=True).hidden_states
    m = enc["attention_mask"][..., None].float()
    pooled = [(h * m).sum(1) / m.sum(1) for h in ref]
    calls = []
    for layer in shallow.encoder.layers:
        layer.register_forward_hook(lambda *a: calls.append(1))
    assert torch.allclose(shallow.features(enc["input_ids"], enc["attention_mask"]), pooled[1], atol=1e-5)
    assert len(calls) == 2 and len(shallow.encoder.layers) == 4  # two layers run, the model left whole
    cached = list((tmp_path / "home" / "features").rglob("*.pt"))
    assert len(cached) == 2 and all(len(torch.load(f)) == 2 for f in cached)
    _, last = load_frozen(f"frozen:{path}", 2, 16)
    assert torch.allclose(last.features(enc["input_ids"], enc["attention_mask"]), pooled[-1], atol=1e-5)
    assert all(len(torch.load(f)) == 5 for f in cached)
    for spec, want in ((f"frozen:{path}@1", pooled[1]), (f"frozen:{path}@-2", pooled[3])):
        _, model = load_frozen(spec, 2, 16)
        model.encoder.forward = None  # read from the cache: no encoder pass
        assert torch.allclose(model.features(enc["input_ids"], enc["attention_mask"]), want, atol=1e-5)


def test_head_lr_is_a_frozen_heads_rate_and_only_its_key():
    """English (fine-tuned) classifier keys, and so every record made before head_lr existed, are unchanged."""
    from dataclasses import asdict

    from bench.classifier import effective_lr

    tuned = ClassifierConfig(backbone="minilm", lr=1e-4, head_lr=3e-4)
    frozen = ClassifierConfig(backbone="frozen:gemma3@9", lr=1e-4, head_lr=3e-4)
    assert effective_lr(tuned) == 1e-4 and "head_lr" not in tuned.key()
    assert effective_lr(frozen) == 3e-4 and frozen.key()["head_lr"] == 3e-4
    assert effective_lr(ClassifierConfig(backbone="frozen:gemma3", lr=2e-4)) == 2e-4  # unset: lr
    assert set(tuned.key()) == set(asdict(ClassifierConfig(backbone="minilm"))) - {"device", "eval_batch_size",
                                                                                  "budget_unit", "head_lr"} | {"protocol"}
