"""Shared fixtures: tiny randomly initialised models built from configs (nothing downloaded)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def bench_home(tmp_path_factory):
    """Keep prepared resources of a test session out of the user's cache (WordNet copy is shared)."""
    return tmp_path_factory.mktemp("bench_home")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer, hidden-32 BERT with the MiniLM WordPiece tokenizer, random weights, saved to disk.

    Same classes as bert-base-uncased (BertModel / BertForSequenceClassification / BertForMaskedLM).
    """
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    from bench.api.hub import locate

    d = tmp_path_factory.mktemp("tiny-bert")
    tok = AutoTokenizer.from_pretrained(locate("minilm"))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128)
    import torch

    torch.manual_seed(0)
    BertForMaskedLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


from tests.tiny_models import (  # noqa: E402,F401 - fixtures
    tiny_bart_dir,
    tiny_gemma3_dir,
    tiny_gpt2_dir,
    tiny_llama_dir,
    tiny_marian_dirs,
    tiny_tok_dir,
)
