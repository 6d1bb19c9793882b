"""Per-method parameters that make a method run on tiny random models in the contract suite.

Keys are registry names; values are parameter dicts. A value ``"fixture:NAME"`` is replaced by
the path of that pytest fixture (tiny models from tests/tiny_models.py and conftest.py). A method
absent here runs with its registry parameters (fine for rule-based methods, and for DiffusionCLS,
which takes the tiny BERT backbone from the FitContext). Model-based methods must appear here, so
the contract suite never loads a real model (checked in test_augmenters.py).
"""

from __future__ import annotations

from typing import Any

_LM = {"max_new_tokens": 8, "max_train": 8, "epochs": 1}
TINY: dict[str, dict[str, Any]] = {
    "lambada": {"model": "fixture:tiny_llama_dir", "oversample": 2, **_LM},
    "genius": {"model": "none/none", "offline_model": "fixture:tiny_llama_dir", **_LM},
    "genius-f": {"model": "none/none", "offline_model": "fixture:tiny_llama_dir", **_LM},
    "nlpaug-mlm": {"model_path": "fixture:tiny_bert_dir"},
}
