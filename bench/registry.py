"""A small generic registry with lazy ``"module:attr"`` targets.

Listing never imports the target (so ``bench ls methods`` and ``--help`` never import
torch); unknown names answer with close matches.
"""

from __future__ import annotations

import difflib
import importlib
import json
import re
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
    base: str | None = None  # for a parameterised name ``base[key=value]``: the registered name
    overrides: dict[str, Any] = field(default_factory=dict)  # ... and its bracketed parameters

    def load(self) -> Any:
        mod, _, attr = self.target.partition(":")
        obj = importlib.import_module(mod)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


_PARAMETERISED = re.compile(r"^([A-Za-z0-9_.-]+)\[(.+)\]$")


def parse_value(v: str) -> Any:
    """A JSON value where ``v`` is one (``3``, ``0.5``, ``true``, ``"x"``), else the plain string."""
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def parameterised_name(base: str, key: str, value: Any) -> str:
    """``diffusioncls``, ``step_group``, 3 -> ``diffusioncls[step_group=3]``."""
    return f"{base}[{key}={json.dumps(value) if not isinstance(value, str) else value}]"


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
        """A registered name, or ``name[key=value;key2=value2]``: the registered entry with those
        parameters on top (values parsed as JSON where they are JSON). Parameterised names are how
        a sweep gets one cell per value (``run --sweep diffusioncls.step_group=1,2,4``)."""
        if name not in self._entries:
            m = _PARAMETERISED.match(name)
            if m:
                base = self.get(m.group(1))
                over: dict[str, Any] = {}
                for part in m.group(2).split(";"):
                    key, eq, value = part.partition("=")
                    if not (eq and key.strip()):
                        raise UnknownName(f"{self.kind} {name!r}: expected NAME[KEY=VALUE;...]")
                    over[key.strip()] = parse_value(value.strip())
                tags = base.tags if "variant" in base.tags else (*base.tags, "variant")
                return Entry(name, base.target, f"{base.summary} ({m.group(2)})", {**base.params, **over},
                             tags, base.base or base.name, {**base.overrides, **over})
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownName(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self._entries)})"
            ) from None

    def groups(self) -> dict[str, list[str]]:
        """Tag -> names; ``all`` = every entry without the ``variant`` tag."""
        out: dict[str, list[str]] = {"all": [e.name for e in self if "variant" not in e.tags]}
        for e in self:
            for t in e.tags:
                out.setdefault(t, []).append(e.name)
        return out

    def resolve(self, spec: str) -> list[str]:
        """Comma-separated names or group names (``all``, a tag such as ``ablations``) -> names, in order."""
        groups = self.groups()
        names: list[str] = []
        for part in (s.strip() for s in spec.split(",")):
            if not part:
                continue
            if part in groups and part not in self._entries:
                new = groups[part]
            else:
                self.get(part)
                new = [part]
            names.extend(n for n in new if n not in names)
        if not names:
            raise UnknownName(f"no {self.kind} named in {spec!r}")
        return names
