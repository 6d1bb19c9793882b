"""How different are the pseudo samples of one original? A diagnostic, not a benchmark cell.

For one (dataset, view, seed) of a run directory, each method spec given is fitted the way a cell
fits it (the proxy and a DiffusionCLS diffusion LM come from the run's cache when a cell made them)
and generates the cell's G/E pseudo samples; nothing is trained on them and nothing is written to
the run's records. Printed per spec: distinct pseudo samples per original, their mean pairwise word
overlap (Jaccard), copies of the parent, tokens changed and generation time:

    python scripts/pseudo_diversity.py --out runs/quick --seed 0 \
        diffusioncls-wo-nrt "diffusioncls-wo-nrt[mask_draws=independent]" \
        "diffusioncls-wo-nrt[top_k=10]" "diffusioncls-wo-nrt[mask_draws=independent;top_k=10]"

Prints one JSON line per spec; ``--json FILE`` also writes them all.
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
    ap.add_argument("specs", nargs="+", help="method specs, e.g. diffusioncls-wo-nrt[mask_draws=independent]")
    ap.add_argument("--out", default="runs/quick", help="run directory whose cache holds the proxy and LMs")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--dataset", default="airline")
    ap.add_argument("--view", default="5pct")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    from bench.config import RunConfig
    from bench.runner import CellSpec, open_cell, policy_counts

    cfg = RunConfig.from_preset(args.preset, out_dir=args.out, cache_dir=str(Path(args.out) / "cache"), device="cpu")
    rows = []
    for spec in args.specs:
        cell = open_cell(CellSpec(args.dataset, args.view, spec, "G-E", args.seed), cfg)
        train = cell.data.train
        cell.aug.fit(train, cell.fit_context())
        t0 = time.perf_counter()
        res = cell.aug.augment(train, policy_counts(train, "G/E", cfg.n_aug, cell.aug.seed))
        s = res.stats
        parent = next((e for e in train if any(x.parent_id == e.id for x in res.synthetic)), train[0])
        row = {"spec": spec, "dataset": args.dataset, "view": args.view, "seed": args.seed,
               "originals": len(train), "produced": res.produced,
               "siblings_distinct_mean": s.get("siblings_distinct_mean"),
               "siblings_jaccard_mean": s.get("siblings_jaccard_mean"),
               "identical_to_parent": s.get("identical_to_parent"),
               "mean_changed_tokens": s.get("mean_changed_tokens"), "mean_mask_rate": s.get("mean_mask_rate"),
               "augment_seconds": round(time.perf_counter() - t0, 1),
               "example_parent": parent.text, "example_samples": [x.text for x in res.synthetic
                                                                  if x.parent_id == parent.id]}
        print(json.dumps(row, ensure_ascii=False), flush=True)
        rows.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
