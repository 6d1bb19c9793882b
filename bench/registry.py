"""A small generic registry with lazy ``"module:attr"`` targets.

Listing never imports the target (so ``bench ls methods`` and ``--help`` never import
torch); unknown names answer with close matches.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


class UnknownName(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:Attr"
    summary: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # default parameters for this entry
    tags: tuple[str, ...] = ()

    def load(self) -> Any:
        mod, _, attr = self.target.partition(":")
        obj = importlib.import_module(mod)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: str, summary: str = "", params: dict[str, Any] | None = None,
                 tags: tuple[str, ...] = ()) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = Entry(name, target, summary, dict(params or {}), tuple(tags))

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    def names(self) -> list[str]:
        return list(self._entries)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownName(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self._entries)})"
            ) from None

    def resolve(self, spec: str) -> list[str]:
        """``all`` or a comma-separated list of names -> validated list of names."""
        if spec.strip() == "all":
            return self.names()
        names = [s.strip() for s in spec.split(",") if s.strip()]
        for n in names:
            self.get(n)
        return names
