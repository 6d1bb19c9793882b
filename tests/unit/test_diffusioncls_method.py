"""DiffusionCLS as an augmenter: fit/augment with a tiny proxy, caching, ablations, NRT loss."""

from __future__ import annotations

import math

import pytest
import torch

from bench.api import AugmenterError, Example, FitContext

LABELS = ("negative", "neutral", "positive")
WORDS = {"negative": "delayed rude lost awful", "neutral": "flight gate seat today", "positive": "great thanks love crew"}
TRAIN = [Example(f"t{i}-{lab}", f"@united the {WORDS[lab].split()[i % 4]} flight was {WORDS[lab].split()[(i + 1) % 4]}", lab)
         for i in range(4) for lab in LABELS]
TINY = {"dlm_epochs": 1, "dlm_batch_size": 8, "gen_batch_size": 16}


@pytest.fixture(scope="module")
def proxy(tiny_bert_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bench.classifier import ClassifierConfig, TrainedClassifier

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=3).eval()
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    return TrainedClassifier(model, tok, LABELS, ClassifierConfig(backbone=str(tiny_bert_dir)))


def _context(proxy, tmp_path, seed=0, progress=None):
    return FitContext(language="en", labels=LABELS, seed=seed, backbone=proxy.config.backbone,
                      cache_root=tmp_path, proxy_factory=lambda: proxy, progress=progress)


def _method(name, **params):
    from methods import METHODS

    entry = METHODS.get(name)
    return entry.load()(seed=0, **{**entry.params, **params})


def test_contrastive_term_matches_hand_computed_values_in_both_forms():
    from bench.training import contrastive_term

    h = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 1, 1])
    tau = 0.5
    c = 1 / math.sqrt(2)
    # i=0: negatives {1, 2}: cos 0 and c; i=1: {0}: cos 0; i=2: {0}: cos c
    printed = math.log(2 * math.exp(0) + 2 * math.exp(c / tau)) / 3  # Eq. 4: one log outside the double sum
    per_anchor = (math.log(math.exp(0 / tau) + math.exp(c / tau)) + math.log(math.exp(0)) + c / tau) / 3
    assert contrastive_term(h, y, tau).item() == pytest.approx(printed, rel=1e-5)
    assert contrastive_term(h, y, tau, form="per_anchor").item() == pytest.approx(per_anchor, rel=1e-5)
    assert contrastive_term(h, torch.tensor([1, 1, 1]), tau).item() == 0.0


def test_the_per_anchor_form_multiplies_the_gradient_by_about_k():
    from bench.training import contrastive_term

    g = torch.Generator().manual_seed(0)
    ratios = []
    for k in (3, 16):
        h = torch.randn(k, 32, generator=g, requires_grad=True)
        y = torch.arange(k) % 3
        grads = []
        for form in ("printed", "per_anchor"):
            h.grad = None
            contrastive_term(h, y, 0.05, form=form).backward()
            grads.append(h.grad.norm().item())
        ratios.append(grads[1] / grads[0])
    assert 1.5 < ratios[0] < 3.5 and ratios[1] > 3 * ratios[0] / 2  # grows with K (2.9x at K=3, 16.5x at 16)


def test_fit_augment_provenance_determinism_and_cache(proxy, tmp_path):
    lines = []
    m = _method("diffusioncls", **TINY).fit(TRAIN, _context(proxy, tmp_path, progress=lines.append))
    assert m.fit_info["cache_hit"] is False and m.fit_reused is False
    steps = m.fit_info["training"]["steps"]  # a long fit says where it is: its steps, then each epoch
    assert f"diffusion LM step {steps}/{steps}" in " ".join(lines) and lines[-1].startswith("diffusion LM epoch 1/1")
    assert m.fit_work(len(TRAIN)) == steps  # what the grid's ETA prices is the training that ran
    assert m.fit_info["dlm_init"] == "proxy"  # auto: a masked LM with its own trained head -> the paper's init
    res = m.augment(TRAIN[:3], 4)
    assert res.produced == 12 and not res.shortfall
    steps = [s.provenance["step"] for s in res.synthetic]
    assert steps == [13, 14, 15, 16] * 3
    for s in res.synthetic:
        p = s.provenance
        assert s.label == next(e.label for e in TRAIN if e.id == s.parent_id)
        assert p["decoding"] == "greedy" and "[MASK]" in p["masked_text"] and 0 < p["mask_rate"] <= 1
    assert "identical_to_parent" in res.stats and "mean_mask_rate" in res.stats
    again = m.augment(TRAIN[:3], 4)
    assert [s.text for s in again.synthetic] == [s.text for s in res.synthetic]
    # another step group / decoding reuses the same diffusion LM
    m2 = _method("diffusioncls", step_group=2, decoding="iterative", passes=2, **TINY)
    m2.fit(TRAIN, _context(proxy, tmp_path))
    assert m2.fit_info["cache_hit"] is True and m2.fit_info["diffusion_lm_key"] == m.fit_info["diffusion_lm_key"]
    assert m2.fit_reused is True
    assert [s.provenance["step"] for s in m2.augment(TRAIN[:1], 4).synthetic] == [5, 6, 7, 8]
    # label prompt off trains another LM
    m3 = _method("diffusioncls-wo-lap", **TINY).fit(TRAIN, _context(proxy, tmp_path))
    assert m3.fit_info["diffusion_lm_key"] != m.fit_info["diffusion_lm_key"]
    assert m3.augment(TRAIN[:2], 2).produced == 4


