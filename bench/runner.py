"""Cells and their stages.

A cell = dataset x train view x method x policy x seed. :func:`run_cell` is a pure function of a
picklable :class:`CellSpec` and :class:`~bench.config.RunConfig`: it reads and writes only the cache
and the run directory, so any executor (this process, a process pool, Ray) produces the same
records. It runs the cell's stages in order, each a short function:

* cache check -> :func:`check_record` against the ``--overwrite`` policy (``never``: keep every
  record; ``failed``, the default: recompute failed cells; ``always``: recompute every cell of the
  command, stage caches still serving what they hold);
* data        -> :func:`cell_data`: splits (``cache/splits/<dataset>-<hash>.json`` records the ids),
  the seeded train view, capped dev/test;
* proxy       -> :func:`get_proxy`: the ``none`` classifier of (dataset, view, seed, classifier config)
  under ``cache/classifiers/<hash>/``; the ``none`` cell's model and every method's proxy;
* synthetic   -> :func:`get_synthetic`: fit + augment, cached as ``cache/synthetic/<hash>.jsonl`` + ``.json``
  per (method, version, params, policy, view, seed, proxy, the models its fit loads here);
* train       -> :func:`train_final`: the cell's classifier on originals + pseudo samples;
* evaluate    -> test scored once; the record is written atomically (``records/<cell_id>.json``).
"""

from __future__ import annotations

import functools
import json
import random
import time
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import data as D
from bench import progress
from bench.api import (
    Augmenter,
    Example,
    FitContext,
    MethodUnavailable,
    Synthetic,
    derive,
    examples_fingerprint,
    stable_hash,
)
from bench.api.hub import backbone_substitute
from bench.api.io import (
    atomic_write_json,
    check_sealed,
    file_lock,
    read_json,
    read_sealed,
    seal,
    write_sealed,
)
from bench.classifier import PROTOCOL, ClassifierConfig, TrainedClassifier, train_classifier
from bench.config import RunConfig, backbone_for
from bench.records import (
    SCHEMA,
    CellRecord,
    Counts,
    DevInfo,
    MethodInfo,
    Metrics,
    RecordError,
    Seeds,
    fit_work_from_stats,
    git_commit,
    now,
    read_record,
    versions,
)
from methods import METHODS


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

    @property
    def group(self) -> tuple[str, str, int]:
        """The cells that share a view and a proxy classifier: (dataset, view, seed)."""
        return self.dataset, self.view, self.seed


@dataclass
class CellResult:
    """What running a cell gave: its record, and whether it was already there (not recomputed)."""

    record: CellRecord
    skipped: bool = False


class CellFailed(RuntimeError):
    """A cell failed and the grid stopped; ``results`` holds the cells finished before."""

    results: list = []


class ConfigConflict(RuntimeError):
    """The run directory holds records of these cells made with another configuration."""


def dataset_label(spec: str) -> str:
    """A file-name-safe short name: ``csv:/a/b/tiny.csv:t:l`` -> ``csv-tiny.csv``."""
    if spec.startswith(("csv:", "jsonl:")):
        kind, _, rest = spec.partition(":")
        return f"{kind}-{Path(rest.split(':')[0]).name}"
    return spec.replace("/", "-").replace(":", "-")


# ------------------------------------------------------------------------------------ planning


def plan_cells(cfg: RunConfig) -> list[CellSpec]:
    """All cells of a configuration, ``none`` first for each (dataset, view, seed)."""
    cells = []
    for ds in cfg.datasets:
        for view in cfg.views:
            for seed in cfg.seeds:
                for m in cfg.methods:
                    for p in policies_for(m, cfg.policies):
                        cells.append(CellSpec(ds, view, m, p, int(seed)))
    return sorted(cells, key=lambda c: (c.dataset, c.view, c.seed, c.method != "none"))


@functools.lru_cache(maxsize=64)
def method_class(name: str) -> type[Augmenter]:
    return METHODS.get(name).load()


