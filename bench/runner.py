"""Cells and their execution.

A cell = dataset x train view x method x policy x seed. ``run_cell`` is a pure function of a
picklable :class:`CellSpec` and :class:`RunSettings`: it reads and writes only the cache and
the run directory, so any executor (this process, a pool, or a distributed engine such as
Ray, whose task would call ``run_cell`` unchanged) produces the same records.

Stages and their cache (content-hashed, under ``settings.cache_dir``):

* split       -> ``splits/<dataset>-<hash>.json`` (the ids of train/dev/test: the record of the split)
* proxy       -> ``classifiers/<hash>/`` the ``none`` classifier of (dataset, view, seed, classifier
                 config); it is the ``none`` cell's model and every method's proxy, trained once
* synthetic   -> ``synthetic/<hash>.jsonl`` + ``.json`` (stats) per (method, version, params, policy,
                 view, seeds, proxy)
* final model -> the record itself is the cached result of the cell (``--keep-models`` keeps weights)

A record is written atomically when its cell ends; a rerun skips cells whose record exists
with the same ``config_hash`` (failed cells are retried).
"""

from __future__ import annotations

import functools
import json
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import data as D
from bench.classifier import ClassifierConfig, TrainedClassifier, backbone_substitute, train_classifier
from bench.config import backbone_for
from bench.records import SCHEMA, atomic_write_json, atomic_write_text, git_commit, now, read_json, versions
from bench.seeding import derive
from methods import METHODS
from methods.base import (
    Augmenter,
    Example,
    FitContext,
    MethodUnavailable,
    Synthetic,
    examples_fingerprint,
    stable_hash,
)


@dataclass(frozen=True)
class CellSpec:
    dataset: str
    view: str  # "5pct", "10shot"
    method: str
    policy: str  # "G/E", "B/D", "-"
    seed: int

    @property
    def cell_id(self) -> str:
        return f"{dataset_label(self.dataset)}__{self.view}__{self.method}__{self.policy.replace('/', '-')}__s{self.seed}"


def dataset_label(spec: str) -> str:
    """A file-name-safe short name: ``csv:/a/b/tiny.csv:t:l`` -> ``csv-tiny.csv``."""
    if spec.startswith(("csv:", "jsonl:")):
        kind, _, rest = spec.partition(":")
        return f"{kind}-{Path(rest.split(':')[0]).name}"
    return spec.replace("/", "-").replace(":", "-")


@dataclass(frozen=True)
class RunSettings:
    out_dir: str
    cache_dir: str
    classifier: dict[str, Any] = field(default_factory=dict)
    backbone: str = "minilm"
    n_aug: int = 4
    max_dev: int | None = None
    max_test: int | None = None
    method_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_dirs: dict[str, str] = field(default_factory=dict)
    keep_models: bool = False
    device: str = "cpu"


class CellFailed(RuntimeError):
    pass


# ------------------------------------------------------------------------------------ planning


def plan_cells(datasets: Iterable[str], views: Iterable[str], methods: Iterable[str], policies: Iterable[str],
               seeds: Iterable[int]) -> list[CellSpec]:
    """All cells of a grid, ``none`` first for each (dataset, view, seed) so the proxy is trained once."""
    cells = []
    methods = list(methods)
    for ds in datasets:
        for view in views:
            for seed in seeds:
                for m in methods:
                    entry = METHODS.get(m)
                    pols = _policies_for(entry, list(policies))
                    for p in pols:
                        cells.append(CellSpec(ds, view, m, p, int(seed)))
    order = {"none": 0}
    return sorted(cells, key=lambda c: (c.dataset, c.view, c.seed, order.get(c.method, 1)))


@functools.lru_cache(maxsize=64)
def _method_class(name: str):
    return METHODS.get(name).load()


def _policies_for(entry, requested: list[str]) -> list[str]:
    cls = _method_class(entry.name)
    supported = cls.meta.policies
    if supported == ("-",):
        return ["-"]
    chosen = [p for p in requested if p in supported]
    # a method that supports none of the requested policies runs its own (resample: B/D only)
    return chosen or list(supported)


# ------------------------------------------------------------------------------------ stages


@functools.lru_cache(maxsize=8)
def _splits(dataset: str, data_dirs_json: str) -> D.Splits:
    return D.load_dataset(dataset, json.loads(data_dirs_json))


def get_splits(dataset: str, settings: RunSettings) -> D.Splits:
    s = _splits(dataset, json.dumps(settings.data_dirs, sort_keys=True))
    path = Path(settings.cache_dir) / "splits" / f"{dataset_label(dataset)}-{s.fingerprint()}.json"
    if not path.exists():
        atomic_write_json(path, {"dataset": dataset, "notes": s.notes,
                                 "train": [e.id for e in s.train], "dev": [e.id for e in s.dev],
                                 "test": [e.id for e in s.test]})
    return s


