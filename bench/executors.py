"""Running a grid: cells as tasks with dependencies, in this process, in worker processes, or on Ray.

A cell depends on the stage that it reuses:

* the proxy of its (dataset, view, seed) when its method reads it (``Augmenter.needs_proxy``): the
  ``none`` cell of the group trains it (or, when ``none`` is not in the grid, a proxy-only task);
* the first cell of its group whose method shares its fitted generator (``Augmenter.shared_work_key``:
  a step sweep and the ablations that reuse one diffusion LM; GENIUS and GeniusAug-f).

So a shared stage is computed once, before the cells that need it, and never twice at the same
time. Every executor runs :func:`bench.runner.run_cell` unchanged, with the same number of torch
threads per cell, so ``--jobs 2`` writes the same records as ``--jobs 1`` (timings aside).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import progress, runner
from bench.api import AugmenterError
from bench.api.registry import UnknownName
from bench.config import RunConfig
from bench.runner import CellResult, CellSpec, dataset_label, make_augmenter, open_cell


@dataclass(frozen=True)
class Task:
    """One unit of work: a cell, or the proxy stage of a group no ``none`` cell of the grid trains."""

    key: str
    cell: CellSpec
    deps: tuple[str, ...] = ()
    proxy_only: bool = False


def plan_tasks(cells: list[CellSpec], cfg: RunConfig) -> list[Task]:
    """Cells (in plan order) as tasks with their dependencies; a topological order."""
    tasks: list[Task] = []
    groups: dict[tuple, list[CellSpec]] = {}
    for c in cells:
        groups.setdefault(c.group, []).append(c)
    for (dataset, view, seed), group in groups.items():
        nones = [c for c in group if c.method == "none"]
        proxy = nones[0].cell_id if nones else None
        shared: dict[str, str] = {}
        for c in group:
            aug = make_augmenter(c, cfg)
            deps = []
            if c.method != "none" and aug.needs_proxy():
                if proxy is None:
                    proxy = f"proxy:{dataset}:{view}:s{seed}"
                    tasks.append(Task(proxy, CellSpec(dataset, view, "none", "-", seed), proxy_only=True))
                deps.append(proxy)
            key = aug.shared_work_key()
            if key is not None:
                k = json.dumps(key, sort_keys=True, default=str)
                if k in shared:
                    deps.append(shared[k])
                else:
                    shared[k] = c.cell_id
            tasks.append(Task(c.cell_id, c, tuple(deps)))
    return tasks


def run_task(task: Task, cfg: RunConfig) -> CellResult | None:
    """A cell's record, or None for a proxy-only task (its product is the cached classifier)."""
    if task.proxy_only:
        progress.set_cell(task.key)
        open_cell(task.cell, cfg).proxy()
        return None
    return runner.run_cell(task.cell, cfg)


def set_threads(threads: int) -> None:
    """Torch threads of this process (set before torch does work; the same in every executor)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def default_jobs(threads_per_job: int) -> int:
    """As many workers as the cores allow at ``threads_per_job`` threads each."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, threads_per_job))


# ------------------------------------------------------------------------------------ local


