"""``none``: the raw PLM baseline. It makes no pseudo samples."""

from __future__ import annotations

from bench.api import Augmenter, Example, MethodMeta, Synthetic


class NoAugmentation(Augmenter):
    meta = MethodMeta(
        name="none",
        version="1",
        description="no augmentation: the classifier sees the originals only",
        policies=("-",),
    )

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        return []
