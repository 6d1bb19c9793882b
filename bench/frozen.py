"""A frozen-encoder classifier: a language model's mean-pooled hidden states under a small head.

``--backbone frozen:gemma3`` (or ``frozen:<dir or hub id>``; ``frozen:gemma3@12`` reads layer 12 instead of
the last, 0 being the embeddings) classifies with features that a frozen
model computes once per text (cached on disk under ``$BENCH_HOME/features/<model key>/``, shared by
every cell and run on the machine) and a trainable head (linear -> tanh -> linear) that the suite's
training protocol trains like any classifier. It is the cheap way to use a model too large to
fine-tune on a CPU: offline Gemma 3 270M reads Chinese far better than the suite's small character
BERT, and a training step of a frozen-feature classifier costs a head's forward and backward.

The model answers like a ``*ForSequenceClassification``: ``forward(input_ids, attention_mask,
output_hidden_states)`` returns ``logits`` and ``hidden_states`` whose last entry holds the head's
hidden layer at position 0 (the representation the contrastive term compares).
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from bench.api.hub import ModelNotAvailable, frozen_parts

HEAD_DIM = 256
# part of the feature cache's key and of frozen classifiers' keys. Features: 2 = every weight loaded (1 read
# Gemma 3 from a randomly initialised base), 3 = every layer's mean-pooled states cached per text. Head:
# 2 = inputs standardised per dimension on the training texts; 3 = the head's initial weights drawn from
# the caller's seed alone (2 drew them after the encoder load's random initialisations had moved torch's RNG).
FEATURES_VERSION = 3
HEAD_VERSION = 3


def encoder_path(backbone: str) -> str:
    """``frozen:gemma3[@layer]`` -> the directory transformers loads (offline aliases resolved)."""
    from methods.common.lm import locate

    return locate(frozen_parts(backbone)[0])


class FrozenFeatureModel(torch.nn.Module):
    base_model_prefix = "encoder"

    def __init__(self, encoder, num_labels: int, feature_dir: Path, head_dim: int = HEAD_DIM,
                 layer: int | None = None):
        super().__init__()
        self.layer = -1 if layer is None else int(layer)  # index into (embeddings, layer 1, ..., last)
        self.encoder = encoder.eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        size = encoder.config.hidden_size
        # per-dimension standardisation, fitted on the training texts (fit_scaler): a causal LM's hidden
        # states have a few dimensions in the hundreds (Gemma 3: |mean| up to ~100 against a median of ~1),
        # which saturate the tanh head
        self.register_buffer("feat_mean", torch.zeros(size))
        self.register_buffer("feat_std", torch.ones(size))
        self.head = torch.nn.Sequential(torch.nn.Linear(size, head_dim), torch.nn.Tanh(), torch.nn.Dropout(0.1))
        self.out = torch.nn.Linear(head_dim, num_labels)
        self.feature_dir = Path(feature_dir)
        self._memo: dict[str, torch.Tensor] = {}

    @property
    def base_model(self):
        return self.encoder

    def forward(self, input_ids, attention_mask, output_hidden_states: bool = False, **_: Any):
        h = self.head((self.features(input_ids, attention_mask) - self.feat_mean) / self.feat_std)
        return SimpleNamespace(logits=self.out(h), hidden_states=(h.unsqueeze(1),) if output_hidden_states else None)

    def features(self, input_ids, attention_mask) -> torch.Tensor:
        """Mean-pooled hidden states of the chosen layer, one per row. The layers up to it are run (no
        gradient) and every one of their states is cached per text, so a shallower layer costs no encoder
        pass; a deeper one recomputes the texts whose entries stop short of it."""
        keys = [self._key(r[m.bool()]) for r, m in zip(input_ids, attention_mask)]
        depth = self._depth()
        missing = [i for i, k in enumerate(keys) if (f := self._lookup(k)) is None or len(f) < depth]
        if missing:
            with torch.no_grad(), _first_layers(self.encoder, depth):
                was = self.encoder.training
                self.encoder.eval()
                out = self.encoder(input_ids=input_ids[missing], attention_mask=attention_mask[missing],
                                   output_hidden_states=True)
                self.encoder.train(was)
            hs = torch.stack(out.hidden_states[:depth], 1)  # rows x layers x positions x hidden
            m = attention_mask[missing][:, None, :, None].to(hs.dtype)
            pooled = (hs * m).sum(2) / m.sum(2).clamp_min(1)
            for i, f in zip(missing, pooled):  # clone: a row is a view, and torch.save of a view writes
                self._store(keys[i], f.detach().float().cpu().clone())  # the whole batch's storage
        at = self.layer % (self.encoder.config.num_hidden_layers + 1)  # a negative layer counts from the last
        return torch.stack([self._memo[k][at] for k in keys]).to(input_ids.device)

    def _depth(self) -> int:
        """How many hidden-state entries (embeddings first) a text's cached features must hold for the
        chosen layer: up to it, or all of them for the last (whose entry is after the final norm)."""
        n = self.encoder.config.num_hidden_layers
        at = self.layer % (n + 1)
        return n + 1 if at >= n - 1 else at + 1

    def fit_scaler(self, batches) -> None:
        """Mean and standard deviation per dimension of the features of the training texts, given as
        ``(input_ids, attention_mask)`` batches (the classifier's training calls this once)."""
        dev = self.feat_mean.device
        feats = torch.cat([self.features(ids.to(dev), att.to(dev)) for ids, att in batches])
        self.feat_mean.copy_(feats.mean(0))
        self.feat_std.copy_(feats.std(0, unbiased=False).clamp_min(1e-6) if len(feats) > 1
                            else torch.ones_like(self.feat_std))

    @staticmethod
    def _key(ids) -> str:
        return hashlib.sha1(ids.cpu().numpy().astype("int64").tobytes()).hexdigest()

    def _lookup(self, key: str) -> torch.Tensor | None:
        if key in self._memo:
            return self._memo[key]
        f = self.feature_dir / key[:2] / f"{key}.pt"
        if f.is_file():
            try:
                self._memo[key] = torch.load(f)
                return self._memo[key]
            except (OSError, RuntimeError, EOFError):  # a torn file: recompute it
                return None
        return None

    def _store(self, key: str, value: torch.Tensor) -> None:
        self._memo[key] = value
        f = self.feature_dir / key[:2] / f"{key}.pt"
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f"{f.name}.{os.getpid()}.tmp")
        torch.save(value, tmp)
        os.replace(tmp, f)

    # ------------------------------------------------------------------ persistence (the head only)
    def save_pretrained(self, directory) -> None:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        torch.save({"head": self.head.state_dict(), "out": self.out.state_dict(),
                    "scaler": {"mean": self.feat_mean, "std": self.feat_std}}, d / "frozen_head.pt")
        (d / "frozen.json").write_text(json.dumps({"num_labels": self.out.out_features,
                                                   "head_dim": self.out.in_features}))

    def load_head(self, directory) -> FrozenFeatureModel:
        state = torch.load(Path(directory) / "frozen_head.pt")
        self.head.load_state_dict(state["head"])
        self.out.load_state_dict(state["out"])
        self.feat_mean.copy_(state["scaler"]["mean"])
        self.feat_std.copy_(state["scaler"]["std"])
        return self


