"""Optimizer steps per second of the classifier's training step, variants side by side in one run.

Variants (the same texts, batch size, max length, model and thread count):
  before     tokenize each batch, random batch composition, fp32 (the loop before the step protocol)
  bucketed   texts tokenized once, length-bucketed batches, fp32
  bf16       bucketed + bf16 autocast

The variants are interleaved in rounds (before, bucketed, bf16, before, ...) so that machine load hits
them alike; the figure per variant is the median over rounds. Run on an otherwise idle core:
    python scripts/bench_training_speed.py --steps 20 --rounds 5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=20, help="steps per variant per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=48)
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from bench.classifier import ClassifierConfig, _optimizer, load_backbone, optimizer_step
    from bench.config import RunConfig
    from bench.runner import cell_data
    from bench.training import Item, collate, plain_batches

    cfg = RunConfig.from_preset("quick", out_dir="/tmp/bench-speed", cache_dir="/tmp/bench-speed/cache")
    from bench.runner import CellSpec

    data = cell_data(CellSpec("airline", "5pct", "none", "-", 0), cfg)
    texts = [e.text for e in data.train] * 5  # a G/E-sized set
    labels = [data.labels.index(e.label) for e in data.train] * 5
    ccfg = ClassifierConfig(max_length=args.max_length, batch_size=args.batch_size)
    tok, model = load_backbone(ccfg, data.labels)
    opt, sched = _optimizer(model, ccfg, 10_000)
    ids = tok(texts, truncation=True, max_length=args.max_length)["input_ids"]
    items = [Item(tuple(i), y, True) for i, y in zip(ids, labels)]
    rng = random.Random(0)
    bucketed = plain_batches(items, args.batch_size, rng, bucket=50)
    model.train()

    def step_before() -> None:
        idx = rng.sample(range(len(texts)), args.batch_size)
        enc = tok([texts[i] for i in idx], truncation=True, max_length=args.max_length, padding=True,
                  return_tensors="pt")
        y = torch.tensor([labels[i] for i in idx])
        loss = torch.nn.functional.cross_entropy(model(**enc).logits, y)
        loss.backward()
        optimizer_step(model, opt, sched)

    def step_bucketed(bf16: bool) -> None:
        i, a, y, _ = collate(items, next(bucketed), tok.pad_token_id)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(input_ids=i, attention_mask=a).logits.float(), y)
        loss.backward()
        optimizer_step(model, opt, sched)

    variants = {"before": step_before, "bucketed": lambda: step_bucketed(False), "bf16": lambda: step_bucketed(True)}
    for fn in variants.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            rates[name].append(args.steps / (time.perf_counter() - t0))
    out = {k: {"median_steps_per_s": round(statistics.median(v), 3), "rounds": [round(x, 3) for x in v]}
           for k, v in rates.items()}
    out["setup"] = {"threads": args.threads, "batch_size": args.batch_size, "max_length": args.max_length,
                    "steps_per_round": args.steps, "rounds": args.rounds, "model": ccfg.backbone,
                    "bf16_supported": torch.backends.mkldnn.is_available()}
    base = out["before"]["median_steps_per_s"]
    for k in variants:
        out[k]["speedup_vs_before"] = round(out[k]["median_steps_per_s"] / base, 2)
    print(json.dumps(out, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
