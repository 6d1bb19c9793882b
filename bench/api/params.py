"""Typed method parameters: one frozen dataclass per method instead of ``p["..."]`` look-ups.

A method declares ``class Params(MethodParams)`` with annotated fields and defaults; values from
the registry, ``--param`` and bracketed names (JSON) are checked and converted once, in
:meth:`MethodParams.from_dict`, with errors that name the method and the parameter. Field
metadata says two more things: ``choices`` (allowed values) and ``fit`` (the parameter changes
what ``fit`` produces, e.g. the diffusion LM; cells whose fit parameters agree share that work) and
``axis`` (a parameter the paper varies along a figure's axis, such as DiffusionCLS's step group: a
sweep over it is one configuration at several points, not several configurations).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any

from bench.api.types import AugmenterError


def param(default: Any, *, fit: bool = False, axis: bool = False, choices: tuple[Any, ...] | None = None,
          doc: str = "") -> Any:
    """A parameter field: its default, whether it shapes the fitted generator, whether it is a figure's
    axis, its allowed values."""
    meta = {"fit": fit, "axis": axis, "choices": choices, "doc": doc}
    if isinstance(default, list | dict):
        raise TypeError("mutable defaults: use a tuple")
    return dataclasses.field(default=default, metadata=meta)


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` (from JSON) as type ``tp``; lists become tuples so parameters stay hashable."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except AugmenterError as e:
                errors.append(str(e))
        raise AugmenterError(errors[0] if errors else f"{where}: {value!r} is not allowed")
    if tp is Any:
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise AugmenterError(f"{where}: expected a list, got {value!r}")
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return tuple(_coerce(v, args[0], where) if args else v for v in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise AugmenterError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
            raise AugmenterError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise AugmenterError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise AugmenterError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _jsonable(v: Any) -> Any:
    return [_jsonable(x) for x in v] if isinstance(v, tuple | list) else v


@dataclass(frozen=True)
class MethodParams:
    """Base of every method's parameters (a method without parameters uses it as is)."""

    @classmethod
    def from_dict(cls, method: str, values: dict[str, Any]) -> MethodParams:
        """Checked and converted parameters; unknown names and wrong types are errors naming both."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(values) - set(fields)
        if unknown:
            raise AugmenterError(f"{method}: unknown parameter(s) {sorted(unknown)}; known: {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        kw = {}
        for name, value in values.items():
            where = f"{method}: parameter {name}"
            v = _coerce(value, hints[name], where)
            choices = fields[name].metadata.get("choices")
            if choices is not None and v not in choices:
                raise AugmenterError(f"{where}={v!r}; expected one of {list(choices)}")
            kw[name] = v
        return cls(**kw)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return cls().to_dict()

    @classmethod
    def axes(cls) -> list[str]:
        """The parameters declared ``axis=True``."""
        return [f.name for f in dataclasses.fields(cls) if f.metadata.get("axis")]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able values (what records and cache keys hold)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def fit_dict(self) -> dict[str, Any]:
        """The parameters that shape ``fit``'s product (fields declared with ``fit=True``)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self) if f.metadata.get("fit")}