def policies_for(method: str, requested: Iterable[str]) -> list[str]:
    """The requested policies the method supports; a method that supports none of them runs its own
    (resample: B/D only; none: '-')."""
    supported = method_class(method).meta.policies
    if supported == ("-",):
        return ["-"]
    return [p for p in requested if p in supported] or list(supported)


# ------------------------------------------------------------------------------------ data


@functools.lru_cache(maxsize=8)
def _splits(dataset: str, data_dirs_json: str) -> D.Splits:
    return D.load_dataset(dataset, json.loads(data_dirs_json))


def get_splits(dataset: str, cfg: RunConfig) -> D.Splits:
    s = _splits(dataset, json.dumps(cfg.data_dirs, sort_keys=True))
    path = Path(cfg.cache_dir) / "splits" / f"{dataset_label(dataset)}-{s.fingerprint()}.json"
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

    @property
    def language(self) -> str:
        return self.splits.card.language


def cell_data(cell: CellSpec, cfg: RunConfig) -> CellData:
    """The cell's train view, dev and test. A k-shot view gets a k-shot dev (seeded, the same for every
    method of the seed), as in few-shot practice: model selection may not use more labels than the
    view has. Fraction views use the (capped) dev split."""
    s = get_splits(cell.dataset, cfg)
    vseed = derive(cell.seed, "view", cell.dataset)
    spec = D.ViewSpec.parse(cell.view)
    train = D.make_view(s.train, spec, vseed)
    if spec.shots is not None:
        dev = D.make_view(s.dev, spec, derive(cell.seed, "dev", cell.dataset))
    else:
        dev = D.cap(s.dev, cfg.max_dev, "dev")
    test = D.cap(s.test, cfg.max_test, "test")
    return CellData(s, train, dev, test, vseed)


# ------------------------------------------------------------------------------------ settings


def classifier_config(cfg: RunConfig, language: str, overrides: dict | None = None) -> ClassifierConfig:
    base = {**cfg.classifier, **(overrides or {})}
    return ClassifierConfig(**base, backbone=backbone_for(cfg.backbone, language), device=cfg.device)


def make_augmenter(cell: CellSpec, cfg: RunConfig) -> Augmenter:
    """The cell's augmenter. Parameters: registered defaults < ``--param`` for the registered name <
    ``--param`` for this exact name < the name's own bracketed values. Variants share their family's
    seed (common random numbers: paired comparisons, and a step sweep or an ablation reuses the base's
    diffusion LM and mask draws)."""
    entry = METHODS.get(cell.method)
    params = {**entry.params, **cfg.method_params.get(entry.base_name, {}),
              **cfg.method_params.get(cell.method, {}), **entry.overrides}
    cls = method_class(cell.method)
    family = cls.seed_family or cls.meta.name
    return cls(seed=derive(cell.seed, "augment", family), **params)


def train_seed(cell: CellSpec) -> int:
    return derive(cell.seed, "train")


def proxy_key(cell: CellSpec, cd: CellData, clf: ClassifierConfig) -> str:
    return stable_hash({"stage": "proxy", "data": examples_fingerprint(cd.train), "dev": examples_fingerprint(cd.dev),
                        "labels": cd.labels, "cfg": clf.key(), "seed": train_seed(cell)})


def config_hash(cell: CellSpec, cfg: RunConfig, aug: Augmenter, clf: ClassifierConfig, split_fp: str) -> str:
    """Everything that determines a cell's result (not where it is written, nor the device)."""
    return stable_hash({"cell": asdict(cell), "method": [aug.meta.name, aug.meta.version, aug.params, aug.seed],
                        "cfg": clf.key(), "n_aug": cfg.n_aug, "max_dev": cfg.max_dev, "max_test": cfg.max_test,
                        "split": split_fp, "schema": SCHEMA})


