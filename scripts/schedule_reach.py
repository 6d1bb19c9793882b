"""How far does the label-aware schedule move masking? The importance weights' reach, measured.

For one (dataset, view, seed) of a run directory it takes the cached proxy (the `none` classifier),
computes DiffusionCLS's importance weights of the train view for each weight normalisation, and
reports, at the steps of a step group, the masking probability ``p_i(t) = t/T + lam sin(pi t/T) w_i``
of a mean token and of each sentence's most important token, against the linear base ``t/T``:

    python scripts/schedule_reach.py --out runs/quick --seed 0 --norms none,mean,centred
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/quick")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--dataset", default="airline")
    ap.add_argument("--view", default="5pct")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--norms", default="none,mean,centred")
    ap.add_argument("--step-group", type=int, default=4)
    args = ap.parse_args(argv)

    import torch

    from bench.config import RunConfig
    from bench.runner import CellSpec, open_cell
    from methods.diffusioncls.importance import importance_weights, tokenize_texts
    from methods.diffusioncls.method import DiffusionCLS
    from methods.diffusioncls.schedule import step_group_steps

    p = DiffusionCLS.default_params()
    cfg = RunConfig.from_preset(args.preset, out_dir=args.out, cache_dir=str(Path(args.out) / "cache"), device="cpu")
    cell = open_cell(CellSpec(args.dataset, args.view, "none", "-", args.seed), cfg)
    proxy = cell.proxy()
    toks = tokenize_texts(proxy.tokenizer, [e.text for e in cell.data.train], p["max_length"] - 4)
    T, lam = p["T"], p["lam"]
    steps = step_group_steps(args.step_group, T, p["n_groups"])
    rows = []
    for norm in args.norms.split(","):
        ws = [w for w in importance_weights(proxy.model, proxy.tokenizer, toks, norm) if w.numel()]
        for t in (steps[0], T // 2, steps[-1]):
            lift = lam * math.sin(math.pi * t / T)
            base = t / T
            mean_tok = torch.tensor([float((base + lift * w).clamp(0, 1).mean()) for w in ws]).mean().item()
            top_tok = torch.tensor([float(min(1.0, base + lift * float(w.max()))) for w in ws]).mean().item()
            low_tok = torch.tensor([float(max(0.0, base + lift * float(w.min()))) for w in ws]).mean().item()
            rows.append({"norm": norm, "t": t, "T": T, "lam": lam, "base": round(base, 4),
                         "mean_token": round(mean_tok, 4), "top_token": round(top_tok, 4),
                         "least_token": round(low_tok, 4), "sentences": len(ws),
                         "mean_weight_sum": round(float(torch.tensor([float(w.sum()) for w in ws]).mean()), 4),
                         "mean_tokens": round(sum(w.numel() for w in ws) / len(ws), 2)})
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