@dataclass
class CellData:
    splits: D.Splits
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    view_seed: int

    @property
    def labels(self) -> tuple[str, ...]:
        lab = self.splits.card.labels
        seen = {e.label for e in self.splits.train}
        return tuple(x for x in lab if x in seen) if lab else tuple(sorted(seen))


def cell_data(cell: CellSpec, settings: RunSettings) -> CellData:
    s = get_splits(cell.dataset, settings)
    vseed = derive(cell.seed, "view", cell.dataset)
    train = D.make_view(s.train, D.ViewSpec.parse(cell.view), vseed)
    dev = D.cap(s.dev, settings.max_dev, "dev")
    test = D.cap(s.test, settings.max_test, "test")
    return CellData(s, train, dev, test, vseed)


def classifier_config(cell: CellSpec, settings: RunSettings, language: str, overrides: dict | None = None
                      ) -> ClassifierConfig:
    base = {**settings.classifier, **(overrides or {})}
    base["backbone"] = backbone_for(settings.backbone, language)
    base["device"] = settings.device
    return ClassifierConfig(**base)


def proxy_key(cell: CellSpec, cd: CellData, cfg: ClassifierConfig) -> str:
    return stable_hash({"stage": "proxy", "data": examples_fingerprint(cd.train), "dev": examples_fingerprint(cd.dev),
                        "labels": cd.labels, "cfg": cfg.key(), "seed": derive(cell.seed, "train")})


def get_proxy(cell: CellSpec, cd: CellData, settings: RunSettings, timings: dict[str, float]
              ) -> tuple[TrainedClassifier, dict[str, Any]]:
    """The ``none`` classifier of this (dataset, view, seed): trained once, then loaded from the cache."""
    cfg = classifier_config(cell, settings, cd.splits.card.language)
    d = Path(settings.cache_dir) / "classifiers" / proxy_key(cell, cd, cfg)
    t0 = time.perf_counter()
    if (d / "bench_classifier.json").exists() and (d / "train_result.json").exists():
        clf = TrainedClassifier.load(d, device=settings.device)
        info = read_json(d / "train_result.json")
        info["from_cache"] = True
    else:
        res = train_classifier(cd.train, cd.dev, cd.labels, cfg, seed=derive(cell.seed, "train"))
        res.classifier.save(d)
        info = {"history": res.history, "best_epoch": res.best_epoch, "steps": res.steps,
                "train_seconds": res.train_seconds, "from_cache": False}
        atomic_write_json(d / "train_result.json", info)
        clf = res.classifier
    timings["proxy"] = timings.get("proxy", 0.0) + time.perf_counter() - t0
    return clf, info


def policy_counts(examples: list[Example], policy: str, n_aug: int, seed: int) -> list[int]:
    """G/E: ``n_aug`` per original. B/D: fill every class up to the largest, spread over its originals."""
    if policy == "-":
        return [0] * len(examples)
    if policy == "G/E":
        return [n_aug] * len(examples)
    if policy == "B/D":
        by: dict[str, list[int]] = {}
        for i, e in enumerate(examples):
            by.setdefault(e.label, []).append(i)
        top = max(len(v) for v in by.values())
        counts = [0] * len(examples)
        import random

        for label, idx in sorted(by.items()):
            need = top - len(idx)
            order = list(idx)
            random.Random(derive(seed, "bd", label)).shuffle(order)
            for k in range(need):
                counts[order[k % len(order)]] += 1
        return counts
    raise ValueError(f"unknown policy {policy!r}; expected G/E, B/D or -")


def make_augmenter(cell: CellSpec, settings: RunSettings) -> Augmenter:
    entry = METHODS.get(cell.method)
    # registered defaults < --param for the registered name < --param for this exact name < [bracketed]
    params = {**entry.params, **settings.method_params.get(entry.base or cell.method, {}),
              **settings.method_params.get(cell.method, {}), **entry.overrides}
    # variants share their family's seed (common random numbers: paired comparisons, and a step sweep or
    # an ablation reuses the base's diffusion LM and mask draws): the class's seed_family, else meta.name
    cls = _method_class(cell.method)
    family = getattr(cls, "seed_family", None) or cls.meta.name
    return cls(seed=derive(cell.seed, "augment", family), **params)


def _write_jsonl(path: Path, items: list[Synthetic]) -> None:
    atomic_write_text(path, "".join(json.dumps(s.to_json(), ensure_ascii=False) + "\n" for s in items))


