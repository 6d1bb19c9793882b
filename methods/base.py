"""The common augmenter interface: batch in, batch out, fit separate from augment.

Every method in the suite subclasses :class:`Augmenter`. An augmenter

* declares its :class:`MethodMeta` (name, version, needs-fit, languages, policies,
  citation); the version goes into every cache key, so changing a method's code
  means bumping it;
* owns its seed (``seed`` is the augment seed the runner derives for the cell);
* takes a list of :class:`Example` and a per-example count and returns an
  :class:`AugmentResult`: a list of :class:`Synthetic` (each carrying its parent id
  and provenance) plus the shortfall per parent, never silently fewer outputs;
* never mutates its input.

The module imports nothing heavy; torch-based methods import torch lazily.
"""

from __future__ import annotations

import hashlib
import json
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

POLICIES = ("G/E", "B/D")


@dataclass(frozen=True)
class Example:
    """One labelled original. ``id`` is stable across runs (it comes from the data set)."""

    id: str
    text: str
    label: str


@dataclass(frozen=True)
class Synthetic:
    """One pseudo sample: its text, the label it is meant to carry, its parent and how it was made."""

    text: str
    label: str
    parent_id: str
    method: str
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(d: dict[str, Any]) -> Synthetic:
        return Synthetic(d["text"], d["label"], d["parent_id"], d["method"], dict(d.get("provenance") or {}))


@dataclass
class AugmentResult:
    """What ``augment`` returns: the synthetic examples and, per parent id, how many it could not make."""

    synthetic: list[Synthetic]
    requested: int
    shortfall: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def produced(self) -> int:
        return len(self.synthetic)


@dataclass(frozen=True)
class MethodMeta:
    name: str
    version: str
    description: str
    needs_fit: bool = False
    languages: tuple[str, ...] = ("en", "zh")
    policies: tuple[str, ...] = POLICIES
    citation: str = ""
    # the paper's model, where the method uses one (for "substitutes used" reporting)
    paper_model: str | None = None


class AugmenterError(RuntimeError):
    """A method cannot do what was asked (not fitted, unsupported language, ...)."""


class MethodUnavailable(AugmenterError):
    """The method cannot run in this setting (no engine for the language, no model offline).

    The runner records ``unavailable: <reason>`` for the cell instead of a number.
    """


@dataclass
class FitContext:
    """What a method may use while fitting, beyond the train split.

    ``proxy`` returns the trained ``none`` classifier of the same cell (trained once and
    served from the cache); ``cache_dir(name, key)`` returns a directory keyed by a content
    hash, for fitted generators that should survive a rerun. ``language`` and ``labels`` come
    from the dataset card. ``backbone`` is the classifier backbone spec of the run.
    """

    language: str
    labels: tuple[str, ...]
    seed: int
    backbone: str = "minilm"
    cache_root: Path | None = None
    proxy_factory: Any = None  # callable () -> bench.classifier.TrainedClassifier
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)
    _proxy: Any = None

    def proxy(self):
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


def stable_hash(obj: Any, n: int = 16) -> str:
    """A short, stable content hash of any JSON-able object (keys sorted)."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:n]


def examples_fingerprint(examples: Sequence[Example]) -> str:
    return stable_hash([[e.id, e.text, e.label] for e in examples])


class Augmenter(ABC):
    """Base class of every augmentation method.

    Subclasses set ``meta`` and implement ``_generate``. Override ``_fit`` when
    ``meta.needs_fit`` is true. ``params`` are JSON-able keyword parameters; they
    are recorded in every record and go into the cache key.
    """

    meta: ClassVar[MethodMeta]
    default_params: ClassVar[dict[str, Any]] = {}
    # the runner derives a cell's augmenter seed from this name (default: meta.name), so registered
    # variants and parameterised names of one family draw the same random numbers (paired comparisons)
    seed_family: ClassVar[str | None] = None

    def __init__(self, seed: int = 0, **params: Any):
        unknown = set(params) - set(self.default_params)
        if unknown:
            raise AugmenterError(
                f"{self.meta.name}: unknown parameter(s) {sorted(unknown)}; known: {sorted(self.default_params)}"
            )
        self.seed = int(seed)
        self.params: dict[str, Any] = {**self.default_params, **params}
        self._fitted = False
        self.language: str | None = None
        self.labels: tuple[str, ...] = ()

    # ---- public API -------------------------------------------------------------------------
    def fit(self, train: Sequence[Example], context: FitContext) -> Augmenter:
        if context.language not in self.meta.languages:
            raise MethodUnavailable(
                f"{self.meta.name} does not support language {context.language!r} "
                f"(supports {', '.join(self.meta.languages)})"
            )
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
        }

    def substitutes(self) -> list[dict[str, str]]:
        """Offline stand-ins this method used for the paper's models: [{role, paper, used}]."""
        return []

    def classifier_options(self) -> dict[str, Any]:
        """Overrides of ``bench.classifier.ClassifierConfig`` for the final classifier of this
        method's cells (e.g. DiffusionCLS's noise-resistant training: nrt_weight, group_batches)."""
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

    @abstractmethod
    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        """Return up to ``n`` synthetic examples per ``(example, n)`` pair."""

    def _stats(self, pairs: list[tuple[Example, int]], synth: list[Synthetic]) -> dict[str, Any]:
        parents = {e.id: e.text for e, _ in pairs}
        same = sum(1 for s in synth if s.text == parents.get(s.parent_id))
        return {"identical_to_parent": same}

    def rng(self, *names: Any) -> random.Random:
        """A ``random.Random`` seeded from this object's seed and the given names."""
        return random.Random(int(stable_hash([self.seed, self.meta.name, *names]), 16))

    def synth(self, parent: Example, text: str, **provenance: Any) -> Synthetic:
        return Synthetic(
            text=text, label=parent.label, parent_id=parent.id, method=self.meta.name, provenance=provenance
        )