def record_path(cell: CellSpec, cfg: RunConfig) -> Path:
    return Path(cfg.out_dir) / "records" / f"{cell.cell_id}.json"


# ------------------------------------------------------------------------------------ stages


@dataclass
class Cell:
    """One cell being run: its spec, data, augmenter, classifier settings and the record it fills."""

    spec: CellSpec
    cfg: RunConfig
    data: CellData
    aug: Augmenter
    clf: ClassifierConfig
    record: CellRecord
    timings: dict[str, float] = field(default_factory=dict)
    _proxy: TrainedClassifier | None = None
    _proxy_info: dict[str, Any] | None = None

    def timed(self, stage: str, t0: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - t0

    def proxy(self) -> TrainedClassifier:
        if self._proxy is None:
            self._proxy, self._proxy_info = get_proxy(self)
        return self._proxy

    def proxy_on(self, backbone: str) -> TrainedClassifier:
        """A proxy classifier on another backbone (trained once per view and seed, cached like the proxy)."""
        if backbone == self.base_clf().backbone:
            return self.proxy()
        from dataclasses import replace

        return get_proxy(self, replace(self.base_clf(), backbone=backbone))[0]

    def fit_context(self) -> FitContext:
        return FitContext(language=self.data.language, labels=self.data.labels, seed=self.aug.seed,
                          backbone=self.clf.backbone, cache_root=Path(self.cfg.cache_dir) / "methods",
                          proxy_factory=self.proxy, device=self.cfg.device,
                          proxy_key=proxy_key(self.spec, self.data, self.base_clf()), proxy_on=self.proxy_on,
                          progress=progress.status)

    def base_clf(self) -> ClassifierConfig:
        """The classifier settings of the proxy (no method's overrides)."""
        return classifier_config(self.cfg, self.data.language)


def open_cell(spec: CellSpec, cfg: RunConfig) -> Cell:
    """Data, augmenter and settings of a cell, and its record's identity fields."""
    t0 = time.perf_counter()
    cd = cell_data(spec, cfg)
    aug = make_augmenter(spec, cfg)
    clf = classifier_config(cfg, cd.language, aug.classifier_options())
    vs = D.ViewSpec.parse(spec.view)
    entry = METHODS.get(spec.method)
    rec = CellRecord(
        cell_id=spec.cell_id, dataset=dataset_label(spec.dataset), view=spec.view, method=spec.method,
        policy=spec.policy, seed=spec.seed, language=cd.language, fraction=vs.fraction, shots=vs.shots,
        seeds=Seeds(view=cd.view_seed, augment=aug.seed, train=train_seed(spec)),
        config_hash=config_hash(spec, cfg, aug, clf, cd.splits.fingerprint()), backbone=clf.backbone,
        classifier=clf.key(), method_info=method_info(aug, entry.facts()))
    rec.notes.extend(f"data: {n}" for n in D.data_notes(cd.splits))
    cell = Cell(spec, cfg, cd, aug, clf, rec)
    cell.timed("data", t0)
    return cell


def method_info(aug: Augmenter, facts: dict[str, Any]) -> MethodInfo:
    d = aug.describe()
    return MethodInfo(name=facts["name"], base=facts["base"], family=facts["family"], axes=d["axes"],
                      overrides=facts["overrides"], tags=facts["tags"],
                      plugin=facts["plugin"], version=d["version"], params=d["params"], seed=d["seed"],
                      needs_fit=d["needs_fit"], languages=d["languages"], citation=d["citation"],
                      substitutes=d["substitutes"])


def check_record(cell: Cell) -> CellRecord | None:
    """The existing record to keep under the overwrite policy, or None to (re)compute the cell.

    A record made with another configuration is a :class:`ConfigConflict` unless the policy is
    ``always``: a run directory holds one configuration per cell id.
    """
    path = record_path(cell.spec, cell.cfg)
    if not path.exists() or cell.cfg.overwrite == "always":
        return None
    try:
        old = read_record(path)
    except RecordError:
        return None  # a damaged record is recomputed
    if old.config_hash is None and old.status == "failed":
        return None  # failed before its configuration was known: nothing to protect
    if old.config_hash != cell.record.config_hash:
        raise ConfigConflict(f"{path} was made with another configuration (config hash {old.config_hash} vs "
                             f"{cell.record.config_hash} now); write to another --out, or pass --overwrite "
                             f"always to replace it")
    if cell.cfg.overwrite == "never" or old.status in ("ok", "unavailable"):
        return old
    return None


def get_proxy(cell: Cell, clf_cfg: ClassifierConfig | None = None) -> tuple[TrainedClassifier, dict[str, Any]]:
    """The ``none`` classifier of this (dataset, view, seed): trained once, then loaded from the cache.
    ``clf_cfg``: the same with other settings (a method's generator proxy on another backbone)."""
    clf_cfg = clf_cfg or cell.base_clf()
    d = Path(cell.cfg.cache_dir) / "classifiers" / proxy_key(cell.spec, cell.data, clf_cfg)
    t0 = time.perf_counter()
    with file_lock(Path(cell.cfg.cache_dir) / "locks" / f"proxy-{d.name}"):  # another process training it: wait, load
        cached = _load_proxy(cell, d)
        if cached is not None:
            clf, info = cached
        else:
            progress.stage("proxy")
            res = train_classifier(cell.data.train, cell.data.dev, cell.data.labels, clf_cfg,
                                   seed=train_seed(cell.spec), budget_items=budget_items(cell),
                                   progress=_steps("proxy"))
            res.classifier.save(d)
            info = {**asdict(dev_info(res)), "train_seconds": res.train_seconds, "from_cache": False}
            atomic_write_json(d / "train_result.json", info)
            seal(d)
            clf = res.classifier
    cell.timed("proxy", t0)
    return clf, info


def _load_proxy(cell: Cell, d: Path) -> tuple[TrainedClassifier, dict[str, Any]] | None:
    """The cached proxy when its directory is whole and loads; else None (and a note saying why)."""
    if not d.exists():
        return None
    why = check_sealed(d)
    if why is None:
        try:
            return TrainedClassifier.load(d, device=cell.cfg.device), {**read_json(d / "train_result.json"),
                                                                       "from_cache": True}
        except (OSError, ValueError, KeyError) as err:
            why = f"{d} does not load ({type(err).__name__}: {err})"
    cell.record.notes.append(f"cached proxy classifier damaged, retrained: {why}")
    return None


def budget_items(cell: Cell) -> int:
    """What sizes the view's step budget: a G/E set of the view (``n_view * (1 + n_aug)``), the same
    for every method of the view whatever it generates."""
    return len(cell.data.train) * (1 + cell.cfg.n_aug)


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
        for label, idx in sorted(by.items()):
            order = list(idx)
            random.Random(derive(seed, "bd", label)).shuffle(order)
            for k in range(top - len(idx)):
                counts[order[k % len(order)]] += 1
        return counts
    raise ValueError(f"unknown policy {policy!r}; expected G/E, B/D or -")


def synthetic_path(cell: Cell, ctx: FitContext) -> Path:
    """Where the cell's pseudo samples are cached: keyed on the method's configuration, the view, the
    proxy and the models its fit would load here (:meth:`Augmenter.resource_key`)."""
    aug = cell.aug
    key = stable_hash({"stage": "synthetic", "method": [aug.meta.name, aug.meta.version, aug.params],
                       "policy": cell.spec.policy, "n_aug": cell.cfg.n_aug, "view": examples_fingerprint(cell.data.train),
                       "seed": aug.seed, "proxy": proxy_key(cell.spec, cell.data, cell.base_clf()),
                       "resources": aug.resource_key(ctx)})
    return Path(cell.cfg.cache_dir) / "synthetic" / f"{key}.jsonl"


def write_jsonl(path: Path, items: list[Synthetic]) -> None:
    write_sealed(path, "".join(json.dumps(s.to_json(), ensure_ascii=False) + "\n" for s in items).encode("utf-8"))


def read_cached_synthetic(path: Path) -> tuple[list[Synthetic], dict[str, Any]] | str:
    """The cached pseudo samples and their stats, or why the entry cannot be trusted (the file does
    not match its hash, or holds another number of samples than the stats say were produced)."""
    if not path.exists() and not path.with_suffix(".json").exists():
        return "missing"
    data, why = read_sealed(path)
    if data is None:
        return why
    try:
        stats = read_json(path.with_suffix(".json"))
        items = [Synthetic.from_json(json.loads(x)) for x in data.decode("utf-8").splitlines() if x]
    except (OSError, ValueError, KeyError) as err:
        return f"{path} or its stats do not parse ({err})"
    if len(items) != stats.get("produced"):
        return f"{path} holds {len(items)} pseudo samples, the stats say {stats.get('produced')} were produced"
    return items, stats


def get_synthetic(cell: Cell, ctx: FitContext) -> tuple[list[Synthetic], dict[str, Any], Path]:
    """Fit the augmenter and make the cell's pseudo samples, or read them from the cache (recomputed,
    with a note, when the entry is damaged); also where they are cached."""
    path = synthetic_path(cell, ctx)
    meta = path.with_suffix(".json")
    cached = read_cached_synthetic(path)
    if not isinstance(cached, str):
        items, stats = cached
        stats = {**stats, "from_cache": True}
        cell.timings.update({k: v for k, v in stats.get("timings", {}).items() if k in ("fit", "augment")})
        return items, stats, path
    if cached != "missing":
        cell.record.notes.append(f"cached pseudo samples damaged, recomputed: {cached}")
    t0 = time.perf_counter()
    progress.stage("fit")
    cell.aug.fit(cell.data.train, ctx)
    cell.timed("fit", t0)
    t0 = time.perf_counter()
    progress.stage("augment")
    res = cell.aug.augment(cell.data.train, policy_counts(cell.data.train, cell.spec.policy, cell.cfg.n_aug,
                                                           cell.aug.seed))
    cell.timed("augment", t0)
    stats = {"requested": res.requested, "produced": res.produced, "shortfall": sum(res.shortfall.values()),
             "method_stats": res.stats, "substitutes": cell.aug.substitutes(), "fit_reused": cell.aug.fit_reused,
             "fit_work": cell.aug.fit_work(len(cell.data.train)) if cell.aug.meta.needs_fit else None,
             "timings": {"fit": cell.timings["fit"], "augment": cell.timings["augment"]}}
    write_jsonl(path, res.synthetic)
    atomic_write_json(meta, stats)
    return res.synthetic, stats, path


def synthetic_counts(cell: Cell, synthetic: list[Synthetic], stats: dict[str, Any]) -> None:
    c = cell.record.counts
    c.synthetic_requested, c.synthetic_produced = stats["requested"], stats["produced"]
    c.shortfall = stats["shortfall"]
    c.identical_to_parent = stats["method_stats"].get("identical_to_parent")
    c.synthetic_label_counts = D.label_counts(synthetic)


def train_final(cell: Cell, synthetic: list[Synthetic], ctx: FitContext, fitted: bool) -> TrainedClassifier:
    """The cell's classifier: the proxy itself for ``none``; else originals + pseudo samples (with the
    method's classifier options and, for reflective generation, its batch hook)."""
    if cell.spec.method == "none":
        clf = cell.proxy()
        info = dict(cell._proxy_info or {})
        cell.timings["train"] = 0.0 if info.pop("from_cache", False) else info.get("train_seconds", 0.0)
        info.pop("train_seconds", None)
        cell.record.dev = DevInfo(**info)
        return clf
    hook = None
    if cell.aug.online:
        if not fitted:
            cell.aug.fit(cell.data.train, ctx)
        hook = cell.aug.make_batch_hook()
    t0 = time.perf_counter()
    progress.stage("train")
    res = train_classifier(cell.data.train, cell.data.dev, cell.data.labels, cell.clf, seed=train_seed(cell.spec),
                           synthetic=synthetic, batch_hook=hook, budget_items=budget_items(cell),
                           progress=_steps("train"))
    cell.timed("train", t0)
    if hook is not None:
        cell.record.counts.online_synthetic = cell.aug.online_stats()
    if cell.cfg.keep_models:
        res.classifier.save(Path(cell.cfg.out_dir) / "models" / cell.spec.cell_id)
    cell.record.dev = dev_info(res)
    return res.classifier


def dev_info(res) -> DevInfo:
    """The record's account of a training run: schedule, steps, the dev curve, the chosen step."""
    best = next((h for h in res.history if h["step"] == res.best_step), {})
    return DevInfo(macro_f1=best.get("dev_macro_f1"), accuracy=best.get("dev_accuracy"), protocol=PROTOCOL,
                   best_step=res.best_step, steps_run=res.steps, budget_steps=res.schedule.total_steps,
                   eval_every=res.schedule.eval_every, evaluations=len(res.history),
                   stopped_early=res.stopped_early, history=res.history, training=res.stats)


def _steps(stage: str):
    return lambda done, total: progress.step(stage, done, total)


def evaluate(cell: Cell, clf: TrainedClassifier) -> None:
    """Score test once; keep the predictions (gold, predicted, probabilities) beside the record."""
    from bench.classifier import score

    progress.stage("evaluate")
    t0 = time.perf_counter()
    test = cell.data.test
    proba = clf.predict_proba([e.text for e in test])
    pred = [clf.labels[i] for i in proba.argmax(-1)]
    m = score([e.label for e in test], pred, clf.labels)
    cell.timed("evaluate", t0)
    path = Path(cell.cfg.out_dir) / "predictions" / f"{cell.spec.cell_id}.json"
    atomic_write_json(path, {"labels": list(clf.labels), "ids": [e.id for e in test], "gold": [e.label for e in test],
                             "predicted": pred, "proba": [[round(float(x), 5) for x in row] for row in proba]})
    cell.record.metrics = Metrics(macro_f1=m["macro_f1"], accuracy=m["accuracy"], per_class_f1=m["per_class_f1"],
                                  n=m["n"], support=m["support"], predicted=m["predicted"],
                                  predictions_path=_relative(path, Path(cell.cfg.out_dir)))
    if sum(1 for v in m["predicted"].values() if v) <= 1:
        cell.record.notes.append("no signal: the classifier predicts one class for every test example "
                                 f"(macro-F1 {100 * m['macro_f1']:.1f} is the majority-class score)")


def run_stages(cell: Cell) -> None:
    """Synthetic set, final classifier, test score: fills ``cell.record``."""
    cd = cell.data
    cell.record.counts = Counts(train=len(cd.train), dev=len(cd.dev), test=len(cd.test),
                                train_label_counts=D.label_counts(cd.train))
    subs = [s for s in [backbone_substitute(cell.clf.backbone, cd.language)] if s]
    ctx = cell.fit_context()
    synthetic: list[Synthetic] = []
    fitted = False
    if cell.spec.method != "none":
        synthetic, stats, path = get_synthetic(cell, ctx)
        fitted = not stats.get("from_cache")
        subs.extend(stats.get("substitutes", []))
        synthetic_counts(cell, synthetic, stats)
        cell.record.method_stats = stats["method_stats"]
        cell.record.fit_reused = stats.get("fit_reused")  # as when the pseudo samples were made
        cell.record.fit_work = stats.get("fit_work", fit_work_from_stats(stats["method_stats"]))
        cell.record.synthetic_path = _relative(path, Path(cell.cfg.out_dir))
    evaluate(cell, train_final(cell, synthetic, ctx, fitted))
    cell.record.substitutes = _dedupe(subs)
    cell.record.status = "ok"


def run_cell(spec: CellSpec, cfg: RunConfig) -> CellResult:
    """Run one cell (or return its existing record); always returns a record, never raises. A record
    another command wrote meanwhile with another configuration is left alone: this cell fails, unwritten."""
    t_start = time.perf_counter()
    progress.set_cell(spec.cell_id)
    progress.stage("data")
    cell = None
    rec = CellRecord(cell_id=spec.cell_id, dataset=dataset_label(spec.dataset), view=spec.view, method=spec.method,
                     policy=spec.policy, seed=spec.seed)
    try:
        cell = open_cell(spec, cfg)
        rec = cell.record
        kept = check_record(cell)
        if kept is not None:
            return CellResult(kept, skipped=True)
        run_stages(cell)
    except ConfigConflict as err:  # another command wrote this cell meanwhile: keep its record, fail this one
        rec.status, rec.reason = "failed", str(err)
        return CellResult(rec, skipped=True)
    except MethodUnavailable as err:
        rec.status, rec.reason, rec.metrics = "unavailable", str(err), None
    except Exception as err:  # a failed cell is recorded, never lost
        rec.status, rec.reason, rec.metrics = "failed", f"{type(err).__name__}: {err}", None
        rec.traceback = traceback.format_exc(limit=8)
    timings = cell.timings if cell is not None else {}
    timings["total"] = time.perf_counter() - t_start
    rec.timings = {k: round(v, 3) for k, v in timings.items()}
    rec.versions, rec.git, rec.created = versions(), git_commit(), now()
    rec.write(record_path(spec, cfg))
    return CellResult(rec)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def _dedupe(items: list[dict[str, str]]) -> list[dict[str, str]]:
    seen, out = set(), []
    for x in items:
        k = json.dumps(x, sort_keys=True)
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


# ------------------------------------------------------------------------------------ the grid


def describe(res: CellResult) -> str:
    """One progress line for a finished cell."""
    rec = res.record
    tag = "skip (done)" if res.skipped else rec.status
    notes = "".join(f"\n    note: {n}" for n in rec.notes if not n.startswith("data: "))  # printed once per run
    if rec.status == "ok":
        m = rec.metrics
        return (f"{rec.cell_id}: {tag} F1 {100 * m.macro_f1:.2f} acc {100 * m.accuracy:.2f} "
                f"({rec.timings.get('total', 0):.0f}s){notes}")
    return f"{rec.cell_id}: {tag}: {rec.reason}{notes}"



def preflight(cells: list[CellSpec], cfg: RunConfig) -> None:
    """Refuse, before any work, to write a configuration into a run directory whose records of the
    same cells were made with another one (unless ``--overwrite always``)."""
    if cfg.overwrite == "always":
        return
    conflicts = []
    for c in cells:
        if not record_path(c, cfg).exists():
            continue
        try:
            check_record(open_cell(c, cfg))
        except ConfigConflict as err:
            conflicts.append(str(err))
    if conflicts:
        more = f" (and {len(conflicts) - 1} more cells)" if len(conflicts) > 1 else ""
        raise ConfigConflict(conflicts[0] + more)


def read_existing(cfg: RunConfig) -> list[CellRecord]:
    """The readable records of the run directory (for cost estimates and summaries)."""
    return read_run_records(cfg.out_dir)[0]


def read_run_records(run_dir: str | Path) -> tuple[list[CellRecord], int]:
    """The readable records of ``RUN/records`` and how many files could not be read."""
    out, bad = [], 0
    for p in sorted((Path(run_dir) / "records").glob("*.json")):
        try:
            out.append(read_record(p))
        except RecordError:
            bad += 1
    return out, bad
