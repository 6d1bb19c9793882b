"""Fast tests of the model-based baselines (back-translation, LAMBADA, GENIUS, nlpaug wrappers).

Real code paths (AutoModelForSeq2SeqLM / AutoModelForCausalLM ``.generate``, peft LoRA, nlpaug)
run on tiny randomly initialised models of the paper's architecture classes (GPT-2, Llama, BART,
Marian) with a byte-level BPE tokenizer trained in-process. A fake ``apertium`` executable checks
the batching / order / placeholder logic; the real engines are in test_baselines_slow.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.api import AugmenterError, Example, FitContext, MethodUnavailable
from methods import METHODS
from tests.tiny_models import LABELS, TEXTS

TRAIN = [Example(f"t{i}", t, lab) for i, (t, lab) in enumerate(TEXTS)]


class FakeProxy:
    """Deterministic stand-in for the cell's `none` classifier: probabilities from a text hash."""

    labels = LABELS

    def predict_proba(self, texts):
        out = []
        for t in texts:
            h = sum(map(ord, t)) % 97
            v = np.array([1.0 + (h % 5), 1.0 + (h % 3), 1.0 + (h % 7)])
            out.append(v / v.sum())
        return np.array(out).reshape(len(texts), len(LABELS))


def ctx(tmp_path, proxy=True, language="en") -> FitContext:
    return FitContext(language=language, labels=LABELS, seed=0, cache_root=tmp_path / "cache",
                      proxy_factory=(lambda: FakeProxy()) if proxy else None)


