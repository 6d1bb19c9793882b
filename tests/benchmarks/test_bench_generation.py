"""Generation throughput: DiffusionCLS vs nlpaug's ContextualWordEmbsAug with the same masked LM.

Both use the suite's masked LM (:func:`methods.diffusioncls.mlm.adapted_mlm_dir`, MiniLM with a
suite-trained MLM head; built once per machine) on the same 32 airline tweets, on CPU. The
DiffusionCLS side includes the importance weights (one classifier forward with attentions)
and masking, i.e. everything ``augment`` does per call; it makes one pseudo sample per tweet
per step (4 per tweet, step group 4 of 8). nlpaug makes one substitution per tweet per call.
Pseudo samples per second go into ``extra_info``.

    python -m pytest tests/benchmarks/test_bench_generation.py -m slow --benchmark-enable
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.slow

N_TWEETS = 32


@pytest.fixture(scope="module")
def setup():
    import torch
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

    from bench.data import load_dataset
    from methods.common.mlm import adapted_mlm_dir

    torch.manual_seed(0)
    mlm_dir = adapted_mlm_dir("minilm")
    tok = AutoTokenizer.from_pretrained(mlm_dir)
    mlm = AutoModelForMaskedLM.from_pretrained(mlm_dir).eval()
    clf = AutoModelForSequenceClassification.from_pretrained(mlm_dir, num_labels=3).eval()
    texts = [e.text for e in load_dataset("airline").train[:N_TWEETS]]
    return {"dir": mlm_dir, "tok": tok, "mlm": mlm, "clf": clf, "texts": texts}


def _diffusion(setup, decoding: str):
    from methods.diffusioncls.generate import DiffusionGenerator, GenItem, hash_seed
    from methods.diffusioncls.importance import importance_weights, tokenize_texts
    from methods.diffusioncls.schedule import step_group_steps

    gen = DiffusionGenerator(setup["mlm"], setup["tok"], None, decoding=decoding, passes=4, batch_size=64)
    steps = step_group_steps(4)

    def run():
        toks = tokenize_texts(setup["tok"], setup["texts"], 62)
        ws = importance_weights(setup["clf"], setup["tok"], toks)
        items = [GenItem(t, w, "x", s, hash_seed(0, i, s)) for i, (t, w) in enumerate(zip(toks, ws)) for s in steps]
        return gen.generate(items)

    return run


def _mean_seconds(benchmark, t0: float) -> float:
    """Mean seconds per round (with --benchmark-disable the function ran once)."""
    if getattr(benchmark, "disabled", False) or not getattr(benchmark, "stats", None):
        return time.perf_counter() - t0
    return benchmark.stats.stats.mean


@pytest.mark.parametrize("decoding", ["greedy", "iterative"])
def test_diffusioncls_generation(benchmark, setup, decoding):
    run = _diffusion(setup, decoding)
    t0 = time.perf_counter()
    outs = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    assert len(outs) == 4 * N_TWEETS
    mean = _mean_seconds(benchmark, t0)
    benchmark.extra_info["pseudo_samples_per_s"] = len(outs) / mean
    benchmark.extra_info["changed"] = sum(o.text != o.item.toks.text for o in outs)


def test_nlpaug_contextual_generation(benchmark, setup):
    import nlpaug.augmenter.word as naw

    aug = naw.ContextualWordEmbsAug(model_path=str(setup["dir"]), action="substitute", device="cpu", model_type="bert")
    t0 = time.perf_counter()
    outs = benchmark.pedantic(lambda: aug.augment(setup["texts"]), rounds=3, iterations=1, warmup_rounds=1)
    assert len(outs) == N_TWEETS
    mean = _mean_seconds(benchmark, t0)
    benchmark.extra_info["pseudo_samples_per_s"] = len(outs) / mean
