"""Offline resources that the suite builds itself, once, into $BENCH_HOME (see bench.api.resources)."""

from __future__ import annotations

__all__ = ["prepare_zh_char_bert"]


def __getattr__(name: str):  # heavy imports (torch, transformers) only when asked for
    if name == "prepare_zh_char_bert":
        from bench.prepare.zh_backbone import prepare_zh_char_bert

        return prepare_zh_char_bert
    raise AttributeError(name)