@contextmanager
def _first_layers(encoder, depth: int):
    """Run only the decoder layers that ``depth`` hidden-state entries need (entry ``k`` is layer ``k``'s
    output; the first ``depth`` entries of a model cut to ``depth`` layers are the full model's, the
    last cut entry being after the final norm, hence one layer more than ``depth - 1``). Gemma 3 270M's
    layer 9 costs 10 of its 18 layers. An encoder without a ``layers`` list runs whole."""
    layers = getattr(encoder, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or depth >= len(layers) + 1:
        yield
        return
    encoder.layers = layers[:depth]
    try:
        yield
    finally:
        encoder.layers = layers


def feature_dir(backbone: str, max_length: int) -> Path:
    """Where a frozen model's features live: keyed by the model's files and the truncation length."""
    from bench.api.hashing import stable_hash
    from bench.api.resources import bench_home

    path = Path(encoder_path(backbone))
    weights = sorted(path.glob("*.safetensors")) or sorted(path.glob("*.bin"))
    ident = [frozen_parts(backbone)[0], max_length, [(w.name, w.stat().st_size) for w in weights],
             FEATURES_VERSION]
    return bench_home() / "features" / stable_hash(ident)


def load_encoder(path: str):
    """The model's base (no LM head), with every weight from the checkpoint.

    A causal-LM checkpoint (``config.architectures`` ``*ForCausalLM``) is loaded as the causal LM and
    its decoder kept: ``AutoModel`` on one whose base class declares no prefix (Gemma 3 in transformers
    5: weights saved under ``model.``) loads none of them and initialises the base at random without an
    error; features from it would be noise (the suite's first frozen-Gemma runs were, see
    docs/design.md). Other checkpoints load with ``AutoModel``. Weights still missing are an error."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    archs = getattr(AutoConfig.from_pretrained(path), "architectures", None) or []
    if any(a.endswith("ForCausalLM") for a in archs):
        lm, info = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, output_loading_info=True)
        model = lm.get_decoder()
    else:
        model, info = AutoModel.from_pretrained(path, dtype=torch.float32, output_loading_info=True)
    missing = [k for k in info["missing_keys"] if not k.startswith("lm_head.")]
    if missing:
        raise ModelNotAvailable(f"frozen backbone at {path}: {len(missing)} weights are not in the checkpoint "
                                f"(e.g. {missing[:3]}); refusing to compute features from random weights")
    return model


def load_frozen(backbone: str, num_labels: int, max_length: int, device: str = "cpu"):
    """(tokenizer, FrozenFeatureModel) for ``frozen:<model>``."""
    from transformers import AutoTokenizer

    path = encoder_path(backbone)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    with torch.random.fork_rng(devices=[]):  # loading may draw random numbers: the head's init must not see them
        encoder = load_encoder(path)
    layer = frozen_parts(backbone)[1]
    n = encoder.config.num_hidden_layers
    if layer is not None and not -n - 1 <= layer <= n:
        raise ValueError(f"backbone {backbone!r}: layer {layer} out of range (0 = embeddings .. {n})")
    return tok, FrozenFeatureModel(encoder, num_labels, feature_dir(backbone, max_length), layer=layer).to(device)
