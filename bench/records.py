"""The cell record: a typed, versioned schema that the runner fills and the report reads.

One JSON file per cell (``RUN/records/<cell_id>.json``), written atomically when the cell ends.
:class:`CellRecord` is the schema; :func:`CellRecord.from_json` reads any schema version this code
knows and migrates it (``MIGRATIONS``), so records written by older versions stay readable. The
field table in ``docs/records.md`` is generated from the dataclasses (:func:`schema_markdown`,
``python -m bench ls schema``) and a test keeps the two equal.
"""

from __future__ import annotations

import dataclasses
import subprocess
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.api.io import atomic_write_json, read_json

SCHEMA = 2
REPO = Path(__file__).resolve().parent.parent


def doc(text: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING) -> Any:
    """A record field with its documentation (rendered into docs/records.md)."""
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata={"doc": text})
    return field(default=default, metadata={"doc": text})


class RecordError(ValueError):
    """A record file that cannot be read or does not fit the schema (the message names the file)."""


# ----------------------------------------------------------------------------------- the parts


@dataclass
class Seeds:
    view: int = doc("seed of the train view (subsample of train)")
    augment: int = doc("seed of the augmenter (shared by a method family: paired comparisons)")
    train: int = doc("seed of the classifier's initialisation and batch order")


@dataclass
class Metrics:
    macro_f1: float = doc("test macro-F1 in 0..1")
    accuracy: float = doc("test accuracy in 0..1")
    per_class_f1: dict[str, float] = doc("test F1 per label", factory=dict)
    n: int = doc("test examples scored", 0)
    support: dict[str, int] = doc("test examples per gold label", factory=dict)
    predicted: dict[str, int] = doc("test predictions per label (all on one label: a classifier with no signal)",
                                    factory=dict)
    predictions_path: str | None = doc("JSON of the test predictions (ids, gold, predicted, class probabilities, "
                                       "labels), relative to the run directory: any metric can be recomputed", None)


@dataclass
class DevInfo:
    macro_f1: float | None = doc("dev macro-F1 of the selected checkpoint", None)
    accuracy: float | None = doc("dev accuracy of the selected checkpoint", None)
    protocol: str = doc("training protocol: `steps-1` (the same step budget and dev checks for every method "
                        "of a view) or `epochs` (records made before it: patience in epochs)", "epochs")
    best_step: int | None = doc("optimizer step of the selected checkpoint", None)
    best_epoch: int | None = doc("`epochs` protocol only: epoch of the selected checkpoint (1-based)", None)
    steps_run: int | None = doc("optimizer steps run", None)
    budget_steps: int | None = doc("the training budget in optimizer steps: the view's texts (the same for every "
                                 "method of the view) over the batch size (grouped batches: their mean size)", None)
    eval_every: int | None = doc("steps between dev evaluations", None)
    evaluations: int | None = doc("dev evaluations run", None)
    stopped_early: bool | None = doc("whether early stopping ended training before the budget", None)
    history: list[dict[str, float]] = doc("the dev curve: one entry per evaluation (step, epoch = passes over the "
                                          "items, mean train loss since the last one, dev_macro_f1, dev_accuracy, "
                                          "lr)", factory=list)
    training: dict[str, Any] = doc("objective statistics, e.g. contrastive batches and cross-label pairs seen; "
                                   "with a contrastive term, gradient_probe: the norms of the cross-entropy's "
                                   "and the weighted term's gradients and their cosine at step 0 and before "
                                   "each dev check", factory=dict)


@dataclass
class Counts:
    train: int = doc("originals in the train view")
    dev: int = doc("dev examples (after --max-dev)")
    test: int = doc("test examples (after --max-test)")
    train_label_counts: dict[str, int] = doc("originals per label", factory=dict)
    synthetic_requested: int | None = doc("pseudo samples asked of the method", None)
    synthetic_produced: int | None = doc("pseudo samples it made", None)
    shortfall: int | None = doc("requested minus produced", None)
    identical_to_parent: int | None = doc("pseudo samples equal to their parent text", None)
    synthetic_label_counts: dict[str, int] | None = doc("pseudo samples per label", None)
    online_synthetic: dict[str, Any] | None = doc("reflective generation: what the batch hook made", None)


@dataclass
class MethodInfo:
    name: str = doc("registry name of the cell's method (a variant or parameterised name included)")
    base: str = doc("the registered method it derives from (e.g. diffusioncls for diffusioncls[step_group=3])")
    family: str = doc("the registered method a variant belongs to (diffusioncls for diffusioncls-wo-nrt)", "")
    axes: list[str] = doc("parameters the method declares as figure axes (e.g. step_group)", factory=list)
    overrides: dict[str, Any] = doc("parameters set by the name itself (a variant's or the bracketed ones)",
                                    factory=dict)
    tags: list[str] = doc("registry tags (variant, ablations, ...)", factory=list)
    plugin: str | None = doc("the distribution that provides an out-of-tree method", None)
    version: str = doc("the method's code version (part of every cache key)", "")
    params: dict[str, Any] = doc("every parameter value the method ran with", factory=dict)
    seed: int = doc("the augmenter's seed", 0)
    needs_fit: bool = doc("whether the method learns from the train view", False)
    languages: list[str] = doc("languages the method supports", factory=list)
    citation: str = doc("what to cite", "")
    substitutes: list[dict[str, str]] = doc("offline stand-ins the method itself used", factory=list)


