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


def _parse_value(v: str) -> Any:
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def sweep_names(spec: str) -> list[str]:
    """``diffusioncls.step_group=1,4,8`` -> ``diffusioncls[step_group=1]``, ``diffusioncls``, ... (the
    method's default value keeps the plain name, so a sweep shares the plain cells of the same run)."""
    from bench.registry import parameterised_name, parse_value
    from methods import METHODS

    key, eq, values = spec.partition("=")
    method, dot, name = key.partition(".")
    if not (eq and dot and name and values):
        raise ValueError(f"--sweep {spec!r}: expected METHOD.KEY=V1,V2,...")
    entry = METHODS.get(method)
    defaults = {**getattr(entry.load(), "default_params", {}), **entry.params}
    if name not in defaults:
        raise ValueError(f"--sweep {spec!r}: {method} has no parameter {name!r} (known: {', '.join(sorted(defaults))})")
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
    r.add_argument("--preset", default="quick", help="named grid (see `ls presets`); flags below override it")
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
    r.add_argument("--epochs", type=int, default=None)
    r.add_argument("--lr", type=float, default=None)
    r.add_argument("--batch-size", type=int, default=None)
    r.add_argument("--max-length", type=int, default=None)
    r.add_argument("--patience", type=int, default=None,
                   help="early stopping: epochs without a better dev macro-F1 before training stops")
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
    r.add_argument("--continue-on-error", action="store_true", help="record failed cells and go on")
    r.add_argument("--keep-models", action="store_true", help="also save every final classifier's weights")
    r.add_argument("--dry-run", action="store_true", help="print the planned cells and exit")
    r.add_argument("--no-progress", action="store_true")

    ls = sub.add_parser("ls", help="list methods, datasets or presets (imports no models)")
    ls.add_argument("what", choices=["methods", "datasets", "presets"])

    rep = sub.add_parser("report", help="render tables (and figures, when available) from a run directory")
    rep.add_argument("run_dir")
    rep.add_argument("--out", default=None, help="where to write (default RUN_DIR/report)")

    pr = sub.add_parser("prepare", help="prepare offline resources once (WordNet copy, masked LM, ...)")
    pr.add_argument("what", choices=["wordnet", "mlm", "backbone"],
                    help="wordnet: copy WordNet 3.0 for NLTK; mlm: give a backbone without an MLM head one "
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


def _settings_from_args(args):
    from bench.config import PRESETS
    from bench.data import default_dataset
    from bench.registry import UnknownName

    if args.preset not in PRESETS:
        import difflib

        close = difflib.get_close_matches(args.preset, PRESETS, n=2)
        raise UnknownName(f"unknown preset {args.preset!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                          + f" (known: {', '.join(PRESETS)})")
    pr = PRESETS[args.preset]
    datasets = _csv(args.datasets) if args.datasets else list(pr.datasets or [default_dataset()])
    fractions = [float(x) for x in _csv(args.fractions)] if args.fractions else list(pr.fractions)
    shots = [int(x) for x in _csv(args.shots)] if args.shots else list(pr.shots)
    if args.fractions and not args.shots:
        shots = []
    if args.shots and not args.fractions:
        fractions = []
    for f in fractions:
        if not 0 < f <= 100:
            raise ValueError(f"--fractions are percentages in (0, 100]; got {f:g}")
    views = [f"{f:g}pct" for f in fractions] + [f"{k}shot" for k in shots]
    if not views:
        raise ValueError("no train view: give --fractions and/or --shots")
    seeds = [int(x) for x in _csv(args.seeds)] if args.seeds else list(pr.seeds)
    policies = _csv(args.policies) if args.policies else list(pr.policies)
    for p in policies:
        if p not in ("G/E", "B/D"):
            raise ValueError(f"unknown policy {p!r}; expected G/E or B/D")
    clf = dict(pr.classifier)
    for flag, key in (("epochs", "epochs"), ("lr", "lr"), ("batch_size", "batch_size"), ("max_length", "max_length"),
                      ("patience", "patience")):
        v = getattr(args, flag)
        if v is not None:
            clf[key] = v
    method_params: dict[str, dict[str, Any]] = {k: dict(v) for k, v in pr.method_params.items()}
    for item in args.param:
        key, eq, value = item.partition("=")
        method, dot, name = key.partition(".")
        if not (eq and dot and name):
            raise ValueError(f"--param {item!r}: expected METHOD.KEY=VALUE")
        method_params.setdefault(method, {})[name] = _parse_value(value)
    data_dirs = {}
    for item in args.data_dir:
        name, eq, d = item.partition("=")
        if not eq:
            raise ValueError(f"--data-dir {item!r}: expected DATASET=DIR")
        data_dirs[name] = d
    device = args.device
    if device is None:
        device = "cpu"
        try:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            pass
    out = Path(args.out or f"runs/{args.preset}")
    from bench.runner import RunSettings

    settings = RunSettings(
        out_dir=str(out), cache_dir=str(Path(args.cache_dir) if args.cache_dir else out / "cache"),
        classifier=clf, backbone=args.backbone or pr.backbone,
        n_aug=args.n_aug if args.n_aug is not None else pr.n_aug,
        max_dev=args.max_dev if args.max_dev is not None else pr.max_dev,
        max_test=args.max_test if args.max_test is not None else pr.max_test,
        method_params=method_params, data_dirs=data_dirs, keep_models=args.keep_models, device=device)
    methods = args.methods or ("" if args.sweep else pr.methods)
    return settings, datasets, views, methods, seeds, policies


def cmd_run(args) -> int:
    from dataclasses import asdict

    from bench import records as R
    from bench.runner import CellFailed, plan_cells, run_grid
    from methods import METHODS

    settings, datasets, views, methods_spec, seeds, policies = _settings_from_args(args)
    methods = METHODS.resolve(methods_spec) if methods_spec else []
    for spec in args.sweep:
        methods.extend(m for m in sweep_names(spec) if m not in methods)
    if not methods:
        raise ValueError("no method to run: give --methods and/or --sweep")
    for m in settings.method_params:
        METHODS.get(m)
    from bench.data import dataset_registry

    reg = dataset_registry()
    for d in datasets:
        if not d.startswith(("csv:", "jsonl:")):
            reg.get(d)
    cells = plan_cells(datasets, views, methods, policies, seeds)
    if args.dry_run:
        for c in cells:
            print(c.cell_id)
        print(f"{len(cells)} cells")
        return 0
    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    manifest = {"command": " ".join(["python -m bench", *sys.argv[1:]]), "preset": args.preset,
                "datasets": datasets, "views": views, "methods": methods, "policies": policies, "seeds": seeds,
                "settings": asdict(settings), "cells": [c.cell_id for c in cells], "versions": R.versions(),
                "git": R.git_commit(), "started": R.now(), "finished": None}
    history = R.read_json(manifest_path).get("history", []) if manifest_path.exists() else []
    manifest["history"] = history
    R.atomic_write_json(manifest_path, manifest)
    t0 = time.perf_counter()
    print(f"run: {len(cells)} cells -> {out}  (backbone {settings.backbone}, device {settings.device})", flush=True)
    failed_hard = None
    try:
        recs = run_grid(cells, settings, continue_on_error=args.continue_on_error, progress=not args.no_progress)
    except CellFailed as err:
        failed_hard = str(err)
        recs = [R.read_json(p) for p in sorted((out / "records").glob("*.json"))]
    wall = time.perf_counter() - t0
    n_fail = sum(r["status"] == "failed" for r in recs)
    n_unav = sum(r["status"] == "unavailable" for r in recs)
    n_skip = sum(bool(r.get("_skipped")) for r in recs)
    manifest.update({"finished": R.now(), "wall_seconds": round(wall, 1)})
    # re-read: another command may have finished in this run directory meanwhile
    history = R.read_json(manifest_path).get("history", []) if manifest_path.exists() else history
    manifest["history"] = history + [{"command": manifest["command"], "started": manifest["started"],
                                      "wall_seconds": round(wall, 1), "cells": len(cells), "skipped": n_skip,
                                      "failed": n_fail}]
    R.atomic_write_json(manifest_path, manifest)
    subs = {json.dumps(s, sort_keys=True) for r in recs for s in r.get("substitutes", [])}
    if subs:
        print("offline substitutes used:")
        for s in sorted(subs):
            d = json.loads(s)
            print(f"  {d['role']}: {d['used']} (paper: {d['paper']})")
    print(f"done: {len(recs)} cells ({n_skip} already done, {n_unav} unavailable, {n_fail} failed) "
          f"in {wall:.0f}s; records in {out / 'records'}; next: python -m bench report {out}")
    if failed_hard:
        print(f"error: {failed_hard}", file=sys.stderr)
    return 1 if n_fail or failed_hard else 0


def cmd_report(args) -> int:
    from bench.report import build_report

    res = build_report(Path(args.run_dir), Path(args.out) if args.out else None)
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
    if args.what == "wordnet":
        from methods.lexicons import prepare_wordnet

        print(f"WordNet 3.0 for NLTK in {prepare_wordnet()}")
    elif args.what == "mlm":
        from methods.diffusioncls.mlm import adapted_mlm_dir

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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from bench.data import DataError
    from bench.registry import UnknownName

    try:
        return {"run": cmd_run, "ls": cmd_ls, "report": cmd_report, "prepare": cmd_prepare}[args.command](args)
    except (UnknownName, DataError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished cells are kept; run the same command again to resume", file=sys.stderr)
        return 130