def run_sequential(tasks: list[Task], cfg: RunConfig, threads: int) -> Iterator[tuple[Task, CellResult | None]]:
    set_threads(threads)
    for t in tasks:
        yield t, run_task(t, cfg)


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the process that started it dies (a killed grid leaves no
    orphans computing cells nobody will record)."""
    import ctypes
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:
            pass


def _init_worker(threads: int, queue) -> None:
    _die_with_parent()
    set_threads(threads)
    if queue is not None:
        progress.set_sink(queue.put)


def run_pool(tasks: list[Task], cfg: RunConfig, jobs: int, threads: int,
             on_event: Callable[[progress.Event], None] | None = None) -> Iterator[tuple[Task, CellResult | None]]:
    """Tasks on ``jobs`` worker processes; a task starts when its dependencies have finished, earlier
    tasks of the plan first. Progress events of the workers reach ``on_event``."""
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = mp.get_context("spawn")
    events = ctx.Queue() if on_event else None
    done: set[str] = set()
    pending = list(tasks)
    running = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                             initargs=(threads, events)) as pool:
        while pending or running:
            for t in [t for t in pending if set(t.deps) <= done][: max(0, jobs - len(running))]:
                pending.remove(t)
                running[pool.submit(run_task, t, cfg)] = t
            finished, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
            while events is not None:
                try:
                    on_event(events.get_nowait())
                except queue_mod.Empty:
                    break
            for f in finished:
                t = running.pop(f)
                done.add(t.key)
                yield t, f.result()


# ------------------------------------------------------------------------------------ Ray


def run_ray(tasks: list[Task], cfg: RunConfig, threads: int, gpus: float = 0.0, address: str | None = None
            ) -> Iterator[tuple[Task, CellResult | None]]:
    """Each task a Ray task declaring ``threads`` CPUs (and ``gpus`` GPUs); dependencies are passed as
    object references, so Ray's scheduler starts a task when what it reuses exists."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("--executor ray needs Ray: pip install 'lowres-aug-bench[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
    check_shared_storage(cfg)
    remote = ray.remote(_ray_task).options(num_cpus=threads, num_gpus=gpus)
    refs, by_ref = {}, {}
    for t in tasks:
        refs[t.key] = remote.remote(t, cfg, threads, *[refs[d] for d in t.deps])
        by_ref[refs[t.key]] = t
    waiting = list(refs.values())
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        for r in ready:
            yield by_ref[r], ray.get(r)


def _ray_task(task: Task, cfg: RunConfig, threads: int, *deps) -> CellResult | None:
    set_threads(threads)
    return run_task(task, cfg)


def _probe(paths: list[str], token: str) -> str | None:
    """On a Ray node: which of ``paths`` it cannot see (the driver wrote ``token`` into each)."""
    import socket

    for p in paths:
        f = Path(p) / ".bench-ray-probe"
        if not f.is_file() or f.read_text() != token:
            return f"{socket.gethostname()} cannot see {p}"
    return None


def check_shared_storage(cfg: RunConfig) -> None:
    """Every node of the cluster must see the run and cache directories (records and cached stages
    are files there); a node that does not is a clear error before any cell runs."""
    import uuid

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    paths = [str(Path(cfg.out_dir).resolve()), str(Path(cfg.cache_dir).resolve())]
    for p in paths:
        Path(p).mkdir(parents=True, exist_ok=True)
        (Path(p) / ".bench-ray-probe").write_text(token)
    probe = ray.remote(num_cpus=0)(_probe)
    nodes = [n["NodeID"] for n in ray.nodes() if n.get("Alive")]
    try:
        problems = ray.get([probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n, soft=False))
                           .remote(paths, token) for n in nodes])
    finally:
        for p in paths:
            (Path(p) / ".bench-ray-probe").unlink(missing_ok=True)
    bad = [p for p in problems if p]
    if bad:
        raise RuntimeError("Ray workers must see the run and cache directories (put --out and --cache-dir on storage "
                           "every node mounts, e.g. NFS): " + "; ".join(bad))


# ------------------------------------------------------------------------------------ costs


# Minutes per cell on the quick preset (airline 5%: 505 originals, a budget of 640 steps of 16 texts), the
# fallback of the ETA before a run has its own measurements, split into (generation, the rest): generation
# (fit + augment) grows with the view's originals, the rest (training, evaluation) with its step budget.
# Step protocol, --jobs 2 on 2 cores, 2026-12-01: none, resample, eda, aeda, backtranslation, nlpaug-glove
# (means of 2-3 cells). diffusioncls (2026-12-02, texts budget): its diffusion LM 36 min and generation 1,
# then training 15 (a cell that reuses a cached LM: 15 min). lambada (2026-12-02, llama.cpp): LoRA 2 min,
# sampling 35, training 10. The rest were measured under the earlier epoch protocol
# (reports/earlier-protocol/quick/costs.md); genius then sampled with transformers, slower than llama.cpp.
DEFAULT_MINUTES = {"lambada": (38, 10), "genius": (13, 10), "diffusioncls": (37, 14), "nlpaug-mlm": (3, 6),
                   "nlpaug-glove": (1, 9), "backtranslation": (1, 9), "genius-f": (0, 5), "aeda": (0, 7),
                   "eda": (0, 8), "none": (0, 11), "resample": (0, 10)}
