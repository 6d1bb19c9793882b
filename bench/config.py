"""Presets (named grids of cells with classifier settings budgeted for their hardware) and the run
configuration built from a preset, an optional file and command-line flags.

:class:`RunConfig` is the one place a run's settings are merged and validated; the manifest of a
run directory stores it, and ``bench run --config RUN/manifest.json`` replays that run exactly.

Costs measured on this suite's 2-core CPU machines (MiniLM backbone, dynamic padding): one
training step on a batch of 16 tweets ~0.15-0.3 s; a 5% airline view (506 tweets) trains one
epoch in ~10 s plus ~2 s to score 300 dev tweets. The ``quick`` preset is sized from those
figures; its wall time is logged in every manifest.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
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
        classifier={"epochs": 1, "max_length": 40, "batch_size": 16, "lr": 1e-4, "evals": 4, "patience": 2},
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
        # every method of a view: 4 passes over a G/E-sized set of the view (airline 5%: 2530 items, 633 steps), at
        # least 640 steps; dev every 40 steps; no early stop before 320 steps, then after 4 checks without progress
        classifier={"epochs": 4, "min_steps": 640, "max_steps": 2000, "evals": 16, "patience": 4, "min_train": 0.5,
                    "max_length": 48, "batch_size": 16, "lr": 1e-4, "head_lr": 3e-4},
        # Chinese: frozen Gemma 3 270M features (layer 9 of 18, standardised) under a head trained at 3e-4, chosen
        # on dev among layers 6-18 and rates 1e-4..3e-3: SMP2020-EWECT 5% none 46.31 (3 seeds, head version 3) against
        # 31.7 for the fine-tuned zh-char-bert (earlier protocol); docs/design.md, "Chinese offline"
        backbone="en=minilm,zh=frozen:gemma3@9",
        # bound the LM stand-ins' cost on 2 cores: LAMBADA samples 3x (not 10x) what it needs; the offline generators
        # sample through llama.cpp (engine auto; bfloat16 transformers sampling is 2.7x slower than float32 on
        # CPUs without AVX512-BF16, such as this suite's AMD EPYC machines)
        method_params={"lambada": {"oversample": 3}},
    ),
    "fewshot": Preset(
        name="fewshot",
        summary="Table 3: Rotten Tomatoes sentences (the SST-2 source) at 5 and 10 shots per class, 10 seeds, "
                "G/E, a k-shot dev of the same size",
        datasets=("rt",),
        shots=(5, 10),
        seeds=tuple(range(10)),
        policies=("G/E",),
        # Table 3's methods; the three DiffusionCLS configurations of Table 4 (the paper's loss, the reference
        # code's training, no noise-resistant training); 180 cells, about 5 hours on 2 cores (--dry-run)
        methods="none,eda,aeda,backtranslation,nlpaug-glove,genius-f,diffusioncls,diffusioncls-ref,"
                "diffusioncls-wo-nrt",
        n_aug=4,
        # 10-20 originals: a G/E set is 4-7 batches, so the budget is the 200-step minimum for every method
        classifier={"epochs": 4, "min_steps": 200, "evals": 10, "patience": 4, "min_train": 0.5, "max_length": 64,
                    "batch_size": 16, "lr": 1e-4},
    ),
    "paper": Preset(
        name="paper",
        summary="the paper's grid (Table 2/9, Table 3): fractions 5-100%, 5 seeds, hub backbones; meant for a GPU",
        datasets=("smp2020-ewect", "airline", "rt"),
        fractions=(5, 20, 35, 50, 100),
        seeds=(0, 1, 2, 3, 4),
        n_aug=4,
        # the paper's 15 epochs of the raw set = 3 passes over a G/E set (n_aug 4): the same steps for every method
        classifier={"epochs": 3, "evals": 15, "patience": 4, "min_train": 0.5, "max_length": 128, "batch_size": 32,
                    "lr": 2e-5},
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


OVERWRITE = ("never", "failed", "always")


class ConfigError(ValueError):
    """A run configuration that cannot run (the message names the flag or field)."""


@dataclass(frozen=True)
class RunConfig:
    """What a run computes and where it writes: the grid, the classifier and method settings, the
    data, the run and cache directories, the device and the overwrite policy.

    Build it with :meth:`from_preset` / :meth:`replace` / :meth:`from_file`; it is validated on
    construction. ``methods`` holds resolved registry names (groups such as ``all`` and sweeps are
    expanded when the configuration is built), so a replay runs the same cells even after new
    methods are registered.
    """

    preset: str = "quick"
    datasets: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    policies: tuple[str, ...] = ("G/E", "B/D")
    n_aug: int = 4
    max_dev: int | None = None
    max_test: int | None = None
    backbone: str = "minilm"
    classifier: dict[str, Any] = field(default_factory=dict)
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_dirs: dict[str, str] = field(default_factory=dict)
    out_dir: str = "runs/quick"
    cache_dir: str = "runs/quick/cache"
    device: str = "cpu"
    keep_models: bool = False
    overwrite: str = "failed"

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ building
    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> RunConfig:
        """The preset's grid and settings (``overrides`` on top: field names of this class)."""
        pr = preset(name)
        base = {"preset": pr.name, "datasets": pr.datasets, "views": views_of(pr.fractions, pr.shots),
                "seeds": pr.seeds, "policies": pr.policies, "n_aug": pr.n_aug, "max_dev": pr.max_dev,
                "max_test": pr.max_test, "backbone": pr.backbone, "classifier": dict(pr.classifier),
                "method_params": {k: dict(v) for k, v in pr.method_params.items()},
                "out_dir": f"runs/{pr.name}", "cache_dir": f"runs/{pr.name}/cache"}
        if "methods" not in overrides:
            from methods import METHODS

            base["methods"] = tuple(METHODS.resolve(pr.methods))
        return cls(**{**base, **overrides})

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """A configuration file: a run's manifest.json (its ``config``) or a JSON file of fields."""
        try:
            raw = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ConfigError(f"--config {path}: cannot read it ({err})") from None
        if isinstance(raw, dict) and isinstance(raw.get("config"), dict):
            raw = raw["config"]
        if not isinstance(raw, dict):
            raise ConfigError(f"--config {path}: expected a JSON object of configuration fields")
        return cls.from_json(raw, where=f"--config {path}")

    @classmethod
    def from_json(cls, raw: dict[str, Any], where: str = "configuration") -> RunConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(raw) - names
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(names)}")
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
        return cls(**kw)

    def replace(self, **changes: Any) -> RunConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Every check of a configuration, in one place; errors name the flag."""
        if not self.datasets:
            raise ConfigError("no data set: give --datasets")
        if not self.views:
            raise ConfigError("no train view: give --fractions and/or --shots")
        for v in self.views:
            _check_view(v)
        if not self.methods:
            raise ConfigError("no method to run: give --methods and/or --sweep")
        if not self.seeds:
            raise ConfigError("--seeds: give at least one seed")
        dup = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
        if dup:
            raise ConfigError(f"--seeds: seed(s) {dup} repeated; each seed is one paired replicate")
        from bench.api.types import POLICIES

        for p in self.policies:
            if p not in POLICIES:
                raise ConfigError(f"--policies: unknown policy {p!r}; expected G/E or B/D")
        if self.n_aug < 1:
            raise ConfigError(f"--n-aug must be at least 1, got {self.n_aug}")
        for name, cap in (("--max-dev", self.max_dev), ("--max-test", self.max_test)):
            if cap is not None and cap < 1:
                raise ConfigError(f"{name} must be at least 1, got {cap}")
        if self.overwrite not in OVERWRITE:
            raise ConfigError(f"--overwrite must be one of {', '.join(OVERWRITE)}, not {self.overwrite!r}")
        self._check_classifier()
        self._check_methods()
        self._check_datasets()

    def _check_methods(self) -> None:
        """Every method is registered and its parameters (``--param``) exist and have the right type."""
        from bench.api.types import AugmenterError
        from methods import METHODS

        for name in (*self.methods, *self.method_params):
            entry = METHODS.get(name)  # UnknownName with "did you mean"
            cls = entry.load()
            params = {**entry.params, **self.method_params.get(entry.base_name, {}),
                      **self.method_params.get(name, {}), **entry.overrides}
            try:
                cls.Params.from_dict(name, params)
            except AugmenterError as err:
                raise ConfigError(f"--param: {err}") from None

    def _check_datasets(self) -> None:
        from bench.data import dataset_registry

        reg = dataset_registry()
        for d in self.datasets:
            if not d.startswith(("csv:", "jsonl:")):
                reg.get(d)

    def _check_classifier(self) -> None:
        from bench.classifier import ClassifierConfig

        known = {f.name for f in dataclasses.fields(ClassifierConfig)} - {"backbone", "device"}
        unknown = set(self.classifier) - known
        if unknown:
            raise ConfigError(f"classifier setting(s) {sorted(unknown)} unknown; known: {sorted(known)}")


def preset(name: str) -> Preset:
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, PRESETS, n=2)
        raise ConfigError(f"unknown preset {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                          + f" (known: {', '.join(PRESETS)})")
    return PRESETS[name]


def views_of(fractions, shots) -> tuple[str, ...]:
    """Percent fractions and shot counts -> view names (``5pct``, ``10shot``)."""
    return tuple([f"{float(f):g}pct" for f in fractions] + [f"{int(k)}shot" for k in shots])


def _check_view(view: str) -> None:
    from bench.data import ViewSpec

    try:
        ViewSpec.parse(view)
    except ValueError as err:
        flag = "--shots" if view.endswith("shot") else "--fractions"
        raise ConfigError(f"{flag}: {err}") from None
