"""Presets: named grids of cells with classifier settings budgeted for their hardware.

Costs measured on this suite's 2-core CPU machines (MiniLM backbone, dynamic padding): one
training step on a batch of 16 tweets ~0.15-0.3 s; a 5% airline view (506 tweets) trains one
epoch in ~10 s plus ~2 s to score 300 dev tweets. The ``quick`` preset is sized from those
figures; its wall time is logged in every manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    datasets: tuple[str, ...]
    fractions: tuple[float, ...] = ()  # percent of the train split
    shots: tuple[int, ...] = ()
    seeds: tuple[int, ...] = (0,)
    policies: tuple[str, ...] = ("G/E", "B/D")
    methods: str = "all"
    n_aug: int = 4
    max_dev: int | None = None
    max_test: int | None = None
    classifier: dict[str, Any] = field(default_factory=dict)
    # per language: MiniLM has almost no CJK vocabulary, so Chinese data gets the suite-prepared
    # character-level BERT (`python -m bench prepare backbone zh-char-bert`)
    backbone: str = "en=minilm,zh=prepared:zh-char-bert"
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "smoke": Preset(
        name="smoke",
        summary="tiny: 1% of airline tweets, 1 seed, 1 epoch, capped dev/test; a first look and the e2e test",
        datasets=("airline",),
        fractions=(1,),
        seeds=(0,),
        n_aug=2,
        max_dev=120,
        max_test=240,
        classifier={"epochs": 1, "max_length": 40, "batch_size": 16, "lr": 1e-4},
    ),
    "quick": Preset(
        name="quick",
        summary="the default: every method on airline tweets at 5% of train (G/E; resample B/D), 3 seeds",
        datasets=("airline",),
        fractions=(5,),
        seeds=(0, 1, 2),
        policies=("G/E",),
        n_aug=4,
        max_dev=300,
        max_test=1000,
        # min_steps ~ the steps of a G/E set (5x the view) in 4 epochs: every method gets a comparable budget
        classifier={"epochs": 4, "min_steps": 640, "max_length": 48, "batch_size": 16, "lr": 1e-4, "patience": 2},
        # bound the LM stand-ins' cost on 2 cores (see docs/design.md for measured costs): LAMBADA samples 3x
        # (not 10x) what it needs; SmolLM2 samples in bfloat16, 64 sequences a batch (~1.8x float32 at 32)
        method_params={"lambada": {"oversample": 3, "gen_dtype": "bfloat16", "gen_batch_size": 64},
                       "genius": {"gen_dtype": "bfloat16", "batch_size": 64},
                       "genius-f": {"gen_dtype": "bfloat16", "batch_size": 64}},
    ),
    "paper": Preset(
        name="paper",
        summary="the paper's grid (Table 2/9, Table 3): fractions 5-100%, 5 seeds, hub backbones; meant for a GPU",
        datasets=("smp2020-ewect", "airline", "rt"),
        fractions=(5, 20, 35, 50, 100),
        seeds=(0, 1, 2, 3, 4),
        n_aug=4,
        classifier={"epochs": 15, "max_length": 128, "batch_size": 32, "lr": 2e-5, "patience": 3},
        backbone="en=bert-base-uncased,zh=hfl/chinese-roberta-wwm-ext",
    ),
}


def backbone_for(spec: str, language: str) -> str:
    """``minilm`` or ``en=bert-base-uncased,zh=hfl/chinese-roberta-wwm-ext`` -> the name for a language."""
    if "=" not in spec:
        return spec
    table = dict(part.split("=", 1) for part in spec.split(",") if part)
    if language not in table:
        raise ValueError(f"backbone spec {spec!r} names no backbone for language {language!r}")
    return table[language]