@dataclass
class CellRecord:
    """One cell: dataset x train view x method x policy x seed, and everything it produced."""

    cell_id: str = doc("`{dataset}__{view}__{method}__{policy}__s{seed}`, `/` in the policy written `-`")
    dataset: str = doc("data set name (`csv-NAME` for a user file)")
    view: str = doc("`5pct`, `100pct`, `10shot` ...")
    method: str = doc("registry name (variants such as `diffusioncls-wo-lap` are their own names)")
    policy: str = doc("`G/E`, `B/D`, or `-` for `none`")
    seed: int = doc("the master seed of the cell")
    status: str = doc("`ok`, `failed` or `unavailable`", "failed")
    reason: str | None = doc("why, for `failed` (the error) and `unavailable` (e.g. no MT engine for zh)", None)
    schema: int = doc("record schema version", SCHEMA)
    language: str | None = doc("`en`, `zh`, ...", None)
    fraction: float | None = doc("the view as a fraction of train (0..1), or null", None)
    shots: int | None = doc("the view as examples per class, or null", None)
    seeds: Seeds | None = doc("derived seeds", None)
    config_hash: str | None = doc("hash of everything that determines the result (a record whose hash differs "
                                  "from the current configuration is not this configuration's)", None)
    backbone: str | None = doc("classifier backbone name", None)
    classifier: dict[str, Any] = doc("the classifier configuration used (backbone, epochs, lr, nrt_weight, ...)",
                                     factory=dict)
    method_info: MethodInfo | None = doc("registry facts and the augmenter's description", None)
    method_stats: dict[str, Any] = doc("the augmenter's own statistics (acceptance rate, ...)", factory=dict)
    metrics: Metrics | None = doc("test metrics (null unless ok)", None)
    dev: DevInfo | None = doc("model selection on dev", None)
    counts: Counts | None = doc("examples and pseudo samples", None)
    fit_reused: bool | None = doc("whether the method's fit loaded a generator an earlier cell trained (then `fit` "
                                  "excludes the training); null when the method caches no such stage", None)
    fit_work: float | None = doc("the training the method's fit does on this view, in the method's unit "
                                 "(`Augmenter.fit_work`: DiffusionCLS's diffusion-LM optimizer steps, otherwise "
                                 "the originals); the ETA prices a fit per unit; null for methods without a fit",
                                 None)
    timings: dict[str, float] = doc("seconds per stage: data, proxy, fit, augment, train, evaluate, total",
                                    factory=dict)
    substitutes: list[dict[str, str]] = doc("every offline stand-in used in the cell: {role, paper, used}",
                                            factory=list)
    synthetic_path: str | None = doc("JSONL of the cell's pseudo samples (one `Synthetic.to_json()` a line), "
                                     "relative to the run directory when inside it", None)
    versions: dict[str, str | None] = doc("python, torch, transformers, nlpaug, scikit-learn, pandas, bench",
                                          factory=dict)
    git: str | None = doc("commit of the suite (+dirty when the tree had changes)", None)
    created: str | None = doc("ISO time the record was written", None)
    traceback: str | None = doc("for `failed`: the last frames of the error", None)
    notes: list[str] = doc("what the run noticed and did about it: a damaged cache entry recomputed, training "
                           "rows dropped, a classifier that predicts one class only", factory=list)

    # ------------------------------------------------------------------ io
    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any], source: str = "<record>") -> CellRecord:
        """A record of any known schema version, migrated to this one."""
        if not isinstance(d, dict):
            raise RecordError(f"{source}: not a JSON object")
        d = migrate(dict(d), source)
        try:
            return _build(cls, d)
        except (TypeError, KeyError, ValueError) as err:
            raise RecordError(f"{source}: does not fit record schema {SCHEMA}: {err}") from None

    def write(self, path: Path) -> None:
        atomic_write_json(path, self.to_json())

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def read_record(path: Path) -> CellRecord:
    """Read and migrate one record file; a damaged file is a :class:`RecordError` naming it."""
    try:
        raw = read_json(path)
    except (OSError, ValueError) as err:
        raise RecordError(f"{path}: unreadable record ({err})") from None
    return CellRecord.from_json(raw, str(path))


def _build(cls: type, d: Any) -> Any:
    """Nested dataclasses from plain dicts (unknown keys are an error: the schema is closed)."""
    if d is None:
        return None
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    extra = set(d) - names
    if extra:
        raise ValueError(f"unknown field(s) {sorted(extra)} in {cls.__name__}")
    kw = {}
    for name, value in d.items():
        sub = _dataclass_in(hints[name])
        kw[name] = _build(sub, value) if sub is not None and value is not None else value
    return cls(**kw)


def _dataclass_in(tp: Any) -> type | None:
    if dataclasses.is_dataclass(tp):
        return tp
    for a in typing.get_args(tp):
        if dataclasses.is_dataclass(a):
            return a
    return None


