"""The common augmenter interface: batch in, batch out, fit separate from augment.

Every method subclasses :class:`Augmenter`. An augmenter

* declares its :class:`~bench.api.types.MethodMeta` (name, version, needs-fit, languages,
  policies, citation); the version goes into every cache key, so changing a method's code means
  bumping it;
* declares its parameters as a frozen dataclass (``class Params(MethodParams)``), read as
  ``self.p.<name>``; ``self.params`` is the same as a JSON-able dict for records and cache keys;
* owns its seed (``seed`` is the augment seed the runner derives for the cell);
* takes a list of :class:`Example` and a per-example count and returns an :class:`AugmentResult`:
  a list of :class:`Synthetic` (each carrying its parent id and provenance) plus the shortfall per
  parent, never silently fewer outputs;
* never mutates its input.

This module imports nothing heavy; torch-based methods import torch lazily.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from bench.api.hashing import stable_hash
from bench.api.params import MethodParams
from bench.api.types import AugmenterError, AugmentResult, Example, MethodMeta, MethodUnavailable, Synthetic


class ProxyClassifier(Protocol):
    """What a method may use of the cell's ``none`` classifier (its proxy)."""

    labels: tuple[str, ...]
    model: Any  # a transformers *ForSequenceClassification
    tokenizer: Any

    @property
    def backbone(self) -> str: ...

    def predict_proba(self, texts: Sequence[str]) -> Any: ...


@dataclass
class FitContext:
    """What a method may use while fitting, beyond the train split.

    ``proxy()`` returns the trained ``none`` classifier of the same cell (trained once and served
    from the cache); ``cache_dir(name, key)`` returns a directory keyed by a content hash, for
    fitted generators that should survive a rerun. ``language`` and ``labels`` come from the
    dataset card; ``backbone`` is the classifier backbone of the run; ``proxy_key`` identifies the
    proxy's cache entry (part of a fitted generator's key); ``progress`` receives status lines;
    ``proxy_on(backbone)`` gives the proxy trained on another backbone (a method whose generator needs
    a fine-tunable encoder when the run classifies with frozen features).
    """

    language: str
    labels: tuple[str, ...]
    seed: int
    backbone: str = "minilm"
    cache_root: Path | None = None
    proxy_factory: Callable[[], ProxyClassifier] | None = None
    device: str = "cpu"
    proxy_key: str | None = None
    progress: Callable[[str], None] | None = None
    proxy_on: Callable[[str], ProxyClassifier] | None = None  # the proxy on another backbone
    _proxy: Any = None

    def proxy(self) -> ProxyClassifier:
        if self._proxy is None:
            if self.proxy_factory is None:
                raise AugmenterError("this method needs the proxy ('none') classifier, but none was provided")
            self._proxy = self.proxy_factory()
        return self._proxy

    def cache_dir(self, name: str, key: dict[str, Any]) -> Path | None:
        if self.cache_root is None:
            return None
        d = Path(self.cache_root) / name / stable_hash(key)
        d.mkdir(parents=True, exist_ok=True)
        return d


def sibling_diversity(synth: Sequence[Synthetic]) -> dict[str, float | None]:
    """How different the pseudo samples of one original are from each other: the mean number of
    distinct texts per parent (over parents with 2 or more samples) and the mean pairwise Jaccard
    overlap of their word sets (characters for text written without spaces; 1 = the same words).
    Near-duplicates add little beyond one sample."""
    by: dict[str, list[str]] = {}
    for s in synth:
        by.setdefault(s.parent_id, []).append(s.text)
    groups = [v for v in by.values() if len(v) >= 2]
    if not groups:
        return {"siblings_distinct_mean": None, "siblings_jaccard_mean": None}
    overlaps = []
    for texts in groups:
        sets = [set(t.split()) if " " in t.strip() else set(t) for t in texts]  # words; characters for CJK
        for i in range(len(sets)):
            for j in range(i + 1, len(sets)):
                union = sets[i] | sets[j]
                overlaps.append(len(sets[i] & sets[j]) / len(union) if union else 1.0)
    return {"siblings_distinct_mean": round(sum(len(set(v)) for v in groups) / len(groups), 4),
            "siblings_jaccard_mean": round(sum(overlaps) / len(overlaps), 4)}