# the part of the generation minutes that trains a stage the cells of a (dataset, view, seed) share
# (Augmenter.shared_work_key): only the first cell that needs it pays it
DEFAULT_SHARED_FIT_MINUTES = {"diffusioncls": 36}
REFERENCE_SCALE = (505, 640)  # (originals, budget in steps of 16 texts) of the quick preset's airline 5% view


@dataclass(frozen=True)
class CellCost:
    """A family's cost per cell as rates: seconds of generation per original of the view, seconds of
    everything else per budget step (counted in steps of the run's batch size), and seconds per unit of
    fit work (:meth:`Augmenter.fit_work`: the originals, or DiffusionCLS's diffusion-LM steps) of the fit
    a cell pays only when no earlier cell trained it (a shared diffusion LM, a cached adapter)."""

    per_original: float
    per_step: float
    fit_per_unit: float = 0.0

    def seconds(self, originals: int, steps: int, pays_fit: bool = True, fit_work: float | None = None) -> float:
        fit = self.fit_per_unit * (originals if fit_work is None else fit_work) if pays_fit else 0.0
        return self.per_original * originals + fit + self.per_step * steps


def _record_scale(r) -> tuple[int, int] | None:
    """(originals, budget in plain steps) of the cell a record measured, or None when it cannot say."""
    dev, batch = r.dev, (r.classifier or {}).get("batch_size")
    if not (dev and dev.budget_steps and r.counts and r.counts.train and batch):
        return None
    texts = float((dev.training or {}).get("texts_per_step") or batch)
    return r.counts.train, max(1, round(dev.budget_steps * texts / batch))


CostKey = str | tuple[str, str]  # a family (its records on every backbone) or (family, classifier backbone)


def _record_backbone(r) -> str | None:
    return getattr(r, "backbone", None) or (getattr(r, "classifier", None) or {}).get("backbone")


def cost_model(records: Iterable) -> dict[CostKey, CellCost]:
    """Per method family, the median rates of the records that computed their cell, both per classifier
    backbone (key ``(family, backbone)``: a frozen-Gemma cell's steps and a Gemma generator's texts cost
    nothing like MiniLM's) and over every backbone (key ``family``). A fit the record says it trained
    (``fit_reused`` false) is priced apart, so that a cell reusing a cached diffusion LM does not make the
    next LM look cheap; a family with no measured training keeps the reference fit rate."""
    rates: dict[CostKey, list[tuple[float, float]]] = {}
    fits: dict[CostKey, list[float]] = {}
    for r in records:
        scale = _record_scale(r) if r.status == "ok" and r.method_info is not None else None
        if scale is None or not r.timings.get("total"):
            continue
        family = r.method_info.family or r.method
        keys: list[CostKey] = [family] + ([(family, b)] if (b := _record_backbone(r)) else [])
        fit, augment = r.timings.get("fit", 0.0), r.timings.get("augment", 0.0)
        rest = max(0.0, r.timings["total"] - fit - augment)
        trained = getattr(r, "fit_reused", None) is False
        for k in keys:
            if trained:
                fits.setdefault(k, []).append(fit / (getattr(r, "fit_work", None) or scale[0]))
            rates.setdefault(k, []).append(((augment if trained else fit + augment) / scale[0], rest / scale[1]))
    return {k: CellCost(_median(a for a, _ in v), _median(b for _, b in v),
                        _median(fits[k]) if k in fits else default_cost(k if isinstance(k, str) else k[0]).fit_per_unit)
            for k, v in rates.items()}


def _median(xs: Iterable[float]) -> float:
    """The median rate: a cell that also paid a once-per-machine preparation inside its fit (the 37-minute
    MLM adaptation) or ran beside a third job does not price every later cell."""
    import statistics

    return statistics.median(xs)