# ----------------------------------------------------------------------------------- migrations


def _v1_to_v2(d: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 kept method facts as a name only: add the registry facts (base, overrides, tags) from
    the registry, and move `describe()` fields under `method_info`."""
    info = dict(d.get("method_info") or {})
    name = d.get("method") or info.get("name") or ""
    facts = registry_facts(name)
    info.update({"name": name, "base": facts["base"], "family": facts["family"], "axes": facts["axes"],
                 "overrides": facts["overrides"], "tags": facts["tags"], "plugin": facts["plugin"]})
    d["method_info"] = info
    if d.get("dev"):
        dev = d["dev"]
        d["dev"] = {**{k: dev.get(k) for k in ("macro_f1", "accuracy", "best_epoch", "history") if k in dev},
                    "protocol": "epochs"}
    else:
        d["dev"] = None
    d["classifier"] = {**(d.get("classifier") or {}), "protocol": "epochs"}
    for part in ("metrics", "counts", "seeds"):  # schema 1 wrote {} where there was nothing
        if not d.get(part):
            d[part] = None
    d.pop("_skipped", None)
    d["schema"] = 2
    return d


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def migrate(d: dict[str, Any], source: str = "<record>") -> dict[str, Any]:
    """Apply the migrations from the record's schema up to :data:`SCHEMA`."""
    v = d.get("schema", 1)
    if not isinstance(v, int) or v > SCHEMA or v < 1:
        raise RecordError(f"{source}: record schema {v!r} is not one this version reads (1..{SCHEMA}); "
                          f"a newer suite wrote it?")
    while v < SCHEMA:
        d = MIGRATIONS[v](d)
        v = d["schema"]
    if "fit_reused" not in d:
        d["fit_reused"] = _fit_reused_before_the_field(d)
    if "fit_work" not in d:
        d["fit_work"] = fit_work_from_stats(d.get("method_stats"))
    return d


def _fit_reused_before_the_field(d: dict[str, Any]) -> bool | None:
    """``fit_reused`` of a record written before the field existed (an optional field added within schema
    2, so that the records' config hashes stay valid): DiffusionCLS said it in its fit statistics
    (``cache_hit``), the LoRA-tuned LMs in theirs (``cached``)."""
    fit = (d.get("method_stats") or {}).get("fit")
    if not isinstance(fit, dict):
        return None
    flag = fit.get("cache_hit", fit.get("cached"))
    return bool(flag) if flag is not None else None


def fit_work_from_stats(method_stats: dict[str, Any] | None) -> float | None:
    """``fit_work`` of a record (or cached pseudo-sample set) written before the field existed: the optimizer
    steps a diffusion LM said in its fit statistics (``training.steps``); otherwise unknown (the ETA then
    counts the view's originals, the default unit)."""
    fit = (method_stats or {}).get("fit")
    steps = (fit.get("training") or {}).get("steps") if isinstance(fit, dict) else None
    return float(steps) if isinstance(steps, int | float) and not isinstance(steps, bool) else None


def registry_facts(name: str) -> dict[str, Any]:
    """Registry facts of a method name, with the axes its class declares (a record written by a plugin
    that is not installed now keeps its name as its base and family)."""
    from bench.api.registry import UnknownName
    from methods import METHODS

    try:
        entry = METHODS.get(name)
        return {**entry.facts(), "axes": entry.load().Params.axes()}
    except (UnknownName, ImportError, AttributeError):
        return {"name": name, "base": name, "family": name, "params": {}, "overrides": {}, "tags": [],
                "plugin": None, "axes": []}


# ----------------------------------------------------------------------------------- provenance


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def versions() -> dict[str, str | None]:
    import platform

    out: dict[str, str | None] = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "nlpaug", "scikit-learn", "pandas"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    from bench import __version__

    out["bench"] = __version__
    return out


def git_commit() -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if r.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return r.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


# ----------------------------------------------------------------------------------- the doc


def schema_markdown() -> str:
    """The field tables of docs/records.md, generated from the dataclasses."""
    parts = [f"## Record (schema {SCHEMA})\n"]
    for cls in (CellRecord, Seeds, MethodInfo, Metrics, DevInfo, Counts):
        title = "CellRecord (top level)" if cls is CellRecord else f"`{_field_owner(cls)}`: {cls.__name__}"
        parts.append(f"### {title}\n\n| field | type | meaning |\n|---|---|---|")
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            parts.append(f"| `{f.name}` | {_type_name(hints[f.name])} | {f.metadata.get('doc', '')} |")
        parts.append("")
    return "\n".join(parts)


def _field_owner(cls: type) -> str:
    hints = typing.get_type_hints(CellRecord)
    return next((n for n, t in hints.items() if _dataclass_in(t) is cls), cls.__name__)


def _type_name(tp: Any) -> str:
    s = tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")
    for cls in (Seeds, Metrics, DevInfo, Counts, MethodInfo):
        s = s.replace(f"bench.records.{cls.__name__}", cls.__name__)
    return s.replace("NoneType", "null").replace(" | ", " or ").replace("None", "null")