class Augmenter(ABC):
    """Base class of every augmentation method.

    Subclasses set ``meta`` (and ``Params`` when they take parameters) and implement
    ``_generate``; they override ``_fit`` when ``meta.needs_fit`` is true.
    """

    meta: ClassVar[MethodMeta]
    Params: ClassVar[type[MethodParams]] = MethodParams
    # the runner derives a cell's augmenter seed from this name (default: meta.name), so registered
    # variants and parameterised names of one family draw the same random numbers (paired comparisons)
    seed_family: ClassVar[str | None] = None

    def __init__(self, seed: int = 0, **params: Any):
        self.seed = int(seed)
        self.p = self.Params.from_dict(self.meta.name, params)
        self.params: dict[str, Any] = self.p.to_dict()
        self._fitted = False
        # set by fit() in methods that cache what they learn: True when it loaded a generator trained by an
        # earlier cell (a step sweep or an ablation that reuses one diffusion LM), False when it trained one;
        # None when the method keeps no such cache. The runner records it; the grid's ETA prices only the
        # cells that train
        self.fit_reused: bool | None = None
        self.language: str | None = None
        self.labels: tuple[str, ...] = ()

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return cls.Params.defaults()

    # ---- public API -------------------------------------------------------------------------
    def fit(self, train: Sequence[Example], context: FitContext) -> Augmenter:
        self._check_language(context)
        if not train:
            raise AugmenterError(f"{self.meta.name}: cannot fit on an empty train split")
        self.language = context.language
        self.labels = tuple(context.labels)
        self._fit(list(train), context)
        self._fitted = True
        return self

    def augment(self, examples: Sequence[Example], counts: int | Sequence[int]) -> AugmentResult:
        """Make ``counts[i]`` pseudo samples for ``examples[i]`` (or ``counts`` for each)."""
        if self.meta.needs_fit and not self._fitted:
            raise AugmenterError(f"{self.meta.name}: call fit(train, context) before augment()")
        examples = list(examples)
        if isinstance(counts, int):
            counts = [counts] * len(examples)
        counts = [int(c) for c in counts]
        if len(counts) != len(examples):
            raise AugmenterError(f"{self.meta.name}: {len(examples)} examples but {len(counts)} counts")
        if any(c < 0 for c in counts):
            raise AugmenterError(f"{self.meta.name}: negative count requested")
        if self.language is None:
            self.language = "en"
        pairs = [(e, c) for e, c in zip(examples, counts) if c > 0]
        synth = self._generate(pairs) if pairs else []
        made: dict[str, int] = {}
        for s in synth:
            made[s.parent_id] = made.get(s.parent_id, 0) + 1
        shortfall = {e.id: c - made.get(e.id, 0) for e, c in pairs if made.get(e.id, 0) < c}
        stats = self._stats(pairs, synth)
        return AugmentResult(synthetic=synth, requested=sum(counts), shortfall=shortfall, stats=stats)

    def resource_key(self, context: FitContext) -> dict[str, Any]:
        """What the pseudo samples depend on beyond the parameters, seed and data: which models and
        builds :meth:`fit` would load here (a hub model or its offline stand-in, a suite-adapted masked
        LM, a rebuilt backbone). The runner keys its cache of pseudo samples on it, so samples made by
        one generator are never served for another. Resolved without loading or training anything;
        raises :class:`MethodUnavailable` where :meth:`fit` would."""
        self._check_language(context)
        return self._resource_key(context)

    def _check_language(self, context: FitContext) -> None:
        if context.language not in self.meta.languages:
            raise MethodUnavailable(
                f"{self.meta.name} does not support language {context.language!r} "
                f"(supports {', '.join(self.meta.languages)})"
            )

    def describe(self) -> dict[str, Any]:
        m = self.meta
        return {
            "name": m.name,
            "version": m.version,
            "params": self.params,
            "seed": self.seed,
            "needs_fit": m.needs_fit,
            "languages": list(m.languages),
            "citation": m.citation,
            "substitutes": self.substitutes(),
            "axes": self.Params.axes(),
        }

    def needs_proxy(self) -> bool:
        """Whether this configuration reads the cell's proxy classifier (default: ``meta.needs_proxy``)."""
        return self.meta.needs_proxy

    def shared_work_key(self) -> dict[str, Any] | None:
        """What identifies the work that cells of this family share (a fitted generator), or None.

        Cells whose keys agree (a step sweep, ablations that reuse one diffusion LM) are run so that
        one computes the shared stage and the others reuse it from the cache.
        """
        fit = self.p.fit_dict()
        if not (self.meta.needs_fit and fit):
            return None
        return {"family": self.seed_family or self.meta.name, "version": self.meta.version, "fit": fit}

    def fit_work(self, n_train: int) -> float:
        """How much training :meth:`fit` does on ``n_train`` originals, in the method's own unit (default:
        the originals). The grid's ETA prices a fit per unit of this, so a method whose fit does not grow
        linearly with the view (DiffusionCLS caps its diffusion LM's steps) says so here."""
        return float(n_train)

    def substitutes(self) -> list[dict[str, str]]:
        """Offline stand-ins this method used for the paper's models: [{role, paper, used}]."""
        return []

    def classifier_options(self) -> dict[str, Any]:
        """Overrides of the classifier configuration for the final classifier of this method's
        cells (e.g. DiffusionCLS's noise-resistant training: nrt_weight, group_batches)."""
        return {}

    @property
    def online(self) -> bool:
        """True when this configuration generates while the classifier trains (needs ``make_batch_hook``)."""
        return False

    def make_batch_hook(self):
        """Optional ``hook(batch, model, epoch) -> extra items`` for online (reflective) generation
        while the final classifier trains; items are ``(text, label, is_original)``."""
        return None

    def online_stats(self) -> dict[str, Any]:
        """What the batch hook produced while the classifier trained (recorded after training)."""
        return {}

    # ---- for subclasses ---------------------------------------------------------------------
    def _fit(self, train: list[Example], context: FitContext) -> None:  # noqa: B027 - optional hook
        pass

    def _resource_key(self, context: FitContext) -> dict[str, Any]:
        """See :meth:`resource_key`; methods that load models override it (default: nothing)."""
        return {}

    @abstractmethod
    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        """Return up to ``n`` synthetic examples per ``(example, n)`` pair."""

    def _stats(self, pairs: list[tuple[Example, int]], synth: list[Synthetic]) -> dict[str, Any]:
        parents = {e.id: e.text for e, _ in pairs}
        same = sum(1 for s in synth if s.text == parents.get(s.parent_id))
        return {"identical_to_parent": same, **sibling_diversity(synth)}

    def rng(self, *names: Any) -> random.Random:
        """A ``random.Random`` seeded from this object's seed and the given names."""
        return random.Random(int(stable_hash([self.seed, self.meta.name, *names]), 16))

    def synth(self, parent: Example, text: str, **provenance: Any) -> Synthetic:
        return Synthetic(
            text=text, label=parent.label, parent_id=parent.id, method=self.meta.name, provenance=provenance
        )