def test_ablation_variants_and_options(proxy, tmp_path):
    full = _method("diffusioncls")
    assert full.classifier_options() == {"nrt_weight": 1.0, "nrt_tau": 0.05, "nrt_form": "printed", "nrt_repr": "cls",
                                         "group_batches": True, "originals_per_batch": 16, "ce_weighting": "pooled",
                                         "pseudo_grad": "full", "budget_unit": "texts"}
    wo_nrt = _method("diffusioncls-wo-nrt").classifier_options()
    assert (wo_nrt["nrt_weight"], wo_nrt["group_batches"]) == (0.0, False)  # plain batches without L_c
    ref = _method("diffusioncls-ref").classifier_options()
    assert (ref["nrt_weight"], ref["ce_weighting"], ref["pseudo_grad"], ref["group_batches"]) == (
        0.0, "balanced", "head", False)
    assert _method("diffusioncls-las-centred").params["importance_norm"] == "centred"
    assert _method("diffusioncls-wo-las").params["lam"] == 0.0
    wo_da = _method("diffusioncls-wo-da").fit(TRAIN, _context(proxy, tmp_path))
    res = wo_da.augment(TRAIN, 4)
    assert res.produced == 0 and "w/o D.A." in res.stats["note"]
    assert wo_da.classifier_options()["nrt_weight"] == 1.0
    with pytest.raises(AugmenterError):
        _method("diffusioncls", nonsense=1)
    with pytest.raises(AugmenterError):
        _method("diffusioncls", decoding="beam")
    with pytest.raises(AugmenterError):
        _method("diffusioncls").augment(TRAIN, 1)  # before fit


def test_reflective_hook_generates_from_the_model_in_training(proxy, tmp_path):
    m = _method("diffusioncls-reflective", reflective_n=2, **TINY).fit(TRAIN, _context(proxy, tmp_path))
    assert m.augment(TRAIN, 4).produced == 0
    hook = m.make_batch_hook()
    batch = [(e.text, e.label, True) for e in TRAIN[:3]] + [("a pseudo one", "neutral", False)]
    proxy.model.train()
    extra = hook(batch, proxy.model, 0)
    assert proxy.model.training  # the hook restores the training mode
    assert len(extra) == 6 and all(not o for _, _, o in extra)
    assert [lab for _, lab, _ in extra] == [e.label for e in TRAIN[:3] for _ in range(2)]
    assert m.reflective_stats["produced"] == 6
    assert _method("diffusioncls").make_batch_hook() is None


def test_diffusion_lm_init_proxy_or_masked_lm(proxy, tiny_bert_dir):
    import copy

    from bench.classifier import TrainedClassifier
    from methods.diffusioncls import diffusion_lm as mlm

    moved = copy.deepcopy(proxy.model)
    with torch.no_grad():
        moved.base_model.encoder.layer[-1].output.dense.weight.add_(1.0)
    p2 = TrainedClassifier(moved, proxy.tokenizer, LABELS, proxy.config)
    key = "encoder.layer.1.output.dense.weight"
    want_proxy = moved.base_model.state_dict()[key]
    m_proxy, _, _ = mlm.build_diffusion_lm(p2, tiny_bert_dir, LABELS, True, init="proxy")
    m_mlm, _, ids = mlm.build_diffusion_lm(p2, tiny_bert_dir, LABELS, True, init="mlm")
    assert torch.equal(m_proxy.base_model.state_dict()[key], want_proxy)
    assert torch.allclose(m_mlm.base_model.state_dict()[key] + 1.0, want_proxy)
    assert set(ids) == set(LABELS)
    with pytest.raises(ValueError, match="unknown diffusion-LM init"):
        mlm.build_diffusion_lm(p2, tiny_bert_dir, LABELS, True, init="nope")
    with pytest.raises(AugmenterError, match="dlm_init"):
        _method("diffusioncls", dlm_init="nope")


