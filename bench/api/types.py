"""The data types every layer shares: labelled originals, pseudo samples, method metadata, errors."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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
    # whether fit/augment read the cell's `none` classifier (LAMBADA's filter, DiffusionCLS's attention):
    # the executor then runs the proxy stage before the cell
    needs_proxy: bool = False


class AugmenterError(RuntimeError):
    """A method cannot do what was asked (not fitted, bad parameter, ...)."""


class MethodUnavailable(AugmenterError):
    """The method cannot run in this setting (no engine for the language, no model offline).

    The runner records ``unavailable: <reason>`` for the cell instead of a number.
    """
