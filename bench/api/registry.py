"""A small generic registry with lazy ``"module:attr"`` targets.

Listing never imports the target (so ``bench ls methods`` and ``--help`` never import
torch); unknown names answer with close matches. Out-of-tree entries come from an
entry-point group (:meth:`Registry.add_entry_points`): a package that declares
``[project.entry-points."lowres_aug_bench.methods"] mymethod = "mypkg.mod:MyAugmenter"``
appears in ``bench ls methods`` and runs like a built-in method once it is installed.
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
    plugin: str | None = None  # the distribution that provides an out-of-tree entry
    variant_of: str | None = None  # a registered variant's family (diffusioncls for diffusioncls-wo-nrt)

    @property
    def base_name(self) -> str:
        """The registered name this entry derives from (itself for a registered entry)."""
        return self.base or self.name

    def facts(self) -> dict[str, Any]:
        """What a record stores about the entry, so reports group by fields, never by parsing names."""
        return {"name": self.name, "base": self.base_name, "family": self.variant_of or self.base_name,
                "params": dict(self.params), "overrides": dict(self.overrides), "tags": list(self.tags),
                "plugin": self.plugin}

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
    return configuration_name(base, {key: value})


def configuration_name(base: str, overrides: dict[str, Any]) -> str:
    """A registered name with bracketed parameters (``base[k=v;k2=v2]``), or ``base`` without any."""
    if not overrides:
        return base
    inner = ";".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in overrides.items())
    return f"{base}[{inner}]"


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, target: str, summary: str = "", params: dict[str, Any] | None = None,
                 tags: tuple[str, ...] = (), plugin: str | None = None, variant_of: str | None = None) -> None:
        """Register ``name`` -> ``"module:Attr"``; a variant names its family (``variant_of``)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        if variant_of is not None and variant_of not in self._entries:
            raise ValueError(f"{self.kind} {name!r}: variant of unregistered {variant_of!r}")
        self._entries[name] = Entry(name, target, summary, dict(params or {}), tuple(tags), plugin=plugin,
                                    variant_of=variant_of)

    def add_entry_points(self, group: str) -> list[str]:
        """Register every entry point of ``group`` that is not registered yet (installed plugins);
        returns their names. A plugin named like a built-in entry is refused with a warning."""
        import warnings
        from importlib.metadata import entry_points

        added = []
        for ep in entry_points(group=group):
            if ep.name in self._entries:
                if self._entries[ep.name].plugin is None:
                    warnings.warn(f"plugin {self.kind} {ep.name!r} ({ep.value}) is ignored: the name is built in",
                                  stacklevel=2)
                continue
            dist = getattr(ep, "dist", None)
            who = f"{dist.name} {dist.version}" if dist is not None else ep.value
            self.register(ep.name, ep.value, f"plugin ({who})", plugin=who)
            added.append(ep.name)
        return added

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
                             tags, base.base_name, {**base.overrides, **over}, base.plugin,
                             base.variant_of or base.base_name)
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