@pytest.fixture()
def fake_apertium(tmp_path, monkeypatch):
    """An `apertium` on PATH that 'translates' by tagging each line (eng-X adds '<X>', X-eng strips it
    and swaps the first two words), so round trips differ from the input and keep line order."""
    d = tmp_path / "bin"
    d.mkdir()
    script = d / "apertium"
    script.write_text(f"""#!{sys.executable}
import sys
args = sys.argv[1:]
if args == ["-l"]:
    print("  eng-spa\\n  spa-eng\\n  eng-cat\\n  cat-eng")
    sys.exit(0)
mode = args[-1]
src, tgt = mode.split("-")
for line in sys.stdin.read().split("\\n")[:-1]:
    if src == "eng":
        print(f"<{{tgt}}> " + line)
    else:
        w = line.replace(f"<{{src}}> ", "").split(" ")
        if len(w) > 2:
            w[1], w[2] = w[2], w[1]
        print(" ".join(w) + f" {{src}}")
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{d}{os.pathsep}{os.environ['PATH']}")
    return script


# ------------------------------------------------------------------------------ registry
NEW = ["backtranslation", "lambada", "genius", "genius-f", "nlpaug-mlm", "nlpaug-glove"]


def test_registered_and_listing_does_not_import_torch():
    code = ("import sys\nfrom methods import METHODS\n"
            f"for n in {NEW!r}:\n    e = METHODS.get(n); e.load()(seed=0, **e.params)\n"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n")
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
    assert METHODS.get("genius-f").load().default_params()["filter"] is True


@pytest.mark.parametrize("name", NEW)
def test_unknown_param_rejected(name):
    with pytest.raises(AugmenterError):
        METHODS.get(name).load()(seed=0, no_such_param=1)


# ------------------------------------------------------------------------------ back-translation
def test_bt_marian_beam_one_pivot_reports_shortfall(tmp_path, tiny_marian_dirs):
    from methods.backtranslation import BackTranslation

    bt = BackTranslation(seed=0, engine="marian", models=[tiny_marian_dirs[:2]], max_new_tokens=8)
    bt.fit(TRAIN, ctx(tmp_path, proxy=False))
    r = bt.augment(TRAIN[:3], 2)
    assert r.produced <= 3 and sum(r.shortfall.values()) == 6 - r.produced
    assert r.stats["copies_without_pivot"] == 3 and r.stats["engine"] == "marian"
    s = r.synthetic[0]
    assert s.provenance["engine"] == "marian" and s.provenance["model"] == tiny_marian_dirs[:2]
    assert "identical_to_parent" in r.stats and bt.substitutes() == []
    # deterministic
    again = BackTranslation(seed=0, engine="marian", models=[tiny_marian_dirs[:2]], max_new_tokens=8)
    again.fit(TRAIN, ctx(tmp_path, proxy=False))
    assert [x.text for x in again.augment(TRAIN[:3], 2).synthetic] == [x.text for x in r.synthetic]


def test_bt_marian_two_pivots_and_sampling(tmp_path, tiny_marian_dirs):
    from methods.backtranslation import BackTranslation

    two = [tiny_marian_dirs[:2], tiny_marian_dirs[2:]]
    bt = BackTranslation(seed=0, engine="marian", models=two, max_new_tokens=8).fit(TRAIN, ctx(tmp_path, False))
    r = bt.augment(TRAIN[:3], 2)
    assert r.stats["copies_without_pivot"] == 0
    assert {s.provenance["pivot"] for s in r.synthetic} <= {"pivot0", "pivot1"}
    samp = BackTranslation(seed=1, engine="marian", models=[tiny_marian_dirs[:2]], decoding="sample",
                           max_new_tokens=8).fit(TRAIN, ctx(tmp_path, False))
    r = samp.augment(TRAIN[:4], 3)
    for e in TRAIN[:4]:
        kids = [s.text for s in r.synthetic if s.parent_id == e.id]
        assert len(kids) == len(set(kids)) and len(kids) + r.shortfall.get(e.id, 0) == 3
    assert r.stats["duplicates_dropped"] == sum(r.shortfall.values())


def test_bt_falls_back_to_apertium_offline(tmp_path, fake_apertium):
    from methods.backtranslation import BackTranslation

    bt = BackTranslation(seed=0, apertium_pivots=["spa", "cat"]).fit(TRAIN, ctx(tmp_path, False))
    r = bt.augment(TRAIN, [1, 2, 3] * 3)
    sub = bt.substitutes()
    assert sub and sub[0]["used"].startswith("Apertium") and "opus-mt-en-de" in sub[0]["paper"]
    assert r.stats["engine"] == "apertium" and "MarianMT not available" in r.stats["fallback_reason"]
    # two installed pivots: up to two distinct outputs, the third copy is shortfall
    assert r.produced == 3 * (1 + 2 + 2) and sum(r.shortfall.values()) == 3
    by_parent = {}
    for s in r.synthetic:
        by_parent.setdefault(s.parent_id, []).append(s)
    e = TRAIN[0]  # "@united my flight ..." -> handles protected, order kept, words 2/3 swapped
    out = by_parent[e.id][0]
    assert out.text == "@united flight my was delayed again and nobody helped spa"
    assert out.provenance["pivot_text"].startswith("<spa> @united my flight")
    assert out.provenance["engine"] == "apertium" and out.provenance["substitute"] is True
    assert [s.provenance["pivot"] for s in by_parent[TRAIN[1].id]] == ["spa", "cat"]


def test_bt_apertium_order_with_many_lines(fake_apertium):
    from methods.backtranslation import apertium_round_trip

    texts = [f"line number {i} has words\nand a newline" for i in range(300)]
    back, mid = apertium_round_trip(texts, chunk=128)
    assert len(back) == 300 and all(b.startswith("line") and f" {i} " in b for i, b in enumerate(back))


def test_bt_unavailable(tmp_path, monkeypatch):
    import methods.backtranslation as btm

    monkeypatch.setattr(btm, "apertium_modes", lambda: set())
    with pytest.raises(MethodUnavailable, match="apertium"):
        btm.BackTranslation(seed=0).fit(TRAIN, ctx(tmp_path, False))
    with pytest.raises(MethodUnavailable, match="zh"):
        btm.BackTranslation(seed=0, engine="apertium").fit(TRAIN, ctx(tmp_path, False, language="zh"))
    with pytest.raises(MethodUnavailable, match="Marian"):
        btm.BackTranslation(seed=0, engine="marian").fit(TRAIN, ctx(tmp_path, False))


# ------------------------------------------------------------------------------ LAMBADA
LORA_FAST = {"max_train": 9, "batch_size": 4, "max_length": 24, "max_new_tokens": 8, "oversample": 3}


@pytest.mark.parametrize("which", ["gpt2", "llama"])
def test_lambada_selects_by_proxy_round_robin(tmp_path, which, tiny_gpt2_dir, tiny_llama_dir):
    from methods.lambada import Lambada

    model = str(tiny_gpt2_dir if which == "gpt2" else tiny_llama_dir)
    lam = Lambada(seed=0, model=model, **LORA_FAST).fit(TRAIN, ctx(tmp_path))
    assert lam._fit_stats["cached"] is False and lam._fit_stats["steps"] == 3 and lam.fit_reused is False
    pairs = TRAIN[:6]
    counts = [2, 1, 1, 1, 1, 1]
    r = lam.augment(pairs, counts)
    assert r.produced + sum(r.shortfall.values()) == 7
    pc = r.stats["per_class"]
    assert pc["negative"]["needed"] == 3 and pc["negative"]["generated"] == 9
    assert 0 < r.stats["acceptance_rate"] <= 1
    for lab in ("negative", "neutral", "positive"):
        probs = [s.provenance["proxy_prob"] for s in r.synthetic if s.label == lab]
        assert probs == sorted(probs, reverse=True)  # best first
    kids = {}
    for s in r.synthetic:
        kids[s.parent_id] = kids.get(s.parent_id, 0) + 1
        assert s.provenance["parent_assignment"].startswith("round-robin")
    assert all(kids.get(e.id, 0) <= c for e, c in zip(pairs, counts))
    assert lam.substitutes() == []
    # second fit reuses the cached adapter and generates the same samples
    lam2 = Lambada(seed=0, model=model, **LORA_FAST).fit(TRAIN, ctx(tmp_path))
    assert lam2._fit_stats["cached"] is True and lam2.fit_reused is True
    assert [s.text for s in lam2.augment(pairs, counts).synthetic] == [s.text for s in r.synthetic]


def test_lambada_offline_fallback_and_needs_proxy(tmp_path, tiny_llama_dir):
    from methods.lambada import Lambada

    lam = Lambada(seed=0, model="no-such-org/no-such-model", offline_model=str(tiny_llama_dir), **LORA_FAST)
    lam.fit(TRAIN, ctx(tmp_path))
    assert lam.substitutes()[0]["paper"].startswith("gpt2")
    with pytest.raises(AugmenterError):
        Lambada(seed=0, model=str(tiny_llama_dir), **LORA_FAST).fit(TRAIN, ctx(tmp_path, proxy=False))
    with pytest.raises(MethodUnavailable, match="no causal LM for 'zh'"):
        Lambada(seed=0, model="no-such-org/x", offline_model="").fit(TRAIN, ctx(tmp_path, language="zh"))
    zh = Lambada(seed=0, model="no-such-org/x", offline_model=str(tiny_llama_dir), **LORA_FAST)
    zh.fit(TRAIN, ctx(tmp_path, language="zh"))
    assert zh.format_line("negative") == "负面 [SEP] "  # Chinese label words for a Chinese generator
    with pytest.raises(AugmenterError):
        Lambada(seed=0).augment(TRAIN, 1)


def test_lambada_cuts_a_sample_at_a_generated_separator(tmp_path, tiny_llama_dir):
    from methods.lambada import Lambada

    lam = Lambada(seed=0)
    assert lam.cut_at_sep("@united late again [SEP] [SEP] @united x") == ("@united late again", True)
    assert lam.cut_at_sep("fine flight") == ("fine flight", False)
    assert lam.cut_at_sep("[SEP] only a second line") == ("", True)  # -> counted as empty, never kept
    assert Lambada(seed=0, sep=" || ").cut_at_sep("a || b") == ("a", True)
    fitted = Lambada(seed=0, model=str(tiny_llama_dir), **LORA_FAST).fit(TRAIN, ctx(tmp_path))
    fitted._candidates = lambda label, k, slot: [f"{label} one [SEP] junk", "[SEP] x", f"{label} two"][:k]
    r = fitted.augment(TRAIN[:1], 1)
    pc = r.stats["per_class"][TRAIN[0].label]
    assert pc["cut_at_sep"] == 2 and pc["empty"] == 1
    assert all("[SEP]" not in s.text for s in r.synthetic)


def test_lambada_bfloat16_sampling(tmp_path, tiny_llama_dir):
    import torch

    from methods.lambada import Lambada

    lam = Lambada(seed=0, model=str(tiny_llama_dir), gen_dtype="bfloat16", **LORA_FAST).fit(TRAIN, ctx(tmp_path))
    assert next(lam._model.parameters()).dtype == torch.bfloat16 and lam._fit_stats["gen_dtype"] == "bfloat16"
    r = lam.augment(TRAIN[:3], 1)
    assert r.produced + sum(r.shortfall.values()) == 3 and r.stats["fit"]["gen_dtype"] == "bfloat16"
    # the adapter (trained in float32) is shared with a float32 run of the same settings
    f32 = Lambada(seed=0, model=str(tiny_llama_dir), **LORA_FAST).fit(TRAIN, ctx(tmp_path))
    assert f32._fit_stats["cached"] is True and next(f32._model.parameters()).dtype == torch.float32
    with pytest.raises(AugmenterError, match="gen_dtype"):
        Lambada(seed=0, model=str(tiny_llama_dir), gen_dtype="int3", **LORA_FAST).fit(TRAIN, ctx(tmp_path))


# ------------------------------------------------------------------------------ GENIUS
def test_sketch_extraction():
    from methods.genius import SketchExtractor

    sk = SketchExtractor(ratio=0.2).fit(TRAIN)
    text = "@united my flight was delayed again and nobody helped at the gate in denver today"
    toks = sk.sketch_tokens(text, "negative")
    kept = [t for t in toks if t is not None]
    assert 1 <= len(kept) <= 3 + round(0.2 * len(toks))  # ~20%, a phrase may overshoot by < 3 words
    s = sk.sketch(text, "negative")
    assert s.startswith("negative: ")
    body = s[len("negative: "):].split()
    assert "<mask> <mask>" not in " ".join(body)  # each gap is one mask
    words = [w for w in body if w != "<mask>"]
    assert words == kept  # kept in order
    positions = [text.split().index(w) for w in words]
    assert positions == sorted(positions)


def test_genius_seq2seq_path_and_filter(tmp_path, tiny_bart_dir):
    from methods.genius import Genius, GeniusF

    g = Genius(seed=0, model=str(tiny_bart_dir), max_new_tokens=8).fit(TRAIN, ctx(tmp_path, proxy=False))
    assert g._kind == "seq2seq" and g.substitutes() == []
    r = g.augment(TRAIN[:4], 2)
    assert r.produced + sum(r.shortfall.values()) == 8
    s = r.synthetic[0]
    assert s.provenance["sketch"].startswith(s.label + ": ") and "<mask>" in s.provenance["sketch"]
    assert r.stats["filter"] is False and r.stats["filtered_out"] == 0
    f = GeniusF(seed=0, model=str(tiny_bart_dir), max_new_tokens=8).fit(TRAIN, ctx(tmp_path))
    rf = f.augment(TRAIN[:4], 2)
    assert all(x.provenance["proxy_prob"] > 0.7 for x in rf.synthetic)
    assert rf.stats["filtered_out"] == 8 - rf.produced - rf.stats["empty"] - rf.stats["duplicates_dropped"]
    assert {x.text for x in rf.synthetic} <= {x.text for x in r.synthetic}  # same samples, filtered
    # genius-f read genius's generations from the shared cache instead of sampling them again
    assert r.stats["samples_from_cache"] is False and rf.stats["samples_from_cache"] is True
    other = Genius(seed=1, model=str(tiny_bart_dir), max_new_tokens=8).fit(TRAIN, ctx(tmp_path, proxy=False))
    assert other.augment(TRAIN[:4], 2).stats["samples_from_cache"] is False  # the seed is in the key


def test_genius_offline_causal_substitute(tmp_path, tiny_llama_dir):
    from methods.genius import Genius

    g = Genius(seed=0, model="no-such-org/genius", offline_model=str(tiny_llama_dir), max_train=9,
               lora_batch_size=4, max_length=32, max_new_tokens=8, gen_dtype="bfloat16")
    g.fit(TRAIN, ctx(tmp_path, proxy=False))
    assert g._kind == "causal" and g._fit_stats["steps"] == 3 and g._fit_stats["gen_dtype"] == "bfloat16"
    assert g.substitutes()[0]["used"].endswith("sampled in bfloat16")
    assert g.substitutes()[0]["paper"].startswith("beyondguo/genius-large")
    r = g.augment(TRAIN[:3], 1)
    assert r.produced + sum(r.shortfall.values()) == 3
    with pytest.raises(MethodUnavailable, match="no sketch-to-text model for 'zh'"):
        Genius(seed=0, model="no-such-org/genius", offline_model="").fit(TRAIN, ctx(tmp_path, language="zh"))


# ------------------------------------------------------------------------------ nlpaug
def test_nlpaug_mlm_tiny_bert(tmp_path, tiny_bert_dir):
    import random

    from methods.nlpaug_wrappers import NlpaugMLM

    m = NlpaugMLM(seed=0, model_path=str(tiny_bert_dir)).fit(TRAIN, ctx(tmp_path, False))
    state = random.getstate()
    r = m.augment(TRAIN, 2)
    assert random.getstate() == state  # global random state restored
    assert r.produced + sum(r.shortfall.values()) == 18
    assert r.synthetic[0].provenance["engine"] == "nlpaug.ContextualWordEmbsAug"
    m2 = NlpaugMLM(seed=0, model_path=str(tiny_bert_dir)).fit(TRAIN, ctx(tmp_path, False))
    assert [s.text for s in m2.augment(TRAIN, 2).synthetic] == [s.text for s in r.synthetic]


def test_nlpaug_mlm_without_suite_mlm(tmp_path, monkeypatch):
    import importlib.util

    from methods.nlpaug_wrappers import NlpaugMLM

    if importlib.util.find_spec("methods.diffusioncls") is not None:
        pytest.skip("methods.diffusioncls exists; the default path is covered by the slow tests")
    with pytest.raises(MethodUnavailable, match="model_path"):
        NlpaugMLM(seed=0).fit(TRAIN, ctx(tmp_path, False))


def test_nlpaug_glove_tiny_vectors(tmp_path, monkeypatch):
    import methods.nlpaug_wrappers as nw

    rng = np.random.default_rng(0)
    words = sorted({w.lower() for t, _ in TEXTS for w in t.split() if not w.startswith("@")}
                   | {"late", "awful", "plane", "good"})
    path = tmp_path / "tiny.glove.txt"
    path.write_text("".join(w + " " + " ".join(f"{x:.4f}" for x in rng.normal(size=8)) + "\n" for w in words))
    monkeypatch.setattr(nw, "glove_text_file", lambda vocab_size: path)
    g = nw.NlpaugGlove(seed=3, top_k=5)
    r = g.augment(TRAIN, 2)  # no fit needed
    assert r.produced + sum(r.shortfall.values()) == 18
    assert r.stats["identical_to_parent"] < r.produced
    assert "@united" in r.synthetic[0].text  # whitespace tokens: handles survive
    r2 = nw.NlpaugGlove(seed=3, top_k=5).augment(TRAIN, 2)
    assert [s.text for s in r.synthetic] == [s.text for s in r2.synthetic]
    r3 = nw.NlpaugGlove(seed=4, top_k=5).augment(TRAIN, 2)
    assert [s.text for s in r.synthetic] != [s.text for s in r3.synthetic]


@pytest.mark.parametrize("name", ["lambada", "genius"])
def test_lm_baselines_pick_the_offline_generator_of_the_language(tmp_path, name):
    """SmolLM2 (English-only) for English, Gemma 3 270M for Chinese; with no stand-in and no hub model the
    method is `unavailable`, saying why and for which language."""
    aug = METHODS.get(name).load()(seed=0, model=str(tmp_path / "no-such-model"))
    assert aug._offline_model("en") == "smollm2" and aug._offline_model("zh") == "gemma3"
    none = METHODS.get(name).load()(seed=0, model=str(tmp_path / "no-such-model"), offline_model="")
    with pytest.raises(MethodUnavailable, match=r"for 'zh' here: .*no-such-model"):
        none.fit(TRAIN, ctx(tmp_path, language="zh"))
