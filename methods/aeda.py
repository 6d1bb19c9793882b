"""AEDA (Karimi et al., 2021): insert random punctuation marks at 1..n/3 random positions.

English uses ``. ; ? : ! ,`` between whitespace tokens; Chinese uses the full-width marks
``。；？：！，`` between jieba tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.api import Augmenter, Example, MethodMeta, MethodParams, Synthetic, param
from methods.common.lexicons import detokenize, tokenize


@dataclass(frozen=True)
class AEDAParams(MethodParams):
    ratio: float = param(1 / 3, doc="at most this share of the words gets a mark inserted before it")


PUNCT = {"en": (".", ";", "?", ":", "!", ","), "zh": ("。", "；", "？", "：", "！", "，")}


class AEDA(Augmenter):
    meta = MethodMeta(
        name="aeda",
        version="1",
        description="insert random punctuation marks at 1..n/3 random positions",
        citation="Karimi, Rossi & Prati (2021), AEDA: An Easier Data Augmentation Technique for Text "
        "Classification. Findings of EMNLP.",
    )
    Params = AEDAParams
    p: AEDAParams

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        lang = self.language or "en"
        marks = PUNCT["zh" if lang == "zh" else "en"]
        out: list[Synthetic] = []
        for ex, n in pairs:
            rng = self.rng(ex.id)
            words = tokenize(ex.text, lang)
            upper = max(1, int(len(words) * self.p.ratio))
            for k in range(n):
                q = rng.randint(1, upper)
                positions = sorted(rng.sample(range(len(words) + 1), min(q, len(words) + 1)))
                new: list[str] = []
                inserted = 0
                for i in range(len(words) + 1):
                    if inserted < len(positions) and positions[inserted] == i:
                        new.append(rng.choice(marks))
                        inserted += 1
                    if i < len(words):
                        new.append(words[i])
                out.append(self.synth(ex, detokenize(new, lang), inserted=inserted, k=k))
        return out
