"""Tiny randomly initialised models of the paper's architecture classes (GPT-2, Llama, BART, Marian),
with a byte-level BPE tokenizer trained in-process: nothing is downloaded. Fixtures, shared by
the baseline tests and the contract suite through conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

LABELS = ("negative", "neutral", "positive")
TEXTS = [
    ("@united my flight was delayed again and nobody helped", "negative"),
    ("@JetBlue thanks for the great service today", "positive"),
    ("@USAirways what time does the gate open", "neutral"),
    ("lost my bag and the agent was rude", "negative"),
    ("love the new seats, very comfy", "positive"),
    ("is there wifi on flight 1234", "neutral"),
    ("cancelled flightled twice this week, terrible", "negative"),
    ("best crew ever, thank you so much", "positive"),
    ("do you fly to boston from denver", "neutral"),
]
# ------------------------------------------------------------------------------ tiny models
@pytest.fixture(scope="session")
def tiny_tok_dir(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("tiny-tok")
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>", "<unk>", "<mask>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [t for t, _ in TEXTS] + list(LABELS) + ["[SEP] sketch: text: <mask>"] * 3
    tk.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", mask_token="<mask>")
    fast.save_pretrained(d)
    return d


def _save(model, tok_dir: Path, d: Path) -> Path:
    from transformers import AutoTokenizer

    model.save_pretrained(d)
    AutoTokenizer.from_pretrained(tok_dir).save_pretrained(d)
    return d


def _ids(tok_dir):
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(tok_dir)
    return {"vocab_size": len(t), "pad_token_id": t.pad_token_id, "bos_token_id": t.bos_token_id,
            "eos_token_id": t.eos_token_id}


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory, tiny_tok_dir) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    ids = _ids(tiny_tok_dir)
    cfg = GPT2Config(vocab_size=ids["vocab_size"], n_embd=32, n_layer=2, n_head=2, n_positions=128,
                     bos_token_id=ids["bos_token_id"], eos_token_id=ids["eos_token_id"],
                     pad_token_id=ids["pad_token_id"])
    return _save(GPT2LMHeadModel(cfg), tiny_tok_dir, tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory, tiny_tok_dir) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=2, max_position_embeddings=128, **_ids(tiny_tok_dir))
    return _save(LlamaForCausalLM(cfg), tiny_tok_dir, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_gemma3_dir(tmp_path_factory, tiny_tok_dir) -> Path:
    """Gemma 3 (the offline Chinese generator's class): its causal-LM checkpoint keeps the base under
    ``model.``, which ``AutoModel`` does not strip in transformers 5."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           num_key_value_heads=1, head_dim=16, max_position_embeddings=128, sliding_window=16,
                           **_ids(tiny_tok_dir))
    return _save(Gemma3ForCausalLM(cfg), tiny_tok_dir, tmp_path_factory.mktemp("tiny-gemma3"))


@pytest.fixture(scope="session")
def tiny_bart_dir(tmp_path_factory, tiny_tok_dir) -> Path:
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    torch.manual_seed(0)
    ids = _ids(tiny_tok_dir)
    cfg = BartConfig(d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                     decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                     max_position_embeddings=128, decoder_start_token_id=ids["eos_token_id"],
                     forced_bos_token_id=None, forced_eos_token_id=None, **ids)
    return _save(BartForConditionalGeneration(cfg), tiny_tok_dir, tmp_path_factory.mktemp("tiny-bart"))


def _marian(tmp_path_factory, tok_dir, seed):
    import torch
    from transformers import MarianConfig, MarianMTModel

    torch.manual_seed(seed)
    ids = _ids(tok_dir)
    cfg = MarianConfig(vocab_size=ids["vocab_size"], d_model=32, encoder_layers=1, decoder_layers=1,
                       encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
                       decoder_ffn_dim=64, max_position_embeddings=128, pad_token_id=ids["pad_token_id"],
                       eos_token_id=ids["eos_token_id"], decoder_start_token_id=ids["pad_token_id"],
                       forced_eos_token_id=ids["eos_token_id"])
    return _save(MarianMTModel(cfg), tok_dir, tmp_path_factory.mktemp(f"tiny-marian{seed}"))


@pytest.fixture(scope="session")
def tiny_marian_dirs(tmp_path_factory, tiny_tok_dir):
    return [str(_marian(tmp_path_factory, tiny_tok_dir, s)) for s in range(4)]