def _read_jsonl(path: Path) -> list[Synthetic]:
    return [Synthetic.from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


# ------------------------------------------------------------------------------------ the cell


def config_hash(cell: CellSpec, settings: RunSettings, aug: Augmenter, cfg: ClassifierConfig, fp: str) -> str:
    return stable_hash({"cell": asdict(cell), "method": [aug.meta.name, aug.meta.version, aug.params],
                        "cfg": cfg.key(), "n_aug": settings.n_aug, "max_dev": settings.max_dev,
                        "max_test": settings.max_test, "split": fp, "schema": SCHEMA})


def record_path(cell: CellSpec, settings: RunSettings) -> Path:
    return Path(settings.out_dir) / "records" / f"{cell.cell_id}.json"


def run_cell(cell: CellSpec, settings: RunSettings, log: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run one cell (or return its existing record); always returns a record, never raises for a method."""
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    base = {"schema": SCHEMA, "cell_id": cell.cell_id, **asdict(cell), "status": "failed", "reason": None}
    try:
        t0 = time.perf_counter()
        cd = cell_data(cell, settings)
        timings["data"] = time.perf_counter() - t0
        card = cd.splits.card
        aug = make_augmenter(cell, settings)
        cfg = classifier_config(cell, settings, card.language, aug.classifier_options())
        chash = config_hash(cell, settings, aug, cfg, cd.splits.fingerprint())
        path = record_path(cell, settings)
        if path.exists():
            old = read_json(path)
            same_seed = (old.get("seeds") or {}).get("augment", aug.seed) == aug.seed
            if old.get("config_hash") == chash and same_seed and old.get("status") in ("ok", "unavailable"):
                old["_skipped"] = True
                return old
        vs = D.ViewSpec.parse(cell.view)
        base.update({"dataset": dataset_label(cell.dataset),
                     "language": card.language, "fraction": vs.fraction, "shots": vs.shots,
                     "seeds": {"view": cd.view_seed, "augment": aug.seed, "train": derive(cell.seed, "train")},
                     "config_hash": chash, "backbone": cfg.backbone, "classifier": cfg.key(),
                     "method_info": aug.describe()})
        counts: dict[str, Any] = {"train": len(cd.train), "dev": len(cd.dev), "test": len(cd.test),
                                  "train_label_counts": D.label_counts(cd.train)}
        subs = [x for x in [backbone_substitute(cfg.backbone, card.language)] if x]

        proxy_holder: dict[str, Any] = {}

        def proxy_factory():
            if "clf" not in proxy_holder:
                proxy_holder["clf"], proxy_holder["info"] = get_proxy(cell, cd, settings, timings)
            return proxy_holder["clf"]

        # ---- augment (cached) ------------------------------------------------------------
        synthetic: list[Synthetic] = []
        stats: dict[str, Any] = {}
        pkey = proxy_key(cell, cd, classifier_config(cell, settings, card.language))
        ctx = FitContext(language=card.language, labels=cd.labels, seed=aug.seed, backbone=cfg.backbone,
                         cache_root=Path(settings.cache_dir) / "methods", proxy_factory=proxy_factory,
                         device=settings.device, extra={"proxy_key": pkey})
        fitted = False
        synth_path = None
        if cell.method != "none":
            skey = stable_hash({"stage": "synthetic", "method": [aug.meta.name, aug.meta.version, aug.params],
                                "policy": cell.policy, "n_aug": settings.n_aug, "view": examples_fingerprint(cd.train),
                                "seed": aug.seed, "proxy": pkey})
            synth_path = Path(settings.cache_dir) / "synthetic" / f"{skey}.jsonl"
            meta_path = synth_path.with_suffix(".json")
            if synth_path.exists() and meta_path.exists():
                synthetic = _read_jsonl(synth_path)
                stats = read_json(meta_path)
                timings.update({k: v for k, v in stats.get("timings", {}).items() if k in ("fit", "augment")})
                stats["from_cache"] = True
            else:
                t0 = time.perf_counter()
                aug.fit(cd.train, ctx)
                fitted = True
                timings["fit"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                want = policy_counts(cd.train, cell.policy, settings.n_aug, aug.seed)
                res = aug.augment(cd.train, want)
                timings["augment"] = time.perf_counter() - t0
                synthetic = res.synthetic
                stats = {"requested": res.requested, "produced": res.produced,
                         "shortfall": sum(res.shortfall.values()), "method_stats": res.stats,
                         "substitutes": aug.substitutes(),
                         "timings": {"fit": timings["fit"], "augment": timings["augment"]}}
                _write_jsonl(synth_path, synthetic)
                atomic_write_json(meta_path, stats)
            subs.extend(stats.get("substitutes", []))
            counts.update({"synthetic_requested": stats["requested"], "synthetic_produced": stats["produced"],
                           "shortfall": stats["shortfall"],
                           "identical_to_parent": stats["method_stats"].get("identical_to_parent"),
                           "synthetic_label_counts": D.label_counts(synthetic)})
            base["method_stats"] = stats["method_stats"]

        # ---- train the final classifier and score test once ------------------------------
        if cell.method == "none":
            clf = proxy_factory()
            info = proxy_holder["info"]
            timings["train"] = info["train_seconds"] if not info.get("from_cache") else 0.0
            dev_info = {"best_epoch": info["best_epoch"], "history": info["history"]}
        else:
            hook = None
            if aug.online:
                if not fitted:
                    aug.fit(cd.train, ctx)
                hook = aug.make_batch_hook()
            t0 = time.perf_counter()
            res = train_classifier(cd.train, cd.dev, cd.labels, cfg, seed=derive(cell.seed, "train"),
                                   synthetic=synthetic, batch_hook=hook)
            timings["train"] = time.perf_counter() - t0
            if hook is not None:
                counts["online_synthetic"] = aug.online_stats()
            clf = res.classifier
            dev_info = {"best_epoch": res.best_epoch, "history": res.history}
            if settings.keep_models:
                clf.save(Path(settings.out_dir) / "models" / cell.cell_id)
        t0 = time.perf_counter()
        metrics = clf.evaluate(cd.test)
        timings["evaluate"] = time.perf_counter() - t0
        best = max(dev_info["history"], key=lambda h: h["dev_macro_f1"]) if dev_info["history"] else {}
        dev_info.update({"macro_f1": best.get("dev_macro_f1"), "accuracy": best.get("dev_accuracy")})
        base.update({"status": "ok", "metrics": metrics, "dev": dev_info, "counts": counts})
        base["substitutes"] = _dedupe(subs)
        if synth_path is not None:
            try:
                base["synthetic_path"] = str(synth_path.resolve().relative_to(Path(settings.out_dir).resolve()))
            except ValueError:
                base["synthetic_path"] = str(synth_path.resolve())
    except MethodUnavailable as err:
        base.update({"status": "unavailable", "reason": str(err), "metrics": None})
    except Exception as err:  # a failed cell is recorded, never lost
        base.update({"status": "failed", "reason": f"{type(err).__name__}: {err}",
                     "traceback": traceback.format_exc(limit=8), "metrics": None})
    timings["total"] = time.perf_counter() - t_start
    base.update({"timings": {k: round(v, 3) for k, v in timings.items()}, "versions": versions(),
                 "git": git_commit(), "created": now()})
    base.setdefault("substitutes", [])
    base.setdefault("synthetic_path", None)
    atomic_write_json(record_path(cell, settings), base)
    return base


def _dedupe(items: list[dict[str, str]]) -> list[dict[str, str]]:
    seen, out = set(), []
    for x in items:
        k = json.dumps(x, sort_keys=True)
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


# ------------------------------------------------------------------------------------ executors


class LocalExecutor:
    """Runs cells one after another in this process (the default; the proxy cache is shared in memory)."""

    def map(self, fn: Callable[[CellSpec], dict[str, Any]], cells: list[CellSpec]) -> Iterator[dict[str, Any]]:
        for c in cells:
            yield fn(c)


def run_grid(cells: list[CellSpec], settings: RunSettings, executor=None, continue_on_error: bool = False,
             progress: bool = True, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    executor = executor or LocalExecutor()
    from tqdm import tqdm

    bar = tqdm(total=len(cells), disable=not progress, unit="cell", dynamic_ncols=True)
    out = []

    def fn(c: CellSpec) -> dict[str, Any]:
        bar.set_description(c.cell_id)
        return run_cell(c, settings)

    for rec in executor.map(fn, cells):
        out.append(rec)
        bar.update(1)
        tag = "skip (done)" if rec.get("_skipped") else rec["status"]
        if rec["status"] == "ok":
            m = rec["metrics"]
            msg = f"{rec['cell_id']}: {tag} F1 {100 * m['macro_f1']:.2f} acc {100 * m['accuracy']:.2f} " \
                  f"({rec['timings'].get('total', 0):.0f}s)"
        else:
            msg = f"{rec['cell_id']}: {tag}: {rec.get('reason')}"
        bar.write(msg) if progress else log(msg)
        if rec["status"] == "failed" and not continue_on_error:
            bar.close()
            raise CellFailed(f"cell {rec['cell_id']} failed: {rec['reason']} (record written; "
                             f"--continue-on-error records failures and goes on)")
    bar.close()
    return out


def with_overrides(settings: RunSettings, **kw: Any) -> RunSettings:
    return replace(settings, **kw)
