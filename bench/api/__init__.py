"""The bottom layer: what methods use and the harness builds on, importing nothing above it.

* :mod:`.types`     - Example, Synthetic, AugmentResult, MethodMeta, method errors
* :mod:`.params`    - typed method parameters (``MethodParams``, ``param``)
* :mod:`.augmenter` - the ``Augmenter`` interface, ``FitContext``, the proxy protocol
* :mod:`.hashing`   - content hashes, derived seeds
* :mod:`.io`        - atomic writes, JSON reads
* :mod:`.registry`  - the lazy registry (built-in entries and entry-point plugins)
* :mod:`.hub`       - model names -> loadable paths, offline aliases, hub reachability
* :mod:`.resources` - ``$BENCH_HOME`` and installed data/model packages

``methods/`` imports only this package (checked by tests/unit/test_layers.py).
"""

from bench.api.augmenter import Augmenter, FitContext, ProxyClassifier
from bench.api.hashing import derive, examples_fingerprint, seed_everything, stable_hash
from bench.api.params import MethodParams, param
from bench.api.types import (
    POLICIES,
    AugmenterError,
    AugmentResult,
    Example,
    MethodMeta,
    MethodUnavailable,
    Synthetic,
)

__all__ = [
    "POLICIES", "Augmenter", "AugmenterError", "AugmentResult", "Example", "FitContext", "MethodMeta",
    "MethodParams", "MethodUnavailable", "ProxyClassifier", "Synthetic", "derive", "examples_fingerprint",
    "param", "seed_everything", "stable_hash",
]