def default_cost(family: str) -> CellCost:
    """The reference costs as rates. The shared fit's minutes are spread over the reference view's 505
    originals; DiffusionCLS counts its fit in diffusion-LM steps, 508 on that view (within 1%)."""
    gen, rest = DEFAULT_MINUTES.get(family, (0, 10))
    shared = DEFAULT_SHARED_FIT_MINUTES.get(family, 0)
    n, steps = REFERENCE_SCALE
    return CellCost(60.0 * (gen - shared) / n, 60.0 * rest / steps, 60.0 * shared / n)


def cell_scale(cell: CellSpec, cfg: RunConfig) -> tuple[int, int]:
    """(originals in the cell's train view, its budget in steps of the batch size): what its cost grows with."""
    from bench.training import schedule_for

    cd = runner.cell_data(cell, cfg)
    c = runner.classifier_config(cfg, cd.language)
    n = len(cd.train)
    sched = schedule_for(n * (1 + cfg.n_aug), c.batch_size, c.epochs, c.min_steps, c.evals, c.patience,
                         c.min_train, c.max_steps)
    return n, sched.total_steps


def cell_backbone(cell: CellSpec, cfg: RunConfig) -> str:
    """The classifier backbone the cell trains (the run's backbone for the data set's language)."""
    return runner.classifier_config(cfg, runner.cell_data(cell, cfg).language).backbone


def cell_fit_work(cell: CellSpec, cfg: RunConfig, originals: int) -> float:
    """The fit work (:meth:`Augmenter.fit_work`) of the cell's method on a view of ``originals``."""
    return make_augmenter(cell, cfg).fit_work(originals)


def estimate_seconds(cell: CellSpec, model: dict[CostKey, CellCost], scale: tuple[int, int] = REFERENCE_SCALE,
                     pays_fit: bool = True, backbone: str | None = None, fit_work: float | None = None) -> float:
    """The cell's cost from its family's measured rates on ``backbone`` (any backbone when None), else
    the reference costs (measured on the quick preset's MiniLM cells). ``fit_work``: the cell's
    :func:`cell_fit_work` (None: the view's originals)."""
    from methods import METHODS

    family = METHODS.get(cell.method).facts()["family"]
    cost = model.get(family if backbone is None else (family, backbone)) or default_cost(family)
    return cost.seconds(*scale, pays_fit=pays_fit, fit_work=fit_work)


def fit_payers(cells: list[CellSpec], records: Iterable, cfg: RunConfig) -> set[str]:
    """The cells that would train their shared stage: the first cell of each (dataset, view, seed,
    shared work key) whose stage no finished record made. A cell whose method shares nothing pays its
    own fit."""
    def key(dataset: str, view: str, method: str, seed: int) -> str | None:
        k = make_augmenter(CellSpec(dataset, view, method, "-", seed), cfg).shared_work_key()
        return None if k is None else json.dumps([dataset_label(dataset), view, seed, k], sort_keys=True, default=str)

    def made_by(r) -> str | None:  # a record of a method this code no longer knows made nothing reusable
        try:
            return key(r.dataset, r.view, r.method, r.seed)
        except (UnknownName, AugmenterError):
            return None

    made = {made_by(r) for r in records if r.status == "ok" and r.method != "none"}
    payers = set()
    for c in cells:
        k = key(c.dataset, c.view, c.method, c.seed)
        if k is None or k not in made:
            payers.add(c.cell_id)
            if k is not None:
                made.add(k)
    return payers


