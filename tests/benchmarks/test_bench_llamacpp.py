"""Sampling throughput of the LoRA-tuned SmolLM2 (LAMBADA's offline generator), one thread each, same
prompt (``"negative [SEP] "``) and settings (48 new tokens, temperature 1.0, top-p 0.95), 128 texts:

* transformers ``sample_causal`` in bfloat16, 64 sequences a batch (the quick preset's setting), and in
  float32 (on a CPU without AVX512-BF16/AMX, bfloat16 matmuls are the slower ones);
* the llama.cpp engine (:class:`methods.common.llamacpp.LlamaCppSampler`, 64 sequences in flight) on
  the merged model written as f16 GGUF (the route :func:`~methods.common.llamacpp.open_sampler` takes),
  as q8_0 and f32 GGUF (the other export formats), and on the shipped Q4_1 GGUF with the same adapter
  as a GGUF LoRA.

The adapter is tuned once (8 steps of :func:`methods.common.lm.finetune_lora` with the LM baselines'
LoRA budget on ``label [SEP] tweet<|im_end|>`` lines of 64 airline tweets). Texts per second, the load
average and a sample go into ``extra_info``.

    python -m pytest tests/benchmarks/test_bench_llamacpp.py -m slow --benchmark-enable
"""

from __future__ import annotations

import copy
import os
import time

import pytest

pytestmark = pytest.mark.slow

PROMPT = "negative [SEP] "
PER_PROMPT = 64
N_TEXTS = 128
SAMPLING = {"max_new_tokens": 48, "temperature": 1.0, "top_p": 0.95, "top_k": 0}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """The tuned model (merged, float32), its tokenizer, and both GGUF forms of it."""
    import torch

    from bench.data import load_dataset
    from methods.common.llamacpp import export_lora_gguf, export_model_gguf
    from methods.common.lm import TuneConfig, finetune_lora, load_lm, smollm2_gguf

    torch.set_num_threads(1)
    model, tok = load_lm("smollm2")
    lines = [f"{e.label} [SEP] {e.text}{tok.eos_token}" for e in load_dataset("airline").train[:64]]
    cfg = TuneConfig(lora_r=16, lora_alpha=32, lr=1e-3, epochs=1, batch_size=8, max_length=64,
                     lora_targets="all-linear")
    d = tmp_path_factory.mktemp("tuned")
    merged, _ = finetune_lora(model, tok, lines, cfg, seed=0, adapter_dir=d)
    return {"model": merged, "tok": tok, "base": smollm2_gguf(),
            "f16": export_model_gguf(merged, d / "merged-f16.gguf", base_gguf=smollm2_gguf(), dtype="f16"),
            "q8_0": export_model_gguf(merged, d / "merged-q8_0.gguf", base_gguf=smollm2_gguf(), dtype="q8_0"),
            "f32": export_model_gguf(merged, d / "merged-f32.gguf", base_gguf=smollm2_gguf(), dtype="f32"),
            "lora": export_lora_gguf(d, smollm2_gguf(), d / "lora.gguf")}


def _record(benchmark, t0: float, texts: list[list[str]]) -> None:
    """Texts/s (mean over rounds; with --benchmark-disable the function ran once) and sanity counts."""
    if getattr(benchmark, "disabled", False) or not getattr(benchmark, "stats", None):
        mean = time.perf_counter() - t0
    else:
        mean = benchmark.stats.stats.mean
    flat = [t for row in texts for t in row]
    assert len(flat) == N_TEXTS
    benchmark.extra_info["texts_per_s"] = round(len(flat) / mean, 2)
    benchmark.extra_info["loadavg_1min"] = round(os.getloadavg()[0], 2)
    benchmark.extra_info["nonempty"] = sum(bool(t.strip()) for t in flat)
    benchmark.extra_info["mean_words"] = round(sum(len(t.split()) for t in flat) / len(flat), 1)
    benchmark.extra_info["example"] = flat[0]


@pytest.mark.parametrize("dtype", ["bfloat16", "float32"])
def test_transformers_batch64(benchmark, tuned, dtype):
    import torch

    from methods.common.lm import cast_for_sampling, sample_causal

    torch.set_num_threads(1)
    model = cast_for_sampling(copy.deepcopy(tuned["model"]), dtype)

    def run():
        return sample_causal(model, tuned["tok"], [PROMPT] * (N_TEXTS // PER_PROMPT), PER_PROMPT, seed=0,
                             batch_size=64, **SAMPLING)

    t0 = time.perf_counter()
    texts = benchmark.pedantic(run, rounds=1, iterations=1)
    _record(benchmark, t0, texts)


@pytest.mark.parametrize("weights", ["merged-f16", "merged-q8_0", "merged-f32", "q4_1+lora"])
def test_llamacpp_engine(benchmark, tuned, weights):
    from methods.common.llamacpp import LlamaCppSampler, hf_adds_bos

    path, lora = (tuned["base"], tuned["lora"]) if weights == "q4_1+lora" else (tuned[weights.split("-")[1]], None)
    with LlamaCppSampler(path, n_threads=1, n_ctx=256, n_parallel=64, lora_path=lora,
                         add_bos=hf_adds_bos(tuned["tok"]), eos_token_ids=[tuned["tok"].eos_token_id]) as s:
        def run():
            return s.sample([PROMPT] * (N_TEXTS // PER_PROMPT), PER_PROMPT, seed=0, **SAMPLING)

        t0 = time.perf_counter()
        texts = benchmark.pedantic(run, rounds=1, iterations=1)
    _record(benchmark, t0, texts)
