"""lowres-aug-bench: a benchmark harness for text data augmentation in low-resource sentiment
classification (DiffusionCLS and its baselines).

Pipeline: card -> loader -> split -> view -> fit -> augment -> train -> evaluate -> record -> report.
"""

__version__ = "0.1.0"
