"""Augmentation methods. One module per method, one line per registration.

Adding a baseline: write ``methods/mymethod.py`` with an ``Augmenter`` subclass and add
one ``METHODS.register(...)`` line below. Targets are imported lazily.
"""

from bench.registry import Registry

METHODS = Registry("method")

METHODS.register("none", "methods.none:NoAugmentation", "raw PLM: no augmentation (the baseline every delta is against)")
METHODS.register("resample", "methods.resample:Resample", "oversample minority classes by copying originals (B/D)")
METHODS.register("eda", "methods.eda:EDA", "EDA: synonym replacement, random insertion, swap, deletion (WordNet / jieba+Cilin)")
METHODS.register("aeda", "methods.aeda:AEDA", "AEDA: insert random punctuation marks")