def test_restoration_accuracy_masks_everything_at_step_T(proxy, tiny_bert_dir):
    from methods.diffusioncls import diffusion_lm as mlm
    from methods.diffusioncls.importance import importance_weights, tokenize_texts

    model, tok, label_ids = mlm.build_diffusion_lm(proxy, tiny_bert_dir, LABELS, True)
    toks = tokenize_texts(proxy.tokenizer, [e.text for e in TRAIN], 40)
    w = importance_weights(proxy.model, proxy.tokenizer, toks)
    lids = [label_ids[e.label] for e in TRAIN]
    full = mlm.restoration_accuracy(model, tok, toks, w, lids, T=32, lam=0.5, schedule="marginal", steps=[32])
    assert full["masked_tokens"] == sum(len(t.ids) for t in toks)
    assert 0.0 <= full["accuracy"] <= 1.0 and 0 < full["top_prediction_share"] <= 1.0
    low = mlm.restoration_accuracy(model, tok, toks, w, lids, T=32, lam=0.5, schedule="marginal", steps=[1])
    assert len(TRAIN) <= low["masked_tokens"] < full["masked_tokens"]  # >= 1 per text, fewer than all


def test_every_classifier_option_a_method_sets_keeps_its_records_paired_with_none():
    """The report pairs records whose classifier settings differ only in options a method sets for its
    own cells (bench.api.objective.METHOD_OPTIONS); an option missing there would unpair DiffusionCLS."""
    from bench.api.objective import METHOD_OPTIONS
    from bench.classifier import ClassifierConfig
    from bench.report.load import classifier_setting

    for name in ("diffusioncls", "diffusioncls-wo-nrt", "diffusioncls-ref"):
        opts = _method(name).classifier_options()
        assert set(opts) <= set(METHOD_OPTIONS), name
        assert classifier_setting(ClassifierConfig(**opts).key()) == classifier_setting(ClassifierConfig().key())


def test_the_diffusion_lms_offline_start_is_named_as_a_substitute():
    """A Chinese run's diffusion LM starts from the suite-prepared char BERT: the record must say so (it
    said nothing before, as only MiniLM was known); a hub model is the paper's kind and names none."""
    m = _method("diffusioncls-ref")
    m.language, m._backbone, m._init = "zh", "prepared:zh-char-bert", "proxy"
    (sub,) = m.substitutes()
    assert sub["paper"] == "chinese-roberta-wwm-ext MLM" and "zh-char-bert" in sub["used"]
    assert "proxy (fine-tuned from it) as encoder" in sub["used"]  # what dlm_init=auto chose: the paper's recipe
    m._init = "mlm"
    assert "its pretrained encoder" in m.substitutes()[0]["used"]
    m.language, m._backbone = "en", "minilm"
    (sub,) = m.substitutes()
    assert sub["paper"] == "bert-base-uncased MLM" and "all-MiniLM-L6-v2" in sub["used"]
    m._backbone = "bert-base-uncased"
    assert m.substitutes() == []


def test_a_rebuilt_prepared_backbone_is_another_diffusion_lm_start(tmp_path):
    """The diffusion LM's cache key names a suite-prepared backbone by its build (prepare.json), so a
    `bench prepare backbone --force` rebuild at the same path does not reuse LMs of the old build."""
    from bench.api.resources import build_identity

    d = tmp_path / "zh-char-bert"
    d.mkdir()
    assert build_identity(d) == str(d)  # no build record: the path (a hub snapshot, the adapted MiniLM)
    (d / "prepare.json").write_text('{"steps": 2584}', encoding="utf-8")
    first = build_identity(d)
    (d / "prepare.json").write_text('{"steps": 1862}', encoding="utf-8")
    assert first.startswith(f"{d}@") and build_identity(d) != first
