"""Why does (or doesn't) DiffusionCLS's diffusion LM restore text? A diagnostic, not a benchmark cell.

For one (dataset, view, seed) of a run directory it takes the cell's proxy (the cached ``none``
classifier, trained if missing), builds the diffusion LM the way ``diffusioncls`` does, and
measures greedy restoration accuracy on the DEV split (never trained on) at the chosen step
group, before and after the diffusion LM's training on the train view, for each ``--init``:

    python scripts/probe_diffusion_lm.py --out runs/quick --seed 0 --init proxy,mlm
    python scripts/probe_diffusion_lm.py --out runs/quick --seed 0 --init mlm --coverage random,groups
    python scripts/probe_diffusion_lm.py --out runs/quick --seed 0 \
        --dlm-dir runs/quick/cache/methods/diffusion_lm/KEY      # score a cell's trained LM, no training

Prints one JSON line per setting; ``--json FILE`` also writes them all.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/quick", help="run directory whose cache holds the proxy")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--dataset", default="airline")
    ap.add_argument("--view", default="5pct")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default="proxy,mlm", help="comma-separated: proxy, mlm")
    ap.add_argument("--coverage", default=None, help="comma-separated diffusion-LM coverages: random (one step "
                    "per sentence per epoch), groups (every step group; the method's default)")
    ap.add_argument("--mlm-dir", default=None, help="masked LM directory (default: the suite's adapted MLM)")
    ap.add_argument("--epochs", type=int, default=None, help="diffusion-LM epochs (default: the method's)")
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--step-group", type=int, default=None)
    ap.add_argument("--dlm-dir", default=None, help="a trained diffusion LM (a cell's cache entry): score its dev "
                    "restoration as it is, without building or training one (its key must name this seed's view)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import torch

    from bench.config import RunConfig
    from bench.runner import CellSpec, open_cell
    from methods.common.mlm import adaptation_report, adapted_mlm_dir
    from methods.diffusioncls import diffusion_lm as mlm
    from methods.diffusioncls.importance import importance_weights, tokenize_texts
    from methods.diffusioncls.method import DiffusionCLS
    from methods.diffusioncls.schedule import step_group_steps

    cfg = RunConfig.from_preset(args.preset, out_dir=args.out, cache_dir=str(Path(args.out) / "cache"), device="cpu")
    p = DiffusionCLS.default_params()
    if args.epochs is not None:
        p["dlm_epochs"] = args.epochs
    if args.lr is not None:
        p["dlm_lr"] = args.lr
    if args.step_group is not None:
        p["step_group"] = args.step_group
    if args.dlm_dir:  # score the LM under the schedule it was trained with
        key = json.loads((Path(args.dlm_dir) / "diffusion_lm.json").read_text()).get("key", {})
        p.update({k: key[k] for k in ("T", "lam", "schedule", "importance_norm", "n_groups", "max_length") if k in key})
    steps = step_group_steps(int(p["step_group"]), int(p["T"]), int(p["n_groups"]))
    cell = open_cell(CellSpec(args.dataset, args.view, "none", "-", args.seed), cfg)
    cd, proxy = cell.data, cell.proxy()
    mlm_dir = Path(args.mlm_dir) if args.mlm_dir else adapted_mlm_dir(proxy.backbone)
    report = adaptation_report(mlm_dir) or {}
    max_text = int(p["max_length"]) - 4
    dv_toks = tokenize_texts(proxy.tokenizer, [e.text for e in cd.dev], max_text)
    dv_w = importance_weights(proxy.model, proxy.tokenizer, dv_toks, p["importance_norm"])
    common = dict(T=int(p["T"]), lam=float(p["lam"]), schedule=p["schedule"], steps=steps)
    if args.dlm_dir:
        return _score_trained(args, cd, dv_toks, dv_w, common)
    tr_toks = tokenize_texts(proxy.tokenizer, [e.text for e in cd.train], max_text)
    tr_w = importance_weights(proxy.model, proxy.tokenizer, tr_toks, p["importance_norm"])
    labels = tuple(cd.labels)
    rows = []
    coverages = [x for x in (args.coverage or p["dlm_coverage"]).split(",") if x]
    for init, coverage in [(i, c) for i in args.init.split(",") if i for c in coverages]:
        torch.manual_seed(0)
        model, tok, label_ids = mlm.build_diffusion_lm(proxy, mlm_dir, labels, True, init=init)
        tr_l = [label_ids[e.label] for e in cd.train]
        dv_l = [label_ids[e.label] for e in cd.dev]
        before = mlm.restoration_accuracy(model, tok, dv_toks, dv_w, dv_l, **common)
        t0 = time.perf_counter()
        info = mlm.train_diffusion_lm(model, tok, tr_toks, tr_w, tr_l, T=int(p["T"]), lam=float(p["lam"]),
                                      schedule=p["schedule"], epochs=int(p["dlm_epochs"]), lr=float(p["dlm_lr"]),
                                      batch_size=int(p["dlm_batch_size"]), seed=1, coverage=coverage,
                                      n_groups=int(p["n_groups"]), max_steps=int(p["dlm_max_steps"]))
        after = mlm.restoration_accuracy(model, tok, dv_toks, dv_w, dv_l, **common)
        row = {"dataset": args.dataset, "view": args.view, "seed": args.seed, "init": init,
               "mlm_dir": str(mlm_dir), "mlm_fill_mask_accuracy_imdb": report.get("fill_mask_accuracy"),
               "mlm_settings": report.get("settings"), "step_group": int(p["step_group"]), "steps": steps,
               "dlm_epochs": int(p["dlm_epochs"]), "dlm_lr": float(p["dlm_lr"]), "coverage": coverage,
               "dlm_steps": info["steps"],
               "dev_restoration_before": before, "dev_restoration_after": after,
               "dlm_loss_by_epoch": [round(h["loss"], 3) for h in info["history"]],
               "dlm_train_seconds": round(time.perf_counter() - t0, 1), "train": len(cd.train), "dev": len(cd.dev)}
        print(json.dumps(row), flush=True)
        rows.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


def _score_trained(args, cd, dv_toks, dv_w, common) -> int:
    """Dev restoration of a diffusion LM a cell trained (read from its cache entry)."""
    from methods.diffusioncls import diffusion_lm as mlm

    model, tok, meta = mlm.load_diffusion_lm(Path(args.dlm_dir))
    label_ids = meta.get("label_ids") or {}
    dv_l = [label_ids[e.label] for e in cd.dev] if label_ids else None
    training = meta.get("training", {})
    row = {"dataset": args.dataset, "view": args.view, "seed": args.seed, "dlm_dir": args.dlm_dir,
           "coverage": training.get("coverage"), "dlm_steps": training.get("steps"),
           "dlm_train_seconds": training.get("train_seconds"), "steps": common["steps"],
           "dev_restoration": mlm.restoration_accuracy(model, tok, dv_toks, dv_w, dv_l, **common),
           "dev": len(cd.dev)}
    print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps([row], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
