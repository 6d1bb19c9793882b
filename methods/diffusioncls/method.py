"""The DiffusionCLS augmenter.

fit(train, context):
  1. the proxy = ``context.proxy()`` (the cell's ``none`` classifier; never trained here);
  2. the masked LM to start from: :func:`~methods.common.mlm.adapted_mlm_dir` of the proxy's
     backbone (the offline MiniLM gets a suite-trained MLM head; hub BERTs keep theirs);
  3. the diffusion LM = proxy encoder + that MLM head + one ``<LABEL-x>`` token per label, trained
     time-agnostically on the train split with the label-aware schedule, cached under
     ``context.cache_dir("diffusion_lm", key)``. The key holds what the LM depends on (train
     fingerprint, labels, proxy identity, masked LM, schedule, lambda, T, prompt, training
     settings, method version, seed) and NOT the step group, decoding or policy, so one LM per
     (dataset, view, seed) serves a whole sweep.

augment (offline generation, the default): masks from the proxy's attention; pseudo sample k of
an original uses step ``steps[k % 4]`` of the chosen step group (group 4 of 8: steps 13-16), so
4 pseudo samples per original use one mask per step of the group as in the paper. With
``mask_draws="shared"`` the masks of one original are nested (one uniform draw per token, like
the paper's single forward chain); ``"independent"`` draws each mask afresh.

Reflective generation (``generation="reflective"``, the paper's): ``augment`` returns nothing;
:meth:`make_batch_hook` masks the originals of each training batch with the attention of the
classifier being trained and adds ``reflective_n`` pseudo samples per original online.

Noise-resistant training is done by the runner's classifier: :meth:`classifier_options` returns
``nrt_weight`` (paper Eq. 6: ``L = L_c + L_e``, so 1.0), ``nrt_tau`` and ``group_batches``
(an original with its own pseudo samples in one batch, as Eq. 4-5 assume) when the contrastive term
is on. Without it (``wo-nrt``, ``-ref``) nothing in the objective compares items of a batch, and the
classifier trains on plain batches of the run's batch size like every other method: grouped batches
of 16 originals with their pseudo samples (79 texts a step, 130 steps for the view's texts) left
``wo-nrt`` still improving at the end of its budget on airline 5% seed 0 (test 73.30, dev best at
step 126 of 130), while groups of 4 (20 texts a step, 515 steps) scored 75.69 (docs/design.md).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.api import (
    Augmenter,
    AugmenterError,
    Example,
    MethodMeta,
    MethodParams,
    Synthetic,
    examples_fingerprint,
    param,
    stable_hash,
)
from bench.api.hub import OFFLINE_BACKBONES, is_frozen, prepared_build
from bench.api.io import check_sealed
from bench.api.objective import BUDGET_UNITS, CE_WEIGHTINGS, NRT_FORMS, NRT_REPRS, PSEUDO_GRADS
from bench.api.resources import build_identity
from methods.diffusioncls.diffusion_lm import DLM_COVERAGE, planned_steps
from methods.diffusioncls.generate import DECODINGS, DiffusionGenerator, GenItem, hash_seed
from methods.diffusioncls.importance import NORMS, importance_weights, tokenize_texts
from methods.diffusioncls.schedule import SCHEDULES, step_group_steps

# 2: no spaces inserted between CJK characters in generated text; 3: the diffusion LM trained on every step
# group (dlm_coverage), the contrastive term as printed in batches of nrt_originals originals
VERSION = "3"
GENERATOR_BACKBONE = {"en": "minilm", "zh": "prepared:zh-char-bert"}  # when the classifier is frozen features


def proxy_identity(proxy) -> str:
    """A content hash of the proxy: backbone, labels and a digest of its classifier head and one
    encoder matrix (the head alone changes with every fine-tune)."""
    import hashlib

    h = hashlib.sha256()
    h.update(repr((proxy.config.backbone, tuple(proxy.labels))).encode())
    state = proxy.model.state_dict()
    names = [k for k in state if k.startswith(("classifier.", "score."))]
    enc = [k for k in state if k.endswith("attention.self.query.weight")]
    for k in names + enc[-1:]:
        h.update(k.encode())
        h.update(state[k].detach().cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class DiffusionParams(MethodParams):
    # noise schedule
    T: int = param(32, fit=True)
    n_groups: int = 8
    step_group: int = param(4, axis=True, doc="which of the n_groups groups of T steps masks the originals "
                            "(1-based; the paper's Figure 6 axis)")
    lam: float = param(0.5, fit=True)
    schedule: str = param("marginal", fit=True, choices=SCHEDULES, doc="or cumulative (reference code)")
    importance_norm: str = param("none", fit=True, choices=NORMS, doc="none (paper: raw attention) | sum | max | "
                                 "mean | centred (see importance.py)")
    # label-aware prompting
    label_prompt: bool = param(True, fit=True)
    # diffusion LM training (paper: lr 4e-6, 1-2 epochs, batch 32 on 10^3-10^4 texts; a low-resource view has
    # ~500 texts, so more epochs and a larger lr; measured in the report). dlm_init "proxy": the paper's init
    # (proxy encoder + MLM head); "mlm": the masked LM's own encoder; "auto": "mlm" where the suite adapted the
    # masked LM (offline MiniLM: its head was trained on re-trained layers the proxy lacks), else "proxy".
    # Measured with scripts/probe_diffusion_lm.py (airline 5%, seed 0, dev restoration at group 4 after 4
    # epochs): proxy 9.2%, mlm 16.4% at lr 5e-5; mlm 19.8% at lr 2e-4 (hence the lr; the paper's 4e-6 is for
    # 10^3-10^4 texts on bert-base)
    dlm_init: str = param("auto", fit=True, choices=("auto", "proxy", "mlm"))
    generator_backbone: str | None = param(None, fit=True, doc="the encoder of the proxy the generator reads "
                                           "(attention weights) and starts from; None: the run's classifier "
                                           "backbone, unless that is frozen features (then minilm for English, "
                                           "prepared:zh-char-bert for Chinese)")
    dlm_epochs: int = param(4, fit=True)
    dlm_lr: float = param(2e-4, fit=True)
    dlm_batch_size: int = param(32, fit=True)
    # "groups": every sentence once per step group each epoch (the reference code's coverage, n_groups times the
    # training of "random": one random step per sentence per epoch); dlm_max_steps caps the optimizer steps
    dlm_coverage: str = param("groups", fit=True, choices=DLM_COVERAGE)
    dlm_max_steps: int = param(1200, fit=True)
    max_length: int = param(64, fit=True)
    # generation
    generate: bool = param(True, fit=True, doc="False = w/o D.A.: no pseudo samples, noise-resistant training only")
    generation: str = param("offline", choices=("offline", "reflective"), doc="reflective: online, from the "
                            "classifier being trained")
    decoding: str = param("greedy", choices=DECODINGS, doc="reference: one pass argmax; or iterative")
    passes: int = 4
    top_k: int = 0
    temperature: float = 1.0
    mask_draws: str = param("shared", choices=("shared", "independent"))
    min_masked: int = 1
    reflective_n: int = 4
    gen_batch_size: int = 64
    # the final classifier (read by the runner through classifier_options): the paper's L = L_c + L_e (Eq. 6)
    nrt_weight: float = param(1.0, doc="weight of the contrastive term L_c (0 = w/o N.R.T.)")
    nrt_tau: float = 0.05
    nrt_form: str = param("printed", choices=NRT_FORMS, doc="printed: Eq. 4 as printed (log outside the double "
                          "sum); per_anchor: the log inside the sum over anchors (about K times the gradient)")
    nrt_repr: str = param("cls", choices=NRT_REPRS, doc="the representation L_c compares: the last "
                          "layer's [CLS] (what the classifier head reads in RoBERTa-style heads and what the "
                          "suite's earlier runs used) or the pooler output (the reference code)")
    nrt_originals: int = param(16, doc="with the contrastive term: originals per training batch, each with all "
                               "its pseudo samples "
                               "(the paper's Table 6: 40-60; the reference code 70)")
    ce_weighting: str = param("pooled", choices=CE_WEIGHTINGS, doc="pooled: L_e averaged over the "
                              "K(B+1) items (Eq. 5); balanced: mean over originals + mean over pseudo samples "
                              "(the reference code)")
    budget_unit: str = param("texts", choices=BUDGET_UNITS, doc="texts: the view's training budget counted "
                             "in texts, as for every method (grouped batches of 16 originals + 64 pseudo samples "
                             "take 1/5 of the steps); steps: as many steps as plain batches of 16 (5x the texts)")
    pseudo_grad: str = param("full", choices=PSEUDO_GRADS, doc="head: pseudo samples pass the encoder "
                             "without gradient and train the classification head only (the reference code)")

    def __post_init__(self):
        if self.nrt_weight < 0:
            raise AugmenterError("diffusioncls: nrt_weight must be >= 0")
        step_group_steps(self.step_group, self.T, self.n_groups)  # raises on a group outside 1..n_groups


class DiffusionCLS(Augmenter):
    meta = MethodMeta(
        name="diffusioncls",
        version=VERSION,
        description="label-aware masked-diffusion LM augmentation + noise-resistant training",
        needs_fit=True,
        needs_proxy=True,
        languages=("en", "zh"),
        citation="Chen et al. (2024), An Effective Deployment of Diffusion LM for Data Augmentation in "
        "Low-Resource Sentiment Classification. EMNLP. arXiv:2409.03203",
        paper_model="bert-base-uncased / chinese-roberta-wwm-ext",
    )
    Params = DiffusionParams
    p: DiffusionParams

    def __init__(self, seed: int = 0, **params: Any):
        super().__init__(seed, **params)
        self.steps = step_group_steps(self.p.step_group, self.p.T, self.p.n_groups)
        self._proxy = None
        self._generator: DiffusionGenerator | None = None
        self._dlm_key: str | None = None
        self._mlm_report: dict[str, Any] | None = None
        self._init: str | None = None
        self._backbone: str | None = None
        self.fit_info: dict[str, Any] = {}
        self.reflective_stats: dict[str, Any] = {"batches": 0, "produced": 0, "identical": 0, "seconds": 0.0}

    def needs_proxy(self) -> bool:
        return self.p.generate

    @property
    def online(self) -> bool:
        return self.p.generation == "reflective"

    def online_stats(self) -> dict[str, Any]:
        return dict(self.reflective_stats) if self.online else {}

    # ------------------------------------------------------------------ metadata
    def substitutes(self) -> list[dict[str, str]]:
        paper = "chinese-roberta-wwm-ext MLM" if self.language == "zh" else "bert-base-uncased MLM"
        if self._backbone and self._backbone.startswith("prepared:"):
            name = self._backbone.split(":", 1)[1]
            start = ("the cell's proxy (fine-tuned from it) as encoder" if self._init == "proxy"
                     else "its pretrained encoder")
            return [{"role": "diffusion LM init", "paper": paper,
                     "used": f"suite-prepared {name} (`bench prepare backbone`): {start}, the MLM head of its "
                             "pretraining"}]
        if not self._backbone or self._backbone not in OFFLINE_BACKBONES:
            return []
        acc = (self._mlm_report or {}).get("fill_mask_accuracy")
        acc_s = f"{acc:.3f}" if isinstance(acc, float) else "not measured"
        return [{"role": "diffusion LM init", "paper": paper,
                 "used": f"{OFFLINE_BACKBONES[self._backbone].describe} + suite MLM adaptation on IMDb "
                         f"(held-out fill-mask acc {acc_s})"
                         + ("; diffusion LM initialised from it, not from the proxy" if self._init == "mlm" else "")}]

    def classifier_options(self) -> dict[str, Any]:
        p = self.p
        return {"nrt_weight": p.nrt_weight, "nrt_tau": p.nrt_tau, "nrt_form": p.nrt_form, "nrt_repr": p.nrt_repr,
                "group_batches": p.nrt_weight > 0, "originals_per_batch": p.nrt_originals,
                "ce_weighting": p.ce_weighting, "pseudo_grad": p.pseudo_grad, "budget_unit": p.budget_unit}

    # ------------------------------------------------------------------ fit
    def fit_work(self, n_train: int) -> float:
        """The diffusion LM's optimizer steps: ``n_groups`` pairs per sentence an epoch, capped at
        ``dlm_max_steps`` (a 20% view trains no longer than a 12% one); none without generation."""
        p = self.p
        if not p.generate:
            return 0.0
        return float(planned_steps(n_train, epochs=p.dlm_epochs, batch_size=p.dlm_batch_size, coverage=p.dlm_coverage,
                                   n_groups=p.n_groups, max_steps=p.dlm_max_steps))

    def _fit(self, train: list[Example], context) -> None:
        p = self.p
        self._backbone = context.backbone
        if not p.generate:
            self.fit_info = {"diffusion_lm": "not trained (generate=False)"}
            return
        t0 = time.perf_counter()
        from methods.common.mlm import adaptation_report, adapted_mlm_dir
        from methods.diffusioncls import diffusion_lm as dlm

        proxy = self._generator_proxy(context)
        self._proxy = proxy
        self._backbone = proxy.backbone
        mlm_dir = adapted_mlm_dir(proxy.backbone)
        self._mlm_report = adaptation_report(mlm_dir)
        init = p.dlm_init if p.dlm_init != "auto" else ("mlm" if self._mlm_report else "proxy")
        self._init = init
        labels = tuple(context.labels)
        key = {
            "method": self.meta.name, "version": self.meta.version, "train": examples_fingerprint(train),
            "labels": list(labels), "seed": self.seed,
            "proxy": (context.proxy_key if proxy.backbone == context.backbone else None) or proxy_identity(proxy),
            "mlm": (self._mlm_report or {}).get("key") or build_identity(mlm_dir),
            **{k: self.params[k] for k in ("T", "lam", "schedule", "importance_norm", "label_prompt", "dlm_epochs",
                                           "dlm_lr", "dlm_batch_size", "max_length", "dlm_coverage",
                                           "dlm_max_steps", "n_groups")},
            **({"dlm_init": init} if init != "proxy" else {}),
        }
        self._dlm_key = stable_hash(key)
        cache = context.cache_dir("diffusion_lm", key)
        damaged = check_sealed(cache) if cache is not None and any(cache.iterdir()) else None
        cached = cache is not None and any(cache.iterdir()) and damaged is None
        if cached:
            model, tok, meta = dlm.load_diffusion_lm(cache)
            label_ids = meta.get("label_ids")
            train_info = meta.get("training", {})
        else:
            model, tok, label_ids = dlm.build_diffusion_lm(proxy, mlm_dir, labels, p.label_prompt, init=init)
            model.to(context.device or "cpu")
            toks = tokenize_texts(proxy.tokenizer, [e.text for e in train], self._max_text())
            weights = importance_weights(proxy.model, proxy.tokenizer, toks, p.importance_norm)
            lids = None if label_ids is None else [label_ids[e.label] for e in train]
            train_info = dlm.train_diffusion_lm(
                model, tok, toks, weights, lids, T=p.T, lam=p.lam, schedule=p.schedule, epochs=p.dlm_epochs,
                lr=p.dlm_lr, batch_size=p.dlm_batch_size, seed=hash_seed(self.seed, "diffusion-lm") % (2**31),
                coverage=p.dlm_coverage, n_groups=p.n_groups, max_steps=p.dlm_max_steps, progress=context.progress,
            )
            if cache is not None:
                dlm.save_diffusion_lm(cache, model, tok, {"key": key, "label_ids": label_ids, "training": train_info})
        self._generator = DiffusionGenerator(
            model.to(context.device or "cpu"), tok, label_ids, T=p.T, lam=p.lam, schedule=p.schedule,
            decoding=p.decoding, passes=p.passes, top_k=p.top_k, temperature=p.temperature,
            min_masked=p.min_masked, batch_size=p.gen_batch_size, seed=self.seed,
        )
        self.fit_reused = bool(cached)
        self.fit_info = {"diffusion_lm_key": self._dlm_key, "cache_hit": bool(cached), "dlm_init": init,
                         **({"cache_damaged_retrained": damaged} if damaged else {}),
                         "cache_dir": str(cache) if cache else None, "training": train_info,
                         "mlm_dir": str(mlm_dir), "mlm_fill_mask_accuracy": (self._mlm_report or {}).get(
                             "fill_mask_accuracy"), "fit_seconds": time.perf_counter() - t0}

    def _generator_backbone(self, context) -> str:
        """The encoder the diffusion LM starts from: the cell's own, or a fine-tunable one when the
        run classifies with frozen features."""
        want = self.p.generator_backbone
        if want is None and is_frozen(context.backbone):
            want = GENERATOR_BACKBONE.get(context.language, "minilm")
        return want or context.backbone

    def _resource_key(self, context) -> dict[str, Any]:
        """The generator's encoder (and its build) and the masked LM its head comes from."""
        if not self.p.generate:
            return {}
        from methods.common.mlm import mlm_identity

        backbone = self._generator_backbone(context)
        return {"generator_backbone": backbone, "build": prepared_build(backbone), "mlm": mlm_identity(backbone)}

    def _generator_proxy(self, context):
        """The proxy whose attention weighs tokens and whose encoder starts the diffusion LM: the cell's
        own, or one on :meth:`_generator_backbone`."""
        want = self._generator_backbone(context)
        if want == context.backbone:
            return context.proxy()
        if context.proxy_on is None:
            raise AugmenterError("diffusioncls: a generator proxy on another backbone needs the runner's proxy_on")
        return context.proxy_on(want)

    def _max_text(self) -> int:
        return self.p.max_length - (4 if self.p.label_prompt else 2)

    # ------------------------------------------------------------------ generation
    def _items(self, examples: list[tuple[Example, int]], weights_model, salt: Any) -> list[GenItem]:
        toks = tokenize_texts(self._proxy.tokenizer, [e.text for e, _ in examples], self._max_text())
        weights = importance_weights(weights_model, self._proxy.tokenizer, toks, self.p.importance_norm)
        items = []
        for (ex, n), tk, w in zip(examples, toks, weights):
            for k in range(n):
                draw = k // len(self.steps) if self.p.mask_draws == "shared" else k
                items.append(GenItem(tk, w, ex.label, self.steps[k % len(self.steps)],
                                     hash_seed(self.seed, "mask", salt, ex.id, draw)))
        return items

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        p = self.p
        if not p.generate or p.generation == "reflective":
            return []
        if self._generator is None:
            raise AugmenterError("diffusioncls: not fitted")
        t0 = time.perf_counter()
        items = self._items(pairs, self._proxy.model, "offline")
        outs = self._generator.generate(items, batch_seed="offline")
        parents = [ex for ex, n in pairs for _ in range(n)]
        synth = [
            self.synth(ex, o.text, step=o.item.step, step_group=p.step_group, T=p.T,
                       mask_rate=round(o.info["mask_rate"], 4), n_masked=o.info["n_masked"],
                       n_changed=o.info["n_changed"], decoding=p.decoding, schedule=p.schedule,
                       lam=p.lam, label_prompt=p.label_prompt, masked_text=o.masked_text,
                       generation="offline", diffusion_lm=self._dlm_key)
            for ex, o in zip(parents, outs)
        ]
        self._last_gen_seconds = time.perf_counter() - t0
        return synth

    def _stats(self, pairs, synth) -> dict[str, Any]:
        s = super()._stats(pairs, synth)
        p = self.p
        if not p.generate:
            s["note"] = "w/o D.A.: no pseudo samples by design (generate=False)"
        elif p.generation == "reflective":
            s["note"] = "reflective: pseudo samples are generated online while the classifier trains"
        if synth:
            s["mean_mask_rate"] = sum(x.provenance["mask_rate"] for x in synth) / len(synth)
            s["mean_changed_tokens"] = sum(x.provenance["n_changed"] for x in synth) / len(synth)
            s["no_token_changed"] = sum(1 for x in synth if x.provenance["n_changed"] == 0)
            s["generation_seconds"] = getattr(self, "_last_gen_seconds", None)
        s["fit"] = self.fit_info
        return s

    # ------------------------------------------------------------------ reflective generation
    def make_batch_hook(self):
        p = self.p
        if not p.generate or p.generation != "reflective":
            return None
        if self._generator is None:
            raise AugmenterError("diffusioncls: call fit before make_batch_hook")
        n = p.reflective_n

        def hook(batch, model, epoch):
            t0 = time.perf_counter()
            originals = [Example(f"e{epoch}:{stable_hash(text, 12)}", text, label)
                         for text, label, is_orig in batch if is_orig]
            if not originals or n <= 0:
                return []
            calls = self.reflective_stats["batches"]
            items = self._items([(e, n) for e in originals], model, ("reflective", epoch))
            outs = self._generator.generate(items, batch_seed=("reflective", epoch, calls))
            self.reflective_stats["batches"] += 1
            self.reflective_stats["produced"] += len(outs)
            self.reflective_stats["identical"] += sum(1 for o in outs if o.text == o.item.toks.text)
            self.reflective_stats["seconds"] += time.perf_counter() - t0
            return [(o.text, o.item.label, False) for o in outs]

        return hook
