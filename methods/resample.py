"""``resample``: random oversampling, i.e. exact copies of originals (the paper's Resample, B/D)."""

from __future__ import annotations

from bench.api import Augmenter, Example, MethodMeta, Synthetic


class Resample(Augmenter):
    meta = MethodMeta(
        name="resample",
        version="1",
        description="oversample minority classes with exact copies",
        policies=("B/D",),
    )

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        # a copy is a copy: the count per parent is exact, and provenance says so
        return [self.synth(e, e.text, copy=i) for e, n in pairs for i in range(n)]