def fmt_duration(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Eta:
    """Remaining wall time: the estimated cost of the cells not finished, spread over the workers."""

    def __init__(self, cells: list[CellSpec], records: list, jobs: int, cfg: RunConfig, cost_records: Sequence = ()):
        """``records``: this run's (rates, and which shared stages exist); ``cost_records``: other runs'
        records that only lend their rates (``--costs-from``)."""
        model = cost_model([*records, *cost_records])
        payers = fit_payers(cells, records, cfg)
        scales: dict[tuple[str, str], tuple[int, int]] = {}  # a view's size does not depend on the seed
        backbones: dict[str, str] = {}
        for c in cells:
            if (c.dataset, c.view) not in scales:
                scales[(c.dataset, c.view)] = cell_scale(c, cfg)
            if c.dataset not in backbones:
                backbones[c.dataset] = cell_backbone(c, cfg)
        self.left = {}
        for c in cells:
            scale, pays = scales[(c.dataset, c.view)], c.cell_id in payers
            work = cell_fit_work(c, cfg, scale[0]) if pays else None
            self.left[c.cell_id] = estimate_seconds(c, model, scale, pays, backbones[c.dataset], work)
        self.jobs = max(1, jobs)
        self.t0 = time.perf_counter()

    def finish(self, cell_id: str) -> None:
        self.left.pop(cell_id, None)

    def text(self) -> str:
        return f"ETA {fmt_duration(sum(self.left.values()) / self.jobs)}"


# ------------------------------------------------------------------------------------ the grid

MIN_FREE_BYTES = 256 * 2**20  # below this a failed cell is taken for a full disk, which every later cell hits too


def full_disk(cfg: RunConfig) -> str | None:
    """The run, cache or bench-home directory whose file system has under ``MIN_FREE_BYTES`` free, said
    with its free space; None when all have room (or cannot be asked)."""
    import shutil

    from bench.api.resources import bench_home

    for path in (cfg.out_dir, cfg.cache_dir, bench_home()):
        try:
            free = shutil.disk_usage(path).free
        except OSError:
            continue
        if free < MIN_FREE_BYTES:
            return f"{path} has {free / 2**20:.0f} MB free"
    return None



def execute(cells: list[CellSpec], cfg: RunConfig, *, jobs: int = 1, threads: int = 1, executor: str = "local",
            gpus: float = 0.0, ray_address: str | None = None, continue_on_error: bool = False,
            show_progress: bool = True, log: Callable[[str], None] = print,
            cost_records: Sequence = ()) -> list[CellResult]:
    """Run a grid and return its cell results; a failed cell stops the grid (after the cells already
    running finish) unless ``continue_on_error``, and always when the disk is full (:func:`full_disk`). Shows a bar with the running cells' stages and an ETA
    weighted by each method's measured cost (this run's records and ``cost_records``)."""
    from tqdm import tqdm

    from bench.runner import CellFailed, describe, preflight, read_existing

    preflight(cells, cfg)
    tasks = plan_tasks(cells, cfg)
    eta = Eta(cells, read_existing(cfg), jobs, cfg, cost_records)
    bar = tqdm(total=len(cells), disable=not show_progress, unit="cell", dynamic_ncols=True)
    stages: dict[str, str] = {}

    def on_event(ev: progress.Event) -> None:
        stages[ev.cell_id] = ev.text()
        bar.set_postfix_str(f"{eta.text()} | " + "; ".join(f"{k}: {v}" for k, v in list(stages.items())[-jobs:]))

    if executor == "ray":
        stream = run_ray(tasks, cfg, threads, gpus, ray_address)
    elif jobs > 1:
        stream = run_pool(tasks, cfg, jobs, threads, on_event if show_progress else None)
    else:
        progress.set_sink(on_event if show_progress else None)
        stream = run_sequential(tasks, cfg, threads)
    out: list[CellResult] = []
    failed, stop = None, "--continue-on-error records failures and goes on"
    try:
        for task, res in stream:
            stages.pop(task.key, None)
            if res is None:
                continue
            out.append(res)
            eta.finish(task.key)
            bar.update(1)
            bar.write(describe(res)) if show_progress else log(describe(res))
            conflict = res.skipped and res.record.status == "failed" and "another configuration" in (res.record.reason or "")
            if res.record.status == "failed" and not res.skipped and (disk := full_disk(cfg)):
                failed, stop = res, (f"the disk is full ({disk}): stopped, since every later cell would fail "
                                     f"too; free space and run the same command again (failed cells are recomputed)")
                break
            if res.record.status == "failed" and (not res.skipped or conflict) and not continue_on_error:
                failed = res
                break
    finally:
        progress.set_sink(None)
        bar.close()
        if executor == "ray":
            _ray_shutdown_if_local(ray_address)
    if failed is not None:
        err = CellFailed(f"cell {failed.record.cell_id} failed: {failed.record.reason} (record written; {stop})")
        err.results = out
        raise err
    return out


def _ray_shutdown_if_local(address: str | None) -> None:
    if address is None:
        import ray

        ray.shutdown()
